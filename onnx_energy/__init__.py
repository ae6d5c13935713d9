"""onnx-energy: static cost analysis and energy measurement of ONNX models."""

from .analysis import Analysis, NodeResult, analyze
from .errors import OnnxEnergyError
from .graph import TensorInfo

__all__ = ["Analysis", "NodeResult", "OnnxEnergyError", "TensorInfo", "analyze"]
__version__ = "0.1.0"
