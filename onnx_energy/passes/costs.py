"""MAC/FLOP pass: apply each node's registered cost rule to its static facts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ..graph import NON_TENSOR, Node, TensorInfo
from ..ops.base import Cost, NodeFacts, ShapeUnknownError
from ..ops.registry import lookup
from .results import NodeCost, ShapedGraph, Status, counts_as_param

__all__ = ["ABSURD_REASON", "NodeCost", "absurd_cost", "buffer_names", "cost_nodes",
           "counts_as_param"]

#: A node counting more operations than this (about 1e30) has hostile shapes or attributes.
MAX_COUNT = 2**100
ABSURD_REASON = "a negative count or more than 1e30 operations: absurd shapes or attributes"


#: Ops that read only their input's shape: no data bytes read.
METADATA_ONLY = frozenset({"Shape", "Size"})

def absurd_cost(cost: Cost) -> bool:
    """Negative counts, or counts past MAX_COUNT (where floats would overflow downstream)."""
    return any(not 0 <= v <= MAX_COUNT for v in (cost.macs, cost.flops, cost.bias))


#: Inputs that hold running statistics (buffers), not learnable parameters. torchvision counts
#: ``model.parameters()`` only, so BatchNormalization's running mean and variance are excluded.
BUFFER_INPUTS: dict[tuple[str, str], tuple[int, ...]] = {("", "BatchNormalization"): (3, 4)}


def buffer_names(nodes: Iterable[Node]) -> set[str]:
    """Tensors read only as buffers (e.g. BatchNormalization mean/var), never as weights."""
    buffers: set[str] = set()
    other: set[str] = set()
    for node in nodes:
        slots = BUFFER_INPUTS.get((node.domain, node.op_type), ())
        if not slots:  # most nodes: every input is an ordinary read
            other.update(node.inputs)
            continue
        for i, name in enumerate(node.inputs):
            (buffers if i in slots else other).add(name)
    return buffers - other


def cost_nodes(
    shaped: ShapedGraph, weights: Mapping[str, TensorInfo], opsets: Mapping[str, int],
    hidden: frozenset[str] = frozenset(),
) -> list[NodeCost]:
    """Cost every node of a shaped graph, in topological order.

    ``hidden`` names values the rules must not see (those read from external data: a cost
    never depends on whether the weight file is present).

    If/Loop/Scan nodes come out unresolved here; the pipeline replaces their cost by their
    analysed subgraphs' (control_flow.apply_control_flow).
    """
    buffers = buffer_names(shaped.nodes)
    params = {k: v for k, v in weights.items() if k not in buffers}
    values = shaped.values
    if hidden:
        values = {k: v for k, v in values.items() if k not in hidden}
    return [_cost_node(node, shaped.tensors, values, params,
                       opsets.get(node.domain, opsets.get("", 0)))
            for node in shaped.nodes]


def _info(name: str, tensors: Mapping[str, TensorInfo]) -> TensorInfo:
    return tensors.get(name) or TensorInfo(name, None, "")


def _cost_node(
    node: Node,
    tensors: Mapping[str, TensorInfo],
    values: Mapping[str, np.ndarray],
    weights: Mapping[str, TensorInfo],
    opset: int,
) -> NodeCost:
    # Looked up once: the rule's facts keep None for omitted ("") names, the lists drop them.
    in_facts = tuple(_info(x, tensors) if x else None for x in node.inputs)
    out_facts = tuple(_info(o, tensors) if o else None for o in node.outputs)
    inputs = [t for t in in_facts if t is not None]
    outputs = [t for t in out_facts if t is not None]
    params = 0 if weights.keys().isdisjoint(node.inputs) else sum(
        weights[x].numel for x in set(node.inputs)
        if x in weights and counts_as_param(weights[x]) and weights[x].is_static
    )
    # Shape/Size read their input's shape, never its data (nor need its dims to be known);
    # maps have no shape and count no bytes.
    read = () if node.domain == "" and node.op_type in METADATA_ONLY else [
        t for t in inputs if t.dtype not in NON_TENSOR]
    written = [t for t in outputs if t.dtype not in NON_TENSOR]
    static = all(t.is_static for t in read) and all(t.is_static for t in written)
    bytes_read = sum(t.nbytes for t in read) if static else None
    bytes_written = sum(t.nbytes for t in written) if static else None
    rule = lookup(node.domain, node.op_type)
    if rule is None:
        return NodeCost(node, inputs, outputs, None, Status.UNSUPPORTED, "", params,
                        bytes_read, bytes_written, "no cost rule for this op")
    facts = NodeFacts(
        node=node,
        inputs=in_facts,
        outputs=out_facts,
        values=values,
        opset=opset,
    )
    try:
        cost = rule.cost(facts)
    except ShapeUnknownError:
        return NodeCost(node, inputs, outputs, None, Status.UNRESOLVED, rule.kind, params,
                        bytes_read, bytes_written, "shape unknown")
    except Exception as exc:  # hostile attributes or shapes: unresolved, never a crash
        return NodeCost(node, inputs, outputs, None, Status.UNRESOLVED, rule.kind, params,
                        bytes_read, bytes_written,
                        f"attributes or shapes do not fit: {type(exc).__name__}: {exc}"[:300])
    if absurd_cost(cost):
        return NodeCost(node, inputs, outputs, None, Status.UNRESOLVED, rule.kind, params,
                        bytes_read, bytes_written, ABSURD_REASON)
    if not static:
        # The rule did not need the unknown shapes, but the bytes are still unknown.
        return NodeCost(node, inputs, outputs, cost, Status.UNRESOLVED, rule.kind, params,
                        None, None, "shape unknown")
    return NodeCost(node, inputs, outputs, cost, Status.OK, rule.kind, params,
                    bytes_read, bytes_written)
