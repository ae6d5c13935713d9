"""`validate`: how good are a profile's predictions? Measure each model, predict it, compare.

Per model: the measured runtime (median of timed windows, `measure.measure`) and energy
(gross, where a sensor exists; None otherwise, never invented) against the profile's
prediction and its interval, with the relative error (predicted / measured - 1). Overall,
per target: MAPE (mean |error|), RMSPE (root mean squared error) and R² of the predictions
against the measurements (1 - SS_res / SS_tot, from two models up).

Machine drift: where the profile recorded the speed probe (`measure.probe`) while it was
calibrated, the probe is timed again before each model; ``speed_ratio`` is its time now
over then (1.12: the machine runs the same kernel 12% slower now), and
``runtime_error_at_calibrated_speed`` the runtime error with the measurement divided by it,
the share of the error the profile itself accounts for. The prediction is never rescaled.

Per op type: the predicted kernel time (each kernel's prediction is on its anchor node) and
the measured time from onnxruntime's per-node profile (`measure.profiling.NodeTiming`, a
fused group attributed to the op type of the node the prediction anchors it on, or its
first compute node); kernels onnxruntime inserted are a bucket of their own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .analysis import Analysis, analyze
from .errors import UnjudgeableError
from .machine import PROBE_KERNEL
from .profile import Profile

VALIDATE_SCHEMA = "onnx-energy/validate/1"
INSERTED = "(inserted by onnxruntime)"
#: A speed ratio further than this from 1 is reported as drift.
DRIFT = 0.05
#: Op types that are shape bookkeeping, not the compute of a fused group.
_SHAPE_OPS = frozenset({"Identity", "Constant", "Shape", "Size", "Gather", "Unsqueeze",
                        "Squeeze", "Concat", "Cast", "Slice", "Reshape", "Flatten"})


@dataclass
class TargetResult:
    """One target (runtime or energy) of one model: measured, predicted, the error."""

    measured: float | None
    predicted: float | None
    interval: list[float] | None
    note: str | None = None

    @property
    def error(self) -> float | None:
        if self.measured is None or self.predicted is None or self.measured <= 0:
            return None
        return self.predicted / self.measured - 1

    @property
    def inside(self) -> bool | None:
        if self.measured is None or self.interval is None:
            return None
        return self.interval[0] <= self.measured <= self.interval[1]

    def to_dict(self) -> dict[str, Any]:
        return {"measured": self.measured, "predicted": self.predicted,
                "interval": self.interval, "error": self.error,
                "inside_interval": self.inside, "note": self.note}


@dataclass
class ModelValidation:
    """One model: its targets and its per-op-type time breakdown."""

    model: str
    name: str
    runtime: TargetResult
    energy: TargetResult
    sensor: str
    runtime_cv: float | None
    by_op: dict[str, dict[str, float]]
    kernels_time_s: float | None
    #: The speed probe's time just before this model was measured, and its ratio to the
    #: calibration's (None where the profile has no probe).
    probe_s: float | None = None
    speed_ratio: float | None = None

    @property
    def error_at_calibrated_speed(self) -> float | None:
        """The runtime error with the measurement brought back to the calibration's speed."""
        e = self.runtime.error
        if e is None or self.speed_ratio is None:
            return None
        return (e + 1) * self.speed_ratio - 1

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "name": self.name, "sensor": self.sensor,
                "runtime_s": self.runtime.to_dict(), "energy_j": self.energy.to_dict(),
                "runtime_cv": self.runtime_cv, "kernels_time_s": self.kernels_time_s,
                "speed_probe_s": self.probe_s, "speed_ratio": self.speed_ratio,
                "runtime_error_at_calibrated_speed": self.error_at_calibrated_speed,
                "by_op_type": self.by_op}


@dataclass
class Scores:
    """Accuracy of one target over the models that have it measured and predicted."""

    n: int
    mape: float | None
    rmspe: float | None
    r2: float | None
    inside: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mape": self.mape, "rmspe": self.rmspe, "r2": self.r2,
                "inside_interval": self.inside, "note": self.note}


@dataclass
class Validation:
    """Every model's validation and the overall scores per target."""

    profile: dict[str, Any] | None
    models: list[ModelValidation]
    scores: dict[str, Scores]
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: ``{"kernel", "calibrated_s", "measured_s", "ratio"}`` (the median over the models),
    #: where the profile recorded the speed probe; else None.
    speed_probe: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schema": VALIDATE_SCHEMA, "profile": self.profile, "settings": self.settings,
                "models": [m.to_dict() for m in self.models],
                "scores": {k: v.to_dict() for k, v in self.scores.items()},
                "speed_probe": self.speed_probe, "warnings": self.warnings}


def scores(pairs: Sequence[tuple[float, float]], inside: int = 0) -> Scores:
    """MAPE, RMSPE and R² of (measured, predicted) pairs (measured > 0)."""
    pairs = [(m, p) for m, p in pairs if m > 0]
    n = len(pairs)
    if not n:
        return Scores(0, None, None, None, 0, "nothing both measured and predicted")
    rel = [p / m - 1 for m, p in pairs]
    mape = sum(abs(r) for r in rel) / n
    rmspe = math.sqrt(sum(r * r for r in rel) / n)
    mean = sum(m for m, _ in pairs) / n
    ss_tot = sum((m - mean) ** 2 for m, _ in pairs)
    ss_res = sum((m - p) ** 2 for m, p in pairs)
    note = None
    if n < 2 or ss_tot <= 0:
        r2 = None
        note = "R² needs two models or more with different measurements"
    else:
        r2 = 1 - ss_res / ss_tot
    return Scores(n, mape, rmspe, r2, inside, note)


def op_breakdown(a: Analysis, timings: Sequence[Any] | None) -> dict[str, dict[str, float]]:
    """Predicted and measured kernel seconds per op type (see the module docstring)."""
    out: dict[str, dict[str, float]] = {}
    pred = a.prediction
    anchors: dict[str, str] = {}
    if pred is not None:
        for n, p in zip(a.nodes, pred.nodes, strict=True):
            if p.runtime_s:
                anchors[n.name] = n.op_type
                slot = out.setdefault(n.op_type, {"predicted_s": 0.0, "measured_s": 0.0})
                slot["predicted_s"] += p.runtime_s
    for row in timings or ():
        if not row.time_s:
            continue
        if row.inserted:
            key = INSERTED
        else:
            key = next((anchors[x] for x in row.nodes if x in anchors), None) or next(
                (t for t in row.op_types if t not in _SHAPE_OPS),
                row.op_types[0] if row.op_types else row.op_type or INSERTED)
        slot = out.setdefault(key, {"predicted_s": 0.0, "measured_s": 0.0})
        slot["measured_s"] += row.time_s
    return dict(sorted(out.items(), key=lambda kv: -max(kv[1].values())))


def validate_models(models: Sequence[str], profile: Profile, *,
                    dims: Mapping[str, int] | None = None, batch_size: int | None = None,
                    provider: str | None = None, threads: int | None = None,
                    sensor: str = "auto", min_window: float = 0.5, repeats: int = 3,
                    per_node: bool = True, progress: Any = None,
                    probe: Callable[[], float] | None = None) -> Validation:
    """Measure and predict each model with ``profile`` (provider and threads default to the
    profile's, so the measurement runs as the calibration did). ``probe`` times the speed
    probe (default: `measure.probe.speed_probe` with the same provider and threads, where
    the profile recorded one)."""
    from .measure import measure
    from .measure.probe import speed_probe

    provider = provider or profile.provider or "cpu"
    threads = threads or profile.threads or 1
    if profile.kind == "theoretical" and sensor == "none":
        raise UnjudgeableError("the theoretical profile predicts energy only, and --sensor "
                               "none measures none: there is nothing to compare")
    calibrated = profile.speed_probe_s if profile.provider in (None, provider) else None
    timer = None if calibrated is None else probe or (lambda: speed_probe(provider, threads))
    out: list[ModelValidation] = []
    warnings: list[str] = []
    info = None
    for model in models:
        a = analyze(model, dims=dims, batch_size=batch_size, profile=profile)
        pred = a.prediction
        assert pred is not None
        info = pred.profile
        warnings += [f"{Path(model).stem}: {w}" for w in pred.warnings]
        probe_s = timer() if timer is not None else None
        m = measure(model, provider=provider, threads=threads, dims=dims,
                    batch_size=batch_size, sensor=sensor, min_window=min_window,
                    repeats=repeats, per_node=per_node, progress=progress)
        t = pred.totals
        runtime = TargetResult(m.runtime_s, t.runtime_s, t.runtime_s_interval,
                               None if t.runtime_s is not None
                               else "the profile predicts no runtime")
        energy = TargetResult(m.energy_j, t.energy_j, t.energy_j_interval,
                              m.energy_note if m.energy_j is None else
                              None if t.energy_j is not None
                              else "the profile predicts no energy")
        out.append(ModelValidation(
            model, Path(model).stem, runtime, energy, m.sensor, m.runtime_cv,
            op_breakdown(a, m.nodes), m.nodes_time_s, probe_s,
            None if probe_s is None or calibrated is None else probe_s / calibrated))
    result: dict[str, Scores] = {}
    for key in ("runtime", "energy"):
        targets = [getattr(mv, key) for mv in out]
        pairs = [(x.measured, x.predicted) for x in targets
                 if x.measured is not None and x.predicted is not None]
        result[key] = scores(pairs, sum(1 for x in targets if x.inside))
    if result["runtime"].n == 0 and result["energy"].n == 0:
        warnings.append("nothing was both measured and predicted: a profile with runtime "
                        "maps, or an energy sensor, is needed")
    speed = _speed(out, calibrated)
    if speed is not None and abs(speed["ratio"] - 1) > DRIFT:
        warnings.append(
            f"the speed probe ({speed['kernel']}) ran {abs(speed['ratio'] - 1):.0%} "
            f"{'slower' if speed['ratio'] > 1 else 'faster'} than while the profile was "
            "calibrated: about that much of each runtime error is the machine's drift, not "
            "the profile's (runtime_error_at_calibrated_speed removes it)")
    settings = {"provider": provider, "threads": threads, "sensor": sensor,
                "min_window_s": min_window, "repeats": repeats,
                "dims": dict(dims or {}), "batch_size": batch_size}
    return Validation(info, out, result, settings, warnings, speed)


def _speed(models: Sequence[ModelValidation],
           calibrated: float | None) -> dict[str, Any] | None:
    times = sorted(m.probe_s for m in models if m.probe_s is not None)
    if calibrated is None or not times:
        return None
    now = statistics.median(times)
    return {"kernel": PROBE_KERNEL, "calibrated_s": calibrated, "measured_s": now,
            "ratio": now / calibrated}
