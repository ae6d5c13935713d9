"""onnx-energy: static cost analysis and energy measurement of ONNX models."""

from __future__ import annotations

from typing import Any

from .analysis import Analysis, NodeResult, analyze
from .errors import OnnxEnergyError
from .graph import TensorInfo

__all__ = ["Analysis", "NodeResult", "OnnxEnergyError", "TensorInfo", "analyze", "measure"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `measure` pulls in onnxruntime; import it only when asked so `analyze` starts fast.
    if name == "measure":
        from .calibration.measure import measure

        return measure
    raise AttributeError(f"module 'onnx_energy' has no attribute {name!r}")
