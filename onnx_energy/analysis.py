"""`analyze()`: load a model, run the passes, and return typed per-node and total costs."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from onnx import ModelProto

from .dimexpr import free_names
from .errors import BindingError
from .gcpause import gc_paused
from .graph import TensorInfo, bind_default_batch, bind_dims, load_model
from .ops.base import ZERO_BOPS, BasicOps, Cost
from .passes.consistency import check_bindings
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
from .passes.training import LOSSES, PHASES, NodeTraining
from .passes.transistors import ALWAYS_COLUMNS, PRECISIONS, Lowered, TransistorTable, load_table

if TYPE_CHECKING:
    from .predict import Prediction
    from .profile import Profile

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


#: The quantities reported per phase with ``--phase training`` (besides bops and TOs).
WORK_FIELDS = ("macs", "flops", "bytes_read", "bytes_written")
PHASE_KEYS = ("forward", "backward", "loss", "total")


@dataclass(frozen=True, slots=True)
class Work:
    """MACs, FLOPs and bytes of one training phase (None where not known)."""

    macs: int | float | None = 0
    flops: int | None = 0
    bytes_read: int | None = 0
    bytes_written: int | None = 0

    def __add__(self, other: Work) -> Work:
        """Field by field; unknown (None) on either side stays unknown."""
        return Work(_add(self.macs, other.macs), _add(self.flops, other.flops),
                    _add(self.bytes_read, other.bytes_read),
                    _add(self.bytes_written, other.bytes_written))

    def plus_known(self, other: Work) -> Work:
        """Field by field, counting only what is known (sums over nodes: lower bounds)."""
        return Work((self.macs or 0) + (other.macs or 0), (self.flops or 0) + (other.flops or 0),
                    (self.bytes_read or 0) + (other.bytes_read or 0),
                    (self.bytes_written or 0) + (other.bytes_written or 0))

    def fields(self) -> tuple[int | float | None, ...]:
        return (self.macs, self.flops, self.bytes_read, self.bytes_written)

    @property
    def known(self) -> bool:
        return all(v is not None for v in self.fields())


N = TypeVar("N", int, float)


def _add(a: N | None, b: N | None) -> N | None:
    return None if a is None or b is None else a + b


def phase_work(item: NodeResult | OpTypeSummary | Totals, phase: str) -> Work:
    """MACs, FLOPs and bytes of a node or a sum for ``phase`` (forward, backward, loss or
    total); without training, backward and loss are zero and total is the forward."""
    forward = Work(item.macs, item.flops, item.bytes_read, item.bytes_written)
    if phase == "forward":
        return forward
    backward, loss = item.backward or Work(), item.loss or Work()
    if phase == "backward":
        return backward
    if phase == "loss":
        return loss
    return forward + backward + loss


def _phase_fields(item: NodeResult | OpTypeSummary | Totals) -> dict[str, Any]:
    """The training JSON of WORK_FIELDS: each a ``{forward, backward, loss, total}``."""
    works = {p: phase_work(item, p) for p in PHASE_KEYS}
    return {f: {p: getattr(w, f) for p, w in works.items()} for f in WORK_FIELDS}


@dataclass
class NodeResult:
    """One node's analysis. Cost fields are None when unsupported or unresolved; with
    training, ``backward`` and ``loss`` hold that phase's MACs, FLOPs and bytes."""

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
    backward: Work | None = None
    loss: Work | None = None
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
        if self.backward is not None:
            d.update(_phase_fields(self))
        if self.lowered is not None:
            d.update(self.lowered.to_dict())
        if self.control is not None:
            d.update(self.control)
        return d


@dataclass
class OpTypeSummary:
    """The sums over the nodes of one op type; ``complete`` is false when any of them was
    not fully counted (the sums are then lower bounds)."""

    count: int = 0
    macs: int | float = 0
    flops: int = 0
    params: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    bops: BasicOps = ZERO_BOPS
    lowered: Lowered = field(default_factory=Lowered.zero)
    complete: bool = True
    backward: Work | None = None
    loss: Work | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"count": self.count, "macs": self.macs, "flops": self.flops,
             "params": self.params, "bytes_read": self.bytes_read,
             "bytes_written": self.bytes_written, "bops": self.bops.to_dict(),
             **self.lowered.to_dict(), "lower_bound": not self.complete}
        if self.backward is not None:
            d.update(_phase_fields(self))
        return d


@dataclass
class Totals:
    """Sums over every node; when ``complete`` is false they count only what is known and
    are lower bounds (``lower_bound`` in JSON)."""

    macs: int | float = 0
    flops: int = 0
    params: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    bops: BasicOps = ZERO_BOPS
    complete: bool = True
    lowered: Lowered = field(default_factory=Lowered.zero)
    backward: Work | None = None
    loss: Work | None = None
    #: Peak of the memory plan (weights apart), the node where it occurs, and whether every
    #: activation size was known (else the peak is a lower bound).
    peak_activation_bytes: int | None = None
    peak_activation_node: str | None = None
    peak_activation_complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = {"macs": self.macs, "flops": self.flops, "params": self.params,
             "bytes_read": self.bytes_read, "bytes_written": self.bytes_written,
             "peak_activation_bytes": self.peak_activation_bytes,
             "peak_activation_node": self.peak_activation_node,
             "peak_activation_complete": self.peak_activation_complete,
             "bops": self.bops.to_dict(), **self.lowered.to_dict(),
             "complete": self.complete, "lower_bound": not self.complete}
        if self.backward is not None:
            d.update(_phase_fields(self))
        return d


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
    #: Inputs with a dim that has no name: their shape is set with --input (not in the JSON;
    #: their dims show as null in ``inputs``).
    anonymous_inputs: list[str] = field(default_factory=list)
    #: What was assumed because the user left it open: ``{"batch": 1}`` when the only
    #: unbound dims were the inputs' leading (batch) dims, named in ``defaulted_dims``.
    defaulted: dict[str, int] = field(default_factory=dict)
    defaulted_dims: list[str] = field(default_factory=list)
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
            "defaulted": dict(self.defaulted),
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
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    profile: str | os.PathLike[str] | Profile | None = None,
    default_batch: int | None = 1,
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
    ``input_shapes`` sets whole graph-input shapes by input name (``{"x": [1, 3, 48, 192]}``)
    for inputs whose dims have no names or are fixed; a hard-coded shape in the graph that
    contradicts it (or a re-batching ``batch_size``) is an error naming the node.
    ``profile`` (a path, a profile name, or a loaded `Profile`) predicts runtime, power and
    energy per node and in totals (`predict.predict`); None uses the built-in theoretical
    profile (`theoretical`: energy at published 45 nm per-operation energies, no runtime).
    ``default_batch``: when ``batch_size`` is not given and the only unbound input dims are
    leading (batch) dims, they are bound to this and reported in ``defaulted`` (None: never).
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
    bindings = bind_dims(loaded, dims, batch_size, input_shapes)
    # The bindings say what the user bound, never what was assumed (that is `defaulted`).
    batch_dims = (bind_default_batch(loaded, default_batch)
                  if batch_size is None and default_batch is not None else [])
    say(f"analysing {len(loaded.proto.graph.node):,} nodes (shapes, costs, lowering)")
    extra = () if precision in ALWAYS_COLUMNS else (precision,)
    graph = run_pipeline(loaded, PipelineOptions(control=control, table=table,
                                                 extra_tos=extra, phase=phase, loss=loss))
    label = str(loaded.path) if loaded.path is not None else (loaded.proto.graph.name or "model")
    inputs = [graph.shaped.tensors.get(n) or TensorInfo(n, None, "")
              for n in loaded.input_names]
    check_bindings(loaded, graph.shaped)
    unbound = loaded.symbolic_input_dims()
    say("summing")
    result = summarize(label, convention, inputs, graph.costs, graph.lowered, loaded.weights,
                       bindings, unbound, table=table, training=graph.training,
                       loss=loss, precision=precision, known_dims=loaded.dim_names(),
                       anonymous=loaded.anonymous_inputs())
    if batch_dims and default_batch is not None:
        result.defaulted = {"batch": default_batch}
        result.defaulted_dims = batch_dims
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
    training: Sequence[NodeTraining] | None = None,
    loss: str = "ce",
    precision: str = "fp32",
    known_dims: frozenset[str] = frozenset(),
    anonymous: Sequence[str] = (),
) -> Analysis:
    """Turn per-node costs and their lowering (aligned lists, from the pipeline) into the
    report structure: per-op-type sums, totals, gaps. ``training`` (aligned too) makes a
    training report: backward and loss per node, summed like the forward. ``known_dims`` are
    the model's own dim names (an unresolved dim named by an expression of them is reported
    as those names); ``anonymous`` the inputs with dims that have no name.
    """
    table = table or load_table()
    extra = () if precision in ALWAYS_COLUMNS else (precision,)
    is_training = training is not None
    nodes: list[NodeResult] = []
    by_op: dict[str, OpTypeSummary] = {}
    unsupported: Counter[str] = Counter()
    unresolved: list[Unresolved] = []
    totals = Totals()
    lowered: dict[str, list[Lowered]] = {}
    if is_training:
        totals.backward, totals.loss = Work(), Work()
    for i, (c, low) in enumerate(zip(costs, lowered_nodes, strict=True)):
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
            if is_training:
                summary.backward, summary.loss = Work(), Work()
        if training is not None:
            node = nodes[-1]
            node.backward = _work(training[i].backward, training[i].backward_bytes, convention)
            node.loss = _work(training[i].loss, training[i].loss_bytes, convention)
            if not (node.backward.known and node.loss.known):
                summary.complete = totals.complete = False
            for s in (summary, totals):
                s.backward = (s.backward or Work()).plus_known(node.backward)
                s.loss = (s.loss or Work()).plus_known(node.loss)
        summary.count += 1
        summary.params += c.params
        if c.status != Status.OK:
            summary.complete = totals.complete = False
        if c.status == Status.UNSUPPORTED:
            unsupported[key] += 1
        elif c.status == Status.UNRESOLVED:
            totals.complete = False
            texts = ({d for t in (*c.inputs, *c.outputs) for d in (t.shape or ())
                      if isinstance(d, str)}
                     | (c.control.dims() if c.control is not None else set()))
            dims = sorted({n for d in texts for n in free_names(d, known_dims)})
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
                summary.complete = totals.complete = False
        if c.status == Status.OK:
            summary.bytes_read += c.bytes_read or 0
            summary.bytes_written += c.bytes_written or 0
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
        anonymous_inputs=list(anonymous),
        phase="training" if is_training else "inference", loss=loss if is_training else None,
        precision=precision, transistor_table=table,
    )


def _work(cost: Cost | None, traffic: tuple[int, int] | None, convention: str) -> Work:
    return Work(None if cost is None else convention_macs(cost, convention),
                None if cost is None else cost.flops,
                None if traffic is None else traffic[0], None if traffic is None else traffic[1])


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

