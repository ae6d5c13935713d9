"""The speed probe: one fixed kernel, timed beside calibrations and measurements.

A shared or virtual machine does not run at one speed: here the same ResNet-50 ran 1.2×
slower for minutes, then fast again, and a calibration measured in a slow phase predicts
every later model too slow. The probe is a MatMul of two 256 × 256 float32 matrices (33.6
MFLOP, about half a millisecond on one core of a 2020s x86 CPU: MAC-bound like the
convolutions and matrix products that dominate models), run with the same provider and
thread count as the work it stands beside. A calibration stamps every record with the
latest probe (``probe_s``), the profile keeps their median, and ``validate`` times it again
before each model: the ratio says how much of an error is the machine's drift rather than
the profile's.

It tracks compute-bound work well and memory-bound work loosely (measured here over 150 s:
a convolution's CV fell from 5.0% to 3.1% once divided by the probe; a GEMV's from 33% to
28%), so it reports drift and never rescales a prediction.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper

from ..machine import PROBE_KERNEL

__all__ = ["PROBE_KERNEL", "median_probe", "probe_model", "speed_probe"]

_N = 256


def probe_model() -> ModelProto:
    """The probe: ``y = x @ w`` with a constant, seeded 256 × 256 ``w`` (opset 17)."""
    w = np.random.default_rng(0).standard_normal((_N, _N)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="probe")], "speed_probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [_N, _N])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [_N, _N])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def speed_probe(provider: str = "cpu", threads: int = 1, device: int = 0,
                window: float = 0.05, repeats: int = 6, clock: Callable[[], float] =
                time.perf_counter) -> float:
    """Seconds per run of the probe on this machine now: the fastest of ``repeats`` timed
    windows of at least ``window`` seconds each, after a warm-up (about 0.4 s in all).

    The fastest, not the median: what disturbs a probe on a shared machine (another
    tenant's burst, the first runs of a fresh process) only ever slows it, and one window
    in six is enough to read the machine's speed of the moment."""
    from .protocol import warm_up
    from .runner import Runner

    runner = Runner(probe_model(), provider=provider, threads=threads, device=device)
    warm_up(runner, 20, math.inf, clock)
    # a window is a warm-up cut by time: as many runs as fit in ``window`` seconds
    windows = (warm_up(runner, sys.maxsize, window, clock) for _ in range(repeats))
    return min(seconds / n for n, seconds in windows)


def median_probe(records: Iterable[Mapping[str, Any]]) -> tuple[float | None, int]:
    """The median ``probe_s`` of the records that carry one, and how many do."""
    values = [float(r["probe_s"]) for r in records
              if isinstance(r.get("probe_s"), (int, float)) and r["probe_s"] > 0]
    return (float(np.median(values)) if values else None), len(values)
