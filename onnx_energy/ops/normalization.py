"""Normalizations: the per-element and per-row/channel work written out in basic operations."""

from __future__ import annotations

import math

from .helpers import ShapeOut, bops_cost, norm_outputs, same_as_input
from .registry import BasicOps, Cost, NodeFacts, register, shape_rule

B = BasicOps


@register("BatchNormalization", backward="batch_norm")
def batch_norm(f: NodeFacts) -> Cost:
    # Inference: scale = gamma/sqrt(var+eps), shift = beta - mean*scale per channel,
    # then y = x*scale + shift per element.
    n = f.numel(0)
    shape = f.shape(0)
    channels = shape[1] if len(shape) > 1 else 1
    bops = B(mul=n, add=n) + B(add=1, root=1, div=1, mul=1, sub=1) * channels
    return bops_cost(bops)


def _normalize(elements: int, rows: int, affine_mul: bool, affine_add: bool) -> BasicOps:
    """Mean and variance over each row, then (x-mean)*rstd (and gamma, beta).

    Per element: add (sum), sub (x-mean), mul (square), add (sum of squares), mul (*rstd):
    5 ops, plus one mul for gamma and one add for beta. Per row: div (mean), div (var),
    add (eps), root (sqrt), div (1/sqrt).
    """
    per_elem = B(add=2, sub=1, mul=2) + B(mul=int(affine_mul), add=int(affine_add))
    per_row = B(div=3, add=1, root=1)
    return per_elem * elements + per_row * rows


@register("LayerNormalization", backward="layer_norm")
def layer_norm(f: NodeFacts) -> Cost:
    shape = f.shape(0)
    axis = int(f.attr("axis", -1)) % len(shape)
    rows = math.prod(shape[:axis])
    bops = _normalize(math.prod(shape), rows, affine_mul=f.has_input(1),
                      affine_add=f.has_input(2))
    return bops_cost(bops)


@register("InstanceNormalization", backward="instance_norm")
def instance_norm(f: NodeFacts) -> Cost:
    shape = f.shape(0)
    bops = _normalize(math.prod(shape), math.prod(shape[:2]), True, True)
    return bops_cost(bops)


@register("GroupNormalization", backward="group_norm")
def group_norm(f: NodeFacts) -> Cost:
    shape = f.shape(0)
    groups = int(f.attr("num_groups", 1))
    bops = _normalize(math.prod(shape), shape[0] * groups, True, True)
    return bops_cost(bops)


@register("RMSNormalization", backward="rms_norm")
def rms_norm(f: NodeFacts) -> Cost:
    # Per element: mul (square), add (sum), mul (*rstd), mul (gamma); per row: div, add, root, div.
    shape = f.shape(0)
    axis = int(f.attr("axis", -1)) % len(shape)
    rows = math.prod(shape[:axis])
    bops = B(mul=3, add=1) * math.prod(shape) + B(div=2, add=1, root=1) * rows
    return bops_cost(bops)


@register("LpNormalization", backward="lp_norm")
def lp_norm(f: NodeFacts) -> Cost:
    shape = f.shape(0)
    axis = int(f.attr("axis", -1)) % len(shape)
    n = math.prod(shape)
    rows = n // shape[axis] if shape[axis] else 0
    p = int(f.attr("p", 2))
    per_elem = B(mul=1, add=1, div=1) if p == 2 else B(sub=1, add=1, div=1)
    bops = per_elem * n + B(root=rows if p == 2 else 0)
    return bops_cost(bops)


@register("Softmax", "LogSoftmax", backward="softmax")
def softmax(f: NodeFacts) -> Cost:
    # Per element: compare (running max), sub (x - max), exp, add (sum), div (normalise).
    # LogSoftmax replaces the per-element div by a per-row log and a per-element sub.
    n = f.numel(0)
    if f.node.op_type == "LogSoftmax":
        shape = f.shape(0)
        axis = int(f.attr("axis", -1)) % len(shape)
        rows = n // shape[axis] if shape[axis] else 0
        bops = B(sub=3, root=1, add=1) * n + B(root=rows)
    else:
        bops = B(sub=2, root=1, add=1, div=1) * n
    return bops_cost(bops)


@register("Hardmax", backward="piecewise_constant")
def hardmax(f: NodeFacts) -> Cost:
    n = f.numel(0)
    return Cost(flops=n, bops=B(sub=n))


# ---------------------------------------------------- output shapes ONNX cannot infer
# GroupNormalization is a function op without an inference function; LayerNormalization
# in the ONNX domain before opset 17 is onnxruntime's own registration.
shape_rule("GroupNormalization")(same_as_input)


@shape_rule("LayerNormalization")
def _layer_norm_shapes(f: NodeFacts) -> list[ShapeOut | None]:
    return norm_outputs(f, int(f.attr("axis", -1)))
