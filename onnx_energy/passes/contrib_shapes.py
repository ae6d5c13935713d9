"""Output shapes of com.microsoft contrib ops (and ORT's extras in the ONNX domain).

ONNX shape inference knows nothing of contrib ops, so a graph exported with fused attention
or quantized matmuls loses every shape after the first one. `infer_contrib` fills a contrib
node's outputs during the shape pass's walk, so the standard nodes after it re-infer:

1. the op's shape rule (``ops.registry.SHAPES``, registered beside its cost rule in the
   family modules of ``ops/``) when there is one; symbolic dims are carried through where
   they pass unchanged;
2. otherwise onnxruntime's symbolic shape inference on the node alone (imported lazily,
   only when such a node is met).

It also gives the shapes of the few ONNX-domain ops ONNX cannot infer (GroupNormalization
and MeanVarianceNormalization are functions without an inference function), which have
shape rules too.

The blocked (``com.microsoft.nchwc``) and channels-last (``com.ms.internal.nhwc``) kernels
onnxruntime writes into optimised models are handled the same way, by their shape rules.

`handles` is the cheap test the shape pass runs on unresolved nodes only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..dtypes import elem_type
from ..graph import MAX_DIM, Node, TensorInfo, tensor_info_from_value_info
from ..ops.base import NodeFacts
from ..ops.helpers import MS, NCHWC, NHWC
from ..ops.registry import SHAPES, ShapeOut, load_rules

#: Largest constant handed to onnxruntime's inference as an initializer.
MAX_FALLBACK_VALUE = 4096


def handles(node: Node) -> bool:
    """Whether `infer_contrib` should try ``node`` (contrib domain, or an op with a rule)."""
    if node.domain in (MS, NCHWC, NHWC):
        return True
    load_rules()
    return SHAPES.get(node.domain, node.op_type) is not None


# ------------------------------------------------------------------------- the entry point


def infer_contrib(
    node: Node,
    tensors: dict[str, TensorInfo],
    values: Mapping[str, np.ndarray],
    opsets: Mapping[str, int],
) -> None:
    """Fill ``node``'s unresolved outputs in ``tensors`` from a rule or onnxruntime."""
    infos = tuple(tensors.get(x) if x else None for x in node.inputs)
    declared = tuple(tensors.get(x) if x else None for x in node.outputs)
    outs: Sequence[ShapeOut | None] | None = None
    rule = SHAPES.get(node.domain, node.op_type)
    try:
        if rule is not None:
            outs = rule(NodeFacts(node, infos, declared, values=values))
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        outs = None
    if not outs or all(o is None or o[0] is None for o in outs):
        outs = _ort_outputs(node, infos, values, opsets)
    for name, out in zip(node.outputs, outs or (), strict=False):
        if not name or out is None or out[0] is None:
            continue
        shape, dtype = out
        if shape is None or any(isinstance(d, int) and (d < 0 or d > MAX_DIM) for d in shape):
            continue
        old = tensors.get(name)
        if old is not None and old.is_static:
            continue
        tensors[name] = TensorInfo(name, tuple(shape), dtype or (old.dtype if old else ""))


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _symbolic_infer(cls: type, model: onnx.ModelProto) -> onnx.ModelProto | None:
    """``SymbolicShapeInference.infer_shapes`` without its side effect: where inference stays
    incomplete, onnxruntime's version saves ``sym_shape_infer_temp.onnx`` (plus external
    data) in the current directory before raising; here it is None instead."""
    sym = cls(2**31 - 1, True, False, 0)  # int_max, auto_merge, guess_output_rank, verbose
    sym._preprocess(model)
    complete = False
    while sym.run_:
        complete = sym._infer_impl()
    sym._update_output_from_vi()
    return sym.out_mp_ if complete else None


def _ort_outputs(
    node: Node,
    infos: Sequence[TensorInfo | None],
    values: Mapping[str, np.ndarray],
    opsets: Mapping[str, int],
) -> list[ShapeOut | None] | None:
    """onnxruntime's symbolic shape inference on a one-node model; None when unavailable."""
    if any(x and (info is None or info.shape is None) for x, info in zip(node.inputs, infos,
                                                                          strict=False)):
        return None
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except Exception:
        return None
    graph_inputs: list[onnx.ValueInfoProto] = []
    inits: list[onnx.TensorProto] = []
    for name, info in zip(node.inputs, infos, strict=False):
        if not name or info is None or name in {i.name for i in graph_inputs}:
            continue
        v = values.get(name)
        if v is not None and v.size <= MAX_FALLBACK_VALUE:
            inits.append(numpy_helper.from_array(np.asarray(v), name))
        shape = [d if isinstance(d, int | str) else None for d in info.shape or ()]
        graph_inputs.append(helper.make_tensor_value_info(name, elem_type(info.dtype), shape))
    outputs = [helper.make_empty_tensor_value_info(o) for o in node.outputs if o]
    graph = helper.make_graph([node.proto], "contrib", graph_inputs, outputs, inits)
    opset_ids = [helper.make_opsetid(d, v) for d, v in opsets.items()]
    if MS not in opsets:
        opset_ids.append(helper.make_opsetid(MS, 1))
    model = helper.make_model(graph, opset_imports=opset_ids)
    try:
        with _quiet("onnxruntime.tools.symbolic_shape_infer"), np.errstate(all="ignore"):
            inferred = _symbolic_infer(SymbolicShapeInference, model)
    except Exception:
        return None
    if inferred is None:
        return None
    found = {vi.name: vi for vi in (*inferred.graph.value_info, *inferred.graph.output)}
    symbols = {d for info in infos if info is not None and info.shape
               for d in info.shape if isinstance(d, str)}
    outs: list[ShapeOut | None] = []
    for name in node.outputs:
        vi = found.get(name) if name else None
        if vi is None or not vi.type.HasField("tensor_type"):
            outs.append(None)
            continue
        info = tensor_info_from_value_info(vi)
        if info.shape is None:
            outs.append(None)
            continue
        # ORT names unknown dims "unk__N" and derived ones "a+b": only ints and the inputs'
        # own symbols are kept.
        kept = tuple(d if isinstance(d, int) or d in symbols else None for d in info.shape)
        outs.append((kept, info.dtype))
    return outs
