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
from .detection import grid_sample
from .helpers import (
    MS,
    ShapeOut,
    bops_cost,
    broadcast_shapes,
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


@register("QEmbedLayerNormalization", domain=MS)
def qembed_layer_norm(f: NodeFacts) -> Cost:
    """EmbedLayerNormalization over int8/uint8 tables: each gathered word, position (and
    segment, input 4) value is dequantized ((q − zp)·scale: sub, mul) before the sum, gamma
    and beta (D each) are dequantized once, then the same adds, LayerNorm and mask sum."""
    out = f.out_shape(0)
    n = math.prod(out)
    tables = 2 + int(f.given(4))
    dequant = B(sub=1, mul=1) * (n * tables + 2 * out[-1])
    adds = B(add=n * (tables - 1))
    norm = _normalize(n, _rows(out, -1), True, True)
    mask = B(add=f.numel(7)) if f.has_input(7) else B()
    return bops_cost(dequant + adds + norm + mask)


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


@shape_rule("EmbedLayerNormalization", "QEmbedLayerNormalization", domain=MS)
def _embed_layer_norm(f: NodeFacts) -> list[ShapeOut | None]:
    """(B, S, D) in the float type (QEmbed: its gamma scale's, input 11), the int32 mask
    index (B,), and the embedding sum."""
    ids, word = f.dims(0), f.dims(2)
    if ids is None or word is None:
        return [None]
    out: Shape = (*ids, word[-1])
    dtype = f.dtype(11) if f.node.op_type == "QEmbedLayerNormalization" else f.dtype(2)
    return [(out, dtype), ((ids[0],), "int32"), (out, dtype)]


# --------------------------------------------------------- more contrib ops, by kind of work
# (onnxruntime's contrib schemas beyond the common fusions; each decomposition is beside it)


@register("BitmaskDropout", domain=MS)
def bitmask_dropout(f: NodeFacts) -> Cost:
    """Inference (no training_mode): an identity; training draws a mask (one compare) and
    scales (one mul) per element. The mode is a run-time input, so the scale is counted."""
    return elementwise(B(sub=1, mul=1))(f)


@register("BranchwiseRMSNorm", domain=MS)
def branchwise_rms_norm(f: NodeFacts) -> Cost:
    """RMSNorm of each of ``num_branches`` branches over its own H elements (rows = elements / H)
    with the optional scale."""
    x = f.shape(0)
    n = math.prod(x)
    branches = int(f.attr("num_branches", 0))
    width = x[-1] // branches if branches and x[-1] % branches == 0 else x[-1]
    rows = n // width if width else 0
    per = B(mul=2 + int(f.has_input(1)), add=1)
    return bops_cost(per * n + RMS_PER_ROW * rows)


@register("GatedRMSNorm", domain=MS)
def gated_rms_norm(f: NodeFacts) -> Cost:
    """X·rsqrt(mean(X²) + eps)·scale·act(gate), rows of C = len(scale): RMSNorm with gamma
    per element, the gate activation (SiLU: sigmoid + mul; sigmoid) and the product."""
    n = f.numel(0)
    c = f.shape(1)[-1]
    gate = SIGMOID + B(mul=1) if str(f.attr("activation", "silu")) in ("silu", "swish") \
        else SIGMOID
    return bops_cost(RMS_PER_ELEMENT * n + RMS_PER_ROW * (n // c if c else 0)
                     + (gate + B(mul=1)) * n)


@register("GatedAdd", domain=MS)
def gated_add(f: NodeFacts) -> Cost:
    """X + Y·gate per element; with gate_weight the per-row gate is sigmoid(gate · w), a dot
    product of the row's gate features."""
    n = f.out_numel(0)
    cost = elementwise(B(mul=1, add=1))(f)
    if f.has_input(3):
        g = f.shape(2)
        rows = math.prod(g[:-1])
        cost = cost + dot_cost(rows * g[-1], rows, 0) + bops_cost(SIGMOID * rows)
    return cost if n else Cost()


@register("HyperConnectionPreMix", domain=MS)
def hyper_connection_pre_mix(f: NodeFacts) -> Cost:
    """Y[..., h] = scale·Σ_c X[..., c, h]·pre_mix[..., c, h]: per output a C-long dot product
    and the scale."""
    outputs = f.out_numel(0)
    c = f.numel(0) // outputs if outputs else 0
    return dot_cost(outputs * c, outputs, 0) + bops_cost(B(mul=outputs))


@register("HyperConnectionPostMix", domain=MS)
def hyper_connection_post_mix(f: NodeFacts) -> Cost:
    """Y[..., k, h] = Σ_c stream_mix[c, k]·S[c, h] + post_mix[k]·block[h]: a C-long dot
    product per output with the mix (else the identity copy), plus the injection mul-add."""
    outputs = f.out_numel(0)
    branches = int(f.attr("num_branches", 0)) or 1
    cost = bops_cost(B(mul=1, add=1) * outputs)
    if f.has_input(3):
        cost = cost + dot_cost(outputs * branches, outputs, 0)
    return cost


@register("HyperConnectionLowRankMix", domain=MS)
def hyper_connection_low_rank_mix(f: NodeFacts) -> Cost:
    """streams (..., C·H): the optional post-mix prologue (mul-add per element), RMSNorm per
    branch, the low-rank gate network (down (C·H → r) and up (r → gates) products, SiLU),
    and the pre-mix reduction (a C-long dot product per output)."""
    s = f.shape(0)
    n = math.prod(s)
    branches = int(f.attr("num_branches", 0)) or 1
    rows = n // s[-1] if s[-1] else 0
    down, up = f.numel(2), f.numel(3)
    cost = bops_cost(RMS_PER_ELEMENT * n + RMS_PER_ROW * rows * branches)
    cost = cost + dot_cost(rows * down, rows * f.shape(2)[-1], 0)
    cost = cost + dot_cost(rows * up, rows * f.shape(3)[-1], 0)
    cost = cost + bops_cost((SIGMOID + B(mul=1)) * rows * f.shape(2)[-1])
    outputs = f.out_numel(0)
    cost = cost + dot_cost(outputs * branches, outputs, 0)
    if f.has_input(5):
        cost = cost + bops_cost(B(mul=1, add=1) * n)
    return cost


@register("CDist", domain=MS)
def cdist(f: NodeFacts) -> Cost:
    """A (M, K), B (N, K): every pair's distance, K sub, mul and add (euclidean adds the sqrt;
    sqeuclidean not)."""
    m, k = f.shape(0)
    n = f.shape(1)[0]
    pairs = m * n
    bops = B(sub=k, mul=k, add=k - 1) * pairs
    if str(f.attr("metric", "sqeuclidean")) == "euclidean":
        bops = bops + B(root=pairs)
    return bops_cost(bops)


@register("ComplexMul", "ComplexMulConj", domain=MS)
def complex_mul(f: NodeFacts) -> Cost:
    """(a + bi)(c ± di) per complex output (the last axis holds the pair): 4 mul, add, sub."""
    return bops_cost(B(mul=4, add=1, sub=1) * (f.out_numel(0) // 2))


@register("ConvTransposeWithDynamicPads", domain=MS)
def conv_transpose_dynamic_pads(f: NodeFacts) -> Cost:
    """ConvTranspose with its pads as an input (X, W, Pads, B): the input-volume formula of
    ONNX ConvTranspose, bias input 3."""
    x, w = f.shape(0), f.shape(1)
    macs = math.prod(x) * math.prod(w[1:])
    outputs = f.out_numel(0)
    bias = outputs if f.has_input(3) else 0
    return Cost(macs=macs, flops=2 * macs + bias, bias=bias, bops=B(add=macs + bias, mul=macs))


@register("CropAndResize", domain=MS)
def crop_and_resize(f: NodeFacts) -> Cost:
    """Output (R, C, h, w): a bilinear sample (4 taps) per output element (nearest: a copy),
    the sample position per output location (2 mul, 2 add)."""
    r, c, h, w = f.out_shape(0)
    per_location = B(mul=2, add=2)
    if str(f.attr("mode", "bilinear")) == "nearest":
        return bops_cost(per_location * (r * h * w))
    return bops_cost(B(mul=4, add=3) * (r * c * h * w) + (per_location + B(sub=6, mul=4))
                     * (r * h * w))


@register("Inverse", domain=MS)
def inverse(f: NodeFacts) -> Cost:
    """Gauss-Jordan inversion of each (n × n) matrix: n pivot rows, each scaled (n div) and
    eliminated from the n − 1 others (n multiply-accumulates each): n²(n − 1) MACs."""
    x = f.shape(0)
    n = x[-1]
    mats = math.prod(x[:-2])
    macs = n * n * (n - 1) * mats
    bops = B(mul=macs, sub=macs, div=n * n * mats)
    return Cost(macs=macs, flops=bops.total, bops=bops)


@register("Rfft", "Irfft", domain=MS)
def ms_rfft(f: NodeFacts) -> Cost:
    """A complex radix-2 FFT per transformed signal (as ONNX DFT in `signal`), over the last
    ``signal_ndim`` axes of the real signal; Irfft adds the 1/n scaling."""
    from .signal import fft_bops

    x = f.shape(0)
    nd = int(f.attr("signal_ndim", 1))
    real = x if f.node.op_type == "Rfft" else f.out_shape(0)
    n = real[-1] if nd == 1 else math.prod(real[-nd:])
    transforms = math.prod(real) // n if n else 0
    bops = fft_bops(n) * transforms
    if f.node.op_type == "Irfft":
        bops = bops + B(div=math.prod(real))
    return bops_cost(bops)


@register("DynamicTimeWarping", domain=MS)
def dynamic_time_warping(f: NodeFacts) -> Cost:
    """Cost matrix (M, N): per cell the cheapest of three predecessors (2 compares) plus the
    cell's cost (add); the backtrack is a walk (movement)."""
    n = f.numel(0)
    return bops_cost(B(sub=2, add=1) * n)


@register("MaxpoolWithMask", "NhwcMaxPool", domain=MS)
def ms_max_pool(f: NodeFacts) -> Cost:
    """A compare per window element and output (as MaxPool); the mask is a select."""
    n = math.prod(f.attr("kernel_shape", [1])) * f.out_numel(0)
    return Cost(flops=n, bops=B(sub=n))


@register("TorchEmbedding", domain=MS)
def torch_embedding(f: NodeFacts) -> Cost:
    """A row gather (movement)."""
    return Cost()


@register("UnfoldTensor", domain=MS)
def unfold_tensor(f: NodeFacts) -> Cost:
    """Sliding windows: a strided copy (movement)."""
    return Cost()


@register("Unique", domain=MS)
def ms_unique(f: NodeFacts) -> Cost:
    """A hash per element to find its first occurrence (counted as one compare) and the
    count increment (add)."""
    return bops_cost(B(sub=1, add=1) * f.numel(0))


@register("WordConvEmbedding", domain=MS)
def word_conv_embedding(f: NodeFacts) -> Cost:
    """Sequence (S, W) of character ids, W (E, 1, k, char_emb), B (E), C (chars, char_emb):
    the char gather (movement), a 1-D conv of E filters over each word (k·char_emb MACs per
    output position, + bias), tanh, and the max over positions (compare)."""
    seq = f.shape(0)
    w = f.shape(1)
    words, width = math.prod(seq[:-1]), seq[-1]
    k = w[2] if len(w) > 2 else int(f.attr("conv_window_size", 1))
    positions = max(width - k + 1, 1)
    outputs = words * w[0] * positions
    return dot_cost(outputs * math.prod(w[1:]), outputs, outputs) + bops_cost(
        B(root=outputs, sub=outputs))


@register("RemovePadding", "RestorePadding", domain=MS)
def padding_moves(f: NodeFacts) -> Cost:
    """Packing tokens (a prefix count per sequence: one add per token) or scattering them
    back: data movement."""
    if f.node.op_type == "RemovePadding":
        return bops_cost(B(add=f.numel(1) * f.shape(0)[1] if f.has_input(1) else 0))
    return Cost()


@register("CausalConvWithState", domain=MS)
def ms_causal_conv_with_state(f: NodeFacts) -> Cost:
    """Stateful depthwise causal conv: output (B, C, ...) of dot products of the kernel's
    volume (+ bias), then the optional SiLU; the state shift is movement."""
    k = math.prod(f.shape(1)[2:]) if len(f.shape(1)) > 2 else f.shape(1)[-1]
    return _causal_conv(f, k, bias_input=2)


@register("VarlenCausalConvWithState", domain=MS)
def varlen_causal_conv_with_state(f: NodeFacts) -> Cost:
    """Packed tokens (T, C), weight (C, 1, k): T·C dot products of length k (+ bias, input 3),
    then the optional SiLU."""
    return _causal_conv(f, f.shape(1)[-1], bias_input=3)


def _causal_conv(f: NodeFacts, k: int, bias_input: int) -> Cost:
    """A dot product of length ``k`` per output (+ the bias when input ``bias_input`` is
    given), then the SiLU the ``activation`` attribute names."""
    outputs = f.out_numel(0)
    cost = dot_cost(outputs * k, outputs, outputs if f.has_input(bias_input) else 0)
    if str(f.attr("activation", "none")).lower() in ("silu", "swish"):
        cost = cost + bops_cost((SIGMOID + B(mul=1)) * outputs)
    return cost


@register("SparseToDenseMatMul", domain=MS)
def sparse_to_dense_matmul(f: NodeFacts) -> Cost:
    """Sparse A (M, K) · dense B (K, N): counted densely (the non-zero count is in the sparse
    tensor's values, which are never read), M·N·K MACs, plus alpha."""
    out = f.out_shape(0)
    b = f.shape(1)
    k = b[1] if int(f.attr("transB", 0)) else b[0]
    outputs = math.prod(out)
    extra = B(mul=outputs) if float(f.attr("alpha", 1.0)) != 1.0 else B()
    return dot_cost(outputs * k, outputs, 0) + bops_cost(extra)


@register("RMSNormRotary", domain=MS)
def rms_norm_rotary(f: NodeFacts) -> Cost:
    """X (B, S, heads, stride): RMSNorm of the ``input_width`` slice (all of the last axis by
    default) with its scale, then the rotation of ``rotary_embedding_dim`` elements per head
    (4 mul, add, sub per pair)."""
    x = f.shape(0)
    rows = math.prod(x[:-1])
    width = int(f.attr("input_width", 0)) or x[-1]
    rot = int(f.attr("rotary_embedding_dim", 0)) or width
    n = rows * width
    return bops_cost(RMS_PER_ELEMENT * n + RMS_PER_ROW * rows
                     + B(mul=4, add=1, sub=1) * (rows * rot // 2))


@register("EngramGate", domain=MS)
def engram_gate(f: NodeFacts) -> Cost:
    """key, query (B, S, M, H), value (B, S, H): RMSNorm of keys and queries, their per-row dot
    product (H MACs per (B, S, M)), the scaled sigmoid gate, gate · RMSNorm(value) per
    element."""
    k = f.shape(0)
    rows = math.prod(k[:-1])
    h = k[-1]
    n = rows * h
    norms = (RMS_PER_ELEMENT * n + RMS_PER_ROW * rows) * 2
    value = f.numel(2)
    return (dot_cost(rows * h, rows, 0) + bops_cost(norms + (SIGMOID + B(mul=1)) * rows
                                                     + B(mul=1) * n + RMS_PER_ELEMENT * value))


shape_rule("BitmaskDropout", "BranchwiseRMSNorm", "GatedRMSNorm", "GatedAdd", "Inverse",
           "VarlenCausalConvWithState", "RMSNormRotary", domain=MS)(same_as_input)
shape_rule("MaxpoolWithMask", domain=MS)(onnx_twin("MaxPool", 12, (0,)))
# onnxruntime's NHWC kernels (the uint8 max pool of a quantized model saved at
# ORT_ENABLE_ALL; the CUDA convolutions): X and Y channels-last, W as ONNX's [M, C/g, kH, kW].
shape_rule("NhwcMaxPool", domain=MS)(onnx_twin("MaxPool", 12, (0,), nhwc=True))
shape_rule("NhwcConv", domain=MS)(onnx_twin("Conv", 11, (0, 1, 2), nhwc=True))
shape_rule("NhwcFusedConv", domain=MS)(onnx_twin("Conv", 11, (0, 1, 2),
                                                 ("activation", "activation_params"), nhwc=True))


@shape_rule("TorchEmbedding", domain=MS)
def _torch_embedding(f: NodeFacts) -> list[ShapeOut | None]:
    w, idx = f.dims(0), f.dims(1)
    return [(None if w is None or idx is None else (*idx, w[-1]), f.dtype(0))]


@shape_rule("ComplexMul", "ComplexMulConj", domain=MS)
def _complex_mul(f: NodeFacts) -> list[ShapeOut | None]:
    return [(broadcast_shapes(f.dims(0), f.dims(1)), f.dtype(0))]


@shape_rule("CDist", domain=MS)
def _cdist(f: NodeFacts) -> list[ShapeOut | None]:
    a, b = f.dims(0), f.dims(1)
    return [(None if a is None or b is None else (a[0], b[0]), f.dtype(0))]


register("GridSample", domain=MS)(grid_sample)
