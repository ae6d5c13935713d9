"""`analyze()`: load a model, run the passes, and return typed per-node and total costs."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from onnx import ModelProto

if TYPE_CHECKING:
    from .predict import Prediction
    from .profile import Profile

from .errors import BindingError
from .gcpause import gc_paused
from .graph import TensorInfo, bind_dims, load_model
from .ops.base import ZERO_BOPS, BasicOps, Cost
from .passes.control_flow import BRANCHES, MAX_TRIPS
from .passes.control_flow import prepare as prepare_control_flow
from .passes.costs import buffer_names
from .passes.memory import MemoryPlan
from .passes.pipeline import PipelineOptions, run_pipeline
from .passes.results import (
    ControlFlowOptions,
    ControlFlowResult,
    NodeCost,
    Status,
    counts_as_param,
    op_key,
)
from .passes.training import LOSSES, PHASES
from .passes.transistors import ALWAYS_COLUMNS, PRECISIONS, Lowered, TransistorTable, load_table

CONVENTIONS = ("dot", "seed")


def convention_macs(cost: Cost, convention: str) -> int | float:
    """MACs of a cost under a convention.

    ``dot``: dot-product multiply-accumulates only (torchvision's ``_ops``).
    ``seed``: Getzner et al. Table 3, dot-product MACs plus bias adds, and FLOPs/2 for all
    other work; with FLOPs = 2*MACs + bias for dot ops that is exactly (FLOPs + bias)/2.
    """
    if convention == "dot":
        return cost.macs
    if convention == "seed":
        half = (cost.flops + cost.bias) / 2
        return int(half) if half.is_integer() else half
    raise ValueError(f"unknown convention {convention!r}; choose from {', '.join(CONVENTIONS)}")


@dataclass
class NodeResult:
    """One node's analysis. Cost fields are None when unsupported or unresolved."""

    name: str
    op_type: str
    domain: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    status: Status
    kind: str
    macs: int | float | None
    flops: int | None
    params: int
    bytes_read: int | None
    bytes_written: int | None
    bops: BasicOps | None
    reason: str = ""
    #: Basic operations and TOs per phase (None when the cost is not known).
    lowered: Lowered | None = None
    #: If/Loop/Scan: JSON fields on their subgraphs ("branches" or "body", trips, ...).
    control: dict[str, Any] | None = None
    #: Activation bytes live while the node runs (the memory plan, passes.memory).
    peak_activation_bytes: int | None = None

    @property
    def native_dtype(self) -> str | None:
        return None if self.lowered is None else self.lowered.native_dtype

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "op_type": self.op_type,
            "domain": self.domain,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "status": self.status.value,
            "macs": self.macs,
            "flops": self.flops,
            "params": self.params,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "peak_activation_bytes": self.peak_activation_bytes,
            "bops": None if self.bops is None else self.bops.to_dict(),
            "tos": None,
            "native_dtype": None,
        }
        if self.lowered is not None:
            d.update(self.lowered.to_dict())
        if self.control is not None:
            d.update(self.control)
        return d


@dataclass
class OpTypeSummary:
    count: int = 0
    macs: int | float = 0
    flops: int = 0
    params: int = 0
    bops: BasicOps = ZERO_BOPS
    lowered: Lowered = field(default_factory=Lowered.zero)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "macs": self.macs, "flops": self.flops,
                "params": self.params, "bops": self.bops.to_dict(), **self.lowered.to_dict()}


@dataclass
class Totals:
    macs: int | float = 0
    flops: int = 0
    params: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    bops: BasicOps = ZERO_BOPS
    complete: bool = True
    lowered: Lowered = field(default_factory=Lowered.zero)
    #: Peak of the memory plan (weights apart), the node where it occurs, and whether every
    #: activation size was known (else the peak is a lower bound).
    peak_activation_bytes: int | None = None
    peak_activation_node: str | None = None
    peak_activation_complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"macs": self.macs, "flops": self.flops, "params": self.params,
                "bytes_read": self.bytes_read, "bytes_written": self.bytes_written,
                "peak_activation_bytes": self.peak_activation_bytes,
                "peak_activation_node": self.peak_activation_node,
                "peak_activation_complete": self.peak_activation_complete,
                "bops": self.bops.to_dict(), **self.lowered.to_dict(),
                "complete": self.complete}


@dataclass
class Unresolved:
    node: str
    op_type: str
    reason: str
    dims: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "op_type": self.op_type, "reason": self.reason,
                "dims": self.dims}


@dataclass
class Analysis:
    """Everything `analyze` found; ``to_dict()`` is the JSON output of the CLI."""

    model: str
    convention: str
    inputs: list[TensorInfo]
    nodes: list[NodeResult]
    by_op_type: dict[str, OpTypeSummary]
    totals: Totals
    unsupported: dict[str, int]
    unresolved: list[Unresolved]
    bindings: dict[str, int] = field(default_factory=dict)
    unbound_dims: list[str] = field(default_factory=list)
    phase: str = "inference"
    loss: str | None = None
    precision: str = "fp32"
    transistor_table: TransistorTable | None = None
    #: Runtime, power and energy from a hardware profile (``analyze(..., profile=...)``).
    prediction: Prediction | None = None
    #: gCO2-eq per inference (`carbon.CarbonIntensity.report`), when an intensity is given.
    carbon: dict[str, Any] | None = None

    def tos_column(self, lowered: Lowered | None, phase: str = "total") -> int | None:
        """TOs of ``lowered`` in the ``precision`` column, for ``phase`` (forward, backward,
        loss or total)."""
        if lowered is None:
            return None
        cols = {"forward": lowered.tos, "backward": lowered.tos_backward,
                "loss": lowered.tos_loss, "total": lowered.tos_total}[phase]
        return None if cols is None else cols.get(self.precision)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "convention": self.convention,
            "phase": self.phase,
            "loss": self.loss,
            "precision": self.precision,
            "transistor_table": (None if self.transistor_table is None
                                 else self.transistor_table.source),
            "bindings": dict(self.bindings),
            "unbound_dims": list(self.unbound_dims),
            "inputs": [t.to_dict() for t in self.inputs],
            "nodes": [n.to_dict() for n in self.nodes],
            "by_op_type": {k: v.to_dict() for k, v in self.by_op_type.items()},
            "totals": self.totals.to_dict(),
            "unsupported": dict(self.unsupported),
            "unresolved": [u.to_dict() for u in self.unresolved],
        } if self.prediction is None else self._with_prediction()

    def _with_prediction(self) -> dict[str, Any]:
        """The report with the prediction merged in: per node and in totals the fields of
        `predict.NodePrediction`, and the top-level ``profile`` and ``prediction`` blocks."""
        pred = self.prediction
        assert pred is not None
        self.prediction = None
        try:
            d = self.to_dict()
        finally:
            self.prediction = pred
        for node, p in zip(d["nodes"], pred.nodes, strict=True):
            node.update(p.to_dict())
        totals = pred.totals.to_dict()
        d["totals"].update({k: totals[k] for k in ("runtime_s", "power_w", "energy_j",
                                                     "runtime_s_interval",
                                                     "energy_j_interval")})
        d["totals"].update(pred.totals.detail or {})
        d["profile"] = pred.profile
        if self.carbon is not None:
            d["carbon"] = self.carbon
        d["prediction"] = {"kernels": totals["kernels"],
                           "fallback_kernels": totals["fallback_kernels"],
                           "extrapolated_kernels": totals["extrapolated_kernels"],
                           "session_overhead_s": totals["session_overhead_s"],
                           "confidence": pred.profile.get("confidence"),
                           "warnings": list(pred.warnings)}
        return d


@gc_paused()  # the passes make many acyclic objects: collections only cost time
def analyze(
    model: str | os.PathLike[str] | ModelProto,
    *,
    dims: Mapping[str, int] | None = None,
    batch_size: int | None = None,
    convention: str = "dot",
    phase: str = "inference",
    loss: str = "ce",
    precision: str = "fp32",
    transistor_table: str | os.PathLike[str] | TransistorTable | None = None,
    branch: str | None = None,
    loop_trips: int | None = None,
    profile: str | os.PathLike[str] | Profile | None = None,
    progress: Callable[[str], None] | None = None,
) -> Analysis:
    """Analyse an ONNX model (a path or a ModelProto) without reading its weights.

    ``dims`` binds symbolic dimensions by name, ``batch_size`` the symbolic leading dim of
    every graph input; ``convention`` is ``dot`` (default) or ``seed`` (see `convention_macs`).
    ``phase`` is ``inference`` or ``training`` (adds backward and ``loss``, ``ce`` or ``mse``);
    ``precision`` picks the TOs column the table view shows (fp32, fp16, bf16, native);
    ``transistor_table`` is a JSON file merged over the default table (docs/basic_ops.md).
    ``branch`` (``then``/``else``) picks the If branch counted (default: the costlier);
    ``loop_trips`` is the trip count of Loops (and Scans) whose count is not a constant.
    ``profile`` (a path, a profile name, or a loaded `Profile`) predicts runtime, power and
    energy per node and in totals (`predict.predict`); None uses the built-in theoretical
    profile (`theoretical`: energy at published 45 nm per-operation energies, no runtime).
    ``progress`` is called with a short message as each pass starts.
    """
    say = progress or (lambda _msg: None)
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    _check_choice("phase", phase, PHASES)
    _check_choice("loss", loss, LOSSES)
    _check_choice("precision", precision, PRECISIONS)
    table = (transistor_table if isinstance(transistor_table, TransistorTable)
             else load_table(transistor_table))
    control = control_options(branch, loop_trips)
    say("loading")
    loaded = load_model(model)
    prepare_control_flow(loaded)  # nesting limit, model-local functions inlined
    bindings = bind_dims(loaded, dims, batch_size)
    say(f"analysing {len(loaded.proto.graph.node):,} nodes (shapes, costs, lowering)")
    extra = () if precision in ALWAYS_COLUMNS else (precision,)
    graph = run_pipeline(loaded, PipelineOptions(control=control, table=table,
                                                 extra_tos=extra, phase=phase, loss=loss))
    label = str(loaded.path) if loaded.path is not None else (loaded.proto.graph.name or "model")
    inputs = [graph.shaped.tensors.get(n) or TensorInfo(n, None, "")
              for n in loaded.input_names]
    unbound = loaded.symbolic_input_dims()
    say("summing")
    result = summarize(label, convention, inputs, graph.costs, graph.lowered, loaded.weights,
                       bindings, unbound, table=table, training=graph.training is not None,
                       loss=loss, precision=precision)
    if graph.memory is not None:
        attach_memory(result, graph.memory)
    from .predict import predict
    from .profile import Profile
    from .profile_store import default_profile, open_profile

    say("predicting")
    the_profile = (default_profile() if profile is None else
                   profile if isinstance(profile, Profile) else open_profile(str(profile)))
    result.prediction = predict(graph, the_profile)
    return result


def attach_memory(result: Analysis, plan: MemoryPlan) -> None:
    """Per-node live activation bytes and the peak of the memory plan, into ``result``."""
    for node, live in zip(result.nodes, plan.node_bytes, strict=True):
        node.peak_activation_bytes = live
    t = result.totals
    t.peak_activation_bytes = plan.peak_bytes
    t.peak_activation_node = None if plan.peak_node is None else result.nodes[plan.peak_node].name
    t.peak_activation_complete = plan.complete


def control_options(branch: str | None, loop_trips: int | None) -> ControlFlowOptions:
    """Checked If/Loop options of `analyze`."""
    if branch is not None and branch not in BRANCHES:
        raise ValueError(f"unknown branch {branch!r}; choose from {', '.join(BRANCHES)}")
    if loop_trips is not None and (
        isinstance(loop_trips, bool) or not isinstance(loop_trips, int)
        or not 0 <= loop_trips <= MAX_TRIPS
    ):
        raise BindingError(f"--loop-trips: {loop_trips!r} is not a trip count (0 … {MAX_TRIPS})")
    return ControlFlowOptions(branch=branch, loop_trips=loop_trips)


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose from {', '.join(choices)}")


def summarize(
    label: str,
    convention: str,
    inputs: list[TensorInfo],
    costs: Sequence[NodeCost],
    lowered_nodes: Sequence[Lowered | None],
    weights: Mapping[str, TensorInfo],
    bindings: Mapping[str, int],
    unbound: list[str],
    *,
    table: TransistorTable | None = None,
    training: bool = False,
    loss: str = "ce",
    precision: str = "fp32",
) -> Analysis:
    """Turn per-node costs and their lowering (aligned lists, from the pipeline) into the
    report structure: per-op-type sums, totals, gaps. ``training`` marks a training report.
    """
    table = table or load_table()
    extra = () if precision in ALWAYS_COLUMNS else (precision,)
    is_training = training
    nodes: list[NodeResult] = []
    by_op: dict[str, OpTypeSummary] = {}
    unsupported: Counter[str] = Counter()
    unresolved: list[Unresolved] = []
    totals = Totals()
    lowered: dict[str, list[Lowered]] = {}
    for c, low in zip(costs, lowered_nodes, strict=True):
        key = op_key(c.node.domain, c.node.op_type)
        cost = c.cost
        macs = None if cost is None else convention_macs(cost, convention)
        nodes.append(NodeResult(
            name=c.node.name, op_type=c.node.op_type, domain=c.node.domain,
            inputs=c.inputs, outputs=c.outputs, status=c.status, kind=c.kind,
            macs=macs, flops=None if cost is None else cost.flops, params=c.params,
            bytes_read=c.bytes_read, bytes_written=c.bytes_written,
            bops=None if cost is None else cost.bops, reason=c.reason, lowered=low,
        ))
        if c.control is not None:  # If/Loop/Scan: what their subgraphs hold
            unsupported.update(c.control.unsupported())
            nodes[-1].control = _control_report(c.control, convention, table, precision)
        summary = by_op.get(key)
        if summary is None:  # (not setdefault: that would build a summary for every node)
            summary = by_op[key] = OpTypeSummary()
        summary.count += 1
        summary.params += c.params
        if c.status == Status.UNSUPPORTED:
            unsupported[key] += 1
            totals.complete = False
        elif c.status == Status.UNRESOLVED:
            totals.complete = False
            dims = sorted({d for t in (*c.inputs, *c.outputs) for d in (t.shape or ())
                           if isinstance(d, str)}
                          | (c.control.dims() if c.control is not None else set()))
            unresolved.append(Unresolved(c.node.name, key, c.reason, dims))
        if cost is not None and macs is not None and low is not None:
            summary.macs += macs
            summary.flops += cost.flops
            summary.bops = summary.bops + cost.bops
            totals.macs += macs
            totals.flops += cost.flops
            totals.bops = totals.bops + cost.bops
            lowered.setdefault(key, []).append(low)
            if not low.complete:
                totals.complete = False
        if c.status == Status.OK:
            totals.bytes_read += c.bytes_read or 0
            totals.bytes_written += c.bytes_written or 0
    for key, summary in by_op.items():
        summary.lowered = Lowered.sum(lowered.get(key, []), is_training, extra)
    totals.lowered = Lowered.sum([x for xs in lowered.values() for x in xs], is_training, extra)
    buffers = buffer_names(c.node for c in costs)  # BatchNormalization running stats
    totals.params = sum(w.numel for w in weights.values()
                        if counts_as_param(w) and w.is_static and w.name not in buffers)
    totals.params += sum(c.control.own_params() for c in costs if c.control is not None)
    return Analysis(
        model=label, convention=convention, inputs=inputs, nodes=nodes, by_op_type=by_op,
        totals=totals, unsupported=dict(unsupported), unresolved=unresolved,
        bindings=dict(bindings), unbound_dims=[d for d in unbound if d not in bindings],
        phase="training" if is_training else "inference", loss=loss if is_training else None,
        precision=precision, transistor_table=table,
    )


def _control_report(
    result: ControlFlowResult, convention: str, table: TransistorTable, precision: str
) -> dict[str, Any]:
    """JSON fields of an If/Loop/Scan node: each subgraph summarised like a whole model
    (per iteration), whether it is counted, and for loops the trip count and its source."""
    subs: dict[str, Any] = {}
    for label, sub in result.subgraphs.items():
        a = summarize(label, convention, [], sub.costs, sub.lowered, sub.weights, {}, [],
                      table=table, precision=precision)
        subs[label] = {
            "counted": label in result.counted,
            "complete": sub.complete,
            "totals": a.totals.to_dict(),
            "nodes": [n.to_dict() for n in a.nodes],
            "unsupported": dict(a.unsupported),
            "unresolved": [u.to_dict() for u in a.unresolved],
        }
    key = "branches" if result.op_type == "If" else "body"
    return {**result.header(), key: subs if key == "branches" else subs.get("body")}

