"""Measurement: runtime and energy of models and single ops with onnxruntime and real sensors.

Used by ``onnx-energy measure``, by calibration sweeps and by ``validate``:

- `runner`: an onnxruntime session on seeded inputs (CPU or CUDA with IO binding);
- `protocol`: idle baseline, warm-up, timed windows, robust statistics;
- `sensors`: RAPL, NVML, codecarbon or none, behind one interface;
- `records`: the crash-safe JSON-lines record store and its schema;
- `profiling`: onnxruntime's per-kernel profile mapped back to graph nodes;
- `fingerprint`: which machine and software produced a measurement;
- `probe`: the speed probe, one fixed kernel timed beside calibrations and validations;
- `measurement`: `measure()` and its result, `Measurement`;
- `meter`: `EnergyMeter` and `measure_energy`, the same sensors around any code.

``onnx_energy.measure`` is both this package and the function `measure`: the package object
is callable (``onnx_energy.measure(model, ...)`` runs `measurement.measure`), so the public
call keeps working whichever of the two a caller imported first.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ..errors import MeasurementFailed, MeasurementInterrupted
from .measurement import Measurement, measure
from .meter import EnergyMeter, MeterReading, measure_energy
from .records import RecordWriter, read_records, record_schema
from .sensors import (
    CodecarbonSensor,
    NoSensor,
    NvmlSensor,
    RaplSensor,
    Sensor,
    SensorReadError,
    open_sensor,
)

__all__ = [
    "CodecarbonSensor",
    "EnergyMeter",
    "Measurement",
    "MeasurementFailed",
    "MeasurementInterrupted",
    "MeterReading",
    "NoSensor",
    "NvmlSensor",
    "RaplSensor",
    "RecordWriter",
    "Sensor",
    "SensorReadError",
    "measure",
    "measure_energy",
    "open_sensor",
    "read_records",
    "record_schema",
]


class _CallablePackage(types.ModuleType):
    """This package, callable as the `measure` function it exports."""

    def __call__(self, *args: Any, **kwargs: Any) -> Measurement:
        return measure(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
