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

from ..graph import Node, TensorInfo
from .conv import dot_cost
from .registry import BasicOps, Cost, NodeFacts, elementwise, register

B = BasicOps
MS = "com.microsoft"

QUANTIZE = B(div=1, sub=3)        # x/scale, round, 2 saturating compares (+ add for zp)
DEQUANTIZE = B(mul=1)             # x*scale (+ sub for zp)
REQUANTIZE = B(mul=1, sub=3, add=1)


def _bops(bops: BasicOps) -> Cost:
    return Cost(flops=bops.total, bops=bops)


def _zp_subs(f: NodeFacts, *pairs: tuple[int, int]) -> BasicOps:
    """One sub per element of each data input (data index, zero point index) with a zero point
    whose value is not known to be all zeros."""
    subs = 0
    for data, zp in pairs:
        if not f.has_input(zp):
            continue
        v = f.value(zp)
        if v is not None and not v.any():
            continue
        subs += f.numel(data)
    return B(sub=subs)


# ---------------------------------------------------------------------------- ONNX domain


@register("QuantizeLinear")
def quantize_linear(f: NodeFacts) -> Cost:
    n = f.numel(0)
    return _bops((QUANTIZE + B(add=int(f.has_input(2)))) * n)


@register("DequantizeLinear")
def dequantize_linear(f: NodeFacts) -> Cost:
    n = f.numel(0)
    return _bops(DEQUANTIZE * n + _zp_subs(f, (0, 2)))


@register("DynamicQuantizeLinear")
def dynamic_quantize_linear(f: NodeFacts) -> Cost:
    """Running min and max (2 compares per element), scale = (max − min)/255 and the zero
    point (sub, div; div, neg, round, 2 saturating compares) once, then quantize per element."""
    n = f.numel(0)
    per_tensor = B(sub=5, div=2)
    return _bops((B(sub=2) + QUANTIZE + B(add=1)) * n + per_tensor)


def _matmul_outputs(f: NodeFacts) -> tuple[int, int]:
    """(outputs, K) of a (batched) matmul: K is input 0's last dim."""
    return f.out_numel(0), f.shape(0)[-1]


@register("MatMulInteger")
def matmul_integer(f: NodeFacts) -> Cost:
    outputs, k = _matmul_outputs(f)
    return dot_cost(outputs * k, outputs, 0) + _bops(_zp_subs(f, (0, 2), (1, 3)))


@register("QLinearMatMul")
def qlinear_matmul(f: NodeFacts) -> Cost:
    """a (0), a_scale, a_zp (2), b (3), b_scale, b_zp (5), y_scale, y_zp: integer matmul plus
    a requantization per output."""
    outputs = f.out_numel(0)
    k = f.shape(0)[-1]
    subs = _zp_subs(f, (0, 2), (3, 5))
    return dot_cost(outputs * k, outputs, 0) + _bops(subs + REQUANTIZE * outputs)


def _conv_macs(f: NodeFacts, w_index: int) -> tuple[int, int]:
    w = f.shape(w_index)
    outputs = f.out_numel(0)
    return outputs * math.prod(w[1:]), outputs


@register("ConvInteger")
def conv_integer(f: NodeFacts) -> Cost:
    macs, outputs = _conv_macs(f, 1)
    return dot_cost(macs, outputs, 0) + _bops(_zp_subs(f, (0, 2), (1, 3)))


@register("QLinearConv")
def qlinear_conv(f: NodeFacts) -> Cost:
    """x (0), x_scale, x_zp (2), w (3), w_scale, w_zp (5), y_scale, y_zp, B (8, int32)."""
    macs, outputs = _conv_macs(f, 3)
    bias = outputs if f.has_input(8) else 0
    subs = _zp_subs(f, (0, 2), (3, 5))
    return dot_cost(macs, outputs, bias) + _bops(subs + REQUANTIZE * outputs)


# ------------------------------------------------------------------------- com.microsoft

register("QuantizeLinear", domain=MS)(quantize_linear)
register("DequantizeLinear", domain=MS)(dequantize_linear)


def _qlinear_binary(core: BasicOps) -> Callable[[NodeFacts], Cost]:
    """QLinearAdd/QLinearMul: A (0), A_scale, A_zp (2), B (3), B_scale, B_zp (5), C_scale,
    C_zp (7). Per output: the core op on the zero-point-shifted inputs, the rescale, round,
    the output zero point and saturation."""

    def rule(f: NodeFacts) -> Cost:
        n = f.out_numel(0)
        return _bops((core + B(sub=2) + REQUANTIZE) * n)

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
    return _bops(B(add=(kv - 1) * outputs, div=outputs, sub=outputs) + REQUANTIZE * outputs)


@register("QLinearGlobalAveragePool", "QLinearReduceMean", domain=MS)
def qlinear_global_average(f: NodeFacts) -> Cost:
    n_in, outputs = f.numel(0), f.out_numel(0)
    return _bops(B(add=max(n_in - outputs, 0), div=outputs, sub=outputs)
                 + REQUANTIZE * outputs)


@register("QLinearConcat", domain=MS)
def qlinear_concat(f: NodeFacts) -> Cost:
    """Each input is requantized to the output scale (dequantize and requantize)."""
    n = f.out_numel(0)
    return _bops((B(sub=1) + DEQUANTIZE + REQUANTIZE) * n)


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
    return _bops(B(mul=n) + _zp_subs(f, (0, 1), (2, 3)))


@register("MatMulIntegerToFloat", domain=MS)
def matmul_integer_to_float(f: NodeFacts) -> Cost:
    """A (0), B (1), a_scale, b_scale, a_zp (4), b_zp (5), bias (6): integer matmul, one mul
    per output for the scale, and the float bias."""
    outputs, k = _matmul_outputs(f)
    bias = outputs if f.has_input(6) else 0
    return dot_cost(outputs * k, outputs, bias) + _bops(
        B(mul=outputs) + _zp_subs(f, (0, 4), (1, 5)))


@register("DynamicQuantizeMatMul", domain=MS)
def dynamic_quantize_matmul(f: NodeFacts) -> Cost:
    """A is quantized to uint8 on the fly (as DynamicQuantizeLinear), then an integer matmul
    with B (b_zp 3), one mul per output for the scale, and the bias (4)."""
    outputs, k = _matmul_outputs(f)
    n_a = f.numel(0)
    quant = (B(sub=2) + QUANTIZE + B(add=1)) * n_a + B(sub=5, div=2)
    bias = outputs if f.has_input(4) else 0
    return dot_cost(outputs * k, outputs, bias) + _bops(
        quant + B(mul=outputs, sub=n_a) + _zp_subs(f, (1, 3)))


@register("QGemm", domain=MS)
def qgemm(f: NodeFacts) -> Cost:
    """A (0), a_scale, a_zp (2), B (3), b_scale, b_zp (5), C (6), y_scale (7), y_zp."""
    a = f.shape(0)
    k = a[0] if int(f.attr("transA", 0)) else a[1]
    outputs = f.out_numel(0)
    bias = outputs if f.has_input(6) else 0
    rescale = REQUANTIZE * outputs if f.has_input(7) else B(mul=outputs)
    return dot_cost(outputs * k, outputs, bias) + _bops(rescale + _zp_subs(f, (0, 2), (3, 5)))


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
    return dot_cost(outputs * k, outputs, bias) + _bops(B(sub=1, mul=1) * (n * k))


@register("MatMulBnb4", domain=MS)
def matmul_bnb4(f: NodeFacts) -> Cost:
    """bitsandbytes 4-bit weights (FP4/NF4 table lookup, then · absmax per block)."""
    a = f.shape(0)
    n, k = int(f.attr("N", 0)), int(f.attr("K", 0)) or a[-1]
    m = math.prod(a[:-1])
    return dot_cost(m * n * k, m * n, 0) + _bops(B(mul=n * k))


@register("GatherBlockQuantized", domain=MS)
def gather_block_quantized(f: NodeFacts) -> Cost:
    """Gather rows of a block-quantized table and dequantize them: (q − zp) · scale."""
    n = f.out_numel(0)
    return _bops(B(sub=1, mul=1) * n)


@register("DynamicQuantizeLSTM", domain=MS)
def dynamic_quantize_lstm(f: NodeFacts) -> Cost:
    """An LSTM whose W (D, I, 4H) and R (D, H, 4H) are int8: X and h are quantized per step."""
    from .rnn import recurrent_cost

    x, w = f.shape(0), f.shape(1)
    hidden = int(f.attr("hidden_size", 0)) or w[2] // 4
    cost = recurrent_cost("DynamicQuantizeLSTM", f, seq=x[0], batch=x[1], directions=w[0],
                          input_size=x[2], hidden=hidden)
    quantized = x[0] * x[1] * w[0] * (x[2] + hidden)
    return cost + _bops((B(sub=2) + QUANTIZE + B(add=1)) * quantized)


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
    from ..dtypes import dtype_bits

    return dtype_bits(dtype) or (int(digits) if digits else None)
