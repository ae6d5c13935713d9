"""Fitting a hardware profile from measurement records: per model key and target.

For each model key (a kernel op type with enough rows, its family, and ``generic`` over all
rows) and each target (runtime; power and energy where the records have a sensor), the
candidates below are scored by grouped k-fold cross-validated *relative* error (RMSPE: the
targets span six or more orders of magnitude), and the best is refitted with statsmodels on
its selected terms (OLS on log(y), or WLS with 1/y² weights for the linear candidates) so
that every prediction carries an interval.

Candidates, from the seed's baseline to the richest:

- ``linear-macs``: y = a + b·MACs (FLOPs where the family has no MACs), WLS on 1/y²;
- ``linear-work``: y = a + b·work + c·bytes (a fixed cost, compute and memory traffic);
- ``loglinear-work`` / ``loglinear-all``: log y linear in log work and bytes (a power
  law), with the op's shape parameters for ``-all``;
- ``poly2-work``: a degree-2 polynomial in log work and log bytes;
- ``poly2-all-lasso`` / ``poly3-all-lasso``: degree-2 polynomial and degree-3 interaction
  polynomial in the log features, terms selected by the Lasso (alpha by CV);
- ``poly2-aug-lasso``: a degree-2 interaction polynomial on log-augmented features (each
  feature and its log), terms selected by the Lasso.

Energy is either mapped directly or composed as runtime × power (NeuralPower, eq. 3-5),
whichever cross-validates better for the key. Rows with failed or implausible readings are
excluded and counted in the diagnostics.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import FitError
from ..features import GENERIC, SHAPE_FEATURES
from ..fusion import NO_FUSION, FusionRules, Pattern, default_rules
from ..measure.probe import median_probe
from ..measure.records import read_records
from ..profile import (
    FittedMap,
    KeyModels,
    Profile,
    auxiliary,
    cache_bytes_of,
    per_sample,
)
from .dataset import Row, main_kernel, rows_from_records

Progress = Callable[[str], None]

#: Rows a model key needs to get maps of its own (else its family's, else generic).
MIN_ROWS = 12
#: Appended to a form's name when it is fitted per sample.
PER_SAMPLE_SUFFIX = "-per-sample"
#: Rows whose windows disagree more than this (coefficient of variation) are excluded.
MAX_CV = 0.25
CONFIDENCE = 0.90
MAC_FAMILIES = frozenset({"conv", "conv_depthwise", "conv_transpose", "gemm", "gemm_gemv",
                          "attention", "rnn"})
#: Families whose ops onnxruntime's CPU provider runs in its blocked (NCHWc) layout: alone,
#: each reorders its input into it and its output back (see TRAFFIC).
REORDERED_FAMILIES = ("conv", "conv_depthwise", "pool", "global_pool")
#: Families that compute nothing: copies (`movement`) and views (`view`), priced on bytes.
DATA_FAMILIES = ("movement", "view")
#: Work the kernel wastes beside the MACs it does (convolutions: an unfilled register tile,
#: the slower NCHW path; see `features`), each with a cost of its own.
WORK_CORRECTIONS = ("macs_narrow", "macs_unblocked")
#: Memory traffic: all bytes, those beyond the last-level cache, the activations a lone op
#: (a calibration spec) reorders in and out of onnxruntime's blocked layout, which it would
#: not inside a network (zero wherever a prediction is made), and the weights a network
#: reads cold (`features.group_features`).
TRAFFIC = ("bytes", "bytes_uncached", "bytes_isolated", "bytes_cold")
#: Families that stream their weights once per call (matrix-vector products): inside a
#: network those come from L3 or DRAM, where a lone op repeated in a loop finds them hot.
STREAMING_FAMILIES = ("gemm_gemv",)
#: Features that tell a lone op from one inside a network, and the families each applies
#: to. Each is a term only there, and only where a key has both kinds of rows: elsewhere it
#: would take a share of the bytes' cost that no prediction pays (bytes_isolated for every
#: family had the movement map price each copy inside a network at nothing).
CONTRASTS = {"bytes_isolated": REORDERED_FAMILIES, "bytes_cold": STREAMING_FAMILIES}
#: Costs that add up, terms of the linear forms only: their logs, zero in most rows, are no
#: shape a log-space form could use.
LINEAR_ONLY = (*WORK_CORRECTIONS, "bytes_isolated")


@dataclass(frozen=True)
class Candidate:
    """One model form: which features, transformed how, which polynomial, which terms."""

    name: str
    transform: str
    features: tuple[str, ...]
    log: tuple[bool, ...]
    degree: int = 1
    interaction_only: bool = False
    lasso: bool = False
    #: Non-negative coefficients on uncentred features (a fixed cost plus costs that grow
    #: with the work): never negative, and linear in the work outside the data.
    nonneg: bool = False
    #: Per sample: the batch feature (the last of ``features``, never a term) that the
    #: target and the features are divided by (`profile.per_sample`): linear in the batch.
    per: str = ""

    @property
    def form(self) -> str:
        """The form's name without the per-sample suffix."""
        return self.name.removesuffix(PER_SAMPLE_SUFFIX)

    @property
    def aux(self) -> list[bool]:
        """Columns read but never terms (a per-sample form's batch and bytes_act)."""
        return auxiliary(self.features, self.per, self.transform)


def candidates(family: str, varying: set[str]) -> list[Candidate]:
    """The candidate forms for a family, over the features that vary in its rows (per
    sample where ``lead``, the batch, is among them)."""
    work = "macs" if family in MAC_FAMILIES and "macs" in varying else "flops"
    additive = tuple(f for f in ((work, *WORK_CORRECTIONS, *TRAFFIC)
                                 if family not in DATA_FAMILIES else TRAFFIC)
                     if f in varying and _contrast_applies(f, family, varying))
    work_feats = tuple(f for f in additive if f not in LINEAR_ONLY)
    extra = ("isolated",) if "isolated" in varying else ()
    shape = tuple(f for f in SHAPE_FEATURES.get(family, ("elems_out",))
                  if f in varying and f not in additive)
    if not work_feats:
        work_feats = additive = tuple(f for f in ("bytes", "elems_out") if f in varying)[:1]
    if not work_feats:
        return []
    base = work_feats + extra
    full = work_feats + shape + extra
    linear = additive + extra

    def logs(feats: tuple[str, ...]) -> tuple[bool, ...]:
        return tuple(f != "isolated" for f in feats)

    out = [Candidate("linear-macs", "relative", work_feats[:1], (False,)),
           Candidate("linear-work", "relative", linear, tuple(False for _ in linear)),
           Candidate("linear-nonneg", "relative", additive, tuple(False for _ in additive),
                     nonneg=True),
           Candidate("loglinear-work", "log", base, logs(base)),
           Candidate("poly2-work", "log", base, logs(base), degree=2)]
    if shape:
        out += [Candidate("loglinear-all", "log", full, logs(full)),
                Candidate("poly2-all-lasso", "log", full, logs(full), degree=2, lasso=True),
                Candidate("poly3-all-lasso", "log", full, logs(full), degree=3,
                          interaction_only=True, lasso=True)]
    raw = tuple(f for f in work_feats + shape)
    aug = raw + raw + extra
    aug_logs = tuple(False for _ in raw) + tuple(True for _ in raw) + tuple(False for _ in extra)
    out.append(Candidate("poly2-aug-lasso", "log", aug, aug_logs, degree=2,
                         interaction_only=True, lasso=True))
    if "lead" in varying:
        # A batch of B independent samples costs B times one: real layers measured at 25
        # batch sizes (Getzner et al.) are linear in the batch to within their noise, while
        # forms free to bend in it, fitted on a random sweep, mispredict them by -25% at
        # batch 1 and +10% at 256. Where the rows' batch varies, every form is per sample.
        out = [_per_sample(c) for c in out]
    return out


def _contrast_applies(feature: str, family: str, varying: set[str]) -> bool:
    families = CONTRASTS.get(feature)
    return families is None or ("isolated" in varying and family in families)


def _per_sample(c: Candidate) -> Candidate:
    """The form per sample: the batch feature dropped, and the columns `profile.per_sample`
    reads appended (bytes_act where bytes is a feature; the batch, a term in 1/B of the
    linear forms only: `Candidate.aux`)."""
    keep = [i for i, f in enumerate(c.features) if f != "batch"]
    feats = tuple(c.features[i] for i in keep)
    aux = (("bytes_act",) if "bytes" in feats else ()) + ("lead",)
    return dataclasses.replace(
        c, name=c.name + PER_SAMPLE_SUFFIX, features=feats + aux,
        log=tuple(c.log[i] for i in keep) + tuple(False for _ in aux), per="lead")


# ------------------------------------------------------------------------ the design


def _powers(n_features: int, degree: int, interaction_only: bool) -> np.ndarray:
    from sklearn.preprocessing import PolynomialFeatures

    poly = PolynomialFeatures(degree=degree, interaction_only=interaction_only,
                              include_bias=True)
    poly.fit(np.zeros((1, n_features)))
    return np.asarray(poly.powers_, dtype=np.int64)


def _transform(x: np.ndarray, logs: Sequence[bool], per: str = "",
               features: Sequence[str] = ()) -> np.ndarray:
    """One sample's features (per-sample forms: `profile.per_sample`), then log(1 + x)
    where ``logs`` marks them: what `FittedMap.transformed` computes."""
    out = np.array(x, dtype=np.float64)
    if per:
        out = per_sample(out, features, per)[0]
    mask = np.asarray(logs, dtype=bool)
    out[:, mask] = np.log1p(np.maximum(out[:, mask], 0.0))
    return out


def _lead(c: Candidate, x: np.ndarray) -> np.ndarray:
    return per_sample(x, c.features, c.per)[1] if c.per else np.ones(len(x))


def _design(z: np.ndarray, powers: np.ndarray) -> np.ndarray:
    phi = np.ones((z.shape[0], len(powers)))
    for j, row in enumerate(powers):
        for i, p in enumerate(row):
            if p:
                phi[:, j] *= z[:, i] ** int(p)
    return phi


@dataclass
class _Fitted:
    """A candidate fitted on some rows: enough to predict other rows."""

    candidate: Candidate
    mean: np.ndarray
    scale: np.ndarray
    powers: np.ndarray  # selected terms
    coef: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        c = self.candidate
        z = (_transform(x, c.log, c.per, c.features) - self.mean) / self.scale
        yt = _design(z, self.powers) @ self.coef
        if c.transform == "log":
            return np.exp(np.clip(yt, -700, 700)) * _lead(c, x)
        return yt * _lead(c, x)


def _select_terms(c: Candidate, phi: np.ndarray, yt: np.ndarray, powers: np.ndarray,
                  seed: int) -> np.ndarray:
    """Term rows kept: all, or those the Lasso (alpha by CV) keeps, with the intercept."""
    if not c.lasso or phi.shape[1] <= 2:
        return powers
    from sklearn.linear_model import LassoCV

    x = phi[:, 1:]
    xc = x - x.mean(axis=0)
    alpha_max = float(np.max(np.abs(xc.T @ (yt - yt.mean())))) / len(yt)
    alphas = np.geomspace(max(alpha_max, 1e-12), max(alpha_max, 1e-12) * 1e-4, 25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lasso = LassoCV(cv=min(5, max(2, len(yt) // 10)), alphas=alphas, max_iter=5000,
                        random_state=seed, selection="cyclic")
        lasso.fit(x, yt)
    keep = np.concatenate([[True], np.abs(lasso.coef_) > 1e-10])
    if keep.sum() == 1:  # nothing kept: the strongest single term
        keep[1 + int(np.argmax(np.abs(np.corrcoef(phi[:, 1:].T, yt)[-1, :-1])))] = True
    return powers[keep]


def _fit(c: Candidate, x: np.ndarray, y: np.ndarray, seed: int,
         terms: np.ndarray | None = None) -> _Fitted | None:
    t = _transform(x, c.log, c.per, c.features)
    mean = np.zeros(t.shape[1]) if c.nonneg else t.mean(axis=0)
    scale = t.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (t - mean) / scale
    powers = _powers(len(c.features), c.degree, c.interaction_only) if terms is None else terms
    if c.per:  # the batch (and bytes_act) are never terms
        powers = powers[~np.any(powers[:, np.asarray(c.aux, dtype=bool)] > 0, axis=1)]
    y = y / _lead(c, x)
    if c.transform == "log":
        yt, w = np.log(y), np.ones_like(y)
    else:
        yt, w = y, 1.0 / y ** 2
    phi = _design(z, powers)
    if terms is None and not c.nonneg:
        powers = _select_terms(c, phi, yt, powers, seed)
        phi = _design(z, powers)
    if len(y) < phi.shape[1] + 3:
        return None
    sw = np.sqrt(w)
    if c.nonneg:
        from scipy.optimize import nnls

        coef, _ = nnls(phi * sw[:, None], yt * sw)
        if terms is None:  # the terms NNLS kept (a zero coefficient is a dropped term)
            keep = coef > 0
            if not keep.any():
                return None
            powers, coef = powers[keep], coef[keep]
        return _Fitted(c, mean, scale, powers, coef)
    coef, *_ = np.linalg.lstsq(phi * sw[:, None], yt * sw, rcond=None)
    return _Fitted(c, mean, scale, powers, coef)


def _rmspe(pred: np.ndarray, y: np.ndarray) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.mean(((pred - y) / y) ** 2)))


def _folds(groups: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """Fold index arrays: every configuration (repeats included) in one fold."""
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    fold_of = {uniq[i]: n % k for n, i in enumerate(order)}
    idx = np.asarray([fold_of[g] for g in groups])
    return [np.flatnonzero(idx == f) for f in range(k)]


def _work_blocks(work: np.ndarray, k: int) -> list[np.ndarray]:
    """Folds of contiguous work: the smallest fifth of the rows, the next, ..., the largest
    (rows of equal work fall in one fold)."""
    order = np.argsort(work, kind="stable")
    cuts = np.array_split(order, k)
    folds = []
    for part in cuts:
        if len(part):
            lo, hi = work[part].min(), work[part].max()
            folds.append(np.flatnonzero((work >= lo) & (work <= hi)))
    # equal work on a cut belongs to the earlier fold only
    seen: set[int] = set()
    out = []
    for f in folds:
        f = np.asarray([i for i in f if i not in seen])
        seen.update(f.tolist())
        if len(f):
            out.append(f)
    return out


def cross_validate(c: Candidate, x: np.ndarray, y: np.ndarray, groups: Sequence[str],
                   seed: int = 0, k: int = 5,
                   work: np.ndarray | None = None) -> tuple[float, np.ndarray] | None:
    """Cross-validated RMSPE of a candidate and its out-of-fold predictions (term selection
    is done once on all rows, so folds refit the same terms).

    Two schemes are averaged: grouped k-fold (every configuration, with its repeats, in one
    fold) and, with ``work``, k contiguous blocks of work, where a fold predicts rows
    smaller or larger than any it was fitted on: real models' layers sit at the edges and
    in the sparse corners of a random sweep, and the forms that follow the data too closely
    there are the ones this scheme catches.
    """
    whole = _fit(c, x, y, seed)
    if whole is None:
        return None
    schemes = [_folds(groups, min(k, len(set(groups))), seed)]
    if work is not None:
        schemes.append(_work_blocks(work, k))
    scores = []
    first: np.ndarray | None = None
    for folds in schemes:
        if len(folds) < 2:
            return None
        pred = np.full(len(y), np.nan)
        for test in folds:
            train = np.setdiff1d(np.arange(len(y)), test)
            f = _fit(c, x[train], y[train], seed, terms=whole.powers)
            if f is None:
                return None
            pred[test] = f.predict(x[test])
        if not np.all(np.isfinite(pred)):
            return None
        scores.append(_rmspe(pred, y))
        first = pred if first is None else first
    score = float(np.mean(scores))
    return (score, first) if math.isfinite(score) and first is not None else None


# ------------------------------------------------------------------------ final maps


def final_map(c: Candidate, x: np.ndarray, y: np.ndarray, target: str, seed: int = 0,
              confidence: float = CONFIDENCE) -> tuple[FittedMap, Any]:
    """The chosen candidate refitted with statsmodels on its selected terms, as a profile
    map, and the equivalent fitted scikit-learn pipeline (for checking the numpy path)."""
    import statsmodels.api as sm
    from scipy import stats

    fitted = _fit(c, x, y, seed)
    if fitted is None:
        raise FitError(f"{target}: too few rows for {c.name}")
    t = _transform(x, c.log, c.per, c.features)
    z = (t - fitted.mean) / fitted.scale
    phi = _design(z, fitted.powers)
    ys = y / _lead(c, x)  # per sample, for per-sample forms
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if c.transform == "log":
            res = sm.OLS(np.log(ys), phi).fit()
        else:
            res = sm.WLS(ys, phi, weights=1.0 / ys ** 2).fit()
    dof = int(res.df_resid)
    params = fitted.coef if c.nonneg else np.asarray(res.params)
    pred = fitted.predict(x)
    ss_res = float(np.sum((pred - y) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    fmap = FittedMap(
        target=target, transform=c.transform, features=list(c.features),
        log_features=list(c.log), mean=fitted.mean.tolist(), scale=fitted.scale.tolist(),
        powers=fitted.powers.tolist(), coef=np.asarray(params).tolist(),
        cov=np.asarray(res.cov_params()).tolist(), sigma2=float(res.scale), dof=dof,
        t_quantile=float(stats.t.ppf(0.5 + confidence / 2, max(dof, 1))),
        low=t.min(axis=0).tolist(), high=t.max(axis=0).tolist(), candidate=c.name,
        diagnostics={"n": int(len(y)), "r2": 1 - ss_res / ss_tot if ss_tot > 0 else None,
                     "rmspe": _rmspe(pred, y), "terms": len(fitted.powers)},
        per=c.per)
    return fmap, sklearn_pipeline(c, fitted, x, y)


def sklearn_pipeline(c: Candidate, fitted: _Fitted, x: np.ndarray, y: np.ndarray) -> Any:
    """The chosen form fitted by scikit-learn alone (per-sample division and log
    transform, StandardScaler, PolynomialFeatures, the selected terms, LinearRegression
    with the same weights); its ``predict`` gives the transformed target (log y for log
    maps, per sample for per-sample forms). A profile map must predict what this pipeline
    predicts."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, PolynomialFeatures, StandardScaler

    full = _powers(len(c.features), c.degree, c.interaction_only)
    rows = {tuple(r) for r in fitted.powers.tolist()}
    columns = [j for j, r in enumerate(full.tolist()) if tuple(r) in rows]
    pipe = Pipeline([
        ("log", FunctionTransformer(_transform, kw_args={"logs": list(c.log), "per": c.per,
                                                          "features": list(c.features)})),
        ("scale", StandardScaler(with_mean=not c.nonneg)),
        ("poly", PolynomialFeatures(degree=c.degree, interaction_only=c.interaction_only,
                                    include_bias=True)),
        ("terms", FunctionTransformer(lambda phi, cols=columns: phi[:, cols])),
        ("linear", LinearRegression(fit_intercept=False, positive=c.nonneg)),
    ])
    ys = y / _lead(c, x)
    if c.transform == "log":
        pipe.fit(x, np.log(ys))
    else:
        pipe.fit(x, ys, linear__sample_weight=1.0 / ys ** 2)
    return pipe


# --------------------------------------------------------------------- per key and target


@dataclass
class _Choice:
    candidate: Candidate
    cv_rmspe: float
    scores: dict[str, float]
    oof: np.ndarray


def _matrix(rows: Sequence[Row], feats: Sequence[str]) -> np.ndarray:
    return np.asarray([[float(r.features.values.get(f, 0.0)) for f in feats]  # type: ignore[union-attr]
                       for r in rows], dtype=np.float64)


def _informative(table: np.ndarray, names: Sequence[str]) -> set[str]:
    """Features (columns of ``table``) that vary and are not, in raw or log form, a
    rescaling of another one kept before them (Relu's bytes are 8 x its FLOPs: one of them
    is enough)."""
    kept: list[str] = []
    columns: list[tuple[np.ndarray, np.ndarray]] = []
    for j, f in enumerate(names):
        v = table[:, j]
        if np.ptp(v) <= 0:
            continue
        lv = np.log1p(np.maximum(v, 0.0))
        if any(_collinear(v, a) or _collinear(lv, b) for a, b in columns):
            continue
        kept.append(f)
        columns.append((v, lv))
    return set(kept)


def _collinear(a: np.ndarray, b: np.ndarray) -> bool:
    if np.ptp(a) <= 0 or np.ptp(b) <= 0:
        return False
    return abs(float(np.corrcoef(a, b)[0, 1])) > 0.99999


def _choose(rows: Sequence[Row], family: str, y: np.ndarray, seed: int,
            only: Sequence[str] | None = None, by_sample: bool = True) -> _Choice | None:
    """The best candidate by cross-validated RMSPE; no per-sample forms with
    ``by_sample=False`` (power is not proportional to the batch)."""
    sample = _selection_sample(rows, seed)
    rows, y = [rows[i] for i in sample], y[sample]
    names = list(dict.fromkeys(
        ("macs", *WORK_CORRECTIONS, "flops", *TRAFFIC, "bytes_act",
         *SHAPE_FEATURES.get(family, ("elems_out",)),
         *(f for f in GENERIC if f not in ("macs", "flops", "bytes")))))
    table = _matrix(rows, names)
    column = {f: i for i, f in enumerate(names)}
    varying = _informative(table, names)
    varying.discard("lead")
    if by_sample and np.ptp(table[:, column["lead"]]) > 0:  # even where batch equals it
        varying.add("lead")
    groups = [r.config for r in rows]
    work_name = "macs" if family in MAC_FAMILIES and "macs" in varying else "flops"
    if work_name not in varying:
        work_name = "bytes"
    work = np.log1p(table[:, column[work_name]])
    best: _Choice | None = None
    scores: dict[str, float] = {}
    for c in candidates(family, varying):
        if only is not None and c.name not in only and c.form not in only:
            continue
        x = table[:, [column[f] for f in c.features]]
        got = cross_validate(c, x, y, groups, seed, work=work)
        if got is None:
            continue
        score, oof = got
        scores[c.name] = score
        # A richer candidate must beat the best so far by 1% to be preferred.
        if best is None or score < best.cv_rmspe * 0.99:
            best = _Choice(c, score, scores, oof)
    if best is not None:
        best.scores = scores
    return best


#: Model selection cross-validates on at most this many rows (whole configurations drawn
#: at random); the chosen form is then fitted on all of them. Choosing among a few forms
#: needs no more, and it keeps a fit's time bounded by the number of keys, not of records.
SELECT_ROWS = 2000


def _selection_sample(rows: Sequence[Row], seed: int) -> list[int]:
    """Indices of the rows model selection uses: all, or whole configurations drawn at
    random until there are ``SELECT_ROWS``."""
    if len(rows) <= SELECT_ROWS:
        return list(range(len(rows)))
    by_config: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_config.setdefault(r.config, []).append(i)
    configs = sorted(by_config)
    picked: list[int] = []
    for j in np.random.default_rng(seed).permutation(len(configs)):
        if len(picked) >= SELECT_ROWS:
            break
        picked += by_config[configs[j]]
    return sorted(picked)


def _target_rows(rows: Sequence[Row], target: str) -> tuple[list[Row], Counter[str]]:
    keep: list[Row] = []
    dropped: Counter[str] = Counter()
    for r in rows:
        y = getattr(r, target)
        cv = r.runtime_cv if target == "runtime_s" else (r.energy_cv or r.runtime_cv)
        if y is None:
            continue
        if not (isinstance(y, float) and math.isfinite(y) and y > 0):
            dropped[f"non-positive {target}"] += 1
        elif target != "runtime_s" and r.estimate:
            dropped["modelled energy (estimate)"] += 1
        elif cv is not None and cv > MAX_CV:
            dropped[f"CV above {MAX_CV:.0%}"] += 1
        else:
            keep.append(r)
    if target != "runtime_s" and len(keep) >= MIN_ROWS:
        keep, implausible = _plausible_power(keep)
        if implausible:
            dropped["implausible power (far from the others')"] += implausible
    return keep, dropped


#: A row's power (energy / runtime) more than this factor from the median of its key's
#: rows, and more than 5 robust standard deviations, is a failed reading (a RAPL glitch,
#: repetitions of unequal length averaged inconsistently), not a property of the op.
POWER_FACTOR = 1.5


def _plausible_power(rows: list[Row]) -> tuple[list[Row], int]:
    logs = np.asarray([math.log(r.energy_j / r.runtime_s)
                       if r.energy_j and r.runtime_s else math.nan for r in rows])
    known = logs[np.isfinite(logs)]
    if len(known) < MIN_ROWS:
        return rows, 0
    center = float(np.median(known))
    spread = 1.4826 * float(np.median(np.abs(known - center)))
    limit = max(5 * spread, math.log(POWER_FACTOR))
    keep = [r for r, lp in zip(rows, logs, strict=True)
            if not math.isfinite(lp) or abs(lp - center) <= limit]
    return keep, len(rows) - len(keep)


def fit_key(key: str, level: str, family: str, rows: Sequence[Row], seed: int = 0,
            confidence: float = CONFIDENCE, only: Sequence[str] | None = None) -> KeyModels:
    """The runtime, power and energy maps of one model key."""
    km = KeyModels(key=key, level=level, family=family, n_rows=len(rows))
    maps: dict[str, tuple[FittedMap, _Choice, list[Row]]] = {}
    for target in ("runtime_s", "power_w", "energy_j"):
        trows, dropped = _target_rows(rows, target)
        if len(trows) < MIN_ROWS:
            continue
        y = np.asarray([getattr(r, target) for r in trows])
        choice = _choose(trows, family, y, seed, only, by_sample=target != "power_w")
        if choice is None:
            continue
        fmap, _ = final_map(choice.candidate, _matrix(trows, choice.candidate.features), y,
                            target, seed, confidence)
        fmap.diagnostics.update({"cv_rmspe": choice.cv_rmspe, "candidates": choice.scores,
                                 "excluded": dict(dropped)})
        maps[target] = (fmap, choice, trows)
        safe = _extrapolation_map(trows, family, y, target, seed, confidence, choice)
        if safe is not None:
            km.extrapolation[target] = safe
    if "runtime_s" in maps:
        km.runtime = maps["runtime_s"][0]
    if "energy_j" in maps:
        km.energy, km.energy_form = maps["energy_j"][0], "direct"
        if "power_w" in maps and "runtime_s" in maps:
            km.power = maps["power_w"][0]
            composed = _composed_cv(maps, seed)
            if composed is not None and composed < maps["energy_j"][1].cv_rmspe:
                km.energy_form = "runtime_x_power"
            km.energy.diagnostics["cv_rmspe_runtime_x_power"] = composed
    return km


#: Forms used outside the training range, in order of preference: a fixed cost plus
#: non-negative costs linear in the work (never negative, growing with the work instead of
#: following a polynomial out of the data), else a power law.
EXTRAPOLATION_FORMS = ("linear-nonneg", "loglinear-work")


def _extrapolation_map(rows: Sequence[Row], family: str, y: np.ndarray, target: str,
                       seed: int, confidence: float, chosen: _Choice) -> FittedMap | None:
    if chosen.candidate.form in EXTRAPOLATION_FORMS:
        return None  # the chosen map already extrapolates gracefully
    for name in EXTRAPOLATION_FORMS:
        choice = _choose(rows, family, y, seed, only=[name], by_sample=target != "power_w")
        if choice is None:
            continue
        fmap, _ = final_map(choice.candidate, _matrix(rows, choice.candidate.features), y,
                            target, seed, confidence)
        fmap.diagnostics["cv_rmspe"] = choice.cv_rmspe
        return fmap
    return None


def _composed_cv(maps: dict[str, tuple[FittedMap, _Choice, list[Row]]],
                 seed: int) -> float | None:
    """Cross-validated RMSPE of energy = runtime × power on the rows that have all three."""
    _, t_choice, t_rows = maps["runtime_s"]
    _, p_choice, p_rows = maps["power_w"]
    _, _, e_rows = maps["energy_j"]
    both = {id(r) for r in t_rows} & {id(r) for r in p_rows}
    rows = [r for r in e_rows if id(r) in both]
    rows = [rows[i] for i in _selection_sample(rows, seed)]
    if len(rows) < MIN_ROWS:
        return None
    groups = [r.config for r in rows]
    folds = _folds(groups, min(5, len(set(groups))), seed)
    energy = np.asarray([r.energy_j for r in rows])
    runtime = np.asarray([r.runtime_s for r in rows])
    power = np.asarray([r.power_w for r in rows])
    pred = np.full(len(rows), np.nan)
    tx = _matrix(rows, t_choice.candidate.features)
    px = _matrix(rows, p_choice.candidate.features)
    for test in folds:
        train = np.setdiff1d(np.arange(len(rows)), test)
        ft = _fit(t_choice.candidate, tx[train], runtime[train], seed)
        fp = _fit(p_choice.candidate, px[train], power[train], seed)
        if ft is None or fp is None:
            return None
        pred[test] = ft.predict(tx[test]) * fp.predict(px[test])
    return _rmspe(pred, energy) if np.all(np.isfinite(pred)) else None


# ------------------------------------------------------------------------- the profile


def fit_profile(record_paths: Sequence[str | os.PathLike[str]], *,
                provider: str | None = None, threads: int | None = None,
                sensor: str | None = None, name: str | None = None,
                confidence: float = CONFIDENCE, seed: int = 0,
                progress: Progress | None = None,
                only: Sequence[str] | None = None) -> Profile:
    """Fit a profile from record files (this machine's calibration or records from
    elsewhere in the documented schema). ``provider``/``threads`` select records when the
    files mix configurations; ``only`` restricts the candidate forms (by name)."""
    say = progress or (lambda _m: None)
    records: list[dict[str, Any]] = []
    sources = []
    skipped = 0
    for p in record_paths:
        path = Path(p)
        try:
            got = read_records(path)
        except OSError as exc:
            raise FitError(f"cannot read records {path}: {exc.strerror or exc}") from None
        records += got.records
        skipped += got.skipped
        sources.append({"path": str(path), "sha256": _sha256(path),
                        "records": len(got.records), "skipped_lines": got.skipped})
    if not records:
        raise FitError("no records to fit in " + ", ".join(str(p) for p in record_paths))
    records, mixed = _select(records, provider, threads)
    say(f"{len(records):,} records; computing features")
    hardware = _hardware(records)
    the_provider = provider or _common(records, "provider")
    rows = rows_from_records(records, cache_bytes=cache_bytes_of(hardware, the_provider))
    usable = [r for r in rows if r.features is not None and r.excluded is None]
    if not usable:
        reasons = Counter(r.excluded for r in rows)
        raise FitError(f"none of the {len(rows)} measured configurations is usable "
                       f"({'; '.join(f'{n} x {why}' for why, n in reasons.most_common(3))})")
    runners = Counter(r.runner for r in usable)
    runner = runners.most_common(1)[0][0]
    sensors = Counter(r.sensor for r in usable)
    the_sensor = sensor or sensors.most_common(1)[0][0]
    models: dict[str, KeyModels] = {}
    by_kernel: dict[str, list[Row]] = {}
    by_family: dict[str, list[Row]] = {}
    for r in usable:
        assert r.features is not None
        by_kernel.setdefault(r.features.key, []).append(r)
        by_family.setdefault(r.features.family, []).append(r)
    # Keys from the most specific (a kernel op type) to the family: a kernel without rows
    # of its own is predicted by its family's maps, and anything else by the generic one.
    plan = ([(k, "kernel", rs[0].features.family, rs)  # type: ignore[union-attr]
             for k, rs in sorted(by_kernel.items()) if len(rs) >= MIN_ROWS]
            + [(f, "family", f, rs) for f, rs in sorted(by_family.items())
               if len(rs) >= MIN_ROWS and f not in by_kernel])
    for i, (key, level, family, rs) in enumerate(plan):
        twin = _same_rows(models, rs)
        if twin is not None:  # a family of one kernel: the same rows give the same maps
            models[key] = dataclasses.replace(twin, key=key, level=level)
            continue
        say(f"fitting {key} ({len(rs)} rows, {i + 1}/{len(plan) + 1})")
        km = fit_key(key, level, family, rs, seed, confidence, only)
        km.rows_id = _rows_id(rs)
        if km.runtime is not None:
            models[key] = km
    say(f"fitting the generic fallback ({len(usable)} rows)")
    generic = fit_key("generic", "generic", "generic", usable, seed, confidence, only)
    if generic.runtime is not None:
        models["generic"] = generic
    if not models:
        have = dict(Counter(r.features.family for r in usable))  # type: ignore[union-attr]
        raise FitError("no model could be fitted: too few usable rows per op family "
                       f"(need {MIN_ROWS}; have {have})")
    fusion = _fusion_rules(runner, the_provider, records)
    overhead = _session_overhead(records)
    probe_s, probed = median_probe(records)
    excluded = Counter(r.excluded.split(":")[0] for r in rows if r.excluded)
    return Profile(
        name=name or _default_name(hardware, the_provider,
                                   threads if threads is not None
                                   else _common(records, "threads"), runner),
        kind="calibrated",
        provider=the_provider,
        threads=threads if threads is not None else _common(records, "threads"),
        sensor=the_sensor, runner=runner, hardware=hardware, confidence=confidence,
        fusion=fusion, models=models, session_overhead_s=overhead, speed_probe_s=probe_s,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        records=sources, versions=_versions(),
        diagnostics={"rows": len(rows), "usable_rows": len(usable),
                     "excluded_rows": dict(excluded), "skipped_lines": skipped,
                     "records_of_other_configurations": mixed,
                     "runners": dict(runners), "sensors": dict(sensors),
                     "rows_by_family": dict(Counter(r.features.family  # type: ignore[union-attr]
                                                    for r in usable)),
                     "rows_by_kind": dict(Counter(r.kind for r in usable)),
                     "records_with_speed_probe": probed})


def _rows_id(rows: Sequence[Row]) -> str:
    return hashlib.sha256("|".join(sorted(r.config + r.kind for r in rows)).encode()).hexdigest()


def _same_rows(models: dict[str, KeyModels], rows: Sequence[Row]) -> KeyModels | None:
    ident = _rows_id(rows)
    return next((km for km in models.values() if km.rows_id == ident), None)


def _select(records: list[dict[str, Any]], provider: str | None,
            threads: int | None) -> tuple[list[dict[str, Any]], int]:
    keep = [r for r in records
            if (provider is None or r.get("provider") in (None, provider))
            and (threads is None or r.get("threads") in (None, threads))]
    configs = Counter((r.get("provider"), r.get("threads")) for r in keep
                      if r.get("kind") in ("op", "group"))
    if len(configs) > 1:
        listed = ", ".join(f"{p or '?'}/{t or '?'} threads ({n})" for (p, t), n in
                           configs.most_common())
        raise FitError(f"the records mix configurations ({listed}); a profile is for one: "
                       "choose with --provider and --threads")
    return keep, len(records) - len(keep)


def _fusion_rules(runner: str, provider: str | None,
                  records: Sequence[dict[str, Any]]) -> FusionRules:
    """onnxruntime's rules plus the fused patterns the group records showed; none for
    profiles measured with another runtime."""
    if runner != "onnxruntime":
        return NO_FUSION
    rules = default_rules("onnxruntime", provider)
    seen: Counter[tuple[tuple[str, ...], str]] = Counter()
    for r in records:
        g = r.get("group") if r.get("kind") == "group" else None
        if not g or len(g.get("nodes") or []) < 2:
            continue
        ops = tuple(str(n.get("op_type")) for n in g["nodes"])
        if all(op == "Identity" for op in ops):
            continue
        seen[(ops, main_kernel(r, g["nodes"]))] += 1
    return rules.with_patterns([Pattern(ops, kernel, "observed") for (ops, kernel), _ in
                                seen.most_common()])


def _session_overhead(records: Sequence[dict[str, Any]]) -> float:
    """Median runtime of the trivial model measured for the per-run session overhead."""
    values = [float(r["runtime_s"]) for r in records
              if r.get("kind") == "model" and (r.get("model") or {}).get("name") ==
              "session-overhead" and r.get("runtime_s")]
    return float(np.median(values)) if values else 0.0


def _common(records: Sequence[dict[str, Any]], key: str) -> Any:
    values = Counter(r.get(key) for r in records if r.get(key) is not None)
    return values.most_common(1)[0][0] if values else None


def _hardware(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    seen = Counter(repr(sorted((r.get("hardware") or {}).items())) for r in records)
    if not seen:
        return {}
    top = seen.most_common(1)[0][0]
    for r in records:
        if repr(sorted((r.get("hardware") or {}).items())) == top:
            return dict(r.get("hardware") or {})
    return {}


def _default_name(hardware: dict[str, Any], provider: str | None, threads: int | None,
                  runner: str) -> str:
    device = hardware.get("gpu_name") if provider == "cuda" else hardware.get("cpu_model")
    parts = [str(device or runner), provider or "", f"{threads} thread(s)" if threads else ""]
    return ", ".join(p for p in parts if p)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"onnx_energy": __version__}
    for dist in ("numpy", "scikit-learn", "statsmodels", "scipy", "onnx", "onnxruntime"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
