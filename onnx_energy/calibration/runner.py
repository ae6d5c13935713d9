"""Deprecated: moved to `onnx_energy.measure.runner` (this alias goes in the next release)."""

from .._deprecated import alias_module

alias_module(__name__, "onnx_energy.measure.runner")
