"""Convolutions: MACs from the output volume (Conv) or the input volume (ConvTranspose)."""

from __future__ import annotations

import math

from .helpers import dot_cost
from .registry import BasicOps, Cost, NodeFacts, register


@register("Conv", backward="dot")
def conv(f: NodeFacts) -> Cost:
    w = f.shape(1)  # (C_out, C_in/groups, k...)
    out = f.out_shape(0)  # (N, C_out, spatial...)
    outputs = math.prod(out)
    macs = outputs * math.prod(w[1:])
    bias = outputs if f.has_input(2) else 0
    return dot_cost(macs, outputs, bias)


@register("ConvTranspose", backward="dot")
def conv_transpose(f: NodeFacts) -> Cost:
    # Every input element is scattered through the kernel into C_out/groups channels.
    x = f.shape(0)  # (N, C_in, spatial...)
    w = f.shape(1)  # (C_in, C_out/groups, k...)
    macs = math.prod(x) * math.prod(w[1:])
    outputs = f.out_numel(0)
    bias = outputs if f.has_input(2) else 0
    # Scattered accumulation: each MAC adds into an output, so adds = macs (+ bias).
    bops = BasicOps(add=macs + bias, mul=macs)
    return Cost(macs=macs, flops=2 * macs + bias, bias=bias, bops=bops)
