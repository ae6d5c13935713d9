"""Detection, sampling and selection ops: NonMaxSuppression, RoiAlign, MaxRoiPool, TopK,
Unique, GridSample, AffineGrid, DeformConv, Col2Im.

Data-dependent work is bounded from the static shapes and written beside each rule:
NMS compares every pair of candidates (a worst case without early exits), sorts count
n·⌈log2 n⌉ comparisons, RoiAlign with adaptive sampling assumes 2×2 samples per bin.
"""

from __future__ import annotations

import math

from .helpers import bops_cost, dot_cost
from .registry import BasicOps, Cost, NodeFacts, register

B = BasicOps

#: intersection corners (4 compares), extents (2 sub), clamp at 0 (2 compares), area (mul),
#: union = a1 + a2 − inter (add, sub), IoU (div), threshold (compare).
IOU_PAIR = B(sub=10, mul=1, add=1, div=1)
#: a box's area: two extents (sub) and their product.
BOX_AREA = B(sub=2, mul=1)
#: bilinear interpolation of one value from 4 taps.
BILINEAR_TAP = B(mul=4, add=3)
#: the 4 tap weights of a 2D sample: floor (2 sub), fractions (2 sub), 1 − frac (2 sub),
#: the weight products (4 mul).
BILINEAR_WEIGHTS = B(sub=6, mul=4)



def sort_compares(n: int) -> int:
    return n * math.ceil(math.log2(n)) if n > 1 else 0



@register("NonMaxSuppression")
def non_max_suppression(f: NodeFacts) -> Cost:
    """boxes (B, n, 4), scores (B, C, n): per batch and class, a score threshold compare per
    box, a sort of the n scores, and IoU against the kept boxes. Each kept box is compared
    with the remaining candidates: at most n·(n−1)/2 pairs, or M·n with M =
    max_output_boxes_per_class when its value is known. Box areas are computed once per box
    and batch; center_point_box adds the corner conversion (w/2, h/2, two sub, two add)."""
    boxes = f.shape(0)
    scores = f.shape(1)
    batch, classes, n = scores
    pairs = n * (n - 1) // 2
    limit = f.scalar(2)
    if limit is not None and limit >= 0:
        pairs = min(pairs, limit * n)
    per_class = B(sub=n + sort_compares(n)) + IOU_PAIR * pairs
    per_box = BOX_AREA + (B(mul=2, add=2, sub=2) if int(f.attr("center_point_box", 0)) else B())
    return bops_cost(per_class * (batch * classes) + per_box * (boxes[0] * boxes[1]))


@register("RoiAlign")
def roi_align(f: NodeFacts) -> Cost:
    """Output (R, C, ph, pw): each bin averages (or maxes) s×s bilinear samples, s =
    sampling_ratio (2 when adaptive, 0). Sample positions and tap weights are computed once
    per ROI and bin sample (shared by the channels)."""
    r, c, ph, pw = f.out_shape(0)
    s = int(f.attr("sampling_ratio", 0)) or 2
    samples = s * s
    outputs = r * c * ph * pw
    per_output = BILINEAR_TAP * samples
    if str(f.attr("mode", "avg")) == "max":
        per_output = per_output + B(sub=samples - 1)
    else:
        per_output = per_output + B(add=samples - 1, div=1)
    # per ROI: scale the box (4 mul), bin sizes (2 sub, 2 div); per sample position: 2 mul, 2 add
    per_roi = B(mul=4, sub=2, div=2) + (B(mul=2, add=2) + BILINEAR_WEIGHTS) * (ph * pw * samples)
    return bops_cost(per_output * outputs + per_roi * r)


@register("MaxRoiPool")
def max_roi_pool(f: NodeFacts) -> Cost:
    """Output (R, C, ph, pw): each bin is a max over its cells; the bin is taken as
    ⌈H/ph⌉·⌈W/pw⌉ cells (an ROI spanning the feature map, an upper bound)."""
    x = f.shape(0)
    r, c, ph, pw = f.out_shape(0)
    cells = math.ceil(x[2] / ph) * math.ceil(x[3] / pw)
    return bops_cost(B(sub=cells) * (r * c * ph * pw) + B(mul=4, sub=2, div=2) * r)


@register("TopK")
def top_k(f: NodeFacts) -> Cost:
    """Per row of n along ``axis``: a heap of k, n·max(1, ⌈log2 k⌉) comparisons."""
    x = f.shape(0)
    axis = int(f.attr("axis", -1)) % len(x)
    n = x[axis]
    k = f.out_shape(0)[axis]
    rows = math.prod(x) // n if n else 0
    per_row = n * max(1, math.ceil(math.log2(k))) if k > 1 else n
    return bops_cost(B(sub=rows * per_row))


@register("Unique")
def unique(f: NodeFacts) -> Cost:
    """Sort (n·⌈log2 n⌉ compares) and one compare per element to drop duplicates."""
    n = f.numel(0)
    axis = f.attr("axis")
    if axis is not None:
        x = f.shape(0)
        slices = x[int(axis) % len(x)]
        width = n // slices if slices else 0
        return bops_cost(B(sub=(sort_compares(slices) + slices) * width))
    return bops_cost(B(sub=sort_compares(n) + n))


@register("GridSample")
def grid_sample(f: NodeFacts) -> Cost:
    """Output (N, C, *out): per output location, unnormalize the grid (add, mul, sub, div per
    spatial axis) and the tap weights; per output element, blend the taps: 1 (nearest, a round
    per axis), 2^d (linear) or 4^d (cubic) taps."""
    out = f.out_shape(0)
    d = len(out) - 2
    locations = out[0] * math.prod(out[2:])
    outputs = math.prod(out)
    mode = str(f.attr("mode", "linear"))
    per_location = B(add=d, mul=d, sub=d, div=d)
    if mode in ("nearest",):
        per_location = per_location + B(sub=d)
        return bops_cost(per_location * locations)
    taps = (4 if mode in ("cubic", "bicubic") else 2) ** d
    if taps == 2**d:  # linear: floor, fraction, 1 − fraction per axis, weight products
        per_location = per_location + B(sub=3 * d, mul=taps * (d - 1))
    else:  # cubic: 4 cubic-convolution weights per axis (3 mul, 3 add each), products
        per_location = per_location + B(sub=2 * d, mul=12 * d + taps * (d - 1), add=12 * d)
    per_output = B(mul=taps, add=taps - 1)
    return bops_cost(per_location * locations + per_output * outputs)


@register("AffineGrid")
def affine_grid(f: NodeFacts) -> Cost:
    """theta (N, d, d+1) applied to every base grid point: d dot products of length d plus the
    translation (a bias add) per point; the base grid itself (linspace) is a mul and add per
    coordinate."""
    out = f.out_shape(0)  # (N, *spatial, d)
    d = out[-1]
    outputs = math.prod(out)
    base = B(mul=1, add=1) * sum(out[1:-1])
    cost = dot_cost(outputs * d, outputs, outputs)
    return cost + bops_cost(base)


@register("DeformConv")
def deform_conv(f: NodeFacts) -> Cost:
    """Conv MACs on bilinearly sampled inputs. X (N, C, H, W), W (oC, C/g, kH, kW), offset
    (N, og·2·kH·kW, oH, oW), mask (5). Each of the N·C·kH·kW·oH·oW samples blends 4 taps
    (× mask); each sampling location (N·og·kH·kW·oH·oW) adds its offset (2 add) and computes
    the tap weights."""
    x, w = f.shape(0), f.shape(1)
    out = f.out_shape(0)
    outputs = math.prod(out)
    kernel = math.prod(w[2:])
    spatial_out = math.prod(out[2:])
    cost = dot_cost(outputs * math.prod(w[1:]), outputs, outputs if f.has_input(3) else 0)
    samples = x[0] * x[1] * kernel * spatial_out
    groups = int(f.attr("offset_group", 1))
    locations = x[0] * groups * kernel * spatial_out
    per_sample = BILINEAR_TAP + B(mul=int(f.has_input(4)))
    bops = per_sample * samples + (B(add=2) + BILINEAR_WEIGHTS) * locations
    return cost + bops_cost(bops)


@register("Col2Im")
def col2im(f: NodeFacts) -> Cost:
    """Sum the overlapping blocks back into the image: every column entry is accumulated into
    its pixel, one add per entry beyond the first for each pixel."""
    n_in, n_out = f.numel(0), f.out_numel(0)
    return bops_cost(B(add=max(n_in - n_out, 0)))
