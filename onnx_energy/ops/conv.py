"""Convolutions: MACs from the output volume (Conv) or the input volume (ConvTranspose)."""

from __future__ import annotations

import math

from .registry import BasicOps, Cost, NodeFacts, register


def dot_cost(macs: int, outputs: int, bias: int) -> Cost:
    """Cost of ``outputs`` dot products totalling ``macs`` multiply-accumulates.

    FLOPs follow the usual 2 per MAC plus the bias adds; basic operations are exact:
    a dot product of length K is K mul and K-1 add, and a bias add makes that K add.
    """
    bops = BasicOps(add=macs - outputs + bias, mul=macs)
    return Cost(macs=macs, flops=2 * macs + bias, bias=bias, bops=bops)


@register("Conv")
def conv(f: NodeFacts) -> Cost:
    w = f.shape(1)  # (C_out, C_in/groups, k...)
    out = f.out_shape(0)  # (N, C_out, spatial...)
    outputs = math.prod(out)
    macs = outputs * math.prod(w[1:])
    bias = outputs if f.has_input(2) else 0
    return dot_cost(macs, outputs, bias)


@register("ConvTranspose")
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
