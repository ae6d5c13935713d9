"""Per-node timings: onnxruntime's profiler, mapped back onto the original graph's nodes.

onnxruntime optimises the graph before running it: it fuses nodes (Conv+Relu into FusedConv,
MatMul+Add into Gemm, the LayerNorm and Gelu subgraphs into one kernel, Conv+Add+Relu into one
NCHWc Conv), folds constants, drops Identity nodes and inserts layout conversions. The
profiler times the kernels of that optimised graph. This module maps each kernel back:

1. **Anchors.** A kernel is tied to original nodes by (a) the same node name, (b) producing
   the same output tensor, (c) onnxruntime's naming of rewritten nodes: ``<tensor>_nchwc``
   for NCHWc layout nodes and ``<node>/<FusionName>`` for fusions. An NCHWc Conv with a Sum
   input also absorbed the Add after its Conv, and the activation after that Add.
2. **Groups.** Kernels that share an original node form one group (e.g. a Split and a
   Squeeze that replaced one Gather).
3. **Folded nodes.** An original node tied to no kernel that is computable from constants and
   static shapes alone, or whose outputs became initializers of the optimised graph (or feed
   only such nodes), was constant-folded: these are listed in one row with no time.
4. **Absorbed nodes.** Any other original node no kernel is tied to was fused into its
   consumers: it joins the group of its nearest tied consumer (most onnxruntime fusions keep
   the last node's output); failing that, its producer's group.
5. Reshapes and layout reorders that onnxruntime inserted (not named like an original node)
   join the kernel they feed or are fed by through a tensor the original graph lacks (the
   reshapes around a MatMul+Add turned Gemm, the NCHWc reorders), and so do kernels tied to
   no original node that are pieces of a node onnxruntime split (the HardSigmoid of a
   HardSwish turned HardSigmoid·Mul). Copies between devices are listed as inserted by
   onnxruntime.

A group of more than one original node is reported as fused, under all its node names.

**Reconciliation with the unprofiled runtime.** The profiler is not free: every kernel event
costs a few microseconds inside the timed span (and more between kernels), while an
unprofiled run pays only about 0.3 µs of dispatch per kernel. Kernel sums therefore exceed
the runtime on networks of many small kernels. `reconcile` corrects that in two parts, with
T the unprofiled runtime per inference (windows interleaved with the profiled runs, so that
both see the same machine), s the fixed per-run session overhead and K the kernel sum:

1. every kernel gets ``d − p`` added, the dispatch cost of a node less what the profiler
   reports for a kernel that does nothing (`overhead.Overheads`: about 0.3 − 2.4 µs on one
   CPU thread), clamped at zero;
2. the kernels are scaled by one factor so that they sum to T − s exactly: the rest of the
   profiler's cost grows with the kernel (3–6 µs on larger tensors), and noise between the
   windows and the profiled stretches is proportional too.

Without a measured ``p`` the whole difference is spread as one δ per kernel instead (`spread`).
docs/calibration.md has the measurements behind this.
"""

from __future__ import annotations

import bisect
import itertools
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from onnx import GraphProto

_KERNEL_SUFFIX = "_kernel_time"
_FOLDED = -1  # the group of nodes onnxruntime folded into constants or eliminated
#: Absorbed nodes of these types (weight Identities, folded shape arithmetic) are left out
#: of group labels; they are still listed as members.
_SHAPE_OPS = frozenset({"Identity", "Constant", "ConstantOfShape", "Shape", "Size", "Gather",
                        "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Range", "Reshape",
                        "Equal", "Where", "Expand"})
#: Copies between devices: listed as inserted by onnxruntime, never joined to a node.
_COPY_OPS = frozenset({"MemcpyToHost", "MemcpyFromHost"})
#: Data-movement kernels onnxruntime inserts around the nodes it rewrites.
_GLUE_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose",
                       "ReorderInput", "ReorderOutput"})


@dataclass
class KernelProfile:
    """Kernel seconds per optimised-graph node name, one total per profiled run."""

    seconds: dict[str, list[float]]
    op_names: dict[str, str]
    runs: int
    #: Wall time of each profiled run as the profiler saw it (its ``model_run`` span).
    run_seconds: list[float] = field(default_factory=list)

    def per_run(self, stretches: Sequence[int] | None = None) -> dict[str, float]:
        """Each kernel's time per run: the mean over the runs, the statistic of a window's
        runtime (window time / iterations). With ``stretches`` (consecutive runs per
        stretch), the median over stretches of each stretch's mean: the statistic of a
        measurement's runtime (the median of its windows), robust to a stretch that another
        process slowed down."""
        if not self.runs:
            return {}
        if not stretches or sum(stretches) != self.runs or len(stretches) < 2:
            return {k: statistics.fmean(v) for k, v in self.seconds.items()}
        bounds = list(itertools.accumulate(stretches, initial=0))
        return {k: statistics.median(statistics.fmean(v[a:b])
                                     for a, b in itertools.pairwise(bounds))
                for k, v in self.seconds.items()}


def parse_profile(path: str, skip_runs: int = 0) -> KernelProfile:
    """Kernel durations per node and run from an onnxruntime profile JSON, after `skip_runs`."""
    with open(path, encoding="utf-8") as fh:
        events = json.load(fh)
    if isinstance(events, dict):  # some versions wrap the list
        events = events.get("traceEvents", [])
    runs = sorted(
        (int(e["ts"]), int(e["ts"]) + int(e["dur"]))
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )[skip_runs:]
    starts = [r[0] for r in runs]
    seconds: dict[str, list[float]] = {}
    ops: dict[str, str] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith(_KERNEL_SUFFIX):
            continue
        ts = int(e.get("ts", 0))
        i = bisect.bisect_right(starts, ts) - 1
        if i < 0 or ts > runs[i][1]:
            continue  # a warm-up run, or outside any run
        node = name[: -len(_KERNEL_SUFFIX)]
        seconds.setdefault(node, [0.0] * len(runs))[i] += int(e.get("dur", 0)) / 1e6
        ops.setdefault(node, str(e.get("args", {}).get("op_name", "")))
    return KernelProfile(seconds, ops, len(runs), [(b - a) / 1e6 for a, b in runs])


@dataclass(frozen=True)
class Reconciliation:
    """How profiled kernel times were reconciled with the unprofiled runtime (per inference).

    ``runtime_s`` (T) is the unprofiled runtime the kernels were reconciled with,
    ``session_overhead_s`` (s) the fixed per-run cost outside any kernel, ``kernel_time_s``
    (K) the raw kernel sum of ``kernels`` (n) kernels, ``per_kernel_s`` the δ added to every
    kernel (d − p, or the whole difference per kernel without p; negative when the
    profiler's cost exceeds the dispatch cost it hides), ``scale`` the factor applied after
    it, ``clamped`` how many kernels came out at zero, and ``profiled_run_s`` the mean wall
    time of a profiled run.
    """

    runtime_s: float
    session_overhead_s: float
    kernel_time_s: float
    kernels: int
    per_kernel_s: float
    clamped: int
    scale: float = 1.0
    profiled_run_s: float | None = None

    @property
    def coverage(self) -> float | None:
        """Raw kernel sum over T − s: how much of the runtime the profiler saw as kernels."""
        base = self.runtime_s - self.session_overhead_s
        return self.kernel_time_s / base if base > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime_s": self.runtime_s,
            "session_overhead_s": self.session_overhead_s,
            "kernel_time_raw_s": self.kernel_time_s,
            "kernels": self.kernels,
            "coverage": self.coverage,
            "per_kernel_correction_s": self.per_kernel_s,
            "scale": self.scale,
            "clamped": self.clamped,
            "profiled_run_s": self.profiled_run_s,
        }


def spread(times: dict[str, float], target_s: float) -> tuple[dict[str, float], float, int]:
    """Add one δ to every time so that they sum to ``target_s``, none below zero.

    Returns (new times, δ, how many were clamped at zero). With a positive target the
    solution is unique: the smallest times are clamped one by one until δ no longer takes
    the next one below zero.
    """
    if not times:
        return {}, 0.0, 0
    if target_s <= 0:
        return {k: 0.0 for k in times}, -max(times.values()), len(times)
    order = sorted(times.values())
    n = len(order)
    suffix = sum(order)
    delta = (target_s - suffix) / n
    clamped = 0
    for m in range(n):
        delta = (target_s - suffix) / (n - m)
        if order[m] + delta >= 0:
            clamped = m
            break
        suffix -= order[m]
    out = {k: max(0.0, t + delta) for k, t in times.items()}
    return out, delta, clamped


def reconcile(
    profile: KernelProfile, runtime_s: float, session_overhead_s: float = 0.0,
    stretches: Sequence[int] | None = None, kernel_correction_s: float | None = None,
) -> tuple[dict[str, float], Reconciliation]:
    """Per-kernel times that add up to ``runtime_s`` − ``session_overhead_s`` (T − s; see
    the module docstring). T must be measured on the same machine state as the profile
    (measure() interleaves its windows with the profiled stretches); ``stretches`` are
    the profiled runs per stretch (`KernelProfile.per_run`); ``kernel_correction_s`` is
    d − p, added to every kernel before the result is scaled to T − s (without it, one δ
    per kernel makes up the whole difference)."""
    raw = profile.per_run(stretches)
    target = max(0.0, runtime_s - session_overhead_s)
    times: dict[str, float] = {}
    scale = 1.0
    if kernel_correction_s is not None:
        shifted = {k: max(0.0, t + kernel_correction_s) for k, t in raw.items()}
        total = sum(shifted.values())
        if total > 0:
            scale = target / total
            times = {k: t * scale for k, t in shifted.items()}
            delta = kernel_correction_s
            clamped = sum(t + kernel_correction_s < 0 for t in raw.values())
    if not times:
        times, delta, clamped = spread(raw, target)
        scale = 1.0
    runs = profile.run_seconds
    rec = Reconciliation(
        runtime_s=runtime_s, session_overhead_s=session_overhead_s,
        kernel_time_s=sum(raw.values()), kernels=len(raw), per_kernel_s=delta,
        clamped=clamped, scale=scale,
        profiled_run_s=statistics.fmean(runs) if runs else None)
    return times, rec


@dataclass
class _Orig:
    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]


@dataclass
class Group:
    """Original nodes and the kernels that executed them."""

    kernels: list[str] = field(default_factory=list)
    kernel_ops: list[str] = field(default_factory=list)
    anchored: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)


@dataclass
class NodeTiming:
    """One reported row: a node, or a fused group of nodes, or an inserted kernel."""

    name: str
    op_type: str
    nodes: list[str]
    op_types: list[str]
    kernels: list[str]
    fused: bool
    inserted: bool
    time_s: float
    share: float = 0.0
    energy_j: float | None = None
    #: The profiler's own kernel time, before reconciliation (equal to time_s without it).
    time_raw_s: float | None = None
    #: The group's compute nodes (its label); ``nodes`` also lists absorbed weight
    #: Identities and folded shape arithmetic.
    compute: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "nodes": self.nodes,
            "op_types": self.op_types,
            "kernels": self.kernels,
            "fused": self.fused,
            "inserted": self.inserted,
            "time_s": self.time_s,
            "time_raw_s": self.time_s if self.time_raw_s is None else self.time_raw_s,
            "share": self.share,
            "energy_j": self.energy_j,
            "energy_basis": None if self.energy_j is None else "time-proportional",
        }


def _original_nodes(graph: GraphProto) -> list[_Orig]:
    return [
        _Orig(n.name or f"{n.op_type}_{i}", n.op_type, list(n.input), list(n.output))
        for i, n in enumerate(graph.node)
    ]


def _attr(node: Any, name: str) -> Any:
    for a in node.attribute:
        if a.name == name:
            return a.s.decode("utf-8", "replace") if a.s else None
    return None


def map_kernels(
    original: GraphProto, optimized: GraphProto, constants: Iterable[str] = ()
) -> tuple[list[_Orig], list[Group]]:
    """Group the optimised graph's nodes with the original nodes they execute.

    ``constants`` names initializers that are not in ``original`` (weights detached by
    `load_model`); the graph's own initializers count too.
    """
    orig = _original_nodes(original)
    by_name = {n.name: i for i, n in enumerate(orig)}
    producer: dict[str, int] = {}
    consumers: dict[str, list[int]] = defaultdict(list)
    for i, n in enumerate(orig):
        for t in n.outputs:
            if t:
                producer[t] = i
        for t in n.inputs:
            if t:
                consumers[t].append(i)

    def single_consumer(i: int, op_types: Iterable[str]) -> int | None:
        users = [c for t in orig[i].outputs for c in consumers.get(t, [])]
        if len(users) == 1 and orig[users[0]].op_type in op_types:
            return users[0]
        return None

    kernel_anchors: list[tuple[Any, set[int]]] = []
    for k in optimized.node:
        anchors: set[int] = set()
        if k.name in by_name:
            anchors.add(by_name[k.name])
        anchors.update(producer[t] for t in k.output if t in producer)
        if not anchors and k.name.endswith("_nchwc"):
            base = k.name[: -len("_nchwc")]
            if base in producer:
                anchors.add(producer[base])
            elif base in by_name:
                anchors.add(by_name[base])
        if not anchors:
            cut = k.name.rfind("/")
            while cut > 0:
                if k.name[:cut] in by_name:
                    anchors.add(by_name[k.name[:cut]])
                    break
                cut = k.name.rfind("/", 0, cut)
        if anchors and k.domain == "com.microsoft.nchwc" and k.op_type == "Conv":
            last = max(anchors)
            if len(k.input) >= 4 and k.input[3] and orig[last].op_type == "Conv":
                add = single_consumer(last, ("Add", "Sum"))
                if add is not None:
                    anchors.add(add)
                    last = add
            activation = _attr(k, "activation")
            if activation and orig[last].op_type != activation:
                act = single_consumer(last, (activation,))
                if act is not None:
                    anchors.add(act)
        kernel_anchors.append((k, anchors))

    # union kernels that share an original node
    parent = list(range(len(kernel_anchors)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[int, int] = {}
    for ki, (_, anchors) in enumerate(kernel_anchors):
        for a in anchors:
            if a in owner:
                parent[find(ki)] = find(owner[a])
            else:
                owner[a] = ki
    # reshapes and layout reorders onnxruntime inserted around a rewritten node join it
    made_by: dict[str, int] = {}
    used_by: dict[str, list[int]] = defaultdict(list)
    for ki, (k, _) in enumerate(kernel_anchors):
        for t in k.output:
            made_by[t] = ki
        for t in k.input:
            used_by[t].append(ki)
    for ki, (k, anchors) in enumerate(kernel_anchors):
        if k.name in by_name or k.op_type in _COPY_OPS:
            continue
        if k.op_type not in _GLUE_OPS and anchors:
            continue  # a compute kernel tied to its own nodes; unanchored ones are pieces
            # of a node onnxruntime split (a HardSwish into HardSigmoid and Mul)
        inner = [t for t in k.input if t and t not in producer and t in made_by]
        if inner:
            parent[find(ki)] = find(made_by[inner[0]])
            continue
        outer = [c for t in k.output if t and t not in producer for c in used_by.get(t, [])]
        if outer:
            parent[find(ki)] = find(outer[0])

    groups: dict[int, Group] = {}
    for ki, (k, anchors) in enumerate(kernel_anchors):
        g = groups.setdefault(find(ki), Group())
        g.kernels.append(k.name)
        g.kernel_ops.append(k.op_type)
        g.anchored.extend(sorted(anchors))
    node_group: dict[int, int] = {a: find(ki) for a, ki in owner.items()}

    # constant-folded nodes: computable from constants and static shapes alone, or with
    # outputs that became initializers, or feeding only folded nodes
    const = {t.name for t in original.initializer} | set(constants or ())
    folded: set[int] = set()
    for i, node in enumerate(orig):
        if node.op_type in ("Shape", "Size") or all(t in const for t in node.inputs if t):
            const.update(t for t in node.outputs if t)
            if i not in node_group:
                folded.add(i)
    folded_inits = {t.name for t in optimized.initializer}
    graph_outputs = {o.name for o in original.output}
    for i in range(len(orig) - 1, -1, -1):
        if i in node_group:
            continue
        outs = [t for t in orig[i].outputs if t]
        if outs and all(
            t not in graph_outputs and (
                t in folded_inits
                or (consumers.get(t) and all(c in folded for c in consumers[t])))
            for t in outs
        ):
            folded.add(i)
    for i in folded:
        node_group[i] = _FOLDED
    groups[_FOLDED] = Group()

    # absorbed nodes: nearest tied consumer (reverse topological order), else producer
    for i in range(len(orig) - 1, -1, -1):
        if i in node_group:
            continue
        users = sorted(c for t in orig[i].outputs for c in consumers.get(t, []))
        for c in users:
            if c in node_group:
                node_group[i] = node_group[c]
                break
    for i in range(len(orig)):
        if i in node_group:
            continue
        for t in orig[i].inputs:
            p = producer.get(t)
            if p is not None and p in node_group:
                node_group[i] = node_group[p]
                break
    for i in range(len(orig)):
        if i not in node_group:  # eliminated with no tied neighbour
            node_group[i] = _FOLDED
        groups[node_group[i]].members.append(i)
    if not groups[_FOLDED].members:
        del groups[_FOLDED]
    return orig, [groups[k] for k in sorted(groups, key=_group_order(groups))]


def _suffix(name: str) -> int:
    tail = name.rpartition("_")[2]
    return int(tail) if tail.isdigit() else 1 << 30


def _name_unnamed(original: GraphProto, optimized: GraphProto, times: dict[str, float],
                  op_names: dict[str, str]) -> GraphProto:
    """The optimised graph with its unnamed nodes named as the profiler names them.

    Nodes onnxruntime creates without a name (the HardSigmoid and Mul it splits a
    HardSwish after a Gemm into, for one) appear in the profile as ``<OpType>_<index>``,
    an index the saved graph does not keep: they are paired, per op type and in order, with
    the profiled kernels no node of the graph is named after. Without this they would be
    rows of their own and their node's group would have no time.
    """
    unnamed = [i for i, k in enumerate(optimized.node) if not k.name]
    if not unnamed:
        return optimized
    taken = {k.name for k in optimized.node} | {n.name for n in original.node}
    spare: dict[str, list[str]] = defaultdict(list)
    for k in sorted(times, key=_suffix):
        if k not in taken:
            spare[op_names.get(k, "")].append(k)
    if not spare:
        return optimized
    named = GraphProto()
    named.CopyFrom(optimized)
    for i in unnamed:
        node = named.node[i]
        if spare.get(node.op_type):
            node.name = spare[node.op_type].pop(0)
    return named


def _group_order(groups: dict[int, Group]) -> Any:
    def key(k: int) -> tuple[int, int]:
        g = groups[k]
        first = min(g.members) if g.members else 1 << 30
        return (first, k)

    return key


def _label(names: list[str], limit: int = 3) -> str:
    if len(names) <= limit:
        return " + ".join(names)
    return " + ".join(names[:limit]) + f" + {len(names) - limit} more"


def node_timings(
    original: GraphProto,
    optimized: GraphProto,
    profile: KernelProfile,
    energy_per_inference: float | None = None,
    constants: Iterable[str] = (),
    kernel_times: dict[str, float] | None = None,
    raw_times: dict[str, float] | None = None,
) -> list[NodeTiming]:
    """Per-inference time of each node or fused group, largest first.

    ``kernel_times`` are reconciled kernel times (`reconcile`); without them the rows carry
    the profiler's raw times (``raw_times``, by default the mean over the runs). ``share``
    is the group's fraction of all kernel time; with an energy per inference, ``energy_j``
    splits it in proportion to time (labelled time-proportional).
    """
    raw = profile.per_run() if raw_times is None else raw_times
    per_run = raw if kernel_times is None else kernel_times
    optimized = _name_unnamed(original, optimized, raw, profile.op_names)
    orig, groups = map_kernels(original, optimized, constants)
    known = {k for g in groups for k in g.kernels}
    rows: list[NodeTiming] = []
    for g in groups:
        time_s = sum(per_run.get(k, 0.0) for k in g.kernels)
        time_raw = sum(raw.get(k, 0.0) for k in g.kernels)
        members = sorted(g.members)
        tied = set(g.anchored)
        compute = [i for i in members
                   if i in tied or orig[i].op_type not in _SHAPE_OPS] or members
        if not g.kernels:  # folded into constants or eliminated: no kernel, no time
            rows.append(NodeTiming(
                name=f"constant-folded or eliminated by onnxruntime ({len(members)} nodes)",
                op_type="", nodes=[orig[i].name for i in members],
                op_types=[orig[i].op_type for i in members], kernels=[], fused=False,
                inserted=False, time_s=0.0, time_raw_s=0.0))
            continue
        if not members:  # inserted by onnxruntime
            if not g.kernels or not any(k in per_run for k in g.kernels):
                continue
            label = _label(g.kernels)
            rows.append(NodeTiming(
                name=f"{label} (inserted by onnxruntime)", op_type="+".join(g.kernel_ops),
                nodes=[], op_types=[], kernels=g.kernels, fused=False, inserted=True,
                time_s=time_s, time_raw_s=time_raw))
            continue
        op = "+".join(dict.fromkeys(g.kernel_ops)) if g.kernel_ops else orig[compute[0]].op_type
        rows.append(NodeTiming(
            name=_label([orig[i].name for i in compute]),
            op_type=op,
            nodes=[orig[i].name for i in members],
            op_types=[orig[i].op_type for i in members],
            kernels=g.kernels,
            fused=len(compute) > 1,
            inserted=False,
            time_s=time_s,
            time_raw_s=time_raw,
            compute=[orig[i].name for i in compute],
        ))
    for k, secs in per_run.items():  # kernels from subgraphs (If/Loop bodies) and the like
        if k not in known:
            rows.append(NodeTiming(
                name=k, op_type=profile.op_names.get(k, ""), nodes=[], op_types=[],
                kernels=[k], fused=False, inserted=False, time_s=secs,
                time_raw_s=raw.get(k, 0.0)))
    total = sum(r.time_s for r in rows)
    for r in rows:
        r.share = r.time_s / total if total > 0 else 0.0
        if energy_per_inference is not None:
            r.energy_j = r.share * energy_per_inference
    rows.sort(key=lambda r: r.time_s, reverse=True)
    return rows
