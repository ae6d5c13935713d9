"""Resize/Upsample: interpolation taps per output element, by mode."""

from __future__ import annotations

from .helpers import bops_cost
from .registry import BasicOps, Cost, NodeFacts, register


@register("Resize", "Upsample", backward="resize")
def resize(f: NodeFacts) -> Cost:
    """Nearest copies; (bi/tri)linear blends 2^k taps, cubic 4^k, over the k resized axes."""
    outputs = f.out_numel(0)
    mode = str(f.attr("mode", "nearest"))
    if mode == "nearest":
        return Cost()
    resized = sum(1 for a, b in zip(f.shape(0), f.out_shape(0), strict=False) if a != b)
    taps = (4 if mode == "cubic" else 2) ** resized
    if resized == 0:
        return Cost()
    bops = BasicOps(mul=taps, add=taps - 1) * outputs
    return bops_cost(bops)
