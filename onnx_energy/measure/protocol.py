"""The measurement protocol: idle baseline, warm-up, timed windows, robust statistics.

A window loops inferences until it has lasted at least ``min_window`` seconds (long enough
for the sensor's update period), with the device synchronised and the sensor read at both
edges. Energy per inference is the counter difference over the iterations; dynamic energy
subtracts the idle power (measured with the same sensor before the run) times the window.
Windows whose sensor read fails are dropped and counted, never averaged in.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from .runner import Runner
from .sensors import Sensor, SensorReadError

Clock = Callable[[], float]


@dataclass
class Idle:
    """Idle baseline: average power with nothing running, or why it is missing."""

    power_w: float | None
    seconds: float
    error: str | None = None


@dataclass
class Window:
    index: int
    iterations: int
    seconds: float
    runtime_s: float
    energy_j: float | None
    energy_dynamic_j: float | None
    power_w: float | None
    timestamp: str
    #: This process's CPU time per inference over the window (all its threads). With one
    #: intra-op thread, wall time well above it means other work took the core.
    cpu_s: float | None = None


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def idle_baseline(
    sensor: Sensor, seconds: float, clock: Clock = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> Idle:
    """Average power over `seconds` of sleeping; None with a reason if the sensor fails."""
    if sensor.name == "none" or seconds <= 0:
        return Idle(None, 0.0)
    try:
        a0 = clock()
        e0 = sensor.read()
        t0 = clock()
        sleep(seconds)
        t1 = clock()
        e1 = sensor.read()
        b1 = clock()
    except SensorReadError as exc:
        return Idle(None, seconds, str(exc))
    span = _span(a0, t0, t1, b1)
    if e0 is None or e1 is None or span <= 0 or e1 < e0:
        return Idle(None, seconds, "idle reading was not usable")
    return Idle((e1 - e0) / span, span)


def _span(a0: float, t0: float, t1: float, b1: float) -> float:
    """Time between two sensor reads, each taken at the middle of its call."""
    return (t1 + b1) / 2 - (a0 + t0) / 2


def warm_up(runner: Runner, iterations: int, max_seconds: float,
            clock: Clock = time.perf_counter) -> tuple[int, float]:
    """At least one run; stop after `iterations` runs or `max_seconds`, whichever first."""
    t0 = clock()
    n = 0
    while True:
        runner.run_once()
        n += 1
        if n >= iterations or clock() - t0 >= max_seconds:
            break
    runner.sync()
    return n, clock() - t0


def run_window(
    runner: Runner, sensor: Sensor, min_window: float, idle_power_w: float | None,
    index: int, clock: Clock = time.perf_counter,
) -> Window:
    """One window; raises SensorReadError if the sensor cannot be read at an edge."""
    runner.sync()
    a0 = clock()
    e0 = sensor.read()
    t0 = clock()
    c0 = time.process_time()
    n = 0
    while True:
        runner.run_once()
        n += 1
        if clock() - t0 >= min_window:
            break
    runner.sync()
    c1 = time.process_time()
    t1 = clock()
    e1 = sensor.read()
    b1 = clock()
    seconds = t1 - t0
    energy = dynamic = power = None
    if e0 is not None and e1 is not None:
        joules = e1 - e0
        if not math.isfinite(joules) or joules < 0:
            raise SensorReadError(f"{sensor.name}: counter went backwards ({joules:.6g} J)")
        span = _span(a0, t0, t1, b1)  # the energy window: from read to read
        energy = joules / n
        power = joules / span if span > 0 else None
        if idle_power_w is not None:
            dynamic = (joules - idle_power_w * span) / n
    return Window(index, n, seconds, seconds / n, energy, dynamic, power, utc_now(),
                  (c1 - c0) / n)


def median(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def cv(values: Sequence[float | None]) -> float | None:
    """Coefficient of variation (sample stdev / mean); None for fewer than two values."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return None
    mean = statistics.fmean(vals)
    return statistics.stdev(vals) / abs(mean) if mean else None
