"""`check`: judge models against budgets (energy, latency, MACs, params, memory, CO2).

Each budget is one of three verdicts. **pass**: the judged value is within the limit.
**fail**: it exceeds it, by how much is said. **unjudgeable**: it cannot be said, and why
(a latency with the theoretical profile, which predicts no time; an energy with a profile
calibrated without a sensor; a partial total under the limit, since the uncounted nodes
could push it over). A partial total (an incomplete analysis) that already exceeds the
limit fails: the true value is at least that.

With ``confidence="upper"`` energy, latency and CO2 are judged at the upper end of their
prediction interval; counts (MACs, params, peak memory) are exact and judged as they are.

Exit codes (errors.py): 0 every budget holds, 1 one fails, 3 one cannot be judged (and none
fails), 2 bad input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .analysis import Analysis, analyze
from .budgets import METRICS, BudgetFile, ModelBudgets, budgets_for
from .carbon import CarbonIntensity, resolve_intensity
from .errors import EXIT_BUDGET, EXIT_UNJUDGEABLE, BudgetError
from .profile import Profile

PASS, FAIL, UNJUDGEABLE = "pass", "fail", "unjudgeable"
NO_BUDGET = "no budget"
CHECK_SCHEMA = "onnx-energy/check/1"


@dataclass
class Verdict:
    """One budget of one model."""

    budget: str
    metric: str
    unit: str
    limit: float
    value: float | None
    basis: str
    status: str
    source: str
    reason: str = ""
    lower_bound: bool = False

    @property
    def excess(self) -> float | None:
        return None if self.value is None else self.value - self.limit

    @property
    def excess_ratio(self) -> float | None:
        if self.value is None or self.limit <= 0:
            return None
        return self.value / self.limit - 1

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "metric": self.metric, "unit": self.unit,
                "limit": self.limit, "value": self.value, "basis": self.basis,
                "lower_bound": self.lower_bound, "status": self.status,
                "excess": self.excess, "excess_ratio": self.excess_ratio,
                "source": self.source, "reason": self.reason or None}


@dataclass
class ModelCheck:
    """The verdicts of one model, and what it was analysed with."""

    model: str
    verdicts: list[Verdict]
    profile: dict[str, Any] | None
    settings: dict[str, Any] = field(default_factory=dict)
    carbon: dict[str, Any] | None = None
    #: The prediction's warnings (another machine's profile, fallback kernels, ...).
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        statuses = {v.status for v in self.verdicts}
        if not statuses:
            return NO_BUDGET
        return FAIL if FAIL in statuses else UNJUDGEABLE if UNJUDGEABLE in statuses else PASS

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "status": self.status, "profile": self.profile,
                "settings": self.settings, "carbon": self.carbon,
                "warnings": self.warnings, "budgets": [v.to_dict() for v in self.verdicts]}


@dataclass
class CheckReport:
    """Every model's verdicts; `exit_code` is what ``onnx-energy check`` exits with."""

    models: list[ModelCheck]
    config: str | None

    @property
    def exit_code(self) -> int:
        statuses = {m.status for m in self.models}
        if FAIL in statuses:
            return EXIT_BUDGET
        if UNJUDGEABLE in statuses:
            return EXIT_UNJUDGEABLE
        return 0

    def failures(self) -> list[tuple[str, Verdict]]:
        return [(m.model, v) for m in self.models for v in m.verdicts if v.status == FAIL]

    def unjudgeable(self) -> list[tuple[str, Verdict]]:
        return [(m.model, v) for m in self.models for v in m.verdicts
                if v.status == UNJUDGEABLE]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": CHECK_SCHEMA, "passed": self.exit_code == 0,
                "exit_code": self.exit_code, "config": self.config,
                "models": [m.to_dict() for m in self.models]}


#: Opens ``profile`` (a name or path; None: the default).
ProfileLoader = Callable[[str | None], Profile | None]


def check_models(models: Sequence[str], *, limits: Mapping[str, float],
                 settings: Mapping[str, Any], budget_file: BudgetFile | None,
                 load_profile: ProfileLoader, allow_unbudgeted: bool = False) -> CheckReport:
    """Analyse and judge each model. ``limits`` (SI) and ``settings`` (profile, dims,
    batch-size, confidence, carbon-intensity, country) are the command line's, overriding
    the budget file's; ``load_profile(ref)`` opens a profile (None: the default)."""
    out = []
    for model in models:
        mb = budgets_for(Path(model), budget_file, limits, settings)
        if not mb.limits and not allow_unbudgeted:
            where = (f"no table of {budget_file.path} matches it" if budget_file is not None
                     else "no budget file found from here upward")
            raise BudgetError(f"{model}: no budget to check (give --max-energy, --max-macs, "
                              f"... or a [[tool.onnx-energy.budget]] table; {where})")
        out.append(check_model(model, mb, load_profile))
    return CheckReport(out, None if budget_file is None else str(budget_file.path))


def check_model(model: str, mb: ModelBudgets, load_profile: ProfileLoader) -> ModelCheck:
    """One model against its budgets."""
    s = mb.settings
    intensity = resolve_intensity(s.get("carbon-intensity"), s.get("country"))
    if "max-co2" in mb.limits and intensity is None:
        raise BudgetError(f"{model}: max-co2 needs a carbon intensity (--carbon-intensity "
                          "G_PER_KWH or --country ISO3, or in the budget table)")
    shown = {k: v for k, v in s.items() if k != "profile"}
    if not mb.limits:
        return ModelCheck(model, [], None, shown)
    profile: Profile | None = load_profile(s.get("profile"))
    a = analyze(model, dims=s.get("dims") or None, batch_size=s.get("batch-size"),
                profile=profile)
    confidence = s.get("confidence", "value")
    verdicts = [judge(a, key, limit, confidence, mb.sources.get(key, ""), intensity)
                for key, limit in mb.limits.items()]
    pred = a.prediction
    carbon = None
    if intensity is not None and pred is not None:
        carbon = intensity.report(pred.totals.energy_j, pred.totals.energy_j_interval)
    return ModelCheck(model, verdicts, None if pred is None else pred.profile,
                      {"confidence": confidence, **shown}, carbon,
                      [] if pred is None else list(pred.warnings))


def judge(a: Analysis, key: str, limit: float, confidence: str, source: str,
          intensity: CarbonIntensity | None = None) -> Verdict:
    """The verdict of one budget on one analysis."""
    m = METRICS[key]
    value, basis, reason, complete = _value(a, key, confidence, intensity)
    v = Verdict(key, m.name, m.unit, limit, value, basis, UNJUDGEABLE, source, reason,
                lower_bound=not complete)
    if value is None:
        return v
    if value > limit:
        v.status = FAIL
        if not complete:
            v.reason = "a lower bound (some nodes not counted) already over the limit"
    elif complete:
        v.status = PASS
    else:
        v.reason = (f"the analysis is incomplete ({_gaps(a)}): the {m.label} counted so far "
                    "is under the limit, the rest could exceed it; bind dims (--dim) or see "
                    "'onnx-energy analyze'")
    return v


def _gaps(a: Analysis) -> str:
    parts = []
    if a.unsupported:
        parts.append(f"{sum(a.unsupported.values())} node(s) without a cost rule")
    if a.unresolved:
        parts.append(f"{len(a.unresolved)} with unknown shapes"
                     + (f", bind {', '.join(a.unbound_dims)}" if a.unbound_dims else ""))
    return "; ".join(parts) or "sizes unknown"


def _value(a: Analysis, key: str, confidence: str, intensity: CarbonIntensity | None
           ) -> tuple[float | None, str, str, bool]:
    """(value, basis, reason when None, complete) of one metric."""
    t = a.totals
    if key == "max-macs":
        return float(t.macs), "value", "", t.complete
    if key == "max-params":
        return float(t.params), "value", "", True
    if key == "max-memory":
        peak = t.peak_activation_bytes
        if peak is None:
            return None, "value", "no memory plan", False
        return float(peak), "value", "", t.peak_activation_complete
    pred = a.prediction
    if pred is None:
        return None, confidence, "no profile", False
    p, tp = pred.profile, pred.totals
    name = p.get("label") or f"profile {p.get('name')!r}"
    if key == "max-latency":
        if tp.runtime_s is None:
            why = (f"the {name} profile predicts no runtime: pass --profile with a profile "
                   "calibrated on the target hardware" if p.get("kind") == "theoretical"
                   else f"{name} predicts no runtime for this model")
            return None, confidence, why, False
        interval = tp.runtime_s_interval
        return (_pick(tp.runtime_s, interval, confidence), confidence, "", t.complete)
    energy = tp.energy_j
    if energy is None:
        why = (f"{name} has no energy model (calibrated with sensor {p.get('sensor')!r}): "
               "calibrate with an energy sensor, or drop --profile for the theoretical "
               "estimate" if p.get("kind") != "theoretical"
               else "no node of the model has a known cost")
        return None, confidence, why, False
    value = _pick(energy, tp.energy_j_interval, confidence)
    if key == "max-energy":
        return value, confidence, "", t.complete
    assert intensity is not None
    return intensity.grams(value), confidence, "", t.complete


def _pick(value: float, interval: list[float] | None, confidence: str) -> float:
    if confidence == "upper" and interval is not None:
        return float(interval[1])
    return float(value)

