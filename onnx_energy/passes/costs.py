"""MAC/FLOP pass: apply each node's registered cost rule to its static facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..dtypes import INDEX_TYPES
from ..graph import Node, TensorInfo
from ..ops.registry import Cost, NodeFacts, ShapeUnknownError, lookup
from .shapes import ShapedGraph

STATUS_OK = "ok"
STATUS_UNSUPPORTED = "unsupported"
STATUS_UNRESOLVED = "unresolved"


@dataclass
class NodeCost:
    """A node, its tensors, and its cost (None when unsupported or unresolved)."""

    node: Node
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    cost: Cost | None
    status: str
    kind: str
    params: int
    bytes_read: int | None
    bytes_written: int | None
    reason: str = ""


def counts_as_param(info: TensorInfo) -> bool:
    """Weights are initializers of any dtype but the index/shape types (int32/int64) and bool."""
    return info.dtype not in INDEX_TYPES and info.dtype != "bool"


def cost_nodes(
    shaped: ShapedGraph, weights: Mapping[str, TensorInfo], opsets: Mapping[str, int]
) -> list[NodeCost]:
    """Cost every node of a shaped graph, in topological order."""
    results = []
    for node in shaped.nodes:
        results.append(_cost_node(node, shaped.tensors, shaped.values, weights,
                                  opsets.get(node.domain, opsets.get("", 0))))
    return results


def _info(name: str, tensors: Mapping[str, TensorInfo]) -> TensorInfo:
    return tensors.get(name) or TensorInfo(name, None, "")


def _cost_node(
    node: Node,
    tensors: Mapping[str, TensorInfo],
    values: Mapping[str, np.ndarray],
    weights: Mapping[str, TensorInfo],
    opset: int,
) -> NodeCost:
    inputs = [_info(x, tensors) for x in node.inputs if x]
    outputs = [_info(o, tensors) for o in node.outputs if o]
    params = sum(
        weights[x].numel for x in set(node.inputs)
        if x in weights and counts_as_param(weights[x]) and weights[x].is_static
    )
    static = all(t.is_static for t in inputs) and all(t.is_static for t in outputs)
    bytes_read = sum(t.nbytes for t in inputs) if static else None
    bytes_written = sum(t.nbytes for t in outputs) if static else None
    rule = lookup(node.domain, node.op_type)
    if rule is None:
        return NodeCost(node, inputs, outputs, None, STATUS_UNSUPPORTED, "", params,
                        bytes_read, bytes_written, "no cost rule for this op")
    facts = NodeFacts(
        node=node,
        inputs=tuple(_info(x, tensors) if x else None for x in node.inputs),
        outputs=tuple(_info(o, tensors) if o else None for o in node.outputs),
        values=values,
        opset=opset,
    )
    try:
        cost = rule.cost(facts)
    except ShapeUnknownError:
        return NodeCost(node, inputs, outputs, None, STATUS_UNRESOLVED, rule.kind, params,
                        bytes_read, bytes_written, "shape unknown")
    except (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError) as exc:
        return NodeCost(node, inputs, outputs, None, STATUS_UNRESOLVED, rule.kind, params,
                        bytes_read, bytes_written, f"attributes or shapes do not fit: {exc}")
    if not static:
        # The rule did not need the unknown shapes, but the bytes are still unknown.
        return NodeCost(node, inputs, outputs, cost, STATUS_UNRESOLVED, rule.kind, params,
                        None, None, "shape unknown")
    return NodeCost(node, inputs, outputs, cost, STATUS_OK, rule.kind, params,
                    bytes_read, bytes_written)
