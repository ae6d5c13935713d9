"""Block-quantized and packed low-bit matmuls (fused MatMulNBits variants, FP4/FP8 weights,
packed formats), cuBLASLt-ordered int8 ops (QOrdered*, *WithOrder) and block floating point.

As MatMulNBits (`quantized`): a matmul of ``M·N·K`` MACs, every weight dequantized once per
run (one mul by its scale; sub with a zero point), biases added per output. The logical
N and K come from the attributes or the float operand, never from packed byte counts.
Ordered int8 outputs are requantized (mul by the scale, round, 2 saturating compares).
"""

from __future__ import annotations

import math

from .contrib import RMS_PER_ELEMENT, RMS_PER_ROW, activation_by_name
from .helpers import MS, ShapeOut, bops_cost, dot_cost, matmul_shape, same_as_input
from .normalization import _normalize
from .registry import BasicOps, Cost, NodeFacts, register, shape_rule

B = BasicOps
REQUANT = B(mul=1, sub=3)
GELU = B(div=1, root=1, add=1, mul=2)
QUANTIZE = B(div=1, sub=3)


def _rows(f: NodeFacts) -> tuple[int, int]:
    """(M, K) of input 0 (…, K)."""
    a = f.shape(0)
    return math.prod(a[:-1]), a[-1]


def _nbits_matmul(m: int, n: int, k: int, bias: bool) -> Cost:
    outputs = m * n
    return dot_cost(outputs * k, outputs, outputs if bias else 0) + bops_cost(B(sub=1, mul=1)
                                                                              * (n * k))


def _pre_norm(f: NodeFacts, m: int, k: int) -> Cost:
    """The optional fused (Skip)SimplifiedLayerNormalization before the projections."""
    cost = Cost()
    if f.given(1):
        cost = cost + bops_cost(B(add=m * k))
    if f.given(2) or f.node.op_type == "MatMulNBitsQkv":
        cost = cost + bops_cost(RMS_PER_ELEMENT * (m * k) + RMS_PER_ROW * m)
    return cost


@register("MatMulNBitsMlp", domain=MS)
def matmul_nbits_mlp(f: NodeFacts) -> Cost:
    """A → (norm) → gate and up projections (N × K each, + biases 5, 8), activation(gate)·up."""
    m, k = _rows(f)
    n = int(f.attr("N", 0))
    k = int(f.attr("K", 0)) or k
    act = activation_by_name(str(f.attr("activation", "silu")))
    return (_pre_norm(f, m, k) + _nbits_matmul(m, n, k, f.given(5))
            + _nbits_matmul(m, n, k, f.given(8)) + bops_cost((act + B(mul=1)) * (m * n)))


@register("MatMulNBitsQkv", domain=MS)
def matmul_nbits_qkv(f: NodeFacts) -> Cost:
    """A → RMSNorm (with the skip add when skip is given) → Q (Nq), K and V (Nkv) projections."""
    m, k = _rows(f)
    k = int(f.attr("K", 0)) or k
    nq, nkv = int(f.attr("Nq", 0)), int(f.attr("Nkv", 0))
    return (_pre_norm(f, m, k) + _nbits_matmul(m, nq, k, f.given(5))
            + _nbits_matmul(m, nkv, k, f.given(8)) + _nbits_matmul(m, nkv, k, f.given(11)))


@register("MatMulNBitsQLoRA", domain=MS)
def matmul_nbits_qlora(f: NodeFacts) -> Cost:
    """X·W + (X·lora_A)·lora_B, all block-quantized; the rank R is lora_A's first dim."""
    m, k = _rows(f)
    n = int(f.attr("N", 0))
    k = int(f.attr("K", 0)) or k
    r = f.shape(3)[0]
    return (_nbits_matmul(m, n, k, False) + _nbits_matmul(m, r, k, False)
            + _nbits_matmul(m, n, r, False) + bops_cost(B(add=m * n)))


@register("MatMulPacked", "MatMulFpQ4", domain=MS)
def matmul_packed(f: NodeFacts) -> Cost:
    """A (…, K) × a packed (N, K) weight (N from the attribute, else the output): M·N·K MACs and
    one dequantizing mul per weight (× global_scale when given)."""
    m, k = _rows(f)
    n = int(f.attr("N", 0)) or f.out_shape(0)[-1]
    outputs = m * n
    return dot_cost(outputs * k, outputs, 0) + bops_cost(B(mul=n * k))


@register("GatherPacked", domain=MS)
def gather_packed(f: NodeFacts) -> Cost:
    """Gather rows of a packed table and dequantize each value (one mul)."""
    return bops_cost(B(mul=f.out_numel(0)))


@register("MatMulBlockQuantizedFp4Weight", domain=MS)
def matmul_fp4_weight(f: NodeFacts) -> Cost:
    """A (…, K) × NVFP4 B (N, K/2 bytes): e2m1(B)·weight_scale_2·e4m3(scale) (2 mul) per weight,
    M·N·K MACs, bias (input 5)."""
    m, k = _rows(f)
    n = f.shape(1)[0]
    outputs = m * n
    return (dot_cost(outputs * k, outputs, outputs if f.given(5) else 0)
            + bops_cost(B(mul=2 * n * k)))


@register("MatMulBlockQuantizedFp8Weight", domain=MS)
def matmul_fp8_weight(f: NodeFacts) -> Cost:
    """A (…, K) × E4M3 B (N, K)·b_scale per block (one mul per weight), M·N·K MACs, bias (4);
    with a_scale, A is quantized to FP8 and back (div, round, mul per element)."""
    m, k = _rows(f)
    n = f.shape(1)[0]
    outputs = m * n
    cost = dot_cost(outputs * k, outputs, outputs if f.given(4) else 0) + bops_cost(
        B(mul=n * k))
    if f.given(3):
        cost = cost + bops_cost(B(div=1, sub=1, mul=1) * (m * k))
    return cost


@register("GemmFloat8", domain=MS)
def gemm_float8(f: NodeFacts) -> Cost:
    """alpha·op(A)·op(B) + beta·C with float8 operands: Gemm's MACs, the scales (one mul per
    output for the combined scaleA·scaleB, one for scaleY) and the fused activation."""
    a = f.shape(0)
    k = a[0] if int(f.attr("transA", 0)) else a[-1]
    outputs = f.out_numel(0)
    bias = outputs if f.given(2) and float(f.attr("beta", 0.0)) != 0.0 else 0
    scales = int(f.given(3) or f.given(4)) + int(f.given(5))
    extra = B(mul=outputs * scales) + activation_by_name(str(f.attr("activation", ""))) * outputs
    return dot_cost(outputs * k, outputs, bias) + bops_cost(extra)


@register("QOrderedMatMul", domain=MS)
def qordered_matmul(f: NodeFacts) -> Cost:
    """int8 A (…, K) · B: one dot product of K per output, + bias (5), + beta·C (7: mul, add),
    requantized."""
    m, k = _rows(f)
    outputs = f.out_numel(0)
    extra = REQUANT * outputs + (B(mul=outputs, add=outputs) if f.given(6) else B())
    return dot_cost(outputs * k, outputs, outputs if f.given(5) else 0) + bops_cost(extra)


@register("QOrderedGelu", domain=MS)
def qordered_gelu(f: NodeFacts) -> Cost:
    """Dequantize (mul), Gelu (erf), requantize, per element."""
    return bops_cost((B(mul=1) + GELU + REQUANT) * f.numel(0))


@register("QOrderedLayerNormalization", domain=MS)
def qordered_layer_norm(f: NodeFacts) -> Cost:
    """Dequantize (mul), LayerNorm with gamma (+ beta, input 3), requantize."""
    x = f.shape(0)
    n = math.prod(x)
    axis = int(f.attr("axis", -1)) % len(x)
    norm = _normalize(n, math.prod(x[:axis]), True, f.given(3))
    return bops_cost((B(mul=1) + REQUANT) * n + norm)


@register("QuantizeWithOrder", domain=MS)
def quantize_with_order(f: NodeFacts) -> Cost:
    return bops_cost(QUANTIZE * f.numel(0))


@register("DequantizeWithOrder", domain=MS)
def dequantize_with_order(f: NodeFacts) -> Cost:
    return bops_cost(B(mul=f.numel(0)))


@register("QuantizeBFP", domain=MS)
def quantize_bfp(f: NodeFacts) -> Cost:
    """Block floating point: the shared exponent is the block's maximum (one compare per
    element), each mantissa is shifted and rounded (sub)."""
    return bops_cost(B(sub=2) * f.numel(0))


@register("DequantizeBFP", domain=MS)
def dequantize_bfp(f: NodeFacts) -> Cost:
    """Each value is its mantissa scaled by the block exponent: one mul per output element."""
    return bops_cost(B(mul=f.out_numel(0)))


@register("ReduceSumInteger", domain=MS)
def reduce_sum_integer(f: NodeFacts) -> Cost:
    n_in, n_out = f.numel(0), f.out_numel(0)
    return bops_cost(B(add=max(n_in - n_out, 0)))


# ------------------------------------------------------------- output shapes (ONNX has none)


shape_rule("QOrderedGelu", "QOrderedLayerNormalization", domain=MS)(same_as_input)


@shape_rule("QuantizeWithOrder", domain=MS)
def _quantize_with_order(f: NodeFacts) -> list[ShapeOut | None]:
    return [(f.dims(0), "int8")]


@shape_rule("DequantizeWithOrder", domain=MS)
def _dequantize_with_order(f: NodeFacts) -> list[ShapeOut | None]:
    return [(f.dims(0), f.dtype(1) or "float32")]


@shape_rule("MatMulNBitsMlp", domain=MS)
def _matmul_nbits_mlp(f: NodeFacts) -> list[ShapeOut | None]:
    a, n = f.dims(0), int(f.attr("N", 0))
    if a is None or not n:
        return [None]
    return [((*a[:-1], n), f.dtype(0)), (a, f.dtype(0))]


@shape_rule("MatMulNBitsQkv", domain=MS)
def _matmul_nbits_qkv(f: NodeFacts) -> list[ShapeOut | None]:
    a = f.dims(0)
    nq, nkv = int(f.attr("Nq", 0)), int(f.attr("Nkv", 0))
    if a is None or not nq or not nkv:
        return [None]
    d = f.dtype(0)
    return [((*a[:-1], nq), d), ((*a[:-1], nkv), d), ((*a[:-1], nkv), d), (a, d)]


@shape_rule("MatMulNBitsQLoRA", "MatMulPacked", domain=MS)
def _n_attr_matmul(f: NodeFacts) -> list[ShapeOut | None]:
    a, n = f.dims(0), int(f.attr("N", 0))
    return [(None if a is None or not n else (*a[:-1], n), f.dtype(0))]


@shape_rule("MatMulBlockQuantizedFp4Weight", "MatMulBlockQuantizedFp8Weight", domain=MS)
def _block_fp_matmul(f: NodeFacts) -> list[ShapeOut | None]:
    a, b = f.dims(0), f.dims(1)
    return [(None if a is None or b is None else (*a[:-1], b[0]), f.dtype(0))]


@shape_rule("MatMulFpQ4", domain=MS)
def _matmul_fpq4(f: NodeFacts) -> list[ShapeOut | None]:
    """B_shape (input 2) holds the logical (K, N) of the packed weight: a shape constant."""
    a, shape = f.dims(0), f.value(2)
    if a is None or shape is None or shape.size != 2:
        return [None]
    b = tuple(int(v) for v in shape.reshape(-1))
    return [(matmul_shape(a, b), f.dtype(0))]


@shape_rule("QOrderedMatMul", domain=MS)
def _qordered_matmul(f: NodeFacts) -> list[ShapeOut | None]:
    return [(matmul_shape(f.dims(0), f.dims(2)), "int8")]


@shape_rule("ReduceSumInteger", domain=MS)
def _reduce_sum_integer(f: NodeFacts) -> list[ShapeOut | None]:
    x = f.dims(0)
    if x is None:
        return [None]
    axes = {int(a) % len(x) for a in (f.attr("axes") or range(len(x)))}
    keep = int(f.attr("keepdims", 1))
    out = tuple(1 if i in axes else d for i, d in enumerate(x)) if keep else tuple(
        d for i, d in enumerate(x) if i not in axes)
    return [(out, "int32")]
