"""From measurement records to training rows: one row per measured configuration.

Records of one run (the windows of one ``measure`` call) become one row: the median of each
target and the coefficient of variation across windows. Each row is described by the same
features as a node to predict (`features.group_features`), computed by the project's own
pipeline on a graph rebuilt from the record's spec (a single op) or its group's member
specs (nodes timed together in a network). Rows that cannot be used are kept, with the
reason, so the diagnostics can count them; none is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ..dtypes import elem_type
from ..features import GroupFeatures, group_features
from ..graph import LoadedModel, TensorInfo
from ..passes.pipeline import run_pipeline
from ..passes.results import Status

#: Inputs that are weights (initializers) by op type, when a spec does not say.
WEIGHT_INPUTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "PRelu": (1,),
    "BatchNormalization": (1, 2, 3, 4), "LayerNormalization": (1, 2),
    "InstanceNormalization": (1, 2), "GroupNormalization": (1, 2), "RMSNormalization": (1,),
    "SkipLayerNormalization": (2, 3, 4), "SimplifiedLayerNormalization": (1,),
}
#: Kernels onnxruntime adds around the ones it rewrites: never the group's main kernel.
GLUE_KERNELS = frozenset({"Reshape", "ReorderInput", "ReorderOutput", "Transpose", "Squeeze",
                          "Unsqueeze", "Flatten", "Identity", "MemcpyToHost",
                          "MemcpyFromHost"})
KERNEL_ALIASES = {"FusedConv": "Conv", "FusedGemm": "Gemm", "NhwcConv": "Conv",
                  "NhwcFusedConv": "Conv"}


@dataclass
class Row:
    """One measured configuration: its features and targets (None where not measured)."""

    features: GroupFeatures | None
    runtime_s: float | None
    energy_j: float | None
    power_w: float | None
    runtime_cv: float | None
    energy_cv: float | None
    kind: str
    runner: str
    sensor: str
    estimate: bool
    #: Identity of the configuration (repeats of it fall in one cross-validation fold).
    config: str
    source: str
    windows: int = 1
    excluded: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def rows_from_records(records: Iterable[Mapping[str, Any]],
                      cache_bytes: float | None = None) -> list[Row]:
    """Training rows of op and group records (model and code records are not rows);
    ``cache_bytes`` is the calibrated CPU's last-level cache (see `group_features`)."""
    runs: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for r in records:
        if r.get("kind") not in ("op", "group"):
            continue
        ident = r.get("group", {}).get("name") if r["kind"] == "group" else None
        key = (r["kind"], str(r.get("run_id") or id(r)), str(ident or ""))
        runs.setdefault(key, []).append(r)
    cache: dict[str, GroupFeatures | str] = {}
    return [_row(windows, cache, cache_bytes) for windows in runs.values()]


def _row(windows: Sequence[Mapping[str, Any]], cache: dict[str, GroupFeatures | str],
         cache_bytes: float | None) -> Row:
    first = windows[0]
    kind = str(first["kind"])
    runner = str((first.get("runner") or {}).get("name") or "onnxruntime")
    runtimes = [float(w["runtime_s"]) for w in windows if _positive(w.get("runtime_s"))]
    energies = [float(w["energy_j"]) for w in windows if w.get("energy_j") is not None]
    powers = [float(w["power_w"]) for w in windows if w.get("power_w") is not None]
    runtime = statistics.median(runtimes) if runtimes else None
    energy = statistics.median(energies) if energies else None
    power = statistics.median(powers) if powers else None
    if power is None and energy is not None and runtime:
        power = energy / runtime
    runtime_cv = _cv(runtimes) if len(runtimes) > 1 else _float(first.get("runtime_cv"))
    energy_cv = _cv(energies) if len(energies) > 1 else _float(first.get("energy_cv"))
    nodes = [first["spec"]] if kind == "op" else list(first["group"].get("nodes") or [])
    config = _config_id(kind, nodes, first)
    row = Row(None, runtime, energy, power, runtime_cv, energy_cv, kind, runner,
              str(first.get("sensor") or "none"), bool(first.get("estimate")), config,
              source=str((first.get("model") or {}).get("name") or first.get("item") or ""),
              windows=len(windows))
    if kind == "group":
        row.meta["kernel_ops"] = str(first["group"].get("op_type") or "")
        row.meta["ops"] = [str(n.get("op_type")) for n in nodes]
    try:
        cached = cache.get(config)
        if cached is None:
            cached = cache[config] = _features(kind, nodes, first, cache_bytes)
    except Exception as exc:  # a spec the passes cannot rebuild: counted, never dropped
        cached = cache[config] = f"features not computable: {type(exc).__name__}: {exc}"[:200]
    if isinstance(cached, str):
        row.excluded = cached
    else:
        row.features = cached
    return row


def _features(kind: str, nodes: Sequence[Mapping[str, Any]], record: Mapping[str, Any],
              cache_bytes: float | None = None) -> GroupFeatures | str:
    if not nodes:
        return "no node specs"
    model = graph_of_specs(nodes)
    analysed = run_pipeline(model)
    bad = [c for c in analysed.costs if c.status != Status.OK]
    if bad:
        return f"{bad[0].node.op_type}: {bad[0].reason or bad[0].status.value}"
    kernel = main_kernel(record, nodes) if kind == "group" else str(nodes[0]["op_type"])
    return group_features(analysed.costs, analysed.lowered, kernel, isolated=(kind == "op"),
                          cache_bytes=cache_bytes, weights=analysed.model.weights)


def main_kernel(record: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]]) -> str:
    """The kernel op type that ran a group: its first kernel that is not glue onnxruntime
    added (layout reorders, reshapes); else its first node's op type."""
    ops = str((record.get("group") or {}).get("op_type") or "").split("+")
    for op in ops:
        if op and op not in GLUE_KERNELS:
            return KERNEL_ALIASES.get(op, op)
    return str(nodes[0]["op_type"]) if nodes else (ops[0] if ops and ops[0] else "?")


def graph_of_specs(nodes: Sequence[Mapping[str, Any]]) -> LoadedModel:
    """A weight-free model of the node specs, connected by their tensor names (or, without
    names, each node's first input fed by the previous node's first output)."""
    graph_inputs: list[Any] = []
    inits: list[TensorProto] = []
    weights: dict[str, TensorInfo] = {}
    defined: set[str] = set()
    protos = []
    value_infos = []
    named = all(isinstance(t, Mapping) and t.get("name") for n in nodes
                for t in n.get("inputs", []) if t is not None)
    previous_out: str | None = None
    for k, spec in enumerate(nodes):
        op = str(spec["op_type"])
        domain = str(spec.get("domain") or "")
        in_names = []
        for i, t in enumerate(spec.get("inputs") or []):
            if t is None:
                in_names.append("")
                continue
            name = str(t.get("name")) if named else (
                previous_out if (i == 0 and previous_out is not None) else f"n{k}_in{i}")
            in_names.append(name)
            if name in defined:
                continue
            defined.add(name)
            shape = [int(d) if isinstance(d, int) else (str(d) if d is not None else None)
                     for d in t.get("shape") or []]
            dtype = str(t.get("dtype") or "float32")
            if t.get("value") is not None:
                arr = np.asarray(t["value"], dtype=helper.tensor_dtype_to_np_dtype(
                    elem_type(dtype))).reshape(shape)
                inits.append(numpy_helper.from_array(arr, name))
                weights[name] = TensorInfo(name, tuple(arr.shape), dtype)
                continue
            graph_inputs.append(helper.make_tensor_value_info(name, elem_type(dtype), shape))
            is_weight = bool(t.get("initializer")) if "initializer" in t else (
                i in WEIGHT_INPUTS.get(op, ()))
            if is_weight and all(isinstance(d, int) for d in shape):
                weights[name] = TensorInfo(name, tuple(shape), dtype)
        outs = spec.get("outputs") or [None] * max(1, int(spec.get("num_outputs") or 1))
        out_names = []
        for i, t in enumerate(outs):
            name = str(t.get("name")) if named and isinstance(t, Mapping) and t.get("name") \
                else f"n{k}_out{i}"
            out_names.append(name)
            defined.add(name)
            if isinstance(t, Mapping) and t.get("shape") is not None:
                value_infos.append(helper.make_tensor_value_info(
                    name, elem_type(str(t.get("dtype") or "float32")),
                    [d if isinstance(d, int) else None for d in t["shape"]]))
        previous_out = out_names[0]
        attrs = {a: v for a, v in (spec.get("attrs") or {}).items()
                 if v is not None and not (isinstance(v, list) and not v)}
        protos.append(helper.make_node(op, in_names, out_names, name=str(
            spec.get("name") or f"{op}_{k}"), domain=domain or None, **attrs))
    produced = {o for p in protos for o in p.output}
    consumed = {x for p in protos for x in p.input}
    outputs = [vi for vi in value_infos if vi.name not in consumed] or [
        helper.make_empty_tensor_value_info(o) for o in sorted(produced - consumed)]
    graph = helper.make_graph(protos, "specs", graph_inputs, outputs, inits,
                              value_info=[v for v in value_infos if v.name in consumed])
    domains = {str(n.get("domain") or "") for n in nodes}
    # The spec's own opset where it names one (Gelu needs 20, Split's num_outputs 18).
    opset = max([17] + [int(n["opset"]) for n in nodes
                        if isinstance(n.get("opset"), int) and not n.get("domain")])
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(d, 1) for d in sorted(domains - {""})]
    proto = helper.make_model(graph, opset_imports=opsets)
    proto.ir_version = 8
    input_names = [vi.name for vi in graph_inputs]
    return LoadedModel(proto=proto, path=None, weights=weights, input_names=input_names)


def _config_id(kind: str, nodes: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> str:
    """A stable identity of the measured configuration (the same spec measured twice, or
    the same group in the same network, has the same id)."""
    basis = [{k: n.get(k) for k in ("op_type", "domain", "attrs")}
             | {"inputs": [None if t is None else (t.get("shape"), t.get("dtype"))
                           for t in n.get("inputs") or []]} for n in nodes]
    if kind == "group":
        basis.append({"network": (record.get("model") or {}).get("sha256")})
    text = json.dumps(basis, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _positive(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v) and v > 0


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def _cv(values: Sequence[float]) -> float | None:
    mean = statistics.fmean(values)
    return statistics.stdev(values) / abs(mean) if mean else None
