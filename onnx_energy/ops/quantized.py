"""Quantized ops: (De)QuantizeLinear, DynamicQuantizeLinear, the integer matmuls and convs,
QLinear* (ONNX and com.microsoft), MatMulNBits and friends.

Conventions (per element unless said):

- quantize ``q = saturate(round(x / scale) + zp)``: div, round (sub), add (when a zero point
  is given), saturate (2 sub);
- dequantize ``x = (q − zp) · scale``: sub (when a zero point is given), mul;
- an integer dot product is counted like a float one (``dot_cost``); subtracting an input's
  zero point costs one sub per input element (when the zero point input is given);
- requantizing an int32 accumulator to the output type: mul by the combined scale, round
  (sub), add the output zero point, saturate (2 sub).

`native_dtype(facts)` tells the transistor pass which narrow type the core arithmetic runs
in (``int8``, ``uint8``, ``uint4``, ...); it returns None for ops that compute in the
tensors' own (float) types.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ..dtypes import dtype_bits
from ..graph import Node, TensorInfo
from .base import Dim, Shape
from .helpers import (
    MS,
    ShapeOut,
    add_dims,
    bops_cost,
    broadcast_shapes,
    div_dims,
    dot_cost,
    elementwise,
    matmul_shape,
    mul_dims,
    onnx_twin,
    same_as_input,
)
from .registry import BasicOps, Cost, NodeFacts, register, shape_rule
from .rnn import recurrent_cost

B = BasicOps

QUANTIZE = B(div=1, sub=3)        # x/scale, round, 2 saturating compares (+ add for zp)
DEQUANTIZE = B(mul=1)             # x*scale (+ sub for zp)
REQUANTIZE = B(mul=1, sub=3, add=1)



def _zp_subs(f: NodeFacts, *pairs: tuple[int, int]) -> BasicOps:
    """One sub per element of each data input (data index, zero point index) whose zero point
    input is given. The zero point's value is never read: it is a weight, and a cost must not
    depend on whether the weights can be read (the kernel subtracts it either way)."""
    subs = 0
    for data, zp in pairs:
        if f.given(zp):
            subs += f.numel(data)
    return B(sub=subs)


# ---------------------------------------------------------------------------- ONNX domain


@register("QuantizeLinear")
def quantize_linear(f: NodeFacts) -> Cost:
    n = f.numel(0)
    return bops_cost((QUANTIZE + B(add=int(f.has_input(2)))) * n)


@register("DequantizeLinear")
def dequantize_linear(f: NodeFacts) -> Cost:
    n = f.numel(0)
    return bops_cost(DEQUANTIZE * n + _zp_subs(f, (0, 2)))


@register("DynamicQuantizeLinear")
def dynamic_quantize_linear(f: NodeFacts) -> Cost:
    """Running min and max (2 compares per element), scale = (max − min)/255 and the zero
    point (sub, div; div, neg, round, 2 saturating compares) once, then quantize per element."""
    n = f.numel(0)
    per_tensor = B(sub=5, div=2)
    return bops_cost((B(sub=2) + QUANTIZE + B(add=1)) * n + per_tensor)


def _matmul_outputs(f: NodeFacts) -> tuple[int, int]:
    """(outputs, K) of a (batched) matmul: K is input 0's last dim."""
    return f.out_numel(0), f.shape(0)[-1]


@register("MatMulInteger")
def matmul_integer(f: NodeFacts) -> Cost:
    outputs, k = _matmul_outputs(f)
    return dot_cost(outputs * k, outputs, 0) + bops_cost(_zp_subs(f, (0, 2), (1, 3)))


@register("QLinearMatMul")
def qlinear_matmul(f: NodeFacts) -> Cost:
    """a (0), a_scale, a_zp (2), b (3), b_scale, b_zp (5), y_scale, y_zp: integer matmul plus
    a requantization per output."""
    outputs = f.out_numel(0)
    k = f.shape(0)[-1]
    subs = _zp_subs(f, (0, 2), (3, 5))
    return dot_cost(outputs * k, outputs, 0) + bops_cost(subs + REQUANTIZE * outputs)


def _conv_macs(f: NodeFacts, w_index: int) -> tuple[int, int]:
    w = f.shape(w_index)
    outputs = f.out_numel(0)
    return outputs * math.prod(w[1:]), outputs


@register("ConvInteger")
def conv_integer(f: NodeFacts) -> Cost:
    macs, outputs = _conv_macs(f, 1)
    return dot_cost(macs, outputs, 0) + bops_cost(_zp_subs(f, (0, 2), (1, 3)))


@register("QLinearConv")
def qlinear_conv(f: NodeFacts) -> Cost:
    """x (0), x_scale, x_zp (2), w (3), w_scale, w_zp (5), y_scale, y_zp, B (8, int32)."""
    macs, outputs = _conv_macs(f, 3)
    bias = outputs if f.has_input(8) else 0
    subs = _zp_subs(f, (0, 2), (3, 5))
    return dot_cost(macs, outputs, bias) + bops_cost(subs + REQUANTIZE * outputs)


# ------------------------------------------------------------------------- com.microsoft

register("QuantizeLinear", domain=MS)(quantize_linear)
register("DequantizeLinear", domain=MS)(dequantize_linear)


def _qlinear_binary(core: BasicOps) -> Callable[[NodeFacts], Cost]:
    """QLinearAdd/QLinearMul: A (0), A_scale, A_zp (2), B (3), B_scale, B_zp (5), C_scale,
    C_zp (7). Per output: the core op on the zero-point-shifted inputs, the rescale, round,
    the output zero point and saturation."""

    def rule(f: NodeFacts) -> Cost:
        n = f.out_numel(0)
        return bops_cost((core + B(sub=2) + REQUANTIZE) * n)

    return rule


# (a−za)·sa/sc + (b−zb)·sb/sc: two scaled terms and their sum; (a−za)(b−zb)·s: one product.
register("QLinearAdd", domain=MS)(_qlinear_binary(B(mul=1, add=1)))
register("QLinearMul", domain=MS)(_qlinear_binary(B(mul=1)))


def _qlinear_unary(core: BasicOps) -> Callable[[NodeFacts], Cost]:
    """Dequantize (sub zp, mul scale), the float op, requantize, per element."""
    return elementwise(B(sub=1) + DEQUANTIZE + core + REQUANTIZE)


register("QLinearSigmoid", domain=MS)(_qlinear_unary(B(sub=1, add=1, div=1, root=1)))
register("QLinearLeakyRelu", domain=MS)(_qlinear_unary(B(sub=1, mul=1)))
register("QLinearSoftmax", domain=MS)(_qlinear_unary(B(sub=2, root=1, add=1, div=1)))
register("QLinearWhere", domain=MS)(elementwise(REQUANTIZE))


@register("QLinearAveragePool", domain=MS)
def qlinear_average_pool(f: NodeFacts) -> Cost:
    outputs = f.out_numel(0)
    kv = math.prod(f.attr("kernel_shape", [1]))
    return bops_cost(B(add=(kv - 1) * outputs, div=outputs, sub=outputs) + REQUANTIZE * outputs)


@register("QLinearGlobalAveragePool", "QLinearReduceMean", domain=MS)
def qlinear_global_average(f: NodeFacts) -> Cost:
    n_in, outputs = f.numel(0), f.out_numel(0)
    return bops_cost(B(add=max(n_in - outputs, 0), div=outputs, sub=outputs)
                 + REQUANTIZE * outputs)


@register("QLinearConcat", domain=MS)
def qlinear_concat(f: NodeFacts) -> Cost:
    """Each input is requantized to the output scale (dequantize and requantize)."""
    n = f.out_numel(0)
    return bops_cost((B(sub=1) + DEQUANTIZE + REQUANTIZE) * n)


@register("QLinearConv", domain=MS)
def ms_qlinear_conv(f: NodeFacts) -> Cost:
    return qlinear_conv(f)


@register("MatMulInteger16", domain=MS)
def matmul_integer16(f: NodeFacts) -> Cost:
    outputs, k = _matmul_outputs(f)
    return dot_cost(outputs * k, outputs, 0)


@register("MulInteger", domain=MS)
def mul_integer(f: NodeFacts) -> Cost:
    n = f.out_numel(0)
    return bops_cost(B(mul=n) + _zp_subs(f, (0, 1), (2, 3)))


@register("MatMulIntegerToFloat", domain=MS)
def matmul_integer_to_float(f: NodeFacts) -> Cost:
    """A (0), B (1), a_scale, b_scale, a_zp (4), b_zp (5), bias (6): integer matmul, one mul
    per output for the scale, and the float bias."""
    outputs, k = _matmul_outputs(f)
    bias = outputs if f.has_input(6) else 0
    return dot_cost(outputs * k, outputs, bias) + bops_cost(
        B(mul=outputs) + _zp_subs(f, (0, 4), (1, 5)))


@register("DynamicQuantizeMatMul", domain=MS)
def dynamic_quantize_matmul(f: NodeFacts) -> Cost:
    """A is quantized to uint8 on the fly (as DynamicQuantizeLinear), then an integer matmul
    with B (b_zp 3), one mul per output for the scale, and the bias (4)."""
    outputs, k = _matmul_outputs(f)
    n_a = f.numel(0)
    quant = (B(sub=2) + QUANTIZE + B(add=1)) * n_a + B(sub=5, div=2)
    bias = outputs if f.has_input(4) else 0
    return dot_cost(outputs * k, outputs, bias) + bops_cost(
        quant + B(mul=outputs, sub=n_a) + _zp_subs(f, (1, 3)))


@register("QGemm", domain=MS)
def qgemm(f: NodeFacts) -> Cost:
    """A (0), a_scale, a_zp (2), B (3), b_scale, b_zp (5), C (6), y_scale (7), y_zp."""
    a = f.shape(0)
    k = a[0] if int(f.attr("transA", 0)) else a[1]
    outputs = f.out_numel(0)
    bias = outputs if f.has_input(6) else 0
    rescale = REQUANTIZE * outputs if f.has_input(7) else B(mul=outputs)
    return dot_cost(outputs * k, outputs, bias) + bops_cost(rescale + _zp_subs(f, (0, 2), (3, 5)))


@register("MatMulNBits", domain=MS)
def matmul_nbits(f: NodeFacts) -> Cost:
    """A (…, K) × B (N × K in ``bits``-bit blocks): every weight is dequantized once per run
    ((w − zp) · scale: sub, mul), then a float matmul of M·N·K MACs (+ bias, input 5).
    With ``accuracy_level`` 4 the activations are quantized to int8 per block instead and the
    products run in integers; the MAC count is the same."""
    a = f.shape(0)
    n, k = int(f.attr("N", 0)), int(f.attr("K", 0)) or a[-1]
    if not n:
        n = f.out_shape(0)[-1]
    m = math.prod(a[:-1])
    outputs = m * n
    bias = outputs if f.has_input(5) else 0
    return dot_cost(outputs * k, outputs, bias) + bops_cost(B(sub=1, mul=1) * (n * k))


@register("MatMulBnb4", domain=MS)
def matmul_bnb4(f: NodeFacts) -> Cost:
    """bitsandbytes 4-bit weights (FP4/NF4 table lookup, then · absmax per block)."""
    a = f.shape(0)
    n, k = int(f.attr("N", 0)), int(f.attr("K", 0)) or a[-1]
    m = math.prod(a[:-1])
    return dot_cost(m * n * k, m * n, 0) + bops_cost(B(mul=n * k))


@register("GatherBlockQuantized", domain=MS)
def gather_block_quantized(f: NodeFacts) -> Cost:
    """Gather rows of a block-quantized table and dequantize them: (q − zp) · scale."""
    n = f.out_numel(0)
    return bops_cost(B(sub=1, mul=1) * n)


@register("DynamicQuantizeLSTM", domain=MS)
def dynamic_quantize_lstm(f: NodeFacts) -> Cost:
    """An LSTM whose W (D, I, 4H) and R (D, H, 4H) are int8: X and h are quantized per step."""

    x, w = f.shape(0), f.shape(1)
    hidden = int(f.attr("hidden_size", 0)) or w[2] // 4
    cost = recurrent_cost("DynamicQuantizeLSTM", f, seq=x[0], batch=x[1], directions=w[0],
                          input_size=x[2], hidden=hidden)
    quantized = x[0] * x[1] * w[0] * (x[2] + hidden)
    return cost + bops_cost((B(sub=2) + QUANTIZE + B(add=1)) * quantized)


# ------------------------------------------------------------------------- native dtypes

NativeRule = Callable[[NodeFacts], "str | None"]
NATIVE: dict[tuple[str, str], NativeRule] = {}


def _dtype_of(f: NodeFacts, i: int, output: bool = False) -> str | None:
    infos = f.outputs if output else f.inputs
    info = infos[i] if i < len(infos) else None
    return info.dtype if info is not None and info.dtype else None


def _native(*ops: str, domain: str = "") -> Callable[[NativeRule], NativeRule]:
    def deco(rule: NativeRule) -> NativeRule:
        for op in ops:
            NATIVE[(domain, op)] = rule
        return rule

    return deco


def _input0(f: NodeFacts) -> str | None:
    return _dtype_of(f, 0)


_native("DequantizeLinear", "MatMulInteger", "ConvInteger", "QLinearMatMul",
        "QLinearConv")(_input0)
_native("DequantizeLinear", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
        "QLinearSoftmax", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearReduceMean",
        "QLinearConv", "QGemm", "MatMulInteger16", "MulInteger", "MatMulIntegerToFloat",
        "QAttention", "QLinearConcat", domain=MS)(_input0)


@_native("QuantizeLinear")
@_native("QuantizeLinear", domain=MS)
def _quantize_native(f: NodeFacts) -> str | None:
    out = _dtype_of(f, 0, output=True)
    if out:
        return out
    return _dtype_of(f, 2) or "uint8"  # the zero point's type, uint8 when absent


@_native("DynamicQuantizeLinear")
@_native("DynamicQuantizeMatMul", "DynamicQuantizeLSTM", domain=MS)
def _uint8_native(f: NodeFacts) -> str | None:
    if f.node.op_type == "DynamicQuantizeLSTM":
        return _dtype_of(f, 1) or "int8"
    return "uint8"


@_native("QLinearWhere", domain=MS)
def _where_native(f: NodeFacts) -> str | None:
    return _dtype_of(f, 1)


@_native("MatMulNBits", "GatherBlockQuantized", domain=MS)
def _nbits_native(f: NodeFacts) -> str | None:
    """``uint{bits}`` for the weights (4 by default); with accuracy_level 4 MatMulNBits
    multiplies int8-quantized activations by the weights, still ``bits`` wide."""
    bits = int(f.attr("bits", 4))
    return f"uint{bits}"


@_native("MatMulBnb4", domain=MS)
def _bnb4_native(f: NodeFacts) -> str | None:
    return "float4e2m1" if int(f.attr("quant_type", 1)) == 0 else "uint4"


def native_dtype(f: NodeFacts) -> str | None:
    """The narrow dtype a quantized node's core arithmetic runs in, or None.

    QuantizeLinear: the quantized output type; DequantizeLinear, integer matmuls/convs and
    QLinear*: the type of the quantized input; DynamicQuantize*: uint8; MatMulNBits and
    GatherBlockQuantized: ``uint{bits}`` of the packed weights; MatMulBnb4: uint4 (NF4) or
    float4e2m1 (FP4). None for any op not listed (it computes in its tensors' dtypes).
    """
    rule = NATIVE.get((f.node.domain, f.node.op_type))
    return None if rule is None else rule(f)


def native_dtype_for(
    node: Node, inputs: Sequence[TensorInfo | None], outputs: Sequence[TensorInfo | None]
) -> str | None:
    """`native_dtype` from a node and its input/output tensors, for passes that hold tensors
    rather than `NodeFacts` (e.g. ``NodeCost.inputs``/``outputs``). Only the required leading
    inputs, QuantizeLinear's zero point (input 2) and output 0 are read, so a list that drops
    absent optional inputs gives the same answer."""
    if (node.domain, node.op_type) not in NATIVE:
        return None
    return native_dtype(NodeFacts(node=node, inputs=tuple(inputs), outputs=tuple(outputs)))


def native_bits(f: NodeFacts) -> int | None:
    """Width in bits of `native_dtype` (e.g. 4 for ``uint4``, 3 for a 3-bit MatMulNBits)."""
    dtype = native_dtype(f)
    if dtype is None:
        return None
    digits = "".join(ch for ch in dtype if ch.isdigit())

    return dtype_bits(dtype) or (int(digits) if digits else None)


# ------------------------------------------------------------- output shapes (ONNX has none)


shape_rule("QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", domain=MS)(same_as_input)
# The output shapes of these are those of their float twins on the same inputs.
shape_rule("QLinearConv", domain=MS)(onnx_twin("QLinearConv", 10, tuple(range(9)),
                                               ("channels_last",)))
shape_rule("QLinearAveragePool", domain=MS)(onnx_twin("AveragePool", 11, (0,),
                                                      ("channels_last",)))
shape_rule("QLinearGlobalAveragePool", domain=MS)(onnx_twin("GlobalAveragePool", 1, (0,),
                                                            ("channels_last",)))
shape_rule("QLinearReduceMean", domain=MS)(onnx_twin("ReduceMean", 13, (0,)))


@shape_rule("QuantizeLinear", domain=MS)
def _quantize(f: NodeFacts) -> list[ShapeOut | None]:
    return [(f.dims(0), f.dtype(2) if f.given(2) else "uint8")]


@shape_rule("DequantizeLinear", domain=MS)
def _dequantize(f: NodeFacts) -> list[ShapeOut | None]:
    return [(f.dims(0), f.dtype(1))]


@shape_rule("MatMulNBits", "MatMulBnb4", domain=MS)
def _matmul_nbits(f: NodeFacts) -> list[ShapeOut | None]:
    a, n = f.dims(0), int(f.attr("N", 0))
    return [(None if a is None or not n else (*a[:-1], n), f.dtype(0))]


@shape_rule("MatMulIntegerToFloat", "DynamicQuantizeMatMul", domain=MS)
def _matmul_to_float(f: NodeFacts) -> list[ShapeOut | None]:
    return [(matmul_shape(f.dims(0), f.dims(1)), f.dtype(2))]


@shape_rule("MatMulInteger16", domain=MS)
def _matmul_int16(f: NodeFacts) -> list[ShapeOut | None]:
    return [(matmul_shape(f.dims(0), f.dims(1)), "int32")]


@shape_rule("QGemm", domain=MS)
def _qgemm(f: NodeFacts) -> list[ShapeOut | None]:
    a, b = f.dims(0), f.dims(3)
    if a is None or b is None:
        return [None]
    m = a[1] if int(f.attr("transA", 0)) else a[0]
    n = b[0] if int(f.attr("transB", 0)) else b[1]
    dtype = f.dtype(8) if f.given(8) else f.dtype(1)
    return [((m, n), dtype)]


@shape_rule("QLinearAdd", "QLinearMul", domain=MS)
def _qlinear_binary_shape(f: NodeFacts) -> list[ShapeOut | None]:
    return [(broadcast_shapes(f.dims(0), f.dims(3)), f.dtype(0))]


@shape_rule("QLinearWhere", domain=MS)
def _qlinear_where(f: NodeFacts) -> list[ShapeOut | None]:
    return [(broadcast_shapes(f.dims(0), f.dims(1), f.dims(4)), f.dtype(1))]


@shape_rule("QLinearConcat", domain=MS)
def _qlinear_concat(f: NodeFacts) -> list[ShapeOut | None]:
    shapes = [f.dims(i) for i in range(2, len(f.node.inputs), 3)]
    if not shapes or any(s is None for s in shapes):
        return [None]
    axis = int(f.attr("axis", 0)) % len(shapes[0])  # type: ignore[arg-type]
    total: Dim = 0
    for s in shapes:
        total = add_dims(total, s[axis])  # type: ignore[index]
    out = list(shapes[0])  # type: ignore[arg-type]
    out[axis] = total
    return [(tuple(out), f.dtype(2))]


@shape_rule("GatherBlockQuantized", domain=MS)
def _gather_block_quantized(f: NodeFacts) -> list[ShapeOut | None]:
    """Gather along gather_axis; uint8 data packs 8/bits values in each byte of its last axis."""
    data, idx = f.dims(0), f.dims(1)
    if data is None or idx is None:
        return [None]
    g = int(f.attr("gather_axis", 0)) % len(data)
    out = [*data[:g], *idx, *data[g + 1:]]
    bits = int(f.attr("bits", 4))
    if f.dtype(0) == "uint8" and bits < 8 and g != len(data) - 1:
        out[-1] = mul_dims(out[-1], 8 // bits)
    return [(tuple(out), f.dtype(2))]


@shape_rule("DynamicQuantizeLSTM", domain=MS)
def _dynamic_quantize_lstm(f: NodeFacts) -> list[ShapeOut | None]:
    x, w = f.dims(0), f.dims(1)
    if x is None or w is None:
        return [None]
    hidden = int(f.attr("hidden_size", 0)) or div_dims(w[2], 4)
    dtype = f.dtype(0)
    state: Shape = (w[0], x[1], hidden)
    return [((x[0], w[0], x[1], hidden), dtype), (state, dtype), (state, dtype)]
