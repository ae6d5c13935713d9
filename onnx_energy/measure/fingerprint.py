"""A hardware fingerprint for records: which machine and software produced a measurement.

The machine part is `onnx_energy.machine`; this adds the GPU (through NVML) and the
onnxruntime version.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from typing import Any

from ..machine import machine_fingerprint


def _gpu(device: int) -> tuple[str | None, str | None]:
    """GPU name and driver through NVML, if nvidia-ml-py and a driver are present."""
    try:
        nv = importlib.import_module("pynvml")
    except ImportError:
        return None, None
    try:
        nv.nvmlInit()
    except Exception:
        return None, None
    try:
        from .sensors import _nvml_index, _text

        kind, ref = _nvml_index(device)
        handle = (nv.nvmlDeviceGetHandleByUUID(ref) if kind == "uuid"
                  else nv.nvmlDeviceGetHandleByIndex(ref))
        return _text(nv.nvmlDeviceGetName(handle)), _text(nv.nvmlSystemGetDriverVersion())
    except Exception:
        return None, None
    finally:
        with contextlib.suppress(Exception):
            nv.nvmlShutdown()


@functools.lru_cache(maxsize=8)
def _static(provider: str, device: int) -> tuple[tuple[str, Any], ...]:
    import onnxruntime as ort

    from .. import __version__

    gpu_name = gpu_driver = None
    if provider == "cuda":
        gpu_name, gpu_driver = _gpu(device)
    info = {
        **machine_fingerprint(),
        "gpu_name": gpu_name,
        "gpu_driver": gpu_driver,
        "onnxruntime": ort.__version__,
        "onnx_energy": __version__,
    }
    return tuple(info.items())


def hardware_fingerprint(provider: str = "cpu", device: int = 0) -> dict[str, Any]:
    """CPU model and cores, GPU name and driver (CUDA runs), OS and software versions."""
    return dict(_static(provider, device))
