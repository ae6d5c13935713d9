"""Calibration of hardware profiles: measurement, records, fitting (see issues).

Measurement (issue 4): `measure()` runs a model or an in-memory single-op model with
onnxruntime and reads a real energy sensor; every window is appended to a JSON-lines record
file (schema: ``onnx_energy/data/record.schema.json``).
"""

from .measure import Measurement, MeasurementFailed, MeasurementInterrupted, measure
from .records import RecordWriter, read_records, record_schema
from .sensors import (
    CodecarbonSensor,
    NoSensor,
    NvmlSensor,
    RaplSensor,
    Sensor,
    SensorReadError,
    SensorUnavailable,
    open_sensor,
)

__all__ = [
    "CodecarbonSensor",
    "Measurement",
    "MeasurementFailed",
    "MeasurementInterrupted",
    "NoSensor",
    "NvmlSensor",
    "RaplSensor",
    "RecordWriter",
    "Sensor",
    "SensorReadError",
    "SensorUnavailable",
    "measure",
    "open_sensor",
    "read_records",
    "record_schema",
]
