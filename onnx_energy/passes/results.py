"""The result types the passes share: statuses, shaped graphs, node costs, subgraph results.

Every pass reads and writes these; no pass imports another pass's module for them. The
pipeline (`pipeline.run_pipeline`) produces a `GraphAnalysis` per graph, top level and
subgraphs alike.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from ..dtypes import INDEX_TYPES
from ..graph import LoadedModel, Node, TensorInfo
from ..ops.base import ZERO_COST, Cost
from .memory import MemoryPlan
from .training import NodeTraining
from .transistors import Lowered


class Status(str, Enum):
    """What analysis could say about a node."""

    OK = "ok"
    #: no cost rule for the op
    UNSUPPORTED = "unsupported"
    #: a rule exists but the shapes (or values) it needs are not known
    UNRESOLVED = "unresolved"

    def __str__(self) -> str:
        return self.value


def op_key(domain: str, op_type: str) -> str:
    """How an op type is named in reports: bare for the ONNX domain, ``domain::Op`` otherwise."""
    return op_type if domain == "" else f"{domain}::{op_type}"


def counts_as_param(info: TensorInfo) -> bool:
    """Weights are initializers of any dtype but the index/shape types (int32/int64) and bool."""
    return info.dtype not in INDEX_TYPES and info.dtype != "bool"


@dataclass
class ShapedGraph:
    """The result of shape inference: nodes in topological order and every tensor's facts."""

    nodes: list[Node]
    tensors: dict[str, TensorInfo]
    values: dict[str, np.ndarray] = field(default_factory=dict)
    #: Analysed subgraphs of the If/Loop/Scan nodes (see control_flow.flow_key).
    control: dict[Any, ControlFlowResult] = field(default_factory=dict)


@dataclass
class NodeCost:
    """A node, its tensors, and its cost (None when unsupported or unresolved)."""

    node: Node
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    cost: Cost | None
    status: Status
    kind: str
    params: int
    bytes_read: int | None
    bytes_written: int | None
    reason: str = ""
    #: If/Loop/Scan: the analysed subgraphs behind the cost (see control_flow).
    control: ControlFlowResult | None = None


@dataclass
class GraphAnalysis:
    """What the pipeline found for one graph: shapes, per-node costs, their lowering, and
    (training) the backward and loss work per node, all aligned with ``costs``."""

    model: LoadedModel
    shaped: ShapedGraph
    costs: list[NodeCost]
    lowered: list[Lowered | None]
    training: list[NodeTraining] | None = None
    #: Live activation bytes per node and their peak (passes.memory).
    memory: MemoryPlan | None = None


@dataclass(frozen=True)
class ControlFlowOptions:
    """``branch``: count this If branch (None: the costlier); ``loop_trips``: trips of loops
    whose count is not a constant; ``depth``: nesting level of the graph being analysed."""

    branch: str | None = None
    loop_trips: int | None = None
    depth: int = 0

    def deeper(self) -> ControlFlowOptions:
        return dataclasses.replace(self, depth=self.depth + 1)




@dataclass
class SubgraphResult:
    """One analysed subgraph (a branch or a body): its nodes' costs, per iteration."""

    label: str
    costs: list[NodeCost]
    weights: dict[str, TensorInfo]
    #: Facts of the subgraph's outputs, in order (None where unknown).
    outputs: list[TensorInfo | None] = field(default_factory=list)
    #: The subgraph's own initializers (weights living inside it, not read from outside).
    own_weights: dict[str, TensorInfo] = field(default_factory=dict)
    #: Each node's lowering to basic and transistor operations, aligned with ``costs``.
    lowered: list[Lowered | None] = field(default_factory=list)

    def own_params(self) -> int:
        """Parameters held by this subgraph and the subgraphs nested in it."""
        n = sum(w.numel for w in self.own_weights.values()
                if counts_as_param(w) and w.is_static)
        for c in self.costs:
            control = c.control
            if control is not None:
                n += control.own_params()
        return n

    @property
    def cost(self) -> Cost:
        total = ZERO_COST
        for c in self.costs:
            if c.cost is not None:
                total = total + c.cost
        return total

    @property
    def complete(self) -> bool:
        return all(c.status == Status.OK for c in self.costs)

    def bytes_moved(self) -> tuple[int, int] | None:
        if not self.complete:
            return None
        return (sum(c.bytes_read or 0 for c in self.costs),
                sum(c.bytes_written or 0 for c in self.costs))

    def unsupported(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for c in self.costs:
            if c.status == Status.UNSUPPORTED:
                out[op_key(c.node.domain, c.node.op_type)] += 1
            control = c.control
            if control is not None:
                out.update(control.unsupported())
        return out

    def gaps(self) -> list[str]:
        """Short notes on what is not counted in this subgraph."""
        notes = [f"{c.node.name} ({c.node.op_type}): {c.reason or c.status}"
                 for c in self.costs if c.status != Status.OK]
        return notes

    def dims(self) -> set[str]:
        out: set[str] = set()
        for c in self.costs:
            if c.status != Status.OK:
                for t in (*c.inputs, *c.outputs):
                    out.update(d for d in (t.shape or ()) if isinstance(d, str))
            control = c.control
            if control is not None:
                out |= control.dims()
        return out


@dataclass
class ControlFlowResult:
    """What a control-flow node costs: its subgraphs, which of them count, how often."""

    op_type: str
    subgraphs: dict[str, SubgraphResult]
    counted: list[str]
    trips: int | None = 1
    trips_source: str = ""
    cond: bool | None = None
    notes: list[str] = field(default_factory=list)

    def cost(self) -> Cost | None:
        if self.trips is None:
            return None
        total = ZERO_COST
        for label in self.counted:
            total = total + self.subgraphs[label].cost
        return scale_cost(total, self.trips)

    @property
    def complete(self) -> bool:
        return not self.notes and all(self.subgraphs[s].complete for s in self.counted)

    def reason(self) -> str:
        parts = list(self.notes)
        for label in self.counted:
            sub = self.subgraphs[label]
            gaps = sub.gaps()
            if gaps:
                more = f" (+{len(gaps) - 2} more)" if len(gaps) > 2 else ""
                parts.append(f"{label}: not fully counted: {'; '.join(gaps[:2])}{more}")
        return "; ".join(parts)

    def bytes_moved(self) -> tuple[int, int] | None:
        if self.trips is None or not self.complete:
            return None
        read = written = 0
        for label in self.counted:
            moved = self.subgraphs[label].bytes_moved()
            if moved is None:
                return None
            read += moved[0] * self.trips
            written += moved[1] * self.trips
        return read, written

    def params(self) -> int:
        return sum(c.params for s in self.subgraphs.values() for c in s.costs)

    def own_params(self) -> int:
        """Parameters stored inside the subgraphs (counted once, whatever the trips)."""
        return sum(s.own_params() for s in self.subgraphs.values())

    def unsupported(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for s in self.subgraphs.values():
            out.update(s.unsupported())
        return out

    def dims(self) -> set[str]:
        out: set[str] = set()
        for s in self.subgraphs.values():
            out |= s.dims()
        return out

    def header(self) -> dict[str, Any]:
        """The JSON fields of the node besides its subgraphs' reports."""
        if self.op_type == "If":
            return {"branch": self.counted[0] if self.counted else None, "cond": self.cond}
        return {"trips": self.trips, "trips_source": self.trips_source or None}


def scale_cost(cost: Cost, k: int) -> Cost:
    """``cost`` repeated ``k`` times (every field of `Cost` scales)."""
    if k == 1:
        return cost
    return Cost(**{f.name: getattr(cost, f.name) * k for f in dataclasses.fields(cost)})


