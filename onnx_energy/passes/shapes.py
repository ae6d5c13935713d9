"""Shape inference pass: ONNX inference with data propagation, then a per-node completion.

ONNX infers the whole graph once. Where an output stays unknown (its shape flows through a
shape subgraph ONNX cannot evaluate), a topological walk evaluates shape subgraphs with
`fold` and re-infers the node alone with the now-known input shapes and values.
"""

from __future__ import annotations

import functools
import heapq
from typing import Protocol

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..dtypes import dtype_name, elem_type
from ..errors import InvalidGraphError
from ..graph import (
    LoadedModel,
    Node,
    TensorInfo,
    constant_value,
    shape_text,
    tensor_info_from_type_proto,
    tensor_info_from_value_info,
    valid_shape,
)
from ..ops.helpers import NCHWC
from ..ops.nchwc import reorder_hints
from . import contrib_shapes
from .fold import MAX_FOLD_ELEMENTS, fold_node, foldable_ops
from .results import ControlFlowResult, ShapedGraph
from .subgraphs import CONTROL_FLOW_OPS, implicit_inputs


class SubgraphHook(Protocol):
    """What the walk calls at If/Loop/Scan nodes (control_flow.ControlFlow): it analyses the
    node's subgraphs and fills in the node's outputs."""

    results: dict[tuple[str, tuple[str, ...]], ControlFlowResult]

    def infer(self, node: Node, tensors: dict[str, TensorInfo],
              values: dict[str, np.ndarray]) -> None: ...


def infer_shapes(model: LoadedModel, flow: SubgraphHook | None = None) -> ShapedGraph:
    """Run ONNX shape inference plus the completion walk; the model must be bound already.

    ``flow`` analyses the subgraphs of control-flow nodes (the pipeline passes one); without
    it their outputs stay as ONNX inferred them.
    """
    graph = model.proto.graph
    try:
        inferred = onnx.shape_inference.infer_shapes(
            model.proto, check_type=False, strict_mode=False, data_prop=True
        ).graph
    except Exception:  # ONNX gave up on the whole graph; the per-node walk still runs
        inferred = graph
    tensors: dict[str, TensorInfo] = dict(model.weights)
    for vi in (*inferred.input, *inferred.value_info, *inferred.output):
        info = tensor_info_from_value_info(vi)
        if not valid_shape(info.shape):
            raise InvalidGraphError(
                f"tensor {vi.name!r} has an invalid shape {shape_text(info.shape)}")
        if info.shape is not None or vi.name not in tensors:
            tensors[vi.name] = info
    inferred = vi = None  # type: ignore[assignment]  # free ONNX's copy of the graph now
    values: dict[str, np.ndarray] = {}
    for t in graph.initializer:
        v = constant_value(t)
        if v is not None:
            values[t.name] = v
            tensors[t.name] = TensorInfo(t.name, tuple(v.shape), tensors[t.name].dtype)
    # Only inputs and initializers exist before any node runs (not outputs or value_info
    # names, which would hide a cycle through a graph output).
    defined = set(model.weights) | {t.name for t in graph.initializer}
    nodes = topological_nodes(graph, defined | {vi.name for vi in graph.input})
    _declare_nchwc_padding(nodes, tensors)
    _complete(nodes, tensors, values, model.opsets, flow)
    return ShapedGraph(nodes=nodes, tensors=tensors, values=values,
                       control=flow.results if flow is not None else {})


def _declare_nchwc_padding(nodes: list[Node], tensors: dict[str, TensorInfo]) -> None:
    """Declare the padded channel count of each ReorderInput output that an nchwc Conv
    consumes (its weight shows the count); the ReorderInput shape rule reads it."""
    if not any(n.domain == NCHWC for n in nodes):
        return
    for name, channels in reorder_hints(nodes, tensors).items():
        old = tensors.get(name)
        if old is None or not old.is_static:
            tensors[name] = TensorInfo(name, (None, channels, None, None),
                                       old.dtype if old is not None else "")


def topological_nodes(graph: onnx.GraphProto, available: set[str]) -> list[Node]:
    """The graph's nodes in topological order; refuses cycles and dangling inputs."""
    protos = list(graph.node)
    producer: dict[str, int] = {}
    for i, p in enumerate(protos):
        for out in p.output[:]:  # (a list slice: one call, faster than iterating upb)
            if out:
                if out in producer or out in available:  # not single static assignment
                    raise InvalidGraphError(
                        f"tensor {out!r} is defined twice (node {p.name or p.op_type!r})")
                producer[out] = i
    for vi in graph.output:
        if vi.name not in producer and vi.name not in available:
            raise InvalidGraphError(
                f"graph output {vi.name!r} is not produced by any node, input or initializer")
    nodes = [Node.from_proto(p, i) for i, p in enumerate(protos)]
    reads = [_reads(n) for n in nodes]  # inputs plus the outer names subgraphs read
    for n, names in zip(nodes, reads, strict=True):
        for name in names:
            if name and name not in producer and name not in available:
                raise InvalidGraphError(
                    f"node {n.name!r} ({n.op_type}) reads {name!r}, which no node, input or "
                    "initializer defines"
                )
    if _in_order(reads, nodes, available, producer):
        return nodes
    # Kahn's algorithm over producer -> consumer edges, stable in file order.
    consumers: dict[int, list[int]] = {}
    indegree = [0] * len(nodes)
    for i, names in enumerate(reads):
        for src in {producer[x] for x in names if x in producer and x not in available}:
            consumers.setdefault(src, []).append(i)
            indegree[i] += 1
    ready = [i for i, d in enumerate(indegree) if d == 0]
    order: list[Node] = []
    while ready:
        i = heapq.heappop(ready) if len(ready) > 1 else ready.pop()
        order.append(nodes[i])
        for j in consumers.get(i, ()):
            indegree[j] -= 1
            if indegree[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        stuck = next(n for i, n in enumerate(nodes) if indegree[i] > 0)
        raise InvalidGraphError(f"the graph has a cycle through node {stuck.name!r}")
    return order


def _in_order(
    reads: list[tuple[str, ...]], nodes: list[Node], available: set[str],
    producer: dict[str, int],
) -> bool:
    seen = set(available)
    for names, n in zip(reads, nodes, strict=True):
        if any(x and x in producer and x not in seen for x in names):
            return False
        seen.update(n.outputs)
    return True


def _reads(node: Node) -> tuple[str, ...]:
    """A node's inputs, plus for a node with subgraphs the outer names they read."""
    graph = onnx.GraphProto
    for v in node.attrs.values():
        if type(v) is graph or (type(v) is list and v and type(v[0]) is graph):
            return node.inputs + tuple(sorted(implicit_inputs(node.proto) - set(node.inputs)))
    return node.inputs


#: Inputs whose values cost rules read (e.g. Pow's exponent), so they are folded too.
VALUE_INPUTS_READ_BY_RULES: dict[str, tuple[int, ...]] = {
    "Pow": (1,),
    # KV-cache lengths of the attention family, transform lengths, NMS's box limit.
    "Attention": (6,), "MultiHeadAttention": (8,), "DecoderMaskedMultiHeadAttention": (7,),
    "GroupQueryAttention": (6,), "DFT": (1, 2), "STFT": (3,), "NonMaxSuppression": (2,),
    "DecoderMaskedSelfAttention": (6,), "SparseAttention": (7,),
    # query and key lengths give RelativePositionBias its output shape.
    "RelativePositionBias": (1, 2),
    "MatMulFpQ4": (2,),  # the packed weight's logical (K, N)
}


def _complete(
    nodes: list[Node],
    tensors: dict[str, TensorInfo],
    values: dict[str, np.ndarray],
    opsets: dict[str, int],
    flow: SubgraphHook | None = None,
) -> None:
    opset_imports = [helper.make_opsetid(d, v) for d, v in opsets.items()]
    default_opset = opsets.get("", 1)
    needed = _needed_values(nodes, tensors)
    with np.errstate(all="ignore"):
        for node in nodes:
            if flow is not None and node.domain == "" and node.op_type in CONTROL_FLOW_OPS:
                flow.infer(node, tensors, values)  # subgraphs analysed, outputs filled in
                continue
            resolved = _all_static(node.outputs, tensors)
            if (not resolved or not needed.isdisjoint(node.outputs)) and _foldable(node):
                _fold(node, [tensors.get(x) if x else None for x in node.inputs], tensors, values)
            if resolved:
                continue
            if _all_static(node.outputs, tensors):
                continue
            if contrib_shapes.handles(node):
                contrib_shapes.infer_contrib(node, tensors, values, opsets)
                continue
            if node.domain != "" or not _all_static(node.inputs, tensors):
                continue
            _reinfer(node, tensors, values, opset_imports, default_opset)


def _all_static(names: tuple[str, ...], tensors: dict[str, TensorInfo]) -> bool:
    """Whether every named (non-empty) tensor has a static shape; a plain loop (hot path)."""
    for name in names:
        if name:
            info = tensors.get(name)
            if info is None or not info.is_static:
                return False
    return True


def _foldable(node: Node) -> bool:
    """Whether `_fold` can evaluate anything for this node."""
    return node.domain == "" and (node.op_type in ("Shape", "Size")
                                  or node.op_type in foldable_ops())


def _needed_values(nodes: list[Node], tensors: dict[str, TensorInfo]) -> set[str]:
    """Tensors whose values may matter: the backward cone of every node ONNX left unresolved.

    The cone stops at tensors known to be larger than the fold limit (their values are never
    materialised, so what produced them cannot matter) and at Shape/Size, which read only
    their input's shape: without this, it would climb every activation chain to the inputs.
    """
    needed: set[str] = set()
    for node in reversed(nodes):
        if node.domain == "" and node.op_type in ("Shape", "Size"):
            pass
        elif not needed.isdisjoint(node.outputs) or not _all_static(node.outputs, tensors):
            needed.update(x for x in node.inputs if x and _may_fold(tensors.get(x)))
        if node.domain == "" and node.op_type in CONTROL_FLOW_OPS:
            needed.update(x for x in _reads(node) if x)  # trip counts, outer shape constants
        for i in VALUE_INPUTS_READ_BY_RULES.get(node.op_type, ()):
            if i < len(node.inputs) and node.inputs[i]:
                needed.add(node.inputs[i])
    return needed


def _may_fold(info: TensorInfo | None) -> bool:
    return info is None or not info.is_static or info.numel <= MAX_FOLD_ELEMENTS


def _fold(
    node: Node,
    in_infos: list[TensorInfo | None],
    tensors: dict[str, TensorInfo],
    values: dict[str, np.ndarray],
) -> None:
    if not _foldable(node):
        return  # nothing to evaluate (fold_node would give None)
    if node.op_type in ("Shape", "Size"):
        src = in_infos[0] if in_infos else None
        if src is None or not src.is_static:
            return
        shape = np.array(src.shape, dtype=np.int64)
        if node.op_type == "Size":
            out = np.array(int(np.prod(shape)), dtype=np.int64)
        else:
            # Python slicing clamps exactly as ONNX Shape's start/end do.
            out = shape[int(node.attrs.get("start", 0)):int(node.attrs.get("end", len(shape)))]
        _set_value(node.outputs[0], out, tensors, values)
        return
    if node.op_type != "Constant" and any(x and x not in values for x in node.inputs):
        return
    outs = fold_node(node, values)
    if outs is None:
        return
    for name, val in zip(node.outputs, outs, strict=False):
        if name:
            _set_value(name, val, tensors, values)


def _set_value(
    name: str, value: np.ndarray, tensors: dict[str, TensorInfo], values: dict[str, np.ndarray]
) -> None:
    values[name] = value
    old = tensors.get(name)
    dtype = old.dtype if old is not None and old.dtype else _np_dtype_name(value)
    tensors[name] = TensorInfo(name, value.shape, dtype)  # numpy shapes are tuples of ints


def _np_dtype_name(value: np.ndarray) -> str:
    try:
        return dtype_name(helper.np_dtype_to_tensor_dtype(value.dtype))
    except Exception:
        return ""


@functools.lru_cache(maxsize=4096)
def _type_proto(elem: int, shape: tuple[int | str | None, ...] | None) -> onnx.TypeProto:
    """`helper.make_tensor_type_proto`, built once per (dtype, shape): ONNX only reads it."""
    return helper.make_tensor_type_proto(elem, shape)


def _reinfer(
    node: Node,
    tensors: dict[str, TensorInfo],
    values: dict[str, np.ndarray],
    opset_imports: list[onnx.OperatorSetIdProto],
    default_opset: int,
) -> None:
    try:
        schema = onnx.defs.get_schema(node.op_type, default_opset, "")
    except onnx.defs.SchemaError:
        return
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for a in node.proto.attribute):
        return
    types = {}
    data: dict[str, TensorProto] = {}
    for x in node.inputs:
        if not x:
            continue
        info = tensors[x]
        shape = None if info.shape is None else tuple(info.shape)  # hashable for the cache
        types[x] = _type_proto(elem_type(info.dtype), shape)
        v = values.get(x)
        if v is not None and v.size <= MAX_FOLD_ELEMENTS:
            data[x] = numpy_helper.from_array(v, x)
    try:
        result = onnx.shape_inference.infer_node_outputs(
            schema, node.proto, types, data, opset_imports=opset_imports
        )
    except Exception:  # a node ONNX cannot infer stays unresolved and is reported
        return
    for name, tp in result.items():
        info = tensor_info_from_type_proto(name, tp)
        if not valid_shape(info.shape):
            raise InvalidGraphError(
                f"node {node.name!r} ({node.op_type}) infers an invalid shape {info.shape} "
                f"for {name!r}"
            )
        old = tensors.get(name)
        if old is None or not old.is_static or info.is_static:
            tensors[name] = info
