"""Signal processing: DFT, STFT, window generators and MelWeightMatrix.

A transform of length n is counted as a radix-2 FFT over n rounded up to a power of two:
(n/2)·log2(n) butterflies of one complex multiply (4 mul, add, sub) and one complex add and
subtract (2 add, 2 sub). Real input is counted as complex (no real-FFT halving); an inverse
transform adds the 1/n scaling (2 div per complex output element). MACs are zero: an FFT is
not a dot product.
"""

from __future__ import annotations

import math

from .helpers import bops_cost, elementwise
from .registry import BasicOps, Cost, NodeFacts, register

B = BasicOps
BUTTERFLY = B(mul=4, add=3, sub=3)


def fft_bops(n: int) -> BasicOps:
    """Basic operations of one complex FFT of length ``n`` (rounded up to a power of two)."""
    if n <= 1:
        return B()
    log2n = math.ceil(math.log2(n))
    padded = 1 << log2n
    return BUTTERFLY * (padded // 2 * log2n)




@register("DFT")
def dft(f: NodeFacts) -> Cost:
    x = f.shape(0)
    out = f.out_shape(0)
    if f.opset and f.opset < 20:
        axis = int(f.attr("axis", 1))
    else:
        known = f.scalar(2)
        axis = -2 if known is None else known
    axis %= len(x)
    n = f.scalar(1) or x[axis]
    transforms = math.prod(out) // (out[axis] * out[-1]) if out[axis] else 0
    bops = fft_bops(n) * transforms
    if int(f.attr("inverse", 0)):
        bops = bops + B(div=2 * out[axis] * transforms)
    return bops_cost(bops)


@register("STFT")
def stft(f: NodeFacts) -> Cost:
    """signal (B, L, 1|2), frame_step, window (fl,), frame_length; output (B, frames, bins, 2).
    Each frame is windowed (one mul per real sample, two per complex) and transformed."""
    x = f.shape(0)
    out = f.out_shape(0)
    frame_length = f.shape(2)[0] if f.has_input(2) else f.scalar(3)
    if frame_length is None:
        raise ValueError("STFT needs a window or a known frame_length")
    frames = out[0] * out[1]
    window = B(mul=frame_length * x[-1]) if f.has_input(2) else B()
    return bops_cost((fft_bops(frame_length) + window) * frames)


# w[n] = a0 − a1·cos(2πn/N) (+ a2·cos(4πn/N)): the angle (mul, div), one cos per term, the
# coefficient products and the sums.
register("HannWindow", "HammingWindow")(elementwise(B(mul=2, div=1, root=1, sub=1)))
register("BlackmanWindow")(elementwise(B(mul=4, div=2, root=2, sub=1, add=1)))
# Triangular filter value per (frequency bin, mel bin): two distances to the band edges
# (2 sub), the slope (div) and the min of the two slopes scaled (mul).
register("MelWeightMatrix")(elementwise(B(sub=2, div=1, mul=1)))
