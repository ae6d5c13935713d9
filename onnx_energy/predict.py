"""Calibrated prediction: a profile's maps applied to an analysed graph, kernel by kernel.

The graph's nodes are grouped into the kernels the runtime executes (the profile's fusion
rules, `fusion.group_nodes`); each kernel's features (`features.group_features`) go through
the most specific map the profile has for it (its kernel op type, else its family, else the
generic fallback, flagged as such). A group's prediction is reported on its first node (the
*anchor*); the other members show zero and name the group. Nodes the runtime never executes
(removed no-ops, constant subgraphs computed once) cost nothing.

Totals add the per-run session overhead to the kernels. Intervals are at the profile's
confidence level. A node's interval is its map's prediction interval. The totals' interval
combines, by the delta method, the parameter uncertainty of each map (fully correlated
across the kernels it predicts) and each kernel's residual scatter (independent across
kernels), and uses a normal quantile: docs/calibration.md.

Numpy only: this module imports no scikit-learn and no onnxruntime.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .features import GroupFeatures, group_features
from .fusion import ELIMINATED, FOLDED, Group, group_nodes
from .machine import differences
from .passes.results import GraphAnalysis
from .profile import FittedMap, KeyModels, Profile, ProfileError
from .theoretical import THEORETICAL, energy_table, node_energy

FALLBACK = "fallback"


@dataclass
class NodePrediction:
    """One node's share of the prediction (zero unless it anchors its group)."""

    runtime_s: float | None
    power_w: float | None
    energy_j: float | None
    runtime_s_interval: list[float] | None
    energy_j_interval: list[float] | None
    group: str | None
    predictor: str
    extrapolated: bool = False
    #: Predictor-specific fields merged into the JSON (the theoretical energy's split).
    detail: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"runtime_s": self.runtime_s, "power_w": self.power_w,
                "energy_j": self.energy_j, "runtime_s_interval": self.runtime_s_interval,
                "energy_j_interval": self.energy_j_interval, "group": self.group,
                "predictor": self.predictor, **(self.detail or {})}


@dataclass
class TotalPrediction:
    """The whole model per inference (runtime None: the profile predicts no time)."""

    runtime_s: float | None
    power_w: float | None
    energy_j: float | None
    runtime_s_interval: list[float] | None
    energy_j_interval: list[float] | None
    kernels: int
    fallback_kernels: int
    extrapolated_kernels: int
    session_overhead_s: float
    #: Predictor-specific totals (the theoretical energy's compute/memory split).
    detail: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"runtime_s": self.runtime_s, "power_w": self.power_w,
                "energy_j": self.energy_j, "runtime_s_interval": self.runtime_s_interval,
                "energy_j_interval": self.energy_j_interval, "kernels": self.kernels,
                "fallback_kernels": self.fallback_kernels,
                "extrapolated_kernels": self.extrapolated_kernels,
                "session_overhead_s": self.session_overhead_s, **(self.detail or {})}


@dataclass
class Prediction:
    """What a profile predicts for an analysed graph."""

    profile: dict[str, Any]
    nodes: list[NodePrediction]
    totals: TotalPrediction
    warnings: list[str] = field(default_factory=list)


@dataclass
class _GroupResult:
    group: Group
    features: GroupFeatures | None
    models: KeyModels | None
    runtime: float = 0.0
    runtime_interval: tuple[float, float] = (0.0, 0.0)
    energy: float | None = None
    energy_interval: tuple[float, float] | None = None
    extrapolated: bool = False


class _Accumulator:
    """Sums of predictions and their delta-method variance terms for one target."""

    def __init__(self) -> None:
        self.total = 0.0
        self.grads: dict[int, tuple[FittedMap, np.ndarray]] = {}
        self.resid = 0.0

    def add(self, fmap: FittedMap, y: float, grad: np.ndarray, resid_rel: float,
            scale: float = 1.0) -> None:
        self.total += y
        key = id(fmap)
        prev = self.grads.get(key)
        g = grad * scale
        self.grads[key] = (fmap, g if prev is None else prev[1] + g)
        self.resid += y * y * resid_rel

    def variance(self) -> float:
        var = self.resid
        for fmap, g in self.grads.values():
            cov = np.asarray(fmap.cov).reshape(len(g), len(g))
            var += float(g @ cov @ g)
        return max(var, 0.0)


def predict(graph: GraphAnalysis, profile: Profile) -> Prediction:
    """Per-node and total runtime (and power and energy when the profile has them)."""
    if profile.kind == THEORETICAL:
        return _predict_theoretical(graph, profile)
    groups = group_nodes(graph, profile.fusion)
    consumers: dict[str, int] = {}
    for c in graph.costs:
        for x in c.node.inputs:
            if x:
                consumers[x] = consumers.get(x, 0) + 1
    results = []
    cache = profile.cache_bytes
    for g in groups:
        if g.kind in (FOLDED, ELIMINATED):
            results.append(_GroupResult(g, None, None))
            continue
        members = [graph.costs[i] for i in g.members]
        if any(m.cost is None for m in members):
            results.append(_GroupResult(g, None, None))
            continue
        feats = group_features(members, [graph.lowered[i] for i in g.members], g.kernel,
                               consumers=consumers, cache_bytes=cache,
                               weights=graph.model.weights)
        results.append(_GroupResult(g, feats, profile.models_for(feats.keys())))
    runtime_acc, energy_acc = _Accumulator(), _Accumulator()
    power_acc = _Accumulator()
    _evaluate(results, runtime_acc, energy_acc, power_acc)
    nodes = _node_predictions(graph, results, profile)
    conf = profile.confidence
    z = statistics.NormalDist().inv_cdf(0.5 + conf / 2)
    overhead = profile.session_overhead_s
    runtime = runtime_acc.total + overhead
    half = z * math.sqrt(runtime_acc.variance())
    energy = energy_interval = power = None
    if profile.has_energy:
        energy = energy_acc.total + (profile.session_overhead_j or 0.0)
        e_half = z * math.sqrt(energy_acc.variance())
        energy_interval = [max(energy - e_half, 0.0), energy + e_half]
        power = energy / runtime if runtime > 0 else None
    kernels = [r for r in results if r.features is not None]
    totals = TotalPrediction(
        runtime_s=runtime, power_w=power, energy_j=energy,
        runtime_s_interval=[max(runtime - half, 0.0), runtime + half],
        energy_j_interval=energy_interval, kernels=len(kernels),
        fallback_kernels=sum(1 for r in kernels if r.models is not None
                             and r.models.level == "generic"),
        extrapolated_kernels=sum(1 for r in kernels if r.extrapolated),
        session_overhead_s=overhead)
    warnings = _warnings(profile, results, totals)
    info = profile_info(profile)
    return Prediction(info, nodes, totals, warnings)


def profile_info(profile: Profile) -> dict[str, Any]:
    """The top-level ``profile`` block of a report."""
    if profile.kind == THEORETICAL:  # no machine, no confidence level: a published estimate
        table = energy_table(profile.theoretical or {})
        return {"name": profile.name, "kind": profile.kind, "label": table.label,
                "technology_nm": table.technology_nm, "citation": table.citation,
                "provider": None, "threads": None, "sensor": profile.sensor,
                "fingerprint_match": None, "fingerprint_differences": [],
                "path": profile.path, "confidence": None}
    diff = differences(profile.hardware) if profile.hardware else []
    return {"name": profile.name, "kind": profile.kind, "provider": profile.provider,
            "threads": profile.threads, "sensor": profile.sensor,
            "fingerprint_match": not diff, "fingerprint_differences": diff,
            "path": profile.path, "confidence": profile.confidence}


def _predict_theoretical(graph: GraphAnalysis, profile: Profile) -> Prediction:
    """Energy of every node at published per-operation energies (`theoretical`); constant
    subgraphs, computed once before any inference, cost nothing."""
    if profile.theoretical is None:
        raise ProfileError(f"profile {profile.name!r} is theoretical but has no "
                           "'theoretical' block of energies")
    table = energy_table(profile.theoretical)
    folded = {i for g in group_nodes(graph, profile.fusion) if g.kind in (FOLDED, ELIMINATED)
              for i in g.members}
    nodes: list[NodePrediction] = []
    energy = low = high = compute = memory = 0.0
    priced = unknown = 0
    for i, (c, low_i) in enumerate(zip(graph.costs, graph.lowered, strict=True)):
        if i in folded:
            nodes.append(NodePrediction(None, None, 0.0, None, [0.0, 0.0], None, FOLDED))
            continue
        bops = None if low_i is None else low_i.total
        e = node_energy(c, bops, None if low_i is None else low_i.native_dtype, table)
        if e.energy_j is None or e.low_j is None or e.high_j is None:
            unknown += 1
            nodes.append(NodePrediction(None, None, None, None, None, None, "unknown"))
            continue
        priced += 1
        energy, low, high = energy + e.energy_j, low + e.low_j, high + e.high_j
        compute += e.compute_j or 0.0
        memory += e.memory_j or 0.0
        nodes.append(NodePrediction(None, None, e.energy_j, None, [e.low_j, e.high_j], None,
                                    THEORETICAL, detail=e.detail()))
    nothing = unknown and not priced  # all unknown: no number rather than a silent zero
    totals = TotalPrediction(
        runtime_s=None, power_w=None, energy_j=None if nothing else energy,
        runtime_s_interval=None, energy_j_interval=None if nothing else [low, high],
        kernels=priced, fallback_kernels=0,
        extrapolated_kernels=0, session_overhead_s=0.0,
        detail={"energy_compute_j": None if nothing else compute,
                "energy_memory_j": None if nothing else memory})
    warnings = []
    if unknown:
        warnings.append(f"{unknown} node(s) have no known cost or no energy for their dtype: "
                        + ("energy is not predicted" if nothing else
                           "the energy leaves them out (a lower bound)"))
    return Prediction(profile_info(profile), nodes, totals, warnings)


def _evaluate(results: Sequence[_GroupResult], runtime_acc: _Accumulator,
              energy_acc: _Accumulator, power_acc: _Accumulator) -> None:
    """Evaluate every group's maps, batched per map (one numpy call per map). A kernel
    outside the range of its key's map, or where that map swings implausibly far from the
    key's extrapolation map (`ENVELOPE`), is evaluated with the extrapolation map."""
    targets = ("runtime_s", "energy_j", "power_w")
    wanted: dict[tuple[int, str], tuple[FittedMap, FittedMap | None, bool]] = {}
    by_map: dict[int, tuple[FittedMap, list[int]]] = {}
    for i, r in enumerate(results):
        if r.features is None or r.models is None:
            continue
        for target in targets:
            main = r.models.map_for(target, outside=False)
            if main is None:
                continue
            out = bool(main.outside(_row(r, main))[0])
            safe = r.models.map_for(target, outside=True)
            safe = None if safe is main else safe
            wanted[(i, target)] = (main, safe, out)
            for fmap in (main, safe):
                if fmap is not None:
                    by_map.setdefault(id(fmap), (fmap, []))[1].append(i)
    preds: dict[tuple[int, int], tuple[float, float, float, np.ndarray, float]] = {}
    for key, (fmap, idx) in by_map.items():
        x = np.vstack([_row(results[i], fmap) for i in idx])
        got = fmap.predict(x)
        for row, i in enumerate(idx):
            preds[(key, i)] = (float(got.y[row]), float(got.lo[row]), float(got.hi[row]),
                               got.grad[row], float(got.resid_rel[row]))
    chosen: dict[tuple[int, str], FittedMap] = {}
    outside_any: dict[int, bool] = {}
    for (i, target), (main, safe, out) in wanted.items():
        use_safe = safe is not None and (out or not _plausible(
            preds[(id(main), i)][0], preds[(id(safe), i)][0]))
        chosen[(i, target)] = safe if use_safe and safe is not None else main
        outside_any[i] = outside_any.get(i, False) or out or use_safe
    for i, r in enumerate(results):
        km = r.models
        if r.features is None or km is None or (i, "runtime_s") not in chosen:
            continue
        rt_map = chosen[(i, "runtime_s")]
        t, t_lo, t_hi, t_grad, t_res = preds[(id(rt_map), i)]
        r.runtime, r.runtime_interval = t, (t_lo, t_hi)
        r.extrapolated = outside_any.get(i, False)
        runtime_acc.add(rt_map, t, t_grad, t_res)
        if km.energy_form == "direct" and (i, "energy_j") in chosen:
            e_map = chosen[(i, "energy_j")]
            e, e_lo, e_hi, e_grad, e_res = preds[(id(e_map), i)]
            r.energy, r.energy_interval = e, (e_lo, e_hi)
            energy_acc.add(e_map, e, e_grad, e_res)
        elif km.energy_form == "runtime_x_power" and (i, "power_w") in chosen:
            p_map = chosen[(i, "power_w")]
            p, p_lo, p_hi, p_grad, p_res = preds[(id(p_map), i)]
            e = t * p
            spread = math.hypot(math.log(max(t_hi, 1e-300) / max(t, 1e-300)),
                                math.log(max(p_hi, 1e-300) / max(p, 1e-300)))
            r.energy, r.energy_interval = e, (e * math.exp(-spread), e * math.exp(spread))
            # E = T·P: dE/dβ_T = P·dT/dβ_T, dE/dβ_P = T·dP/dβ_P; residuals add in relative terms
            energy_acc.add(rt_map, 0.0, t_grad, 0.0, scale=p)
            energy_acc.add(p_map, e, p_grad, t_res + p_res, scale=t)
            power_acc.add(p_map, p, p_grad, p_res)


#: Inside its range a polynomial map can still swing far from the data in a corner the
#: records left empty (a BatchNormalization 2,000x too slow, a Concat at zero). A main
#: map's value more than this factor from the key's linear extrapolation map is such a
#: swing: the linear map is used, and the kernel counts as extrapolated.
ENVELOPE = 4.0


def _plausible(main: float, safe: float) -> bool:
    if not (math.isfinite(main) and main > 0):
        return False
    if not (math.isfinite(safe) and safe > 0):
        return True
    return 1.0 / ENVELOPE <= main / safe <= ENVELOPE


def _row(r: _GroupResult, fmap: FittedMap) -> np.ndarray:
    assert r.features is not None
    return np.asarray([[r.features.values.get(f, 0.0) for f in fmap.features]],
                      dtype=np.float64)


def _node_predictions(graph: GraphAnalysis, results: Sequence[_GroupResult],
                      profile: Profile) -> list[NodePrediction]:
    names = [c.node.name for c in graph.costs]
    out: list[NodePrediction | None] = [None] * len(graph.costs)
    energy_known = profile.has_energy
    for r in results:
        g = r.group
        label = _label([names[i] for i in g.members])
        if g.kind in (FOLDED, ELIMINATED):
            for i in g.members:
                out[i] = NodePrediction(0.0, None, 0.0 if energy_known else None, [0.0, 0.0],
                                        [0.0, 0.0] if energy_known else None, None, g.kind)
            continue
        if r.features is None or r.models is None:  # unknown cost, or no map at all
            for i in g.members:
                out[i] = NodePrediction(None, None, None, None, None, label, "unknown")
            continue
        predictor = FALLBACK if r.models.level == "generic" else r.models.key
        anchor = _anchor_index(graph, g)
        for i in g.members:
            if i == anchor:
                energy = r.energy if energy_known else None
                power = energy / r.runtime if energy is not None and r.runtime > 0 else None
                out[i] = NodePrediction(
                    r.runtime, power, energy, list(r.runtime_interval),
                    list(r.energy_interval) if energy is not None and r.energy_interval
                    else None, label, predictor, r.extrapolated)
            else:
                out[i] = NodePrediction(0.0, None, 0.0 if energy_known else None, [0.0, 0.0],
                                        [0.0, 0.0] if energy_known else None, label, predictor)
    return [p if p is not None else NodePrediction(None, None, None, None, None, None,
                                                   "unknown") for p in out]


def _anchor_index(graph: GraphAnalysis, g: Group) -> int:
    for i in g.members:
        if graph.costs[i].node.op_type == g.kernel:
            return i
    return g.members[0]


def _label(names: Sequence[str], limit: int = 3) -> str:
    if len(names) <= limit:
        return " + ".join(names)
    return " + ".join(names[:limit]) + f" + {len(names) - limit} more"


def _warnings(profile: Profile, results: Sequence[_GroupResult],
              totals: TotalPrediction) -> list[str]:
    out = []
    diff = differences(profile.hardware) if profile.hardware else []
    if diff:
        out.append(f"profile {profile.name!r} was measured on another machine ("
                   + "; ".join(diff) + "): predictions may not hold here")
    if not profile.has_energy:
        out.append(f"profile {profile.name!r} has no energy model (calibrated with sensor "
                   f"{profile.sensor!r}): energy is not predicted")
    unknown = sum(1 for r in results if (r.features is None or r.models is None)
                  and r.group.kind == "kernel")
    if unknown:
        out.append(f"{unknown} kernel(s) have no known cost (unresolved shapes or "
                   "unsupported ops): the totals leave them out")
    if totals.fallback_kernels:
        out.append(f"{totals.fallback_kernels} kernel(s) predicted by the generic fallback "
                   "(no family model in the profile)")
    if totals.extrapolated_kernels:
        out.append(f"{totals.extrapolated_kernels} kernel(s) are outside the range the "
                   "profile was fitted on, or where its fitted map is implausible "
                   "(predicted with the linear extrapolation map)")
    return out
