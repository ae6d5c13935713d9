"""Shape inference pass: ONNX inference with data propagation, then a per-node completion.

ONNX infers the whole graph once. Where an output stays unknown (its shape flows through a
shape subgraph ONNX cannot evaluate), a topological walk evaluates shape subgraphs with
`fold` and re-infers the node alone with the now-known input shapes and values.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..dtypes import elem_type
from ..errors import InvalidGraphError
from ..graph import (
    MAX_DIM,
    LoadedModel,
    Node,
    TensorInfo,
    constant_value,
    tensor_info_from_value_info,
)
from .fold import MAX_FOLD_ELEMENTS, fold_node


@dataclass
class ShapedGraph:
    """The result of shape inference: nodes in topological order and every tensor's facts."""

    nodes: list[Node]
    tensors: dict[str, TensorInfo]
    values: dict[str, np.ndarray] = field(default_factory=dict)


def infer_shapes(model: LoadedModel) -> ShapedGraph:
    """Run ONNX shape inference plus the completion walk; the model must be bound already."""
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
        if info.shape is not None or vi.name not in tensors:
            tensors[vi.name] = info
    values: dict[str, np.ndarray] = {}
    for t in graph.initializer:
        v = constant_value(t)
        if v is not None:
            values[t.name] = v
            tensors[t.name] = TensorInfo(t.name, tuple(v.shape), tensors[t.name].dtype)
    nodes = topological_nodes(graph, set(tensors) | {vi.name for vi in graph.input})
    _complete(nodes, tensors, values, model.opsets)
    return ShapedGraph(nodes=nodes, tensors=tensors, values=values)


def topological_nodes(graph: onnx.GraphProto, available: set[str]) -> list[Node]:
    """The graph's nodes in topological order; refuses cycles and dangling inputs."""
    protos = list(graph.node)
    producer: dict[str, int] = {}
    for i, p in enumerate(protos):
        for out in p.output:
            if out:
                producer[out] = i
    nodes = [Node.from_proto(p, i) for i, p in enumerate(protos)]
    for n in nodes:
        for name in n.inputs:
            if name and name not in producer and name not in available:
                raise InvalidGraphError(
                    f"node {n.name!r} ({n.op_type}) reads {name!r}, which no node, input or "
                    "initializer defines"
                )
    if _in_order(nodes, available, producer):
        return nodes
    # Kahn's algorithm over producer -> consumer edges, stable in file order.
    consumers: dict[int, list[int]] = {}
    indegree = [0] * len(nodes)
    for i, n in enumerate(nodes):
        for src in {producer[x] for x in n.inputs if x in producer and x not in available}:
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


def _in_order(nodes: list[Node], available: set[str], producer: dict[str, int]) -> bool:
    seen = set(available)
    for n in nodes:
        if any(x and x in producer and x not in seen for x in n.inputs):
            return False
        seen.update(n.outputs)
    return True


#: Inputs whose values cost rules read (e.g. Pow's exponent), so they are folded too.
VALUE_INPUTS_READ_BY_RULES: dict[str, tuple[int, ...]] = {"Pow": (1,)}


def _complete(
    nodes: list[Node],
    tensors: dict[str, TensorInfo],
    values: dict[str, np.ndarray],
    opsets: dict[str, int],
) -> None:
    opset_imports = [helper.make_opsetid(d, v) for d, v in opsets.items()]
    default_opset = opsets.get("", 1)
    needed = _needed_values(nodes, tensors)
    with np.errstate(all="ignore"):
        for node in nodes:
            outs = [tensors.get(o) for o in node.outputs if o]
            resolved = all(o is not None and o.is_static for o in outs)
            if not resolved or any(o in needed for o in node.outputs):
                _fold(node, [tensors.get(x) if x else None for x in node.inputs], tensors, values)
            if resolved:
                continue
            outs = [tensors.get(o) for o in node.outputs if o]
            if all(o is not None and o.is_static for o in outs):
                continue
            if node.domain != "" or any(
                not x or x not in tensors or not tensors[x].is_static for x in node.inputs if x
            ):
                continue
            _reinfer(node, tensors, values, opset_imports, default_opset)


def _needed_values(nodes: list[Node], tensors: dict[str, TensorInfo]) -> set[str]:
    """Tensors whose values may matter: the backward cone of every node ONNX left unresolved."""
    needed: set[str] = set()
    for node in reversed(nodes):
        unresolved = any(
            o and (o not in tensors or not tensors[o].is_static) for o in node.outputs
        )
        if unresolved or any(o in needed for o in node.outputs):
            needed.update(x for x in node.inputs if x)
        for i in VALUE_INPUTS_READ_BY_RULES.get(node.op_type, ()):
            if i < len(node.inputs) and node.inputs[i]:
                needed.add(node.inputs[i])
    return needed


def _fold(
    node: Node,
    in_infos: list[TensorInfo | None],
    tensors: dict[str, TensorInfo],
    values: dict[str, np.ndarray],
) -> None:
    if node.domain != "":
        return
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
    in_values = [values.get(x) if x else None for x in node.inputs]
    if node.op_type != "Constant" and any(
        x and v is None for x, v in zip(node.inputs, in_values, strict=True)
    ):
        return
    outs = fold_node(node, in_values)
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
    tensors[name] = TensorInfo(name, tuple(int(d) for d in value.shape), dtype)


def _np_dtype_name(value: np.ndarray) -> str:
    try:
        from ..dtypes import dtype_name

        return dtype_name(helper.np_dtype_to_tensor_dtype(value.dtype))
    except Exception:
        return ""


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
        types[x] = helper.make_tensor_type_proto(elem_type(info.dtype), info.shape)
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
        info = tensor_info_from_value_info(helper.make_value_info(name, tp))
        if info.shape is not None and any(
            isinstance(d, int) and (d < 0 or d > MAX_DIM) for d in info.shape
        ):
            raise InvalidGraphError(
                f"node {node.name!r} ({node.op_type}) infers an invalid shape {info.shape} "
                f"for {name!r}"
            )
        old = tensors.get(name)
        if old is None or not old.is_static or info.is_static:
            tensors[name] = info
