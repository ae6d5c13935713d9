"""Mixture of experts (com.microsoft MoE, QMoE and their routers) and the clamped SwiGLU.

Per token (``T`` = input elements / hidden size ``D``):

- routing: softmax over the E router logits, a top-k heap (``E·⌈log2(k + 1)⌉`` compares)
  and, with ``normalize_routing_weights``, k − 1 adds and k divs;
- each of the k selected experts: fc1 (D → I, or D → 2I with ``swiglu_fusion``), the
  activation, fc3 (the separate gate, when given) and its product, fc2 (I → D), biases;
  an expert's MACs are its weight elements (layout does not matter), so no layout is assumed;
- the combine: k·D mul and (k − 1)·D add.

QMoE weights are packed (``8 / bits`` values per byte, ``expert_weight_bits`` or the per-fc
``fc*_expert_weight_bits``); every expert that can be used in one run (``min(E, T·k)``) has
its weights dequantized once (mul by the scale, sub with zero points), as MatMulNBits.
"""

from __future__ import annotations

import math

from .attention import SOFTMAX_PER_ELEMENT
from .helpers import MS, ShapeOut, bops_cost, dot_cost, same_as_input
from .registry import BasicOps, Cost, NodeFacts, ShapeUnknownError, register, shape_rule

B = BasicOps
SIGMOID = B(sub=1, add=1, div=1, root=1)
GELU = B(div=1, root=1, add=1, mul=2)
#: clamp(gate, max) (sub), clamp(up) (2 sub), α·G (mul), sigmoid, G·σ (mul), up + β (add),
#: the product (mul).
SWIGLU = SIGMOID + B(sub=3, mul=3, add=1)
ACTIVATION = {"relu": B(sub=1), "gelu": GELU, "silu": SIGMOID + B(mul=1), "identity": B(),
              "swiglu": SWIGLU}


def _per_expert(f: NodeFacts, i: int, bits: int) -> int:
    """Logical weight elements of one expert of input ``i`` (packed: bytes · 8/bits)."""
    w = f.shape(i)
    return math.prod(w[1:]) * (8 // bits if f.dtype(i) == "uint8" and bits < 8 else 1)


def moe_cost(f: NodeFacts, fc: tuple[int, int, int | None], biases: tuple[int, int, int | None],
             bits: tuple[int, int, int] = (32, 32, 32)) -> tuple[Cost, int, int]:
    """(cost, tokens·k, logical weight elements per expert) of a MoE node whose fc1, fc2 and
    fc3 weights are inputs ``fc`` (fc3 None when absent) and biases ``biases``."""
    x = f.shape(0)
    d = x[-1]
    tokens = math.prod(x[:-1])
    experts = f.shape(fc[0])[0]
    k = int(f.attr("k", 1))
    fc1 = _per_expert(f, fc[0], bits[0])
    fc2 = _per_expert(f, fc[1], bits[1])
    fc3 = _per_expert(f, fc[2], bits[2]) if fc[2] is not None and f.given(fc[2]) else 0
    inter = fc2 // d if d else 0
    rows = tokens * k
    width1 = fc1 // d if d else 0
    cost = dot_cost(rows * fc1, rows * width1, rows * width1 if f.given(biases[0]) else 0)
    cost = cost + dot_cost(rows * fc2, rows * d, rows * d if f.given(biases[1]) else 0)
    kind = str(f.attr("activation_type", "relu")).lower()
    act = ACTIVATION.get(kind, B(root=1))
    per_row = act * inter
    if fc3:
        b3 = biases[2]
        cost = cost + dot_cost(rows * fc3, rows * inter,
                               rows * inter if b3 is not None and f.given(b3) else 0)
        per_row = per_row + B(mul=inter)
    routing = SOFTMAX_PER_ELEMENT * experts + B(sub=experts * max(1, math.ceil(math.log2(k + 1))))
    if int(f.attr("normalize_routing_weights", 0)):
        routing = routing + B(add=k - 1, div=k)
    combine = B(mul=k * d, add=(k - 1) * d)
    cost = cost + bops_cost(per_row * rows + (routing + combine) * tokens)
    return cost, rows, fc1 + fc2 + fc3


@register("MoE", domain=MS)
def moe(f: NodeFacts) -> Cost:
    """input (…, D), router_probs (T, E), fc1 (E, ·, ·) (+ bias 3), fc2 (+ bias 5), fc3
    (+ bias 7)."""
    return moe_cost(f, (2, 4, 6), (3, 5, 7))[0]


@register("QMoE", domain=MS)
def qmoe(f: NodeFacts) -> Cost:
    """fc1 (2), scales (3), bias (4); fc2 (5, 6, 7); fc3 (8, 9, 10); zero points (11-13):
    MoE on the packed weights plus the dequantization of the experts one run can use."""
    default = int(f.attr("expert_weight_bits", 4))
    b1, b2, b3 = (int(f.attr(f"fc{i}_expert_weight_bits", 0)) or default for i in (1, 2, 3))
    cost, rows, elements = moe_cost(f, (2, 5, 8), (4, 7, 10), (b1, b2, b3))
    experts = f.shape(2)[0]
    used = min(experts, rows)
    zps = any(f.given(i) for i in (11, 12, 13))
    return cost + bops_cost(B(mul=1, sub=int(zps)) * (used * elements))


@register("MoEPacked", domain=MS)
def moe_packed(f: NodeFacts) -> Cost:
    """Block-packed expert blobs: their logical sizes are in the packing format, not in the
    tensor shapes, so the node is left unresolved."""
    raise ShapeUnknownError("MoEPacked: expert sizes are inside the packed blob format")


@register("MoEGroupRouter", domain=MS)
def moe_group_router(f: NodeFacts) -> Cost:
    """logits (T, E): sigmoid and + expert_bias per logit, the group and expert selections
    (a compare per logit for each of the group and top-k heaps), log of the top_k scores."""
    t, e = f.shape(0)[0], f.shape(0)[-1]
    k = int(f.attr("top_k", 1))
    per_token = (SIGMOID + B(add=1, sub=2)) * e + B(root=k)
    return bops_cost(per_token * t)


@register("RouterGateUpProj", domain=MS)
def router_gate_up_proj(f: NodeFacts) -> Cost:
    """X (…, D) · W (D, router_size + 2·inter): one GEMM, then activation(gate)·up on the
    inter-sized halves (SwiGLU by default)."""
    x, w = f.shape(0), f.shape(1)
    rows = math.prod(x[:-1])
    n = w[-1]
    inter = (n - int(f.attr("router_size", 0))) // 2
    act = ACTIVATION.get(str(f.attr("activation", "swiglu")).lower(), SWIGLU)
    return dot_cost(rows * n * x[-1], rows * n, 0) + bops_cost(act * (rows * inter))


@register("SwiGLU", domain=MS)
def ms_swiglu(f: NodeFacts) -> Cost:
    """Clamped SwiGLU per output element (`SWIGLU`)."""
    return bops_cost(SWIGLU * f.out_numel(0))


shape_rule("MoE", "QMoE", "MoEPacked", domain=MS)(same_as_input)


@shape_rule("SwiGLU", domain=MS)
def _swiglu(f: NodeFacts) -> list[ShapeOut | None]:
    g = f.dims(0)
    if g is None:
        return [None]
    if f.given(1):
        return [(g, f.dtype(0))]
    last = g[-1]
    return [((*g[:-1], last // 2 if isinstance(last, int) else None), f.dtype(0))]


@shape_rule("RouterGateUpProj", domain=MS)
def _router_gate_up(f: NodeFacts) -> list[ShapeOut | None]:
    x, w = f.dims(0), f.dims(1)
    if x is None or w is None or not isinstance(w[-1], int):
        return [None]
    router = int(f.attr("router_size", 0))
    inter = (w[-1] - router) // 2
    return [((*x[:-1], router), f.dtype(0)), ((*x[:-1], inter), f.dtype(0))]
