"""com.microsoft contrib and fused ops (and the ORT ops exporters put in the ONNX domain).

Fused ops cost what their parts cost: FusedConv is Conv + Z + activation, SkipLayerNorm is
the residual adds + LayerNormalization, BiasGelu is Add + Gelu, and so on; the per-element
decompositions are those of `activation`, `arithmetic` and `normalization`.
"""

from __future__ import annotations

import math

from .activation import ACTIVATIONS
from .base import Shape
from .conv import conv
from .helpers import (
    MS,
    ShapeOut,
    bops_cost,
    div_dims,
    dot_cost,
    elementwise,
    matmul_shape,
    norm_outputs,
    onnx_twin,
    same_as_input,
)
from .linalg import gemm
from .normalization import _normalize, layer_norm
from .registry import BasicOps, Cost, NodeFacts, register, register_movement, shape_rule

B = BasicOps

GELU_ERF = B(div=1, root=1, add=1, mul=2)          # 0.5·x·(1 + erf(x/√2))
GELU_TANH = B(sub=1, add=1, div=1, root=1, mul=2)  # Li et al. eq. 3
SIGMOID = B(sub=1, add=1, div=1, root=1)
RMS_PER_ELEMENT = B(mul=3, add=1)                   # square, sum, ·rstd, ·gamma
RMS_PER_ROW = B(div=2, add=1, root=1)               # mean, + eps, sqrt, 1/x



def activation_by_name(name: str) -> BasicOps:
    """Per-element cost of a fused ``activation`` attribute (Relu, Sigmoid, LeakyRelu, ...)."""
    if not name:
        return B()
    for key, bops in ACTIVATIONS.items():
        if key.lower() == name.lower():
            return bops
    return {"gelu": GELU_ERF, "fastgelu": GELU_TANH, "silu": SIGMOID + B(mul=1)}.get(
        name.lower(), B(root=1))


# ------------------------------------------------------------------------------- gelus


register("Gelu", domain=MS)(elementwise(GELU_ERF))
register("BiasGelu", domain=MS)(elementwise(GELU_ERF + B(add=1)))
# x·sigmoid(alpha·x): the alpha mul, sigmoid, the product.
register("QuickGelu", domain=MS)(elementwise(SIGMOID + B(mul=2)))
# x·sigmoid(alpha·x)·scale (ScaledSiLU)
register("ScaledSiLU", domain=MS)(elementwise(SIGMOID + B(mul=3)))


@register("FastGelu", domain=MS)
def fast_gelu(f: NodeFacts) -> Cost:
    return elementwise(GELU_TANH + B(add=int(f.has_input(1))))(f)


@register("BiasAdd", domain=MS)
def bias_add(f: NodeFacts) -> Cost:
    return elementwise(B(add=2))(f)  # X + bias + skip


@register("BiasSplitGelu", domain=MS)
def bias_split_gelu(f: NodeFacts) -> Cost:
    """X (B, HW, 2D) + bias, split in halves, left · gelu(right): per output element
    two bias adds, a gelu and the product."""
    return elementwise(B(add=2, mul=1) + GELU_ERF)(f)


@register("BiasDropout", "BitmaskBiasDropout", domain=MS)
def bias_dropout(f: NodeFacts) -> Cost:
    """data + bias (+ residual), then the dropout mask multiply (inference: ratio 0 is free,
    but the kernel still scales)."""
    adds = 1 + int(f.has_input(2))
    return elementwise(B(add=adds, mul=1))(f)


@register("BiasSoftmax", domain=MS)
def bias_softmax(f: NodeFacts) -> Cost:
    # data + bias, then softmax (compare, sub, exp, add, div) per element
    return elementwise(B(add=1) + B(sub=2, root=1, add=1, div=1), over="input")(f)


# ------------------------------------------------------------------------ normalizations


def _rows(shape: tuple[int, ...], axis: int) -> int:
    return math.prod(shape[: axis % len(shape)])


@register("SkipLayerNormalization", domain=MS)
def skip_layer_norm(f: NodeFacts) -> Cost:
    """input + skip (+ bias, input 4), then LayerNorm over the last axis with gamma (+ beta)."""
    shape = f.shape(0)
    n = math.prod(shape)
    adds = B(add=n * (1 + int(f.has_input(4))))
    norm = _normalize(n, _rows(shape, -1), affine_mul=True, affine_add=f.has_input(3))
    return bops_cost(adds + norm)


def _rms(shape: tuple[int, ...], axis: int) -> BasicOps:
    n = math.prod(shape)
    return RMS_PER_ELEMENT * n + RMS_PER_ROW * _rows(shape, axis)


@register("SkipSimplifiedLayerNormalization", domain=MS)
def skip_simplified_layer_norm(f: NodeFacts) -> Cost:
    """input + skip (+ bias, input 3), then RMSNorm over the last axis with gamma."""
    shape = f.shape(0)
    adds = B(add=math.prod(shape) * (1 + int(f.has_input(3))))
    return bops_cost(adds + _rms(shape, -1))


@register("SimplifiedLayerNormalization")
@register("SimplifiedLayerNormalization", domain=MS)
def simplified_layer_norm(f: NodeFacts) -> Cost:
    """RMSNorm (ORT registers it in the ONNX domain): as ONNX RMSNormalization."""
    shape = f.shape(0)
    return bops_cost(_rms(shape, int(f.attr("axis", -1))))


register("LayerNormalization", domain=MS)(layer_norm)


@register("GroupNorm", domain=MS)
def ms_group_norm(f: NodeFacts) -> Cost:
    """GroupNorm (NHWC by default, ``groups``) plus its optional SiLU ``activation``."""
    shape = f.shape(0)
    n = math.prod(shape)
    bops = _normalize(n, shape[0] * int(f.attr("groups", 1)), True, True)
    if int(f.attr("activation", 0)):
        bops = bops + (SIGMOID + B(mul=1)) * n
    return bops_cost(bops)


@register("SkipGroupNorm", domain=MS)
def ms_skip_group_norm(f: NodeFacts) -> Cost:
    n = f.numel(0)
    adds = B(add=n * (1 + int(f.has_input(4))))
    return ms_group_norm(f) + bops_cost(adds)


@register("EmbedLayerNormalization", domain=MS)
def embed_layer_norm(f: NodeFacts) -> Cost:
    """Three embedding gathers (movement) summed (word + position (+ segment)), then
    LayerNorm with gamma and beta; the mask index is a per-row sum."""
    out = f.out_shape(0)
    n = math.prod(out)
    adds = B(add=n * (1 + int(f.has_input(4))))
    norm = _normalize(n, _rows(out, -1), True, True)
    mask = B(add=f.numel(7)) if f.has_input(7) else B()
    return bops_cost(adds + norm + mask)


# ----------------------------------------------------------------------- fused dot ops


@register("FusedConv", domain=MS)
def fused_conv(f: NodeFacts) -> Cost:
    """Conv (+ bias) + Z (the fused residual, input 3) + ``activation``, per output."""
    outputs = f.out_numel(0)
    extra = B(add=outputs * int(f.has_input(3)))
    extra = extra + activation_by_name(str(f.attr("activation", ""))) * outputs
    return conv(f) + bops_cost(extra)


@register("NhwcConv", "NhwcFusedConv", domain=MS)
def nhwc_conv(f: NodeFacts) -> Cost:
    w = f.shape(1)
    outputs = f.out_numel(0)
    cost = dot_cost(outputs * math.prod(w[1:]), outputs, outputs if f.has_input(2) else 0)
    if f.node.op_type == "NhwcFusedConv":
        extra = B(add=outputs * int(f.has_input(3)))
        extra = extra + activation_by_name(str(f.attr("activation", ""))) * outputs
        cost = cost + bops_cost(extra)
    return cost


def fused_matmul_k(a: tuple[int, ...], trans_a: bool, trans_batch_a: bool) -> int:
    """The reduction length of FusedMatMul's A after its batch and matrix transposes.

    transBatchA moves A's first dim in front of the last (``(d0, d1…, dn) → (d1…, d0, dn)``),
    transA then swaps the last two.
    """
    if not trans_a:
        return a[-1]
    return a[0] if trans_batch_a and len(a) > 2 else a[-2]


@register("FusedMatMul", "TransposeMatMul", "FusedMatMulActivation", domain=MS)
def fused_matmul(f: NodeFacts) -> Cost:
    """alpha · op(A) · op(B): MatMul MACs, one mul per output when alpha ≠ 1, plus the fused
    activation of FusedMatMulActivation."""
    a = f.shape(0)
    k = fused_matmul_k(a, bool(int(f.attr("transA", 0))), bool(int(f.attr("transBatchA", 0))))
    outputs = f.out_numel(0)
    cost = dot_cost(outputs * k, outputs, 0)
    extra = B(mul=outputs if float(f.attr("alpha", 1.0)) != 1.0 else 0)
    extra = extra + activation_by_name(str(f.attr("activation", ""))) * outputs
    return cost + bops_cost(extra)


@register("FusedGemm", domain=MS)
def fused_gemm(f: NodeFacts) -> Cost:

    outputs = f.out_numel(0)
    return gemm(f) + bops_cost(activation_by_name(str(f.attr("activation", ""))) * outputs)


@register("GemmFastGelu", domain=MS)
def gemm_fast_gelu(f: NodeFacts) -> Cost:
    """X (…, K) · W (K, N) (+ bias), then FastGelu per output."""
    x = f.shape(0)
    outputs = f.out_numel(0)
    bias = outputs if f.has_input(2) else 0
    return dot_cost(outputs * x[-1], outputs, bias) + bops_cost(GELU_TANH * outputs)


# Contrib twins of ONNX data-movement ops: zero arithmetic, bytes counted.
register_movement("ExpandDims", "GatherND", "Pad", "Trilu", "Range", domain=MS)


# ------------------------------------------------------------- output shapes (ONNX has none)


shape_rule("Gelu", "FastGelu", "QuickGelu", "BiasGelu", "BiasAdd", "ScaledSiLU", "BiasSoftmax",
           "GroupNorm", "SkipGroupNorm", "BiasDropout", "BitmaskBiasDropout", "Trilu",
           domain=MS)(same_as_input)
shape_rule("FusedConv", domain=MS)(onnx_twin("Conv", 11, (0, 1, 2),
                                             ("activation", "activation_params")))
shape_rule("FusedGemm", domain=MS)(onnx_twin("Gemm", 13, (0, 1, 2), (
    "activation", "activation_alpha", "activation_beta", "activation_gamma")))


@shape_rule("LayerNormalization", "SimplifiedLayerNormalization", domain=MS)
@shape_rule("SimplifiedLayerNormalization")
def _layer_norm_shapes(f: NodeFacts) -> list[ShapeOut | None]:
    return norm_outputs(f, int(f.attr("axis", -1)))


@shape_rule("BiasSplitGelu", domain=MS)
def _bias_split_gelu(f: NodeFacts) -> list[ShapeOut | None]:
    s = f.dims(0)
    return [(None if s is None else (*s[:-1], div_dims(s[-1], 2)), f.dtype(0))]


@shape_rule("SkipLayerNormalization", "SkipSimplifiedLayerNormalization", domain=MS)
def _skip_layer_norm(f: NodeFacts) -> list[ShapeOut | None]:
    return norm_outputs(f, -1, n_extra_same=1)


def _fused_matmul_operand(s: Shape | None, trans: bool, trans_batch: bool) -> Shape | None:
    if s is None:
        return None
    if trans_batch and len(s) > 2:
        s = (*s[1:-1], s[0], s[-1])
    if trans and len(s) >= 2:
        s = (*s[:-2], s[-1], s[-2])
    return s


@shape_rule("FusedMatMul", "TransposeMatMul", "FusedMatMulActivation", domain=MS)
def _fusedmatmul_shape(f: NodeFacts) -> list[ShapeOut | None]:
    a = _fused_matmul_operand(f.dims(0), bool(int(f.attr("transA", 0))),
                              bool(int(f.attr("transBatchA", 0))))
    b = _fused_matmul_operand(f.dims(1), bool(int(f.attr("transB", 0))),
                              bool(int(f.attr("transBatchB", 0))))
    return [(matmul_shape(a, b), f.dtype(0))]


@shape_rule("GemmFastGelu", domain=MS)
def _gemm_fast_gelu(f: NodeFacts) -> list[ShapeOut | None]:
    x, w = f.dims(0), f.dims(1)
    return [(None if x is None or w is None else (*x[:-1], w[-1]), f.dtype(0))]


@shape_rule("EmbedLayerNormalization", domain=MS)
def _embed_layer_norm(f: NodeFacts) -> list[ShapeOut | None]:
    ids, word = f.dims(0), f.dims(2)
    if ids is None or word is None:
        return [None]
    out: Shape = (*ids, word[-1])
    return [(out, f.dtype(2)), ((ids[0],), "int32"), (out, f.dtype(2))]
