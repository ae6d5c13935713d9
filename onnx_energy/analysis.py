"""`analyze()`: load a model, run the passes, and return typed per-node and total costs."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from onnx import ModelProto

from .graph import TensorInfo, bind_dims, load_model
from .ops.registry import ZERO_BOPS, BasicOps, Cost
from .passes.costs import STATUS_OK, STATUS_UNRESOLVED, STATUS_UNSUPPORTED, NodeCost, cost_nodes
from .passes.costs import counts_as_param as _counts_as_param
from .passes.shapes import infer_shapes

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


def op_key(domain: str, op_type: str) -> str:
    """How an op type is named in reports: bare for the ONNX domain, ``domain::Op`` otherwise."""
    return op_type if domain == "" else f"{domain}::{op_type}"


@dataclass
class NodeResult:
    """One node's analysis. Cost fields are None when unsupported or unresolved."""

    name: str
    op_type: str
    domain: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    status: str
    kind: str
    macs: int | float | None
    flops: int | None
    params: int
    bytes_read: int | None
    bytes_written: int | None
    bops: BasicOps | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "domain": self.domain,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "status": self.status,
            "macs": self.macs,
            "flops": self.flops,
            "params": self.params,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "bops": None if self.bops is None else self.bops.to_dict(),
        }


@dataclass
class OpTypeSummary:
    count: int = 0
    macs: int | float = 0
    flops: int = 0
    params: int = 0
    bops: BasicOps = ZERO_BOPS

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "macs": self.macs, "flops": self.flops,
                "params": self.params, "bops": self.bops.to_dict()}


@dataclass
class Totals:
    macs: int | float = 0
    flops: int = 0
    params: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    bops: BasicOps = ZERO_BOPS
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"macs": self.macs, "flops": self.flops, "params": self.params,
                "bytes_read": self.bytes_read, "bytes_written": self.bytes_written,
                "bops": self.bops.to_dict(), "complete": self.complete}


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "convention": self.convention,
            "bindings": dict(self.bindings),
            "unbound_dims": list(self.unbound_dims),
            "inputs": [t.to_dict() for t in self.inputs],
            "nodes": [n.to_dict() for n in self.nodes],
            "by_op_type": {k: v.to_dict() for k, v in self.by_op_type.items()},
            "totals": self.totals.to_dict(),
            "unsupported": dict(self.unsupported),
            "unresolved": [u.to_dict() for u in self.unresolved],
        }


def analyze(
    model: str | os.PathLike[str] | ModelProto,
    *,
    dims: Mapping[str, int] | None = None,
    batch_size: int | None = None,
    convention: str = "dot",
) -> Analysis:
    """Analyse an ONNX model (a path or a ModelProto) without reading its weights.

    ``dims`` binds symbolic dimensions by name, ``batch_size`` the symbolic leading dim of
    every graph input; ``convention`` is ``dot`` (default) or ``seed`` (see `convention_macs`).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    loaded = load_model(model)
    bindings = bind_dims(loaded, dims, batch_size)
    shaped = infer_shapes(loaded)
    costs = cost_nodes(shaped, loaded.weights, loaded.opsets)
    label = str(loaded.path) if loaded.path is not None else (loaded.proto.graph.name or "model")
    inputs = [shaped.tensors.get(n) or TensorInfo(n, None, "") for n in loaded.input_names]
    unbound = loaded.symbolic_input_dims()
    return summarize(label, convention, inputs, costs, loaded.weights, bindings, unbound)


def summarize(
    label: str,
    convention: str,
    inputs: list[TensorInfo],
    costs: list[NodeCost],
    weights: Mapping[str, TensorInfo],
    bindings: Mapping[str, int],
    unbound: list[str],
) -> Analysis:
    """Turn per-node costs into the report structure (per-op-type sums, totals, gaps)."""
    nodes: list[NodeResult] = []
    by_op: dict[str, OpTypeSummary] = {}
    unsupported: Counter[str] = Counter()
    unresolved: list[Unresolved] = []
    totals = Totals()
    for c in costs:
        key = op_key(c.node.domain, c.node.op_type)
        cost = c.cost
        macs = None if cost is None else convention_macs(cost, convention)
        nodes.append(NodeResult(
            name=c.node.name, op_type=c.node.op_type, domain=c.node.domain,
            inputs=c.inputs, outputs=c.outputs, status=c.status, kind=c.kind,
            macs=macs, flops=None if cost is None else cost.flops, params=c.params,
            bytes_read=c.bytes_read, bytes_written=c.bytes_written,
            bops=None if cost is None else cost.bops, reason=c.reason,
        ))
        summary = by_op.setdefault(key, OpTypeSummary())
        summary.count += 1
        summary.params += c.params
        if c.status == STATUS_UNSUPPORTED:
            unsupported[key] += 1
            totals.complete = False
        elif c.status == STATUS_UNRESOLVED:
            totals.complete = False
            dims = sorted({d for t in (*c.inputs, *c.outputs) for d in (t.shape or ())
                           if isinstance(d, str)})
            unresolved.append(Unresolved(c.node.name, key, c.reason, dims))
        if cost is not None:
            summary.macs += macs  # type: ignore[operator]
            summary.flops += cost.flops
            summary.bops = summary.bops + cost.bops
            totals.macs += macs  # type: ignore[operator]
            totals.flops += cost.flops
            totals.bops = totals.bops + cost.bops
        if c.status == STATUS_OK:
            totals.bytes_read += c.bytes_read or 0
            totals.bytes_written += c.bytes_written or 0
    totals.params = sum(w.numel for w in weights.values()
                        if _counts_as_param(w) and w.is_static)
    return Analysis(
        model=label, convention=convention, inputs=inputs, nodes=nodes, by_op_type=by_op,
        totals=totals, unsupported=dict(unsupported), unresolved=unresolved,
        bindings=dict(bindings), unbound_dims=[d for d in unbound if d not in bindings],
    )
