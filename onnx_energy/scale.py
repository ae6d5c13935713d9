"""Scaling study: predicted energy, runtime, MACs and TOs across one design factor.

A symbolic dim (``--dim seq=64:1024:64``, or geometric ``--dim batch=1:64:*2``, or a list
``--dim seq=128,256,512``) is swept; at each value the model is analysed and predicted, and
each metric's curve is fitted with a power law y = c · x^k by least squares in log-log
space, reporting k and R² (of the log fit). Points where x or y is not positive (a zero
dim, an unpredicted metric) are left out of the fit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .analysis import analyze
from .errors import ComparisonError
from .profile import Profile

SCALE_SCHEMA = "onnx-energy/scale/1"
MAX_POINTS = 256
#: Metrics of a scaling study: key -> (label, unit).
METRICS: dict[str, tuple[str, str]] = {"energy_j": ("energy", "J"),
                                       "runtime_s": ("runtime", "s"),
                                       "macs": ("MACs", ""), "tos": ("TOs", "")}
_RANGE = re.compile(r"^(\d+):(\d+)(?::(\*?)(\d+(?:\.\d+)?))?$")


@dataclass(frozen=True)
class DimRange:
    """The design factor: a dim name and the values it takes."""

    name: str
    values: tuple[int, ...]


def parse_range(text: str) -> DimRange:
    """``NAME=a:b[:step]``, ``NAME=a:b:*k`` (geometric) or ``NAME=v1,v2,...``."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise ComparisonError(f"--dim {text!r}: expected NAME=a:b:step (or a:b:*k, or "
                              "v1,v2,...)")
    values: list[int]
    m = _RANGE.match(spec)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        geometric, step = m.group(3) == "*", float(m.group(4) or 1)
        if b < a:
            raise ComparisonError(f"--dim {text!r}: the end {b} is below the start {a}")
        if geometric:
            if step <= 1 or a < 1:
                raise ComparisonError(f"--dim {text!r}: a geometric range needs a start >= 1 "
                                      "and a factor > 1")
            values, v = [], float(a)
            while v <= b + 1e-9 and len(values) <= MAX_POINTS:
                if not values or int(round(v)) != values[-1]:
                    values.append(int(round(v)))
                v *= step
        else:
            if step < 1 or not step.is_integer():
                raise ComparisonError(f"--dim {text!r}: the step must be an integer >= 1")
            values = list(range(a, b + 1, int(step)))[: MAX_POINTS + 1]
    else:
        try:
            values = [int(v) for v in spec.split(",") if v.strip()]
        except ValueError:
            raise ComparisonError(f"--dim {text!r}: expected NAME=a:b:step (or a:b:*k, or "
                                  "v1,v2,...) of integers") from None
        if any(v < 0 for v in values):
            raise ComparisonError(f"--dim {text!r}: dims are >= 0")
    if len(values) < 2:
        raise ComparisonError(f"--dim {text!r}: a scaling study needs at least two values")
    if len(values) > MAX_POINTS:
        raise ComparisonError(f"--dim {text!r}: more than {MAX_POINTS} values; widen the step")
    return DimRange(name, tuple(values))


@dataclass(frozen=True)
class PowerLaw:
    """y = coefficient · x^exponent, fitted in log-log space on ``points`` points."""

    coefficient: float
    exponent: float
    r2: float | None
    points: int

    def __call__(self, x: float) -> float:
        return self.coefficient * x ** self.exponent

    def to_dict(self) -> dict[str, Any]:
        return {"coefficient": self.coefficient, "exponent": self.exponent, "r2": self.r2,
                "points": self.points}


def fit_power_law(x: Sequence[float], y: Sequence[float | None]) -> PowerLaw | None:
    """The least-squares power law through the positive points (None with fewer than two
    distinct x). R² is that of the log-log fit (None when log y does not vary)."""
    pts = [(float(a), float(b)) for a, b in zip(x, y, strict=True)
           if b is not None and a > 0 and b > 0 and math.isfinite(b)]
    if len({a for a, _ in pts}) < 2:
        return None
    lx = np.log([a for a, _ in pts])
    ly = np.log([b for _, b in pts])
    k, c = np.polyfit(lx, ly, 1)
    resid = ly - (k * lx + c)
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2 = None if ss_tot <= 1e-24 else 1.0 - float(np.sum(resid ** 2)) / ss_tot
    return PowerLaw(float(math.exp(c)), float(k), r2, len(pts))


@dataclass
class ScaleCurve:
    """One model's metrics across the design factor, and their power laws."""

    model: str
    dim: str
    values: list[int]
    metrics: dict[str, list[float | None]]
    complete: list[bool]
    fits: dict[str, PowerLaw | None]
    profile: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "dim": self.dim, "values": self.values,
                "metrics": self.metrics, "complete": self.complete,
                "fits": {k: None if f is None else f.to_dict() for k, f in self.fits.items()}}


def scale_model(model: str, factor: DimRange, *, dims: Mapping[str, int] | None = None,
                batch_size: int | None = None, profile: Profile | None = None,
                precision: str = "native") -> ScaleCurve:
    """Sweep ``factor`` over ``model`` (other dims fixed by ``dims``)."""
    metrics: dict[str, list[float | None]] = {k: [] for k in METRICS}
    complete: list[bool] = []
    info = None
    for v in factor.values:
        a = analyze(model, dims={**(dims or {}), factor.name: v}, batch_size=batch_size,
                    precision=precision, profile=profile)
        # (a dim the model lacks is refused by the binding, as for analyze --dim)
        t, pred = a.totals, a.prediction
        tos = (t.lowered.tos or {}).get(precision)
        metrics["energy_j"].append(None if pred is None else pred.totals.energy_j)
        metrics["runtime_s"].append(None if pred is None else pred.totals.runtime_s)
        metrics["macs"].append(float(t.macs))
        metrics["tos"].append(None if tos is None else float(tos))
        complete.append(t.complete)
        info = None if pred is None else pred.profile
    xs = [float(v) for v in factor.values]
    fits = {k: fit_power_law(xs, ys) for k, ys in metrics.items()}
    return ScaleCurve(model, factor.name, list(factor.values), metrics, complete, fits, info)


@dataclass
class ScaleStudy:
    """The curves of every model across one design factor."""

    dim: str
    curves: list[ScaleCurve]

    @property
    def profile(self) -> dict[str, Any] | None:
        return next((c.profile for c in self.curves if c.profile), None)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCALE_SCHEMA, "dim": self.dim, "profile": self.profile,
                "models": [c.to_dict() for c in self.curves]}


def scale_models(models: Sequence[str], factor: DimRange, **options: Any) -> ScaleStudy:
    """`scale_model` for each of ``models``."""
    return ScaleStudy(factor.name, [scale_model(m, factor, **options) for m in models])
