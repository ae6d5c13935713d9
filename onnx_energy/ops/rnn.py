"""Recurrent layers: RNN, GRU, LSTM (and com.microsoft DynamicQuantizeLSTM).

MACs: every step of every direction computes ``gates × hidden`` dot products of length
``input + hidden`` (``W·x_t`` and ``R·h_{t-1}`` summed), so

    MACs = gates · hidden · (input + hidden) · seq_length · batch · directions

with gates = 1 (RNN), 3 (GRU), 4 (LSTM). Bias ``B = [Wb, Rb]`` adds two per gate output.
The gate non-linearities and the cell update are counted per hidden unit and step:

- RNN:  f(·)
- GRU:  f(z), f(r), g(h̃), r ⊙ h (mul), h = (1 − z) ⊙ h̃ + z ⊙ h_{t-1} (sub, 2 mul, add)
- LSTM: f(i), f(f), f(o), g(c̃), h(c), c = f ⊙ c + i ⊙ c̃ (2 mul, add), h = o ⊙ h(c) (mul),
  plus peepholes (3 mul, 3 add) when P is given

with the default activations (RNN Tanh; GRU Sigmoid, Tanh; LSTM Sigmoid, Tanh, Tanh) or the
``activations`` attribute. ``clip`` adds two comparisons per gate pre-activation.
"""

from __future__ import annotations

from .activation import ACTIVATIONS
from .helpers import bops_cost, dot_cost
from .registry import BasicOps, Cost, NodeFacts, register

B = BasicOps
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4, "DynamicQuantizeLSTM": 4}
DEFAULT_ACTIVATIONS = {
    "RNN": ("Tanh",),
    "GRU": ("Sigmoid", "Tanh"),
    "LSTM": ("Sigmoid", "Tanh", "Tanh"),
    "DynamicQuantizeLSTM": ("Sigmoid", "Tanh", "Tanh"),
}
EXTRA_ACTIVATIONS = {
    "Affine": B(mul=1, add=1),
    "ScaledTanh": B(mul=2, root=1),
}


def activation_bops(name: str) -> BasicOps:
    """Per-element basic operations of an RNN activation function by its ONNX name."""
    for table in (ACTIVATIONS, EXTRA_ACTIVATIONS):
        for key, bops in table.items():
            if key.lower() == name.lower():
                return bops
    return B(root=1)  # an unknown function: one transcendental


def _per_unit_step(op: str, f: NodeFacts) -> BasicOps:
    acts = [str(a) for a in (f.attr("activations") or DEFAULT_ACTIVATIONS[op])]
    names = acts[: len(DEFAULT_ACTIVATIONS[op])]
    fa = activation_bops(names[0])
    if op == "RNN":
        return fa
    ga = activation_bops(names[1] if len(names) > 1 else "Tanh")
    if op == "GRU":
        return fa * 2 + ga + B(mul=3, sub=1, add=1)
    ha = activation_bops(names[2] if len(names) > 2 else "Tanh")
    per = fa * 3 + ga + ha + B(mul=3, add=1)
    if f.has_input(7):  # peepholes
        per = per + B(mul=3, add=3)
    return per


def recurrent_cost(
    op: str, f: NodeFacts, *, seq: int, batch: int, directions: int, input_size: int,
    hidden: int,
) -> Cost:
    gates = GATES[op]
    steps = seq * batch * directions
    outputs = steps * gates * hidden
    has_bias = f.has_input(3)
    cost = dot_cost(outputs * (input_size + hidden), outputs, 2 * outputs if has_bias else 0)
    per_step = _per_unit_step(op, f) * hidden
    if f.attr("clip") is not None:
        per_step = per_step + B(sub=2 * gates * hidden)
    bops = per_step * steps
    return cost + bops_cost(bops)


def check_ranks(f: NodeFacts, **ranks: int) -> None:
    """Refuse inputs whose rank is not the one the rule reads (``X=3``: input 0 by name order
    of the call), so a wrong shape never gives a plausible count."""
    for i, (label, rank) in enumerate(ranks.items()):
        got = len(f.shape(i))
        if got != rank:
            raise ValueError(f"{label} has rank {got}, not {rank}")


@register("RNN", "GRU", "LSTM")
def recurrent(f: NodeFacts) -> Cost:
    """X (S, B, I) or (B, S, I) with layout=1; W (D, G·H, I): the input size is W's, and X's
    last dim must agree with it."""
    check_ranks(f, X=3, W=3)
    x, w = f.shape(0), f.shape(1)
    if x[2] != w[2]:
        raise ValueError(f"X's input size {x[2]} is not W's {w[2]}")
    op = f.node.op_type
    seq, batch = (x[1], x[0]) if int(f.attr("layout", 0)) else (x[0], x[1])
    hidden = int(f.attr("hidden_size", 0)) or w[1] // GATES[op]
    return recurrent_cost(op, f, seq=seq, batch=batch, directions=w[0], input_size=x[2],
                          hidden=hidden)


@register("AttnLSTM", domain="com.microsoft")
def attn_lstm(f: NodeFacts) -> Cost:
    """An LSTM whose input at each step is [x_t, attention_t] (input feeding), with Bahdanau
    attention over memory M (B, T_m, D_m): the memory is projected once by MW (D_m → A); per
    step and direction the query h·QW (H → A), per memory slot the sum, tanh and the V dot
    product (A MACs), the softmax over T_m, the context (T_m·D_m MACs) and the attention layer
    [h, context]·AW (→ attention size)."""
    x, w = f.shape(0), f.shape(1)
    seq, batch = x[0], x[1]
    directions = w[0]
    hidden = int(f.attr("hidden_size", 0)) or w[1] // 4
    qw, m, aw = f.shape(8), f.shape(11), f.shape(13)  # QW (H, A), M (B, T_m, D_m), AW
    depth = qw[-1]
    slots, mem_depth = m[1], m[2]
    attn_size = aw[-1]
    lstm_in = w[2]  # the LSTM sees x_t and the attention output (its W's input width)
    steps = seq * batch * directions
    cost = recurrent_cost("LSTM", f, seq=seq, batch=batch, directions=directions,
                          input_size=lstm_in, hidden=hidden)
    memory = dot_cost(directions * m[0] * slots * depth * mem_depth,
                      directions * m[0] * slots * depth, 0)
    per_step = dot_cost(hidden * depth, depth, 0) + dot_cost(slots * depth, slots, 0)
    per_step = per_step + dot_cost(slots * mem_depth, mem_depth, 0)
    per_step = per_step + dot_cost(attn_size * (hidden + mem_depth), attn_size, 0)
    per_step = per_step + bops_cost(B(add=slots * depth, root=slots * depth)
                                    + B(sub=2, root=1, add=1, div=1) * slots)
    return cost + memory + Cost(per_step.macs * steps, per_step.flops * steps,
                                per_step.bias * steps, per_step.bops * steps)
