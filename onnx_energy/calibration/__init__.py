"""Calibration of hardware profiles: op specs, single-op models, sweeps and fitting.

Measurement itself lives in `onnx_energy.measure`. The names it used to export from here
(``measure``, ``Measurement``, ``RecordWriter``, the sensors, ...) still resolve, with a
DeprecationWarning, for one release.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

#: Old name -> the module of `onnx_energy.measure` that holds it now ("" for the package).
_MOVED = {
    "measure": "", "Measurement": "measurement",
    "MeasurementFailed": "measurement", "MeasurementInterrupted": "measurement",
    "RecordWriter": "records", "read_records": "records", "record_schema": "records",
    "CodecarbonSensor": "sensors", "NoSensor": "sensors", "NvmlSensor": "sensors",
    "RaplSensor": "sensors", "Sensor": "sensors", "SensorReadError": "sensors",
    "SensorUnavailable": "sensors", "open_sensor": "sensors",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'onnx_energy.calibration' has no attribute {name!r}")
    new = f"onnx_energy.measure.{module}" if module else "onnx_energy.measure"
    warnings.warn(f"onnx_energy.calibration.{name} moved to {new}.{name}; the old name will "
                  "be removed in the next release", DeprecationWarning, stacklevel=2)
    if not module:  # the measure package, callable as the function
        return importlib.import_module(new)
    return getattr(importlib.import_module(new), name)
