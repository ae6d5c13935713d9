"""Pooling windows: MaxPool counts a comparison per window element, AveragePool an add."""

from __future__ import annotations

import math

from .helpers import bops_cost
from .registry import BasicOps, Cost, NodeFacts, register


def _kernel_volume(f: NodeFacts) -> int:
    return math.prod(f.attr("kernel_shape", [1]))


@register("MaxPool", backward="max_pool")
def max_pool(f: NodeFacts) -> Cost:
    # Comparisons run in the adder (sub); kernel volume x outputs, as in Getzner et al. Table 3.
    n = _kernel_volume(f) * f.out_numel(0)
    return Cost(flops=n, bops=BasicOps(sub=n))


@register("AveragePool", backward="average_pool")
def average_pool(f: NodeFacts) -> Cost:
    outputs = f.out_numel(0)
    kv = _kernel_volume(f)
    bops = BasicOps(add=(kv - 1) * outputs, div=outputs)
    return bops_cost(bops)


@register("LpPool", backward="lp_pool")
def lp_pool(f: NodeFacts) -> Cost:
    outputs = f.out_numel(0)
    kv = _kernel_volume(f)
    # |x|^p per element (one mul for p=2, a transcendental pow otherwise), sum, p-th root.
    p = int(f.attr("p", 2))
    per_elem = BasicOps(mul=1) if p == 2 else BasicOps(root=1)
    bops = per_elem * (kv * outputs) + BasicOps(add=(kv - 1) * outputs, root=outputs)
    return bops_cost(bops)


def _global_window(f: NodeFacts) -> tuple[int, int]:
    shape = f.shape(0)
    return math.prod(shape[:2]), math.prod(shape[2:])


@register("GlobalAveragePool", backward="global_average_pool")
def global_average_pool(f: NodeFacts) -> Cost:
    channels, window = _global_window(f)
    bops = BasicOps(add=(window - 1) * channels, div=channels)
    return bops_cost(bops)


@register("GlobalMaxPool", backward="global_max_pool")
def global_max_pool(f: NodeFacts) -> Cost:
    channels, window = _global_window(f)
    n = window * channels
    return Cost(flops=n, bops=BasicOps(sub=n))


@register("GlobalLpPool", backward="global_lp_pool")
def global_lp_pool(f: NodeFacts) -> Cost:
    channels, window = _global_window(f)
    p = int(f.attr("p", 2))
    per_elem = BasicOps(mul=1) if p == 2 else BasicOps(root=1)
    bops = per_elem * (window * channels) + BasicOps(add=(window - 1) * channels, root=channels)
    return bops_cost(bops)
