"""Deprecated: moved to `onnx_energy.measure` (this alias goes in the next release).

It aliases the `onnx_energy.measure` package, which is callable as the `measure` function:
``from onnx_energy.calibration import measure`` (the function) and
``from onnx_energy.calibration.measure import measure`` (a name in the module) both keep
working.
"""

from .._deprecated import alias_module

alias_module(__name__, "onnx_energy.measure")
