"""Training level of the transistor-operations model (Li et al., Alg. 1 and 2).

Training adds, per node, the basic operations of its backward pass (``C_bp``) and, on the
graph output, the basic operations of the loss (``C_loss``). Backward rules are written per
*family* of ops; an op's family is named where its cost rule is registered
(``register(..., backward="unary")`` in ``ops/``) and otherwise comes from its kind
(`backward_family`), so every registered op, including ops added later, has a backward rule:

- ``movement`` kind: data movement only (zero arithmetic), except where the adjoint sums
  copies back (Expand/Tile: broadcast -> reduce-sum; Gather*: scatter-add);
- ``compute`` kind without an entry: ``2 x forward`` (the backward of a product is two
  products of the forward's size; Kaplan et al.'s "backward = 2 x forward" for the rest).

Gradients flow only where autograd would send them: a tensor requires a gradient when it is
a trainable weight (a float initializer, BatchNormalization running statistics excluded) or
is computed from one, and a node's backward runs only when its output reaches the loss. The
graph's data inputs get no gradient, so the first layer computes dW but not dX.

Every rule is written out in docs/basic_ops.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..graph import Node, TensorInfo
from ..ops.base import ZERO_BOPS, ZERO_COST, BasicOps, Cost, NodeFacts, ShapeUnknownError
from ..ops.helpers import bops_cost
from ..ops.registry import OpRule, all_rules, lookup

B = BasicOps

PHASES = ("inference", "training")
LOSSES = ("ce", "mse")


#: A backward rule reads `NodeFacts` with ``forward`` (the node's forward cost) and ``needs``
#: (which inputs the gradient must reach) set.
BackwardRule = Callable[[NodeFacts], BasicOps]
#: The families with dot products give a whole `Cost` (MACs, FLOPs, bias adds, bops).
BackwardCost = Callable[[NodeFacts], Cost]


def _forward(ctx: NodeFacts) -> Cost:
    if ctx.forward is None:
        raise ShapeUnknownError("the forward cost is not known")
    return ctx.forward


def _broadcast_sum(ctx: NodeFacts, i: int) -> BasicOps:
    """Adds that sum a broadcast input's gradient back to its shape."""
    return B(add=max(ctx.out_numel(0) - ctx.numel(i), 0))


# ------------------------------------------------------------------------- dot products


def _dot(operands: Sequence[int] | None = (0, 1), bias: int | None = 2) -> BackwardCost:
    """One product of the forward's size per operand that needs a gradient.

    A product of ``macs`` multiplies accumulated into T gradient elements costs ``macs`` mul
    and ``macs - T`` add (dX = dY.W^T, dW = X^T.dY): ``macs`` MACs and, like the forward,
    2 FLOPs per MAC. The bias gradient sums dY down to the bias (``outputs - numel(bias)``
    adds, its ``bias`` FLOPs); alpha/beta scaling muls are repeated once.
    """

    def rule(ctx: NodeFacts) -> Cost:
        forward = _forward(ctx)
        macs = forward.macs
        out = ZERO_BOPS
        products = 0
        idx = range(len(ctx.inputs)) if operands is None else operands
        for i in idx:
            if ctx.need(i):
                out += B(mul=macs, add=max(macs - ctx.numel(i), 0))
                products += 1
        bias_adds = 0
        if bias is not None and forward.bias and ctx.need(bias):
            bias_adds = max(forward.bias - ctx.numel(bias), 0)
            out += B(add=bias_adds)
        scale_muls = max(forward.bops.mul - macs, 0)
        out += B(mul=scale_muls)
        return Cost(macs=products * macs, flops=2 * products * macs + bias_adds + scale_muls,
                    bias=bias_adds, bops=out)

    return rule


def _einsum(ctx: NodeFacts) -> Cost:
    if sum(1 for t in ctx.inputs if t is not None) >= 2:
        return _dot(None, None)(ctx)
    return ZERO_COST  # a single operand: a sum or transpose, whose adjoint is a broadcast


# ------------------------------------------------------------------- element-wise unary

#: Per element of the output, dX = dY * f'(x): the derivative's basic operations, chain-rule
#: multiply included. The forward output y is saved and reused where f' is written in y.
UNARY: dict[str, BasicOps] = {
    "Relu": B(sub=1),                          # x > 0 selects dY (a select is free)
    "LeakyRelu": B(sub=1, mul=1),              # compare, alpha*dY on the negative side
    "ThresholdedRelu": B(sub=1),               # compare with alpha
    "Sigmoid": B(sub=1, mul=2),                # dY * y * (1 - y)
    "HardSigmoid": B(sub=2, mul=1),            # two compares for the linear part, alpha*dY
    "HardSwish": B(sub=2, mul=2, add=1),       # compares, dY * (2*alpha*x + beta)
    "Tanh": B(mul=2, sub=1),                   # dY * (1 - y^2)
    "Erf": B(mul=3, sub=1, root=1),            # dY * 2/sqrt(pi) * exp(-x^2)
    "Elu": B(sub=1, add=1, mul=1),             # x > 0 ? dY : dY * (y + alpha)
    "Celu": B(sub=1, div=1, add=1, mul=1),     # x > 0 ? dY : dY * (y/alpha + 1)
    "Selu": B(sub=1, add=1, mul=1),            # x > 0 ? gamma*dY : dY * (y + gamma*alpha)
    "Softplus": B(sub=1, add=1, div=1, root=1, mul=1),  # dY * sigmoid(x)
    "Softsign": B(sub=1, add=1, mul=1, div=1),  # dY / (1 + |x|)^2
    "Mish": B(add=3, sub=2, mul=4, div=1, root=4),  # tanh(sp) + x*sigmoid(x)*(1-tanh^2(sp))
    "Swish": B(sub=2, add=2, mul=3, div=1, root=1),  # s*(1 + x*(1-s)), s = sigmoid(x)
    "Clip": B(sub=2),                          # two compares route dY
    "Shrink": B(sub=2),                        # two compares route dY
    "Neg": B(sub=1),                           # -dY
    "Abs": B(sub=2),                           # compare, negate where x < 0
    "Reciprocal": B(mul=2, sub=1),             # -dY * y^2
    "Sqrt": B(mul=1, div=1),                   # dY / (2y)
    "Exp": B(mul=1),                           # dY * y
    "Log": B(div=1),                           # dY / x
    "Sin": B(root=1, mul=1),                   # dY * cos(x)
    "Cos": B(root=1, mul=1, sub=1),            # -dY * sin(x)
    "Tan": B(mul=2, add=1),                    # dY * (1 + y^2)
    "Asin": B(mul=1, sub=1, root=1, div=1),    # dY / sqrt(1 - x^2)
    "Acos": B(mul=1, sub=2, root=1, div=1),    # -dY / sqrt(1 - x^2)
    "Atan": B(mul=1, add=1, div=1),            # dY / (1 + x^2)
    "Sinh": B(root=1, mul=1),                  # dY * cosh(x)
    "Cosh": B(root=1, mul=1),                  # dY * sinh(x)
    "Asinh": B(mul=1, add=1, root=1, div=1),   # dY / sqrt(x^2 + 1)
    "Acosh": B(mul=1, sub=1, root=1, div=1),   # dY / sqrt(x^2 - 1)
    "Atanh": B(mul=1, sub=1, div=1),           # dY / (1 - x^2)
    "CumSum": B(add=1),                        # reverse cumulative sum of dY
}

GELU_ERF = B(add=2, mul=6, div=1, root=2)      # Phi(x) + x*phi(x), both recomputed
GELU_TANH = B(add=4, sub=1, mul=12, root=1)    # 0.5(1+t) + 0.5x(1-t^2)c(1+3a x^2), t recomputed


def _unary(per: BasicOps) -> BackwardRule:
    def rule(ctx: NodeFacts) -> BasicOps:
        return per * ctx.out_numel(0) if ctx.need(0) else ZERO_BOPS

    return rule


def _gelu(ctx: NodeFacts) -> BasicOps:
    per = GELU_TANH if ctx.attr("approximate", "none") == "tanh" else GELU_ERF
    return _unary(per)(ctx)


def _prelu(ctx: NodeFacts) -> BasicOps:
    n = ctx.out_numel(0)
    out = B(sub=n, mul=n) if ctx.need(0) else ZERO_BOPS  # compare, slope*dY
    if ctx.need(1):  # dSlope = sum of dY * x where x < 0
        out += B(mul=n) + _broadcast_sum(ctx, 1)
    return out


# ----------------------------------------------------------------- element-wise binary

#: Per output element, the gradient of each input (then summed back over broadcast axes).
BINARY: dict[str, tuple[BasicOps, BasicOps]] = {
    "Add": (B(), B()),                                 # dA = dY, dB = dY
    "Sub": (B(), B(sub=1)),                            # dB = -dY
    "Mul": (B(mul=1), B(mul=1)),                       # dA = dY*b, dB = dY*a
    "Div": (B(div=1), B(mul=1, div=1, sub=1)),         # dA = dY/b, dB = -dY*y/b
    "Mod": (B(), B(div=1, sub=2, mul=1)),              # dB = -dY*trunc(a/b)
    "Pow": (B(mul=2, div=1), B(root=1, mul=2)),        # dA = dY*e*y/x, dB = dY*y*ln(x)
}

#: Pow with a constant exponent: the base's gradient per element.
POW_CONST: dict[float, BasicOps] = {
    2.0: B(mul=2), 3.0: B(mul=3), 1.0: B(), 0.5: B(mul=1, div=1), -1.0: B(mul=2, sub=1),
}


def _binary(grads: tuple[BasicOps, BasicOps]) -> BackwardRule:
    def rule(ctx: NodeFacts) -> BasicOps:
        n = ctx.out_numel(0)
        out = ZERO_BOPS
        for i, per in enumerate(grads):
            if ctx.need(i):
                out += per * n + _broadcast_sum(ctx, i)
        return out

    return rule


def _pow(ctx: NodeFacts) -> BasicOps:
    e = ctx.value(1)
    if not ctx.need(1) and e is not None and e.size == 1 and ctx.need(0):
        # A constant scalar exponent (x**2 in decomposed LayerNorm, x**0.5, 1/x).
        per = POW_CONST.get(float(e.reshape(-1)[0]), BINARY["Pow"][0])
        return per * ctx.out_numel(0) + _broadcast_sum(ctx, 0)
    return _binary(BINARY["Pow"])(ctx)


def _variadic(per_input: BasicOps, once: BasicOps = ZERO_BOPS) -> BackwardRule:
    """Sum/Max/Min/Mean: each input's gradient, plus work done once per output element."""

    def rule(ctx: NodeFacts) -> BasicOps:
        n = ctx.out_numel(0)
        out = ZERO_BOPS
        for i in range(len(ctx.inputs)):
            if ctx.need(i):
                out += per_input * n + _broadcast_sum(ctx, i)
        if any(ctx.needs):
            out += once * n
        return out

    return rule


# ------------------------------------------------------------ reductions, pooling, norms

#: (per input element, per output element) of the gradient; broadcasting dY back is free.
REDUCTIONS: dict[str, tuple[BasicOps, BasicOps]] = {
    "ReduceSum": (B(), B()),                       # broadcast dY
    "ReduceMean": (B(), B(div=1)),                 # dY / n, broadcast
    "ReduceMax": (B(sub=1), B()),                  # x == y routes dY
    "ReduceMin": (B(sub=1), B()),
    "ReduceProd": (B(mul=1, div=1), B()),          # dY * y / x
    "ReduceL1": (B(sub=2), B()),                   # dY * sign(x)
    "ReduceL2": (B(mul=1), B(div=1)),              # x * (dY / y)
    "ReduceSumSquare": (B(mul=2), B()),            # 2x * dY
    "ReduceLogSum": (B(), B(div=1)),               # dY / sum, broadcast
    "ReduceLogSumExp": (B(sub=1, root=1, mul=1), B()),  # dY * exp(x - y)
}


def _reduction(per_in: BasicOps, per_out: BasicOps) -> BackwardRule:
    def rule(ctx: NodeFacts) -> BasicOps:
        if not ctx.need(0):
            return ZERO_BOPS
        return per_in * ctx.numel(0) + per_out * ctx.out_numel(0)

    return rule


def _kernel_volume(ctx: NodeFacts) -> int:
    return math.prod(ctx.attr("kernel_shape", [1]))


def _max_pool(ctx: NodeFacts) -> BasicOps:
    # dY scatter-added at each window's saved argmax (windows may overlap).
    return B(add=ctx.out_numel(0)) if ctx.need(0) else ZERO_BOPS


def _average_pool(ctx: NodeFacts) -> BasicOps:
    # dY / window, accumulated into every element of the window.
    if not ctx.need(0):
        return ZERO_BOPS
    n = ctx.out_numel(0)
    return B(div=n, add=_kernel_volume(ctx) * n)


def _lp_pool(ctx: NodeFacts) -> BasicOps:
    # p = 2: dX = x * dY / y accumulated over windows; otherwise |x|^(p-1) sign(x) / y^(p-1).
    if not ctx.need(0):
        return ZERO_BOPS
    n = ctx.out_numel(0)
    taps = _kernel_volume(ctx) * n
    if int(ctx.attr("p", 2)) == 2:
        return B(mul=taps, add=taps, div=n)
    return B(root=taps, mul=taps, add=taps) + B(root=n, div=n)


def _global_pool(per_in: BasicOps, per_channel: BasicOps) -> BackwardRule:
    def rule(ctx: NodeFacts) -> BasicOps:
        if not ctx.need(0):
            return ZERO_BOPS
        shape = ctx.shape(0)
        return per_in * math.prod(shape) + per_channel * math.prod(shape[:2])

    return rule


def _global_lp_pool(ctx: NodeFacts) -> BasicOps:
    if int(ctx.attr("p", 2)) == 2:
        return _global_pool(B(mul=1), B(div=1))(ctx)
    return _global_pool(B(root=1, mul=1), B(root=1, div=1))(ctx)


def norm_backward(elements: int, rows: int, gamma: bool, beta: bool) -> BasicOps:
    """Gradient of a mean/variance normalization over ``rows`` groups of ``elements``.

    dx = rstd * (g - mean(g) - xh * mean(g * xh)) with g = dY*gamma, xh = (x - mean)*rstd:
    per element xh (sub, mul), g (mul), two sums (2 add), g*xh (mul), xh*m2 (mul), two subs,
    *rstd (mul); per row the two means (2 div). dGamma = sum dY*xh (mul, add), dBeta = sum dY.
    """
    per = B(add=2, sub=3, mul=4) + B(mul=int(gamma)) + B(mul=int(gamma), add=int(gamma))
    per += B(add=int(beta))
    return per * elements + B(div=2) * rows


def _batch_norm(ctx: NodeFacts) -> BasicOps:
    # The training-mode gradient (batch statistics per channel over N and the spatial axes).
    if not any(ctx.needs):
        return ZERO_BOPS
    shape = ctx.shape(0)
    channels = shape[1] if len(shape) > 1 else 1
    return norm_backward(math.prod(shape), channels, ctx.need(1), ctx.need(2))


def _axis_rows(ctx: NodeFacts) -> tuple[int, int]:
    shape = ctx.shape(0)
    axis = int(ctx.attr("axis", -1)) % len(shape)
    return math.prod(shape), math.prod(shape[:axis])


def _layer_norm(ctx: NodeFacts) -> BasicOps:
    if not any(ctx.needs):
        return ZERO_BOPS
    n, rows = _axis_rows(ctx)
    return norm_backward(n, rows, ctx.need(1), ctx.need(2))


def _instance_norm(ctx: NodeFacts) -> BasicOps:
    if not any(ctx.needs):
        return ZERO_BOPS
    shape = ctx.shape(0)
    return norm_backward(math.prod(shape), math.prod(shape[:2]), ctx.need(1), ctx.need(2))


def _group_norm(ctx: NodeFacts) -> BasicOps:
    if not any(ctx.needs):
        return ZERO_BOPS
    shape = ctx.shape(0)
    groups = int(ctx.attr("num_groups", 1))
    return norm_backward(math.prod(shape), shape[0] * groups, ctx.need(1), ctx.need(2))


def _rms_norm(ctx: NodeFacts) -> BasicOps:
    # dx = rstd * (g - xh * mean(g * xh)): xh (mul), g (mul), g*xh (mul), sum (add),
    # xh*m (mul), sub, *rstd (mul) per element, a div per row; dGamma = sum dY*xh (mul, add).
    if not any(ctx.needs):
        return ZERO_BOPS
    n, rows = _axis_rows(ctx)
    gamma = ctx.need(1)
    return B(mul=5 + gamma, add=1 + gamma, sub=1) * n + B(div=rows)


def _lp_norm(ctx: NodeFacts) -> BasicOps:
    # y = x / |x|: dx = (dY - y * sum(dY * y)) / |x|.
    if not ctx.need(0):
        return ZERO_BOPS
    return B(mul=2, add=1, sub=1, div=1) * ctx.numel(0)


def _softmax(ctx: NodeFacts) -> BasicOps:
    # Softmax: dx = y * (dY - sum(dY * y)); LogSoftmax: dx = dY - exp(y) * sum(dY).
    if not ctx.need(0):
        return ZERO_BOPS
    n = ctx.numel(0)
    if ctx.node.op_type == "LogSoftmax":
        return B(add=1, root=1, mul=1, sub=1) * n
    return B(mul=2, add=1, sub=1) * n


def _resize(ctx: NodeFacts) -> BasicOps:
    # The adjoint of interpolation scatters each output's dY into the same taps: the forward's
    # muls and one accumulate per tap; nearest scatter-adds the copies back.
    if not ctx.need(0):
        return ZERO_BOPS
    n_out, n_in = ctx.out_numel(0), ctx.numel(0)
    fwd = _forward(ctx).bops
    if fwd.total == 0:
        return B(add=max(n_out - n_in, 0))
    return fwd + B(add=n_out)


# ------------------------------------------------------------------------------ movement


def _zero(_: NodeFacts) -> BasicOps:
    return ZERO_BOPS


def _expand(ctx: NodeFacts) -> BasicOps:
    # Broadcast copies: their gradients are summed back.
    return _broadcast_sum(ctx, 0) if ctx.need(0) else ZERO_BOPS


def _gather(ctx: NodeFacts) -> BasicOps:
    # Scatter-add of dY into the gathered-from tensor (embedding rows may repeat).
    return B(add=ctx.out_numel(0)) if ctx.need(0) else ZERO_BOPS


def _generic(ctx: NodeFacts) -> Cost:
    forward = _forward(ctx)
    if not any(ctx.needs):
        return ZERO_COST
    return Cost(forward.macs * 2, forward.flops * 2, forward.bias * 2, forward.bops * 2)


# ------------------------------------------------------------------------ family tables

def _bops_of(rule: BackwardCost) -> BackwardRule:
    return lambda ctx: rule(ctx).bops


#: Families whose backward has dot products (MACs): their rules give the whole `Cost`.
COST_RULES: dict[str, BackwardCost] = {
    "dot": _dot(),
    "einsum": _einsum,
    "generic": _generic,
}

#: family name -> backward rule (basic operations)
FAMILY_RULES: dict[str, BackwardRule] = {
    **{name: _bops_of(rule) for name, rule in COST_RULES.items()},
    "unary": lambda ctx: _unary(UNARY[ctx.node.op_type])(ctx),
    "gelu": _gelu,
    "prelu": _prelu,
    "binary": lambda ctx: _binary(BINARY[ctx.node.op_type])(ctx),
    "pow": _pow,
    "sum": _variadic(B()),
    "mean": _variadic(B(), B(div=1)),
    "select": _variadic(B(sub=1)),
    "piecewise_constant": _zero,
    "reduction": lambda ctx: _reduction(*REDUCTIONS[ctx.node.op_type])(ctx),
    "max_pool": _max_pool,
    "average_pool": _average_pool,
    "lp_pool": _lp_pool,
    "global_average_pool": _global_pool(B(), B(div=1)),
    "global_max_pool": _global_pool(B(sub=1), B()),
    "global_lp_pool": _global_lp_pool,
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "instance_norm": _instance_norm,
    "group_norm": _group_norm,
    "rms_norm": _rms_norm,
    "lp_norm": _lp_norm,
    "softmax": _softmax,
    "resize": _resize,
    "movement": _zero,
    "broadcast": _expand,
    "gather": _gather,
}

#: Families whose backward routes dY without reading the forward's saved tensors.
ROUTING_FAMILIES = frozenset({"movement", "broadcast", "gather"})


def backward_cost(family: str, ctx: NodeFacts) -> Cost:
    """The backward `Cost` of a node of ``family``: MACs are the dot products of the
    gradient products (dot, einsum, and 2 x forward for generic); FLOPs follow the forward's
    convention (2 per MAC plus bias adds, else the sum of the basic operations)."""
    rule = COST_RULES.get(family)
    if rule is not None:
        return rule(ctx)
    return bops_cost(FAMILY_RULES[family](ctx))

#: The family of each registry kind, for ops registered without a backward family.
KIND_FAMILIES: dict[str, str] = {"movement": "movement", "compute": "generic"}


def backward_family(rule: OpRule) -> str | None:
    """The backward family of an op: the one named where it is registered, else its kind's
    (None if its kind has no backward rule)."""
    if rule.backward is not None:
        return rule.backward
    registered = lookup(rule.domain, rule.op_type)
    if registered is not None and registered.backward is not None:
        return registered.backward
    return KIND_FAMILIES.get(rule.kind)


def backward_families() -> dict[tuple[str, str], str | None]:
    """The family of every op in the registry (for docs and the completeness test)."""
    return {key: backward_family(r) for key, r in all_rules().items()}


# ------------------------------------------------------------------------------- loss


def loss_bops(output: TensorInfo | None, loss: str) -> BasicOps:
    """The loss on one graph output and its gradient seed dL/dy (``C_loss``).

    ``ce``: cross-entropy over the last axis, the output taken as logits, one target class
    per row, mean over rows; ``mse``: mean squared error against a same-shape target.
    Raises ShapeUnknownError when the output's shape is not static.
    """
    if output is None or not output.is_static:
        raise ShapeUnknownError(output.name if output is not None else "?")
    n = output.numel
    if loss == "mse":
        # (y - t), squared, summed (n - 1 adds), / n; gradient (2/n) * (y - t).
        return B(sub=n, mul=n, add=max(n - 1, 0), div=1) + B(mul=n)
    if loss != "ce":
        raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    shape = output.static_shape
    classes = shape[-1] if shape else 1
    rows = n // classes if classes else 0
    fwd = (B(sub=rows * (classes - 1))          # running max per row
           + B(sub=n, root=n)                   # x - max, exp
           + B(add=rows * (classes - 1))        # sum of exps
           + B(root=rows, sub=rows)             # log, loss_row = log(sum) - (x_t - max)
           + B(add=max(rows - 1, 0), div=1))    # mean over rows
    grad = B(div=n, sub=rows, mul=n)             # softmax = e/sum, minus 1 at the target, /rows
    return fwd + grad


# ------------------------------------------------------------------------- the pass


#: (bytes read, bytes written) of one phase of one node; None where a shape is unknown.
Traffic = tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class NodeTraining:
    """Backward and loss cost and memory traffic of one node (None where a shape is unknown).

    Backward traffic: the node reads dY (each output the gradient flows through) and, unless
    it only routes dY (`ROUTING_FAMILIES`), its forward inputs (the saved activations and
    weights); it writes a gradient for each input that needs one. The loss reads the output
    and writes dL/dy (targets are not graph tensors and are not counted).
    """

    backward: Cost | None
    loss: Cost | None
    backward_bytes: Traffic = (0, 0)
    loss_bytes: Traffic = (0, 0)


@dataclass(frozen=True, slots=True)
class TrainingResult:
    nodes: list[NodeTraining]
    loss_output: str | None


def _is_float(dtype: str) -> bool:
    return dtype == "" or dtype.startswith(("float", "bfloat"))


def training_pass(
    nodes: Sequence[Node],
    costs: Sequence[Cost | None],
    tensors: Mapping[str, TensorInfo],
    trainable: set[str],
    graph_outputs: Sequence[str],
    loss: str = "ce",
    values: Mapping[str, np.ndarray] | None = None,
) -> TrainingResult:
    """Backward basic operations of every node and the loss on the first float output.

    ``nodes`` are in topological order with ``costs`` their forward costs (None when not
    known); ``trainable`` names the trainable weights.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")

    def info(name: str) -> TensorInfo | None:
        return tensors.get(name) if name else None

    requires = set(trainable)
    for node in nodes:
        if any(x in requires for x in node.inputs if x):
            requires.update(o for o in node.outputs
                            if o and _is_float((info(o) or TensorInfo(o, None, "")).dtype))
    loss_output = next((o for o in graph_outputs
                        if _is_float((info(o) or TensorInfo(o, None, "")).dtype)), None)
    reach = {loss_output} if loss_output is not None and loss_output in requires else set()
    on_path: list[bool] = [False] * len(nodes)
    for k in range(len(nodes) - 1, -1, -1):
        node = nodes[k]
        if any(o in reach for o in node.outputs if o):
            on_path[k] = True
            reach.update(x for x in node.inputs if x in requires)

    registry = all_rules()
    out: list[NodeTraining] = []
    for k, (node, cost) in enumerate(zip(nodes, costs, strict=True)):
        node_loss: Cost | None = ZERO_COST
        loss_traffic: Traffic = (0, 0)
        if loss_output is not None and loss_output in node.outputs:
            out_info = info(loss_output)
            try:
                node_loss = bops_cost(loss_bops(out_info, loss))
            except ShapeUnknownError:
                node_loss = None
            loss_traffic = (_traffic([out_info], [out_info]) if out_info is not None
                            else None)
        if not on_path[k]:
            out.append(NodeTraining(ZERO_COST, node_loss, (0, 0), loss_traffic))
            continue
        needs = tuple(bool(x) and x in requires for x in node.inputs)
        rule = registry.get((node.domain, node.op_type))
        family = backward_family(rule) if rule is not None else None
        ins = tuple(info(x) for x in node.inputs)
        outs = tuple(info(o) for o in node.outputs)
        if cost is None or family is None:
            out.append(NodeTraining(None, node_loss, None, loss_traffic))
            continue
        ctx = NodeFacts(node, ins, outs, values or {}, forward=cost, needs=needs)
        try:
            bwd: Cost | None = backward_cost(family, ctx)
        except Exception:  # shapes unknown or not fitting the rule: unknown, never zero
            bwd = None
        d_out = [t for o, t in zip(node.outputs, outs, strict=True) if o in reach]
        saved = [] if family in ROUTING_FAMILIES else list(ins)
        grads = [t for t, need in zip(ins, needs, strict=True) if need]
        out.append(NodeTraining(bwd, node_loss, _traffic([*d_out, *saved], grads),
                                loss_traffic))
    return TrainingResult(out, loss_output)


def _traffic(read: Sequence[TensorInfo | None], written: Sequence[TensorInfo | None]) -> Traffic:
    """Bytes of the tensors read and written (omitted inputs skipped); None if any is not
    static."""
    present = [t for t in (*read, *written) if t is not None]
    if not all(t.is_static for t in present):
        return None
    return (sum(t.nbytes for t in read if t is not None),
            sum(t.nbytes for t in written if t is not None))
