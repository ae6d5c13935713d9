"""Ops onnxruntime still registers in the ONNX domain beyond the standard opset: the
experimental ops of opset 1-9 (Affine, Crop, ImageScaler, Scale, ...), its memcpy nodes, and
the TensorRT plugin schemas (``*_TRT``) exporters leave in graphs for TensorRT.

Per element (output element unless said), in the conventions of `activation`:

- Affine ``alpha·x + beta``: mul, add; ImageScaler ``scale·x + bias``: mul, add;
  Scale ``scale·x``: mul; ScaledTanh ``alpha·tanh(beta·x)``: 2 mul, root;
  ParametricSoftplus ``alpha·ln(exp(beta·x) + 1)``: 2 mul, add, 2 root;
- GRUUnit: the update and reset sigmoids, the candidate tanh, ``h = (1 − u)·c + u·h_prev``
  (sub, 2 mul, add) and the sequence-length test (sub) per hidden unit;
- DisentangledAttention_TRT: c2c + c2p + p2c (the relative gathers are movement), ·factor;
- EfficientNMS_TRT: as ONNX NonMaxSuppression (`detection`), with the score activation;
- PyramidROIAlign_TRT and MultilevelCropAndResize_TRT: one bilinear sample (4 taps) per
  output element, and the level choice per box (area, log, compare).
"""

from __future__ import annotations

import math

from .detection import BILINEAR_TAP, BOX_AREA, IOU_PAIR, sort_compares
from .helpers import ShapeOut, bops_cost, elementwise, same_as_input
from .registry import BasicOps, Cost, NodeFacts, register, register_movement, shape_rule

B = BasicOps
SIGMOID = B(sub=1, add=1, div=1, root=1)

register("Affine", "ImageScaler")(elementwise(B(mul=1, add=1)))
register("Scale")(elementwise(B(mul=1)))
register("ScaledTanh")(elementwise(B(mul=2, root=1)))
register("ParametricSoftplus")(elementwise(B(mul=2, add=1, root=2)))
register_movement("Crop", "DynamicSlice", "GivenTensorFill", "MemcpyFromHost", "MemcpyToHost")


@register("GRUUnit")
def gru_unit(f: NodeFacts) -> Cost:
    """hidden_prev (N, D) and the fused gate pre-activations (N, 3D): per hidden unit two
    sigmoids, a tanh, the blend and the sequence-length test."""
    n = f.out_numel(0)
    return bops_cost((SIGMOID * 2 + B(root=1, sub=2, mul=2, add=1)) * n)


@register("DisentangledAttention_TRT")
def disentangled_attention(f: NodeFacts) -> Cost:
    n = f.out_numel(0)
    return bops_cost(B(add=2, mul=1) * n)


@register("EfficientNMS_TRT")
def efficient_nms(f: NodeFacts) -> Cost:
    """boxes (B, n, 4), scores (B, n, C): per batch and class a threshold compare per box
    (plus the sigmoid with score_activation), a sort and IoU of at most
    min(n·(n−1)/2, max_output_boxes·n) pairs; box areas once per box."""
    boxes, scores = f.shape(0), f.shape(1)
    batch, n, classes = scores
    pairs = n * (n - 1) // 2
    limit = int(f.attr("max_output_boxes", 0))
    if limit > 0:
        pairs = min(pairs, limit * n)
    per_class = B(sub=n + sort_compares(n)) + IOU_PAIR * pairs
    bops = per_class * (batch * classes) + BOX_AREA * (boxes[0] * boxes[1])
    if int(f.attr("score_activation", 0)):
        bops = bops + SIGMOID * math.prod(scores)
    return bops_cost(bops)


@register("PyramidROIAlign_TRT", "MultilevelCropAndResize_TRT")
def pyramid_roi_align(f: NodeFacts) -> Cost:
    """boxes (B, R, 4) -> patches (B, R, C, P, P): per box the level choice (area, sqrt, log,
    compare) and per output element one bilinear sample."""
    boxes = f.shape(0)
    per_box = BOX_AREA + B(root=2, div=1, sub=2)
    return bops_cost(BILINEAR_TAP * f.out_numel(0) + per_box * (boxes[0] * boxes[1]))


shape_rule("Affine", "ImageScaler", "Scale", "ScaledTanh", "ParametricSoftplus",
           "MemcpyFromHost", "MemcpyToHost")(same_as_input)


@shape_rule("GRUUnit")
def _gru_unit(f: NodeFacts) -> list[ShapeOut | None]:
    return [(f.dims(0), f.dtype(0))]


@shape_rule("DisentangledAttention_TRT")
def _disentangled(f: NodeFacts) -> list[ShapeOut | None]:
    return [(f.dims(0), f.dtype(0))]


@shape_rule("PyramidROIAlign_TRT", "MultilevelCropAndResize_TRT")
def _pyramid_roi_align(f: NodeFacts) -> list[ShapeOut | None]:
    boxes, fmap = f.dims(0), f.dims(1)
    size = f.attr("pooled_size", [7, 7])
    if boxes is None or fmap is None or len(boxes) < 2 or len(fmap) < 2:
        return [None]
    p = list(size) if isinstance(size, list) else [int(size), int(size)]
    if len(p) == 1:
        p = p * 2
    return [((boxes[0], boxes[1], fmap[1], int(p[0]), int(p[1])), f.dtype(1))]
