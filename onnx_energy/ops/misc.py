"""The rest of the ONNX domain: Det, LRN, MeanVarianceNormalization, CumProd, losses,
random generators, TfIdfVectorizer, ImageDecoder, SwiGLU, CausalConvWithState.

Each rule writes its per-element decomposition beside it, in the conventions of
`activation` (transcendentals one ``root``, comparisons one ``sub``).
"""

from __future__ import annotations

import math

from .helpers import bops_cost, dot_cost, elementwise, same_as_input
from .normalization import _normalize
from .registry import BasicOps, Cost, NodeFacts, ShapeUnknownError, register, shape_rule

B = BasicOps
SWISH = B(sub=1, add=1, div=1, root=1, mul=1)  # x·sigmoid(x), as activation.Swish



@register("Det")
def det(f: NodeFacts) -> Cost:
    """LU elimination with partial pivoting per (n × n) matrix: step k finds the pivot
    (n−k−1 compares), forms n−k−1 factors (div) and updates the (n−k−1)² trailing block
    (a_ij −= l_ik·u_kj, one multiply-accumulate each: counted as MACs); the determinant is the
    product of the n pivots (n−1 mul)."""
    x = f.shape(0)
    n = x[-1]
    matrices = math.prod(x[:-2])
    macs = (n - 1) * n * (2 * n - 1) // 6 * matrices
    tri = n * (n - 1) // 2 * matrices
    bops = B(mul=macs + max(n - 1, 0) * matrices, sub=macs + tri, div=tri)
    return Cost(macs=macs, flops=bops.total, bops=bops)


@register("LRN")
def lrn(f: NodeFacts) -> Cost:
    """x / (bias + alpha/size · Σ x²)^beta over ``size`` channels: square (mul), window sum
    (size−1 add), alpha/size (mul), + bias (add), the power (exp(beta·log): 2 root, mul),
    the division."""
    size = int(f.attr("size", 1))
    return elementwise(B(mul=3, add=size, root=2, div=1))(f)


@register("MeanVarianceNormalization")
def mean_variance_normalization(f: NodeFacts) -> Cost:
    """(x − mean)/sqrt(var) over ``axes`` (default N, H, W), without affine terms."""
    shape = f.shape(0)
    axes = [int(a) % len(shape) for a in f.attr("axes", [0, 2, 3])]
    n = math.prod(shape)
    window = math.prod(shape[a] for a in set(axes))
    rows = n // window if window else 0
    return bops_cost(_normalize(n, rows, affine_mul=False, affine_add=False))


@register("CumProd")
def cumprod(f: NodeFacts) -> Cost:
    n = f.out_numel(0)
    return bops_cost(B(mul=n))


def _nll_bops(targets: int, weighted: bool, reduction: str) -> BasicOps:
    """Per target: pick −input[target] (sub), × weight (mul); sum (add) and mean (div; with
    weights, the sum of the picked weights (add) and one div)."""
    bops = B(sub=targets, mul=targets if weighted else 0)
    if reduction != "none" and targets:
        bops = bops + B(add=targets - 1)
        if reduction == "mean":
            bops = bops + B(div=1, add=targets - 1 if weighted else 0)
    return bops


@register("NegativeLogLikelihoodLoss")
def nll_loss(f: NodeFacts) -> Cost:
    reduction = str(f.attr("reduction", "mean"))
    return bops_cost(_nll_bops(f.numel(1), f.has_input(2), reduction))


@register("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy_loss(f: NodeFacts) -> Cost:
    """LogSoftmax over the class axis (as `normalization.softmax`), then the NLL loss."""
    shape = f.shape(0)
    n = math.prod(shape)
    rows = n // shape[1] if len(shape) > 1 and shape[1] else n
    log_softmax = B(sub=3, root=1, add=1) * n + B(root=rows)
    reduction = str(f.attr("reduction", "mean"))
    return bops_cost(log_softmax + _nll_bops(f.numel(1), f.has_input(2), reduction))


# Random generators: the raw bits come from an integer generator (no arithmetic datapath);
# uniform scales them to [low, high) (mul, add); normal uses Box–Muller (log, sqrt, cos;
# −2·ln u, 2π·u, the product, ·scale; + mean); Bernoulli compares a uniform with p.
UNIFORM = B(mul=1, add=1)
NORMAL = B(root=3, mul=4, add=1)
register("RandomUniform", "RandomUniformLike")(elementwise(UNIFORM))
register("RandomNormal", "RandomNormalLike")(elementwise(NORMAL))
register("Bernoulli")(elementwise(B(sub=1)))


@register("Multinomial")
def multinomial(f: NodeFacts) -> Cost:
    """input (batch, C) of log-probabilities: exp and a running sum per class, then per sample
    a uniform draw scaled by the total (mul) and a binary search (⌈log2 C⌉ compares)."""
    batch, classes = f.shape(0)
    samples = int(f.attr("sample_size", 1))
    per_row = B(root=classes, add=classes)
    per_sample = B(mul=1, sub=max(1, math.ceil(math.log2(classes))) if classes > 1 else 1)
    return bops_cost(per_row * batch + per_sample * (batch * samples))


@register("TfIdfVectorizer")
def tfidf_vectorizer(f: NodeFacts) -> Cost:
    """Per input position, each n-gram length in [min, max] and each skip in [0, max_skip]
    is looked up in the pool (one compare, counted once); IDF/TFIDF weight each output (mul)."""
    positions = f.numel(0)
    grams = int(f.attr("max_gram_length", 1)) - int(f.attr("min_gram_length", 1)) + 1
    skips = int(f.attr("max_skip_count", 0)) + 1
    lookups = positions * max(grams, 1) * skips
    mode = str(f.attr("mode", "TF"))
    return bops_cost(B(sub=lookups, mul=f.out_numel(0) if mode != "TF" else 0))


@register("ImageDecoder")
def image_decoder(f: NodeFacts) -> Cost:
    """An estimate for baseline JPEG: every decoded element goes through a separable 8×8
    inverse DCT (two 8-long dot products). The output shape is only known when the model
    states it; entropy decoding and colour conversion are not counted."""
    n = f.out_numel(0)
    return dot_cost(16 * n, 2 * n, 0)


@register("SwiGLU")
def swiglu(f: NodeFacts) -> Cost:
    """Swish_alpha(A) · B: alpha·a (mul, when alpha ≠ 1), Swish, the product (mul)."""
    alpha = float(f.attr("alpha", 1.0))
    return elementwise(SWISH + B(mul=1 + int(alpha != 1.0)))(f)


@register("CausalConvWithState")
def causal_conv_with_state(f: NodeFacts) -> Cost:
    """Depthwise causal conv: input (B, C, L), weight (C, 1, k): B·C·L dot products of
    length k (+ bias), then the optional SiLU per output."""
    outputs = f.out_numel(0)
    k = f.shape(1)[-1]
    cost = dot_cost(outputs * k, outputs, outputs if f.has_input(2) else 0)
    if str(f.attr("activation", "none")).lower() in ("silu", "swish"):
        cost = cost + bops_cost(SWISH * outputs)
    return cost


@register("ScatterND", "ScatterElements")
def scatter_reduce(f: NodeFacts) -> Cost:
    """A plain scatter only moves data; with ``reduction`` add/mul/max/min every update
    element is combined with its target (one add, mul or compare)."""
    reduction = str(f.attr("reduction", "none"))
    n = f.numel(2)
    per = {"add": B(add=1), "mul": B(mul=1), "max": B(sub=1), "min": B(sub=1)}.get(reduction)
    return bops_cost(per * n) if per is not None else Cost()


@register("SequenceMap")
def sequence_map(f: NodeFacts) -> Cost:
    """SequenceMap runs its body once per sequence element; the sequences' lengths are only
    known at run time, so the node is reported unresolved (never counted as zero)."""
    raise ShapeUnknownError("SequenceMap: its body cost times the sequence length")


# MeanVarianceNormalization is a function op without an inference function.
shape_rule("MeanVarianceNormalization")(same_as_input)
