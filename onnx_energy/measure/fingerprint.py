"""A hardware fingerprint for records: which machine and software produced a measurement."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import platform
from pathlib import Path
from typing import Any


def _cpuinfo() -> tuple[str | None, int | None]:
    """CPU model name and physical core count from /proc/cpuinfo (Linux), best effort."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, None
    model: str | None = None
    cores: set[tuple[str, str]] = set()
    phys = core = None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("model name", "Model", "Processor") and model is None and value:
            model = value
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
        elif not line.strip():
            if core is not None:
                cores.add((phys or "0", core))
            phys = core = None
    return model, (len(cores) or None)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip() or None
    except OSError:
        return None


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

    model, physical = _cpuinfo()
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    gpu_name = gpu_driver = None
    if provider == "cuda":
        gpu_name, gpu_driver = _gpu(device)
    info = {
        "cpu_model": model or platform.processor() or None,
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_physical": physical,
        "cpu_cores_usable": usable,
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "machine": platform.machine() or None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "gpu_name": gpu_name,
        "gpu_driver": gpu_driver,
        "onnxruntime": ort.__version__,
        "onnx_energy": __version__,
    }
    return tuple(info.items())


def hardware_fingerprint(provider: str = "cpu", device: int = 0) -> dict[str, Any]:
    """CPU model and cores, GPU name and driver (CUDA runs), OS and software versions."""
    return dict(_static(provider, device))
