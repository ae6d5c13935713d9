"""`compare`: candidate models side by side, with deltas against the first and the
Energy-Precision Ratio where their errors are known.

Each model is analysed with the same profile and bindings. Per model: MACs, TOs (at one
precision column), parameters, peak activation memory, predicted energy and latency (with
intervals) and, given a carbon intensity, gCO2-eq per inference. With a model's error
(``--error NAME=0.073``: top-1 error, word error rate, ... as a fraction), its
Energy-Precision Ratio is

    M = Error^α · EPI

(seed 001, eq. 9), EPI being the predicted energy per inference in joules and α weighing
precision against energy (α = 1 by default; larger α favours the more precise model).
Lower M is better; the models with an error are ranked by it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .analysis import Analysis, analyze
from .carbon import CarbonIntensity
from .errors import ComparisonError
from .profile import Profile

COMPARE_SCHEMA = "onnx-energy/compare/1"
#: Metrics compared, in order: JSON key -> (label, unit).
METRICS: dict[str, tuple[str, str]] = {
    "macs": ("MACs", ""), "tos": ("TOs", ""), "params": ("params", ""),
    "peak_activation_bytes": ("peak mem", "B"), "energy_j": ("energy", "J"),
    "runtime_s": ("latency", "s"), "co2_g": ("CO2-eq", "g"),
}


@dataclass
class ModelRow:
    """One model's figures (None where the profile predicts nothing)."""

    model: str
    name: str
    values: dict[str, float | None]
    energy_j_interval: list[float] | None
    runtime_s_interval: list[float] | None
    complete: bool
    error: float | None = None
    epr: float | None = None
    rank: int | None = None

    def delta(self, first: ModelRow, key: str) -> tuple[float | None, float | None]:
        """(difference, relative difference) of ``key`` against ``first``."""
        a, b = self.values.get(key), first.values.get(key)
        if a is None or b is None:
            return None, None
        return a - b, (a / b - 1) if b else None

    def to_dict(self, first: ModelRow) -> dict[str, Any]:
        deltas = {}
        for key in METRICS:
            d, r = self.delta(first, key)
            deltas[key] = {"delta": d, "ratio": r}
        return {"model": self.model, "name": self.name, **self.values,
                "energy_j_interval": self.energy_j_interval,
                "runtime_s_interval": self.runtime_s_interval, "complete": self.complete,
                "error": self.error, "epr": self.epr, "rank": self.rank,
                "vs_first": deltas}


@dataclass
class Comparison:
    """The models compared, what with, and the ranking by Energy-Precision Ratio."""

    rows: list[ModelRow]
    profile: dict[str, Any] | None
    precision: str
    alpha: float
    carbon: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ranking(self) -> list[ModelRow]:
        return sorted((r for r in self.rows if r.rank is not None),
                      key=lambda r: r.rank or 0)

    def to_dict(self) -> dict[str, Any]:
        first = self.rows[0]
        return {"schema": COMPARE_SCHEMA, "profile": self.profile,
                "precision": self.precision, "alpha": self.alpha, "carbon": self.carbon,
                "models": [r.to_dict(first) for r in self.rows],
                "ranking": [r.name for r in self.ranking], "warnings": self.warnings}


def parse_error(text: str) -> float:
    """A model error as a fraction: ``0.073`` or ``7.3%``."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ComparisonError(f"--error: {text!r} is not an error (a fraction such as 0.073, "
                              "or 7.3%)") from None
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ComparisonError(f"--error: {text!r} must be between 0 and 1 (or 0% and 100%)")
    return value


def match_errors(models: Sequence[str], errors: Mapping[str, float]) -> dict[int, float]:
    """Model index -> error, matching each NAME to a model's file stem or path."""
    out: dict[int, float] = {}
    for name, value in errors.items():
        hits = [i for i, m in enumerate(models)
                if name in (m, Path(m).stem, Path(m).name)
                or os.path.abspath(name) == os.path.abspath(m)]
        if not hits:
            stems = ", ".join(Path(m).stem for m in models)
            raise ComparisonError(f"--error {name}=…: no model named {name!r} (the models: "
                                  f"{stems}; use a file stem or the path)")
        if len(hits) > 1:
            raise ComparisonError(f"--error {name}=…: {name!r} names {len(hits)} models; "
                                  "give the path instead")
        if hits[0] in out:
            raise ComparisonError(f"--error: {models[hits[0]]} has two errors")
        out[hits[0]] = value
    return out


def row_of(model: str, a: Analysis, precision: str,
           intensity: CarbonIntensity | None) -> ModelRow:
    """One model's figures from its analysis."""
    t = a.totals
    tos = (t.lowered.tos or {}).get(precision)
    pred = a.prediction
    energy = runtime = None
    e_int = r_int = None
    if pred is not None:
        energy, e_int = pred.totals.energy_j, pred.totals.energy_j_interval
        runtime, r_int = pred.totals.runtime_s, pred.totals.runtime_s_interval
    co2 = None if intensity is None or energy is None else intensity.grams(energy)
    values: dict[str, float | None] = {
        "macs": float(t.macs), "tos": None if tos is None else float(tos),
        "params": float(t.params),
        "peak_activation_bytes": (None if t.peak_activation_bytes is None
                                  else float(t.peak_activation_bytes)),
        "energy_j": energy, "runtime_s": runtime, "co2_g": co2}
    return ModelRow(model, Path(model).stem, values, e_int, r_int,
                    t.complete and t.peak_activation_complete)


def compare_models(models: Sequence[str], *, profile: Profile | None = None,
                   dims: Mapping[str, int] | None = None, batch_size: int | None = None,
                   errors: Mapping[str, float] | None = None, alpha: float = 1.0,
                   precision: str = "native",
                   intensity: CarbonIntensity | None = None) -> Comparison:
    """Analyse and compare ``models`` (the first is the reference of the deltas)."""
    if not models:
        raise ComparisonError("compare needs at least one model")
    if not math.isfinite(alpha) or alpha < 0:
        raise ComparisonError(f"--alpha must be a number >= 0, not {alpha}")
    by_index = match_errors(models, errors or {})
    rows, info, warnings = [], None, []
    for i, model in enumerate(models):
        a = analyze(model, dims=dims, batch_size=batch_size, precision=precision,
                    profile=profile)
        row = row_of(model, a, precision, intensity)
        if a.prediction is not None:
            info = a.prediction.profile
            warnings += [f"{row.name}: {w}" for w in a.prediction.warnings]
        if not row.complete:
            warnings.append(f"{row.name}: the analysis is incomplete (unsupported ops or "
                            "unbound dims): its figures are lower bounds")
        if i in by_index:
            row.error = by_index[i]
            epi = row.values["energy_j"]
            if epi is None:
                warnings.append(f"{row.name}: no energy predicted, so no Energy-Precision "
                                "Ratio")
            else:
                row.epr = row.error ** alpha * epi
        rows.append(row)
    ranked = sorted((r for r in rows if r.epr is not None), key=lambda r: r.epr or 0.0)
    for rank, r in enumerate(ranked, 1):
        r.rank = rank
    carbon = None if intensity is None else {"g_per_kwh": intensity.g_per_kwh,
                                             "source": intensity.source,
                                             "country": intensity.country}
    return Comparison(rows, info, precision, alpha, carbon, warnings)
