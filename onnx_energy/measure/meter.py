"""An energy meter for any code: a training step, a serving loop, a whole script.

::

    with onnx_energy.EnergyMeter("epoch 1", out="records.jsonl") as meter:
        train_one_epoch()
    meter.reading.joules, meter.reading.seconds, meter.reading.watts, meter.reading.sensor

    @onnx_energy.measure_energy(out="records.jsonl")
    def serve_batch(batch): ...
    serve_batch.last  # the reading of the last call

The same idea as Zeus's ``begin_window``/``end_window`` (here ``start()``/``stop()``) and
codecarbon's ``EmissionsTracker``/``@track_emissions``, over onnx-energy's sensors
(`open_sensor`: RAPL, NVML, codecarbon) and with the same honesty as `measure`: joules come
only from a sensor; without one the reading has the seconds, ``joules=None`` and the reason.
The energy is gross (everything the sensor's domains consumed meanwhile, other processes
included). With ``out``, each reading is appended as a schema-2 record of kind ``code``.
"""

from __future__ import annotations

import functools
import os
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

from .fingerprint import hardware_fingerprint
from .protocol import utc_now
from .records import SCHEMA_ID, RecordWriter
from .sensors import Sensor, SensorReadError, open_sensor

P = ParamSpec("P")
T = TypeVar("T")
Clock = Callable[[], float]


@dataclass
class MeterReading:
    """What one metered block cost: its seconds and, where a sensor exists, its joules.

    ``joules`` and ``watts`` are None without a sensor (or when its reading failed), and
    ``note`` says why; ``estimate`` is true when the sensor models power instead of reading
    it (codecarbon's TDP fallback).
    """

    label: str
    seconds: float
    joules: float | None
    watts: float | None
    sensor: str
    sensor_detail: dict[str, Any]
    estimate: bool
    note: str | None = None
    timestamp: str = ""
    provider: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "seconds": self.seconds, "joules": self.joules,
                "watts": self.watts, "sensor": self.sensor,
                "sensor_detail": self.sensor_detail, "estimate": self.estimate,
                "note": self.note, "timestamp": self.timestamp}

    def to_record(self, run_id: str, window: int = 0,
                  hardware: dict[str, Any] | None = None) -> dict[str, Any]:
        """The reading as a record of the documented schema (kind ``code``)."""
        return {
            "schema": SCHEMA_ID,
            "kind": "code",
            "runner": {"name": "python", "version": platform.python_version()},
            "run_id": run_id,
            "window": window,
            "timestamp": self.timestamp or None,
            "label": self.label,
            "model": None,
            "spec": None,
            "provider": self.provider,
            "sensor": self.sensor,
            "sensor_detail": self.sensor_detail,
            "estimate": self.estimate,
            "iterations": 1,
            "window_s": self.seconds if self.seconds > 0 else None,
            "runtime_s": self.seconds if self.seconds > 0 else None,
            "energy_j": self.joules,
            "energy_dynamic_j": None,
            "power_w": self.watts,
            "idle_power_w": None,
            "hardware": hardware,
        }


@dataclass
class _Open:
    sensor: Sensor
    owned: bool
    notes: list[str]
    a0: float
    e0: float | None
    t0: float
    error: str | None = None


class EnergyMeter:
    """Meters the code run between `start` and `stop` (or inside ``with``).

    ``sensor`` is a name (``auto``: the best real sensor for ``provider``, ``cpu`` or
    ``cuda``, as `measure` picks it; ``rapl``, ``nvml``, ``codecarbon``, ``none``) or an
    opened `Sensor`, which is then left open. ``out`` appends each reading to a record file.
    A meter can be started again after it stopped; each reading gets the next window index.
    """

    def __init__(self, label: str = "code", *, sensor: str | Sensor = "auto",
                 provider: str = "cpu", device: int = 0,
                 out: str | os.PathLike[str] | None = None, clock: Clock = time.perf_counter,
                 run_id: str | None = None) -> None:
        self.label = label
        self.sensor = sensor
        self.provider = provider
        self.device = device
        self.out = out
        self.run_id = run_id or uuid.uuid4().hex
        self.reading: MeterReading | None = None
        self.readings: int = 0
        self._clock = clock
        self._open: _Open | None = None

    def start(self) -> EnergyMeter:
        """Open the sensor (if named) and read it: the metered block starts now."""
        if self._open is not None:
            raise RuntimeError(f"EnergyMeter {self.label!r} is already running")
        notes: list[str] = []
        if isinstance(self.sensor, Sensor):
            sensor, owned = self.sensor, False
        else:
            sensor, notes = open_sensor(self.sensor, provider=self.provider, device=self.device)
            owned = True
        a0 = self._clock()
        error = None
        try:
            e0 = sensor.read()
        except SensorReadError as exc:
            e0, error = None, str(exc)
        self._open = _Open(sensor, owned, notes, a0, e0, self._clock(), error)
        return self

    def stop(self) -> MeterReading:
        """Read the sensor again: the reading of the block (also kept in ``reading``)."""
        state = self._open
        if state is None:
            raise RuntimeError(f"EnergyMeter {self.label!r} was not started")
        self._open = None
        t1 = self._clock()
        error = state.error
        e1: float | None = None
        try:
            if error is None:
                e1 = state.sensor.read()
        except SensorReadError as exc:
            error = str(exc)
        b1 = self._clock()
        try:
            reading = self._reading(state, t1, b1, e1, error)
        finally:
            if state.owned:
                state.sensor.close()
        self.reading = reading
        if self.out is not None:
            hardware = hardware_fingerprint(self.provider, self.device)
            with RecordWriter(self.out) as writer:
                writer.append(reading.to_record(self.run_id, self.readings, hardware))
        self.readings += 1
        return reading

    def _reading(self, state: _Open, t1: float, b1: float, e1: float | None,
                 error: str | None) -> MeterReading:
        sensor = state.sensor
        seconds = t1 - state.t0
        joules = watts = None
        note = None
        if sensor.name == "none":
            why = "; ".join(state.notes) if state.notes else "--sensor none"
            note = f"no energy: no sensor ({why})"
        elif error is not None or state.e0 is None or e1 is None:
            note = f"no energy: the sensor reading failed ({error or 'no value'})"
        else:
            joules = e1 - state.e0
            span = (t1 + b1) / 2 - (state.a0 + state.t0) / 2  # read to read, like measure
            watts = joules / span if span > 0 else None
            if joules < 0:
                joules = watts = None
                note = "no energy: the sensor counter went backwards"
        if sensor.estimate and joules is not None:
            note = (f"ESTIMATE, not a measurement: {sensor.name} models power here "
                    f"({sensor.describe().get('mode')})")
        return MeterReading(self.label, seconds, joules, watts, sensor.name,
                            sensor.describe(), sensor.estimate, note, utc_now(),
                            self.provider)

    def __enter__(self) -> EnergyMeter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()  # an exception in the block is still metered, then propagates

    # The reading's main numbers, for ``with ... as m: ...; m.joules``.
    @property
    def joules(self) -> float | None:
        return None if self.reading is None else self.reading.joules

    @property
    def seconds(self) -> float | None:
        return None if self.reading is None else self.reading.seconds

    @property
    def watts(self) -> float | None:
        return None if self.reading is None else self.reading.watts


class MeteredFunction(Generic[P, T]):
    """A function whose every call is metered (made by `measure_energy`); ``last`` is the
    reading of the last call. The calls share a ``run_id`` and are numbered by ``window``."""

    def __init__(self, func: Callable[P, T], label: str, sensor: str | Sensor, provider: str,
                 device: int, out: str | os.PathLike[str] | None,
                 on_reading: Callable[[MeterReading], None] | None) -> None:
        functools.update_wrapper(self, func)
        self._func = func
        self._on_reading = on_reading
        self.meter = EnergyMeter(label, sensor=sensor, provider=provider, device=device,
                                 out=out)
        self.last: MeterReading | None = None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        self.meter.start()
        try:
            return self._func(*args, **kwargs)
        finally:
            self.last = self.meter.stop()
            if self._on_reading is not None:
                self._on_reading(self.last)


def measure_energy(
    fn: Callable[P, T] | None = None, *, label: str | None = None,
    sensor: str | Sensor = "auto", provider: str = "cpu", device: int = 0,
    out: str | os.PathLike[str] | None = None,
    on_reading: Callable[[MeterReading], None] | None = None,
) -> Any:
    """Decorator: meter every call of a function (``@measure_energy`` or
    ``@measure_energy(label=..., out=...)``, as codecarbon's ``@track_emissions``).

    Each call opens the sensor, runs the function and takes a `MeterReading`: kept as
    ``.last`` on the decorated function, passed to ``on_reading``, appended to ``out``. The
    return value (and any exception) of the function passes through unchanged.
    """

    def decorate(func: Callable[P, T]) -> MeteredFunction[P, T]:
        name = label or str(getattr(func, "__qualname__", "code"))
        return MeteredFunction(func, name, sensor, provider, device, out, on_reading)

    return decorate(fn) if fn is not None else decorate
