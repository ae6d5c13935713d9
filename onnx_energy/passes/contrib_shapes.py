"""Output shapes of com.microsoft contrib ops (and ORT's extras in the ONNX domain).

ONNX shape inference knows nothing of contrib ops, so a graph exported with fused attention
or quantized matmuls loses every shape after the first one. `infer_contrib` fills a contrib
node's outputs during the shape pass's walk, so the standard nodes after it re-infer:

1. a rule of this module when there is one (the ops onnx-energy costs: attention family,
   fused norms and gelus, fused matmuls and convs, quantized matmuls, ...); symbolic dims are
   carried through where they pass unchanged;
2. otherwise onnxruntime's symbolic shape inference on the node alone (imported lazily,
   only when such a node is met).

It also gives the shapes of the few ONNX-domain ops ONNX cannot infer (GroupNormalization
and MeanVarianceNormalization are functions without an inference function).

`handles` is the cheap test the shape pass runs on unresolved nodes only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..dtypes import elem_type
from ..graph import MAX_DIM, Node, TensorInfo, tensor_info_from_value_info

MS = "com.microsoft"
F32 = onnx.TensorProto.FLOAT
#: ONNX-domain ops ONNX cannot infer: ORT's registrations there (SimplifiedLayerNormalization,
#: LayerNormalization before opset 17) and the function ops without an inference function.
ONNX_DOMAIN_OPS = frozenset({"SimplifiedLayerNormalization", "LayerNormalization",
                             "GroupNormalization", "MeanVarianceNormalization"})
#: Largest constant handed to onnxruntime's inference as an initializer.
MAX_FALLBACK_VALUE = 4096

Dim = int | str | None
Shape = tuple[Dim, ...]
Out = tuple[Shape | None, str]


def handles(node: Node) -> bool:
    """Whether `infer_contrib` should try ``node`` (contrib domain or ORT's ONNX extras)."""
    return node.domain == MS or (node.domain == "" and node.op_type in ONNX_DOMAIN_OPS)


@dataclass(frozen=True)
class Ctx:
    node: Node
    infos: tuple[TensorInfo | None, ...]
    values: Mapping[str, np.ndarray]

    def has(self, i: int) -> bool:
        return i < len(self.node.inputs) and bool(self.node.inputs[i])

    def shape(self, i: int) -> Shape | None:
        info = self.infos[i] if i < len(self.infos) else None
        return None if info is None else info.shape

    def dtype(self, i: int) -> str:
        info = self.infos[i] if i < len(self.infos) else None
        return "" if info is None else info.dtype

    def attr(self, name: str, default=None):
        return self.node.attrs.get(name, default)

    def scalar(self, i: int) -> int | None:
        if not self.has(i):
            return None
        v = self.values.get(self.node.inputs[i])
        return None if v is None or v.size != 1 else int(v.reshape(-1)[0])


Rule = Callable[[Ctx], Sequence[Out | None]]
RULES: dict[tuple[str, str], Rule] = {}


def rule(*ops: str, domain: str = MS) -> Callable[[Rule], Rule]:
    def deco(fn: Rule) -> Rule:
        for op in ops:
            RULES[(domain, op)] = fn
        return fn

    return deco


# ------------------------------------------------------------------------ dim arithmetic


def _add(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if a == 0:
        return b
    return a if b == 0 else None


def _mul(a: Dim, b: Dim) -> Dim:
    return a * b if isinstance(a, int) and isinstance(b, int) else None


def _div(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int) and b and a % b == 0:
        return a // b
    return None


def _broadcast(*shapes: Shape | None) -> Shape | None:
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)  # type: ignore[arg-type]
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]  # type: ignore
        ints = {d for d in dims if isinstance(d, int) and d != 1}
        syms = [d for d in dims if not isinstance(d, int) or d != 1]
        if len(ints) > 1:
            return None
        if ints:
            out.append(next(iter(ints)))
        elif syms:
            out.append(syms[0] if all(d == syms[0] for d in syms) else None)
        else:
            out.append(1)
    return tuple(out)


def _matmul(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None or b is None or not a or not b:
        return None
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    batch = _broadcast(a2[:-2], b2[:-2])
    if batch is None:
        return None
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


# ----------------------------------------------------------------------------- the rules


@rule("GroupNormalization", "MeanVarianceNormalization", domain="")
@rule("Gelu", "FastGelu", "QuickGelu", "BiasGelu", "BiasAdd", "ScaledSiLU", "BiasSoftmax",
      "RotaryEmbedding", "GemmaRotaryEmbedding", "GroupNorm", "SkipGroupNorm", "QLinearSigmoid",
      "QLinearLeakyRelu", "QLinearSoftmax", "BiasDropout", "BitmaskBiasDropout", "Trilu")
def _same_as_input(c: Ctx) -> list[Out | None]:
    s, d = c.shape(0), c.dtype(0)
    outs: list[Out | None] = [(s, d)]
    if c.node.op_type in ("BiasDropout",) and len(c.node.outputs) > 1:
        outs.append((s, "bool"))
    elif c.node.op_type == "SkipGroupNorm" and len(c.node.outputs) > 1:
        outs.append((s, d))
    return outs


def _norm_outputs(c: Ctx, axis: int, n_extra_same: int = 0) -> list[Out | None]:
    s, d = c.shape(0), c.dtype(0)
    if s is None:
        return [(None, d)]
    axis %= max(len(s), 1)
    stats: Shape = (*s[:axis], *(1 for _ in s[axis:]))
    outs: list[Out | None] = [(s, d), (stats, "float32"), (stats, "float32")]
    outs += [(s, d)] * n_extra_same
    return outs


@rule("LayerNormalization", "SimplifiedLayerNormalization")
@rule("LayerNormalization", "SimplifiedLayerNormalization", domain="")
def _layer_norm(c: Ctx) -> list[Out | None]:
    return _norm_outputs(c, int(c.attr("axis", -1)))


@rule("SkipLayerNormalization", "SkipSimplifiedLayerNormalization")
def _skip_layer_norm(c: Ctx) -> list[Out | None]:
    return _norm_outputs(c, -1, n_extra_same=1)


@rule("BiasSplitGelu")
def _bias_split_gelu(c: Ctx) -> list[Out | None]:
    s = c.shape(0)
    return [(None if s is None else (*s[:-1], _div(s[-1], 2)), c.dtype(0))]


@rule("QuantizeLinear")
def _quantize(c: Ctx) -> list[Out | None]:
    return [(c.shape(0), c.dtype(2) if c.has(2) else "uint8")]


@rule("DequantizeLinear")
def _dequantize(c: Ctx) -> list[Out | None]:
    return [(c.shape(0), c.dtype(1))]


@rule("MatMulNBits", "MatMulBnb4")
def _matmul_nbits(c: Ctx) -> list[Out | None]:
    a, n = c.shape(0), int(c.attr("N", 0))
    return [(None if a is None or not n else (*a[:-1], n), c.dtype(0))]


@rule("MatMulIntegerToFloat", "DynamicQuantizeMatMul")
def _matmul_to_float(c: Ctx) -> list[Out | None]:
    return [(_matmul(c.shape(0), c.shape(1)), c.dtype(2))]


@rule("MatMulInteger16")
def _matmul_int16(c: Ctx) -> list[Out | None]:
    return [(_matmul(c.shape(0), c.shape(1)), "int32")]


def _fused_matmul_operand(s: Shape | None, trans: bool, trans_batch: bool) -> Shape | None:
    if s is None:
        return None
    if trans_batch and len(s) > 2:
        s = (*s[1:-1], s[0], s[-1])
    if trans and len(s) >= 2:
        s = (*s[:-2], s[-1], s[-2])
    return s


@rule("FusedMatMul", "TransposeMatMul", "FusedMatMulActivation")
def _fused_matmul(c: Ctx) -> list[Out | None]:
    a = _fused_matmul_operand(c.shape(0), bool(int(c.attr("transA", 0))),
                              bool(int(c.attr("transBatchA", 0))))
    b = _fused_matmul_operand(c.shape(1), bool(int(c.attr("transB", 0))),
                              bool(int(c.attr("transBatchB", 0))))
    return [(_matmul(a, b), c.dtype(0))]


@rule("GemmFastGelu")
def _gemm_fast_gelu(c: Ctx) -> list[Out | None]:
    x, w = c.shape(0), c.shape(1)
    return [(None if x is None or w is None else (*x[:-1], w[-1]), c.dtype(0))]


@rule("QGemm")
def _qgemm(c: Ctx) -> list[Out | None]:
    a, b = c.shape(0), c.shape(3)
    if a is None or b is None:
        return [None]
    m = a[1] if int(c.attr("transA", 0)) else a[0]
    n = b[0] if int(c.attr("transB", 0)) else b[1]
    dtype = c.dtype(8) if c.has(8) else c.dtype(1)
    return [((m, n), dtype)]


@rule("QLinearAdd", "QLinearMul")
def _qlinear_binary(c: Ctx) -> list[Out | None]:
    return [(_broadcast(c.shape(0), c.shape(3)), c.dtype(0))]


@rule("QLinearWhere")
def _qlinear_where(c: Ctx) -> list[Out | None]:
    return [(_broadcast(c.shape(0), c.shape(1), c.shape(4)), c.dtype(1))]


@rule("QLinearConcat")
def _qlinear_concat(c: Ctx) -> list[Out | None]:
    shapes = [c.shape(i) for i in range(2, len(c.node.inputs), 3)]
    if not shapes or any(s is None for s in shapes):
        return [None]
    axis = int(c.attr("axis", 0)) % len(shapes[0])  # type: ignore[arg-type]
    total: Dim = 0
    for s in shapes:
        total = _add(total, s[axis])  # type: ignore[index]
    out = list(shapes[0])  # type: ignore[arg-type]
    out[axis] = total
    return [(tuple(out), c.dtype(2))]


@rule("GatherBlockQuantized")
def _gather_block_quantized(c: Ctx) -> list[Out | None]:
    """Gather along gather_axis; uint8 data packs 8/bits values in each byte of its last axis."""
    data, idx = c.shape(0), c.shape(1)
    if data is None or idx is None:
        return [None]
    g = int(c.attr("gather_axis", 0)) % len(data)
    out = [*data[:g], *idx, *data[g + 1:]]
    bits = int(c.attr("bits", 4))
    if c.dtype(0) == "uint8" and bits < 8 and g != len(data) - 1:
        out[-1] = _mul(out[-1], 8 // bits)
    return [(tuple(out), c.dtype(2))]


@rule("EmbedLayerNormalization")
def _embed_layer_norm(c: Ctx) -> list[Out | None]:
    ids, word = c.shape(0), c.shape(2)
    if ids is None or word is None:
        return [None]
    out: Shape = (*ids, word[-1])
    return [(out, c.dtype(2)), ((ids[0],), "int32"), (out, c.dtype(2))]


def _attention_present(batch: Dim, heads: Dim, total: Dim, head: Dim) -> Shape:
    return (batch, heads, total, head)


@rule("Attention", "QAttention")
def _ms_attention(c: Ctx) -> list[Out | None]:
    x, w = c.shape(0), c.shape(1)
    if x is None or w is None:
        return [None]
    heads = int(c.attr("num_heads", 0))
    sizes = c.attr("qkv_hidden_sizes")
    qh, vh = (int(sizes[0]), int(sizes[2])) if sizes else (_div(w[1], 3),) * 2
    out: Shape = (x[0], x[1], vh)
    past_index = 8 if c.node.op_type == "QAttention" else 4
    past = c.shape(past_index) if c.has(past_index) else None
    if past is not None and int(c.attr("past_present_share_buffer", 0)):
        present: Shape | None = past
    else:
        p = past[3] if past is not None else 0
        present = (2, x[0], heads, _add(p, x[1]), _div(qh, heads))
    return [(out, c.dtype(0)), (present, c.dtype(0))]


@rule("MultiHeadAttention")
def _ms_multi_head_attention(c: Ctx) -> list[Out | None]:
    q = c.shape(0)
    if q is None:
        return [None]
    heads = int(c.attr("num_heads", 0))
    k = c.shape(1) if c.has(1) else None
    v = c.shape(2) if c.has(2) else None
    bnsh = False
    if len(q) == 5:
        hs = vhs = q[4]
        kv_len: Dim = q[1]
    elif k is not None and len(k) == 5:
        hs, vhs, kv_len = _div(q[2], heads), k[4], k[1]
    elif k is not None and len(k) == 4:
        hs, kv_len, bnsh = k[3], k[2], True
        vhs = v[3] if v is not None and len(v) == 4 else hs
    elif k is not None:
        hs, kv_len = _div(q[2], heads), k[1]
        vhs = _div(v[2], heads) if v is not None else hs
    else:
        return [None]
    total = kv_len
    if not bnsh and c.has(6) and c.shape(6) is not None:
        total = _add(c.shape(6)[2], kv_len)  # type: ignore[index]
    out: Shape = (q[0], q[1], _mul(heads, vhs))
    dtype = c.dtype(0)
    return [(out, dtype), ((q[0], heads, total, hs), dtype), ((q[0], heads, total, vhs), dtype),
            ((q[0], heads, q[1], total), dtype)]


@rule("GroupQueryAttention")
def _ms_group_query_attention(c: Ctx) -> list[Out | None]:
    q = c.shape(0)
    if q is None:
        return [None]
    heads, kv_heads = int(c.attr("num_heads", 0)), int(c.attr("kv_num_heads", 0))
    hs = _div(q[2], heads) if c.has(1) else _div(q[2], heads + 2 * kv_heads)
    total = c.scalar(6)
    past = c.shape(3) if c.has(3) else None
    past_len: Dim = past[2] if past is not None else 0
    if total is not None and isinstance(past_len, int):
        present_len: Dim = max(past_len, total)
    else:
        present_len = _add(past_len, q[1])
    attended: Dim = total if total is not None else _add(past_len, q[1])
    dtype = c.dtype(0)
    present: Shape = (q[0], kv_heads, present_len, hs)
    return [((q[0], q[1], _mul(heads, hs)), dtype), (present, dtype), (present, dtype),
            ((q[0], heads, q[1], attended), dtype)]


@rule("DecoderMaskedMultiHeadAttention")
def _ms_decoder_masked_mha(c: Ctx) -> list[Out | None]:
    q = c.shape(0)
    if q is None:
        return [None]
    heads = int(c.attr("num_heads", 0))
    dtype = c.dtype(0)
    k = c.shape(1) if c.has(1) else None
    v = c.shape(2) if c.has(2) else None
    if k is not None and len(k) == 4:  # cross attention: no present
        vhs = v[3] if v is not None and len(v) == 4 else k[3]
        return [((q[0], q[1], _mul(heads, vhs)), dtype)]
    if v is not None:
        v_hidden: Dim = v[2]
    else:
        v_hidden = _div(q[2], 3)
    hs = _div(v_hidden, heads)
    past = c.shape(5) if c.has(5) else None
    if past is not None and int(c.attr("past_present_share_buffer", 0)):
        present: Shape = past
    else:
        present = (q[0], heads, _add(past[2] if past is not None else 0, q[1]), hs)
    return [((q[0], q[1], v_hidden), dtype), (present, dtype), (present, dtype)]


@rule("DynamicQuantizeLSTM")
def _dynamic_quantize_lstm(c: Ctx) -> list[Out | None]:
    x, w = c.shape(0), c.shape(1)
    if x is None or w is None:
        return [None]
    hidden = int(c.attr("hidden_size", 0)) or _div(w[2], 4)
    dtype = c.dtype(0)
    state: Shape = (w[0], x[1], hidden)
    return [((x[0], w[0], x[1], hidden), dtype), (state, dtype), (state, dtype)]


# ONNX-schema twins: the contrib op's output shapes are those of an ONNX op on the same
# inputs and attributes (less the fused extras).
TWINS: dict[str, tuple[str, int, tuple[int, ...], tuple[str, ...]]] = {
    # contrib op: (ONNX op, opset, inputs kept, attributes dropped)
    "FusedConv": ("Conv", 11, (0, 1, 2), ("activation", "activation_params")),
    "FusedGemm": ("Gemm", 13, (0, 1, 2), ("activation", "activation_alpha", "activation_beta",
                                          "activation_gamma")),
    "QLinearConv": ("QLinearConv", 10, tuple(range(9)), ("channels_last",)),
    "QLinearAveragePool": ("AveragePool", 11, (0,), ("channels_last",)),
    "QLinearGlobalAveragePool": ("GlobalAveragePool", 1, (0,), ("channels_last",)),
    "QLinearReduceMean": ("ReduceMean", 13, (0,), ()),
}


def _twin(c: Ctx, tensors: Mapping[str, TensorInfo]) -> list[Out | None] | None:
    op, opset, keep, drop = TWINS[c.node.op_type]
    if int(c.attr("channels_last", 0)):
        return None
    proto = c.node.proto
    inputs = [proto.input[i] if i < len(proto.input) else "" for i in keep]
    while inputs and not inputs[-1]:
        inputs.pop()
    twin = helper.make_node(op, inputs, [proto.output[0]])
    twin.attribute.extend(a for a in proto.attribute if a.name not in drop)
    types = {}
    for name in inputs:
        if not name:
            continue
        info = tensors.get(name)
        if info is None or info.shape is None:
            return None
        # Float-only twins (pools, ReduceMean) are inferred on float stand-ins.
        code = elem_type(info.dtype) if op in ("QLinearConv", "Conv", "Gemm") else F32
        types[name] = helper.make_tensor_type_proto(code, info.shape)
    try:
        schema = onnx.defs.get_schema(op, opset, "")
        result = onnx.shape_inference.infer_node_outputs(
            schema, twin, types, {}, opset_imports=[helper.make_opsetid("", opset)])
    except Exception:
        return None
    tp = result.get(proto.output[0])
    if tp is None:
        return None
    info = tensor_info_from_value_info(helper.make_value_info(proto.output[0], tp))
    return [(info.shape, c.dtype(0) if op != "QLinearConv" else info.dtype or c.dtype(0))]


# ------------------------------------------------------------------------- the entry point


def infer_contrib(
    node: Node,
    tensors: dict[str, TensorInfo],
    values: Mapping[str, np.ndarray],
    opsets: Mapping[str, int],
) -> None:
    """Fill ``node``'s unresolved outputs in ``tensors`` from a rule or onnxruntime."""
    infos = tuple(tensors.get(x) if x else None for x in node.inputs)
    c = Ctx(node, infos, values)
    outs: Sequence[Out | None] | None = None
    try:
        fn = RULES.get((node.domain, node.op_type))
        if fn is not None:
            outs = fn(c)
        elif node.domain == MS and node.op_type in TWINS:
            outs = _twin(c, tensors)
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        outs = None
    if not outs or all(o is None or o[0] is None for o in outs):
        outs = _ort_outputs(node, infos, values, opsets)
    for name, out in zip(node.outputs, outs or (), strict=False):
        if not name or out is None or out[0] is None:
            continue
        shape, dtype = out
        if any(isinstance(d, int) and (d < 0 or d > MAX_DIM) for d in shape):
            continue
        old = tensors.get(name)
        if old is not None and old.is_static:
            continue
        tensors[name] = TensorInfo(name, tuple(shape), dtype or (old.dtype if old else ""))


@contextlib.contextmanager
def _quiet(logger_name: str):
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
) -> list[Out | None] | None:
    """onnxruntime's symbolic shape inference on a one-node model; None when unavailable."""
    if any(x and (info is None or info.shape is None) for x, info in zip(node.inputs, infos,
                                                                          strict=False)):
        return None
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except Exception:
        return None
    graph_inputs, inits = [], []
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
    outs: list[Out | None] = []
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
        shape = tuple(d if isinstance(d, int) or d in symbols else None for d in info.shape)
        outs.append((shape, info.dtype))
    return outs
