"""onnx-energy: static cost analysis and energy measurement of ONNX models."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis import Analysis, NodeResult, analyze
    from .errors import OnnxEnergyError
    from .graph import TensorInfo
    from .measure.measurement import measure
    from .measure.meter import EnergyMeter, measure_energy

__all__ = ["Analysis", "EnergyMeter", "NodeResult", "OnnxEnergyError", "TensorInfo", "analyze",
           "measure", "measure_energy"]
__version__ = "0.1.0"

# The public API, imported on first use: the CLI must be able to configure the process (see
# cli/__init__.py) before numpy loads, and `measure` pulls in onnxruntime, which `analyze`
# never needs.
_EXPORTS = {
    "Analysis": ".analysis",
    "NodeResult": ".analysis",
    "analyze": ".analysis",
    "measure": ".measure",
    "EnergyMeter": ".measure.meter",
    "measure_energy": ".measure.meter",
    "OnnxEnergyError": ".errors",
    "TensorInfo": ".graph",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'onnx_energy' has no attribute {name!r}")
    if name == "measure":  # the package itself: callable as the function (see measure/)
        return importlib.import_module(module, __name__)
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
