"""Hardware profiles: the fitted maps from a group's features to runtime, power and energy.

A profile is one JSON file (schema ``onnx-energy/profile/1``, never pickle) for one machine,
provider and thread count. It holds, per model key (a kernel op type such as ``Conv``, a
family such as ``conv``, and ``generic`` for the fallback), the fitted map of each target:
its feature and term names, scaler, coefficients, the coefficient covariance and residual
variance needed for prediction intervals, and diagnostics; plus the hardware fingerprint,
the fusion rules, the tool and library versions and the record files' hashes.

Evaluation here is numpy only: no scikit-learn, no onnxruntime (docs/calibration.md).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ProfileError
from .features import PER_SAMPLE
from .fusion import NO_FUSION, FusionRules
from .jsonfile import read_json_object
from .machine import PROBE_KERNEL

PROFILE_SCHEMA = "onnx-energy/profile/1"
TARGETS = ("runtime_s", "power_w", "energy_j")
#: Transforms of a target: ``log`` fits log(y) by OLS; ``relative`` fits y by WLS with
#: weights 1/y², i.e. for relative error, and keeps additive terms (a per-call overhead).
TRANSFORMS = ("log", "relative")


def per_sample(x: np.ndarray, features: Sequence[str],
               per: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``x`` (columns ``features``) as one sample's, and each row's batch (the
    ``per`` column): the features that grow with the batch (`PER_SAMPLE`) divided by it,
    ``bytes`` with only its ``bytes_act`` part divided (one call reads the weights once,
    whatever the batch), and the batch column replaced by its inverse: a linear form's
    term in it is the cost per call, which a batch shares."""
    out = np.array(x, dtype=np.float64)
    names = list(features)
    lead = np.maximum(out[:, names.index(per)], 1.0)
    act = out[:, names.index("bytes_act")].copy() if "bytes_act" in names else None
    for j, f in enumerate(names):
        if f == "bytes" and act is not None:
            out[:, j] = out[:, j] - act + act / lead
        elif f in PER_SAMPLE:
            out[:, j] = out[:, j] / lead
    out[:, names.index(per)] = 1.0 / lead
    return out, lead


def auxiliary(features: Sequence[str], per: str, transform: str) -> list[bool]:
    """The columns a per-sample map reads but never uses as terms: ``bytes_act`` where it
    only serves to make ``bytes`` one sample's, and in log forms the batch (a power of it
    would let the cost bend in the batch again)."""
    return [bool(per) and ((f == per and transform == "log")
                           or (f == "bytes_act" and "bytes" in features))
            for f in features]


def cache_bytes_of(hardware: Mapping[str, Any], provider: str | None) -> float | None:
    """The last-level CPU cache that the ``bytes_uncached`` feature counts against: the
    fingerprint's, for a CPU calibration that recorded it (fit and prediction alike)."""
    value = hardware.get("cpu_cache_bytes")
    if provider not in (None, "cpu") or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


@dataclass
class FittedMap:
    """One fitted map: target = f(features), with what its prediction intervals need.

    Features are transformed (``log`` = log(1 + x) where marked), standardised
    (``mean``/``scale``), and expanded into the polynomial terms given by ``powers`` (one row
    of exponents per term; the all-zero row is the intercept). ``coef`` and ``cov`` are the
    OLS (log) or WLS (relative) estimates on those terms; ``sigma2`` the residual variance;
    ``t_quantile`` Student's t at the profile's confidence level with ``dof`` degrees of
    freedom.
    """

    target: str
    transform: str
    features: list[str]
    log_features: list[bool]
    mean: list[float]
    scale: list[float]
    powers: list[list[int]]
    coef: list[float]
    cov: list[list[float]]
    sigma2: float
    dof: int
    t_quantile: float
    #: Range of each transformed feature in the training data (to flag extrapolation).
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    candidate: str = ""
    diagnostics: dict[str, Any] = field(default_factory=dict)
    #: A per-sample map names its batch feature (``lead``): it maps one sample's features
    #: (`per_sample`) to the target per sample, and predicts that times the batch.
    per: str = ""

    # ------------------------------------------------------------------ evaluation

    def lead(self, x: np.ndarray) -> np.ndarray:
        """Per row: the batch of a per-sample map (1 for other maps)."""
        x = np.asarray(x, dtype=np.float64)
        if not self.per:
            return np.ones(len(x))
        return per_sample(x, self.features, self.per)[1]

    def transformed(self, x: np.ndarray) -> np.ndarray:
        """Features as one sample's (per-sample maps) and after the log transform (rows are
        points, columns ``features``)."""
        out = np.array(x, dtype=np.float64)
        if self.per:
            out = per_sample(out, self.features, self.per)[0]
        logs = np.asarray(self.log_features, dtype=bool)
        out[:, logs] = np.log1p(np.maximum(out[:, logs], 0.0))
        return out

    def design(self, x: np.ndarray) -> np.ndarray:
        """The term matrix Φ of raw feature rows ``x``."""
        z = (self.transformed(x) - np.asarray(self.mean)) / np.asarray(self.scale)
        powers = np.asarray(self.powers, dtype=np.int64).reshape(len(self.powers), -1)
        phi = np.ones((z.shape[0], len(self.powers)))
        for j, row in enumerate(powers):
            for i, p in enumerate(row):
                if p:
                    phi[:, j] *= z[:, i] ** int(p)
        return phi

    def outside(self, x: np.ndarray) -> np.ndarray:
        """Per row: whether any feature is outside the training range (extrapolation)."""
        if not self.low:
            return np.zeros(len(x), dtype=bool)
        t = self.transformed(x)
        span = np.maximum(np.asarray(self.high) - np.asarray(self.low), 1e-12)
        lo = np.asarray(self.low) - 0.05 * span
        hi = np.asarray(self.high) + 0.05 * span
        return np.any((t < lo) | (t > hi), axis=1)

    def predict(self, x: np.ndarray) -> MapPrediction:
        """Predictions, prediction intervals and delta-method pieces for rows ``x``."""
        phi = self.design(x)
        coef = np.asarray(self.coef)
        cov = np.asarray(self.cov).reshape(len(coef), len(coef))
        mean_var = np.einsum("ij,jk,ik->i", phi, cov, phi)
        yt = phi @ coef
        if self.transform == "log":
            y = np.exp(yt)
            half = self.t_quantile * np.sqrt(np.maximum(mean_var + self.sigma2, 0.0))
            lo, hi = np.exp(yt - half), np.exp(yt + half)
            grad = phi * y[:, None]  # dy/dcoef
            resid_rel = np.full(len(y), math.expm1(self.sigma2))
        else:
            y = np.maximum(yt, 0.0)  # a linear map can cross zero outside its data
            var = mean_var + self.sigma2 * y ** 2
            half = self.t_quantile * np.sqrt(np.maximum(var, 0.0))
            lo, hi = np.maximum(y - half, 0.0), y + half
            grad = phi
            resid_rel = np.full(len(y), self.sigma2)
        if self.per:
            n = self.lead(x)
            y, lo, hi, grad = y * n, lo * n, hi * n, grad * n[:, None]
        return MapPrediction(y, lo, hi, grad, resid_rel, self.outside(x))

    # ------------------------------------------------------------------- JSON

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "transform": self.transform, "features": self.features,
                "log_features": self.log_features, "mean": self.mean, "scale": self.scale,
                "terms": [term_name(self.features, self.log_features, p) for p in self.powers],
                "powers": self.powers, "coef": self.coef, "cov": self.cov,
                "sigma2": self.sigma2, "dof": self.dof, "t_quantile": self.t_quantile,
                "low": self.low, "high": self.high, "candidate": self.candidate,
                **({"per": self.per} if self.per else {}),
                "diagnostics": self.diagnostics}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FittedMap:
        return cls(target=d["target"], transform=d["transform"], features=list(d["features"]),
                   log_features=[bool(v) for v in d["log_features"]],
                   mean=[float(v) for v in d["mean"]], scale=[float(v) for v in d["scale"]],
                   powers=[[int(p) for p in row] for row in d["powers"]],
                   coef=[float(v) for v in d["coef"]],
                   cov=[[float(v) for v in row] for row in d["cov"]],
                   sigma2=float(d["sigma2"]), dof=int(d["dof"]),
                   t_quantile=float(d["t_quantile"]), low=[float(v) for v in d.get("low", [])],
                   high=[float(v) for v in d.get("high", [])],
                   candidate=str(d.get("candidate", "")),
                   diagnostics=dict(d.get("diagnostics", {})), per=str(d.get("per", "")))


@dataclass
class MapPrediction:
    """Per point: prediction, interval, dy/dcoef (for summed intervals), the relative
    residual variance, and whether the point is outside the training range."""

    y: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    grad: np.ndarray
    resid_rel: np.ndarray
    extrapolated: np.ndarray


def term_name(features: Sequence[str], logs: Sequence[bool], powers: Sequence[int]) -> str:
    """A readable name of a polynomial term: ``log(macs)*log(bytes)^2``, ``1``."""
    parts = []
    for name, log, p in zip(features, logs, powers, strict=True):
        if p:
            base = f"log({name})" if log else name
            parts.append(base if p == 1 else f"{base}^{p}")
    return "*".join(parts) or "1"


@dataclass
class KeyModels:
    """The fitted maps of one model key (kernel op type, family or ``generic``)."""

    key: str
    level: str
    family: str
    runtime: FittedMap | None = None
    power: FittedMap | None = None
    energy: FittedMap | None = None
    #: ``direct`` (the energy map) or ``runtime_x_power`` (NeuralPower eq. 3-5); None when
    #: the records had no sensor.
    energy_form: str | None = None
    n_rows: int = 0
    #: Per target, the map used for kernels outside the chosen map's training range: a
    #: linear one in work and bytes (time and energy scale with the work), because the
    #: polynomials that fit best inside the data can run away outside it.
    extrapolation: dict[str, FittedMap] = field(default_factory=dict)
    #: Identity of the rows fitted (fitting only: keys with the same rows share maps).
    rows_id: str = field(default="", compare=False, repr=False)

    def map_for(self, target: str, outside: bool) -> FittedMap | None:
        """The map for ``target``: the extrapolation map for points outside the range."""
        main = {"runtime_s": self.runtime, "power_w": self.power,
                "energy_j": self.energy}[target]
        if outside and target in self.extrapolation:
            return self.extrapolation[target]
        return main

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "level": self.level, "family": self.family,
                "n_rows": self.n_rows, "energy_form": self.energy_form,
                "runtime": None if self.runtime is None else self.runtime.to_dict(),
                "power": None if self.power is None else self.power.to_dict(),
                "energy": None if self.energy is None else self.energy.to_dict(),
                "extrapolation": {k: v.to_dict() for k, v in self.extrapolation.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KeyModels:
        def m(k: str) -> FittedMap | None:
            return None if d.get(k) is None else FittedMap.from_dict(d[k])

        return cls(key=d["key"], level=d["level"], family=d["family"], runtime=m("runtime"),
                   power=m("power"), energy=m("energy"), energy_form=d.get("energy_form"),
                   n_rows=int(d.get("n_rows", 0)),
                   extrapolation={k: FittedMap.from_dict(v)
                                  for k, v in (d.get("extrapolation") or {}).items()})


@dataclass
class Profile:
    """A hardware profile (see the module docstring)."""

    name: str
    kind: str
    provider: str | None
    threads: int | None
    sensor: str
    runner: str | None
    hardware: dict[str, Any]
    confidence: float
    fusion: FusionRules = NO_FUSION
    models: dict[str, KeyModels] = field(default_factory=dict)
    #: Fixed per-inference cost of a session run (input binding, output allocation).
    session_overhead_s: float = 0.0
    session_overhead_j: float | None = None
    #: Seconds per run of the speed probe (`measure.probe`) while the records were
    #: measured (their median); None where the records carry none.
    speed_probe_s: float | None = None
    created: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    #: ``kind == "theoretical"``: published per-operation energies and the rules deriving
    #: the rest (onnx_energy.theoretical); None for a calibrated profile.
    theoretical: dict[str, Any] | None = None

    @property
    def has_energy(self) -> bool:
        return self.theoretical is not None or any(
            k.energy_form is not None for k in self.models.values())

    @property
    def has_runtime(self) -> bool:
        return any(k.runtime is not None for k in self.models.values())

    @property
    def cache_bytes(self) -> float | None:
        """The last-level CPU cache of the calibrated machine (see `cache_bytes_of`)."""
        return cache_bytes_of(self.hardware or {}, self.provider)

    def models_for(self, keys: Sequence[str]) -> KeyModels | None:
        """The first of ``keys`` (most specific first) with a runtime map."""
        for key in keys:
            km = self.models.get(key)
            if km is not None and km.runtime is not None:
                return km
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"schema": PROFILE_SCHEMA, "name": self.name, "kind": self.kind,
                "created": self.created, "provider": self.provider, "threads": self.threads,
                "sensor": self.sensor, "runner": self.runner, "hardware": self.hardware,
                "confidence": self.confidence, "session_overhead_s": self.session_overhead_s,
                "session_overhead_j": self.session_overhead_j, "fusion": self.fusion.to_dict(),
                "models": {k: v.to_dict() for k, v in self.models.items()},
                "records": self.records, "versions": self.versions,
                "diagnostics": self.diagnostics,
                **({} if self.speed_probe_s is None else {"speed_probe": {
                    "kernel": PROBE_KERNEL, "seconds": self.speed_probe_s}}),
                **({} if self.theoretical is None else {"theoretical": self.theoretical})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str | None = None) -> Profile:
        if d.get("schema") != PROFILE_SCHEMA:
            raise ProfileError(f"{path or 'profile'}: not an onnx-energy profile "
                               f"(schema {d.get('schema')!r}, expected {PROFILE_SCHEMA!r})")
        try:
            return cls(
                name=str(d["name"]), kind=str(d["kind"]), provider=d.get("provider"),
                threads=d.get("threads"), sensor=str(d.get("sensor", "none")),
                runner=d.get("runner"), hardware=dict(d.get("hardware") or {}),
                confidence=float(d.get("confidence", 0.9)),
                fusion=FusionRules.from_dict(d.get("fusion") or {}),
                models={k: KeyModels.from_dict(v) for k, v in (d.get("models") or {}).items()},
                session_overhead_s=float(d.get("session_overhead_s") or 0.0),
                session_overhead_j=d.get("session_overhead_j"),
                speed_probe_s=_probe_seconds(d.get("speed_probe")),
                created=str(d.get("created", "")), records=list(d.get("records") or []),
                versions=dict(d.get("versions") or {}),
                diagnostics=dict(d.get("diagnostics") or {}), path=path,
                theoretical=None if d.get("theoretical") is None else dict(d["theoretical"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"{path or 'profile'}: malformed profile "
                               f"({type(exc).__name__}: {exc})") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile as JSON (atomically: a partial file never replaces a good one)."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(_finite(self.to_dict()), indent=1, allow_nan=False)
                           + "\n", encoding="utf-8")
            os.replace(tmp, target)
        except OSError as exc:
            raise ProfileError(f"cannot write profile {target}: {exc.strerror or exc}") from None
        self.path = str(target)


def _probe_seconds(block: Any) -> float | None:
    """The speed probe's seconds from a profile's ``speed_probe`` block: only a probe of
    the kernel this version times is comparable."""
    if not isinstance(block, Mapping) or block.get("kernel") != PROBE_KERNEL:
        return None
    seconds = block.get("seconds")
    return float(seconds) if isinstance(seconds, (int, float)) and seconds > 0 else None


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such a diagnostic is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read a profile file."""
    p = Path(path)
    return Profile.from_dict(read_json_object(p, "profile", ProfileError), path=str(p))
