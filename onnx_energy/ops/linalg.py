"""Dense linear algebra: Gemm, MatMul (batched, broadcast) and Einsum."""

from __future__ import annotations

import math
import re

from .helpers import dot_cost
from .registry import BasicOps, Cost, NodeFacts, ShapeUnknownError, register


@register("Gemm", backward="dot")
def gemm(f: NodeFacts) -> Cost:
    a, b = f.shape(0), f.shape(1)
    m = a[1] if f.attr("transA", 0) else a[0]
    k = a[0] if f.attr("transA", 0) else a[1]
    n = b[0] if f.attr("transB", 0) else b[1]
    outputs = m * n
    beta = float(f.attr("beta", 1.0))
    has_c = f.has_input(2) and beta != 0.0
    cost = dot_cost(m * n * k, outputs, outputs if has_c else 0)
    scale_muls = (outputs if float(f.attr("alpha", 1.0)) != 1.0 else 0) + (
        outputs if has_c and beta != 1.0 else 0
    )
    if scale_muls:
        cost = cost + Cost(flops=scale_muls, bops=BasicOps(mul=scale_muls))
    return cost


@register("MatMul", backward="dot")
def matmul(f: NodeFacts) -> Cost:
    a = f.shape(0)
    k = a[-1]
    outputs = f.out_numel(0)
    return dot_cost(outputs * k, outputs, 0)


_EINSUM_TERM = re.compile(r"[A-Za-z]|\.\.\.")


@register("Einsum", backward="einsum")
def einsum(f: NodeFacts) -> Cost:
    """Naive evaluation: every combination of all indices, one multiply per extra operand."""
    equation = str(f.attr("equation", "")).replace(" ", "")
    lhs, _, rhs = equation.partition("->")
    operands = lhs.split(",")
    sizes: dict[str, int] = {}
    for i, term in enumerate(operands):
        shape = f.shape(i)
        labels = _EINSUM_TERM.findall(term)
        if "..." in labels:
            n_ellipsis = len(shape) - (len(labels) - 1)
            at = labels.index("...")
            # Ellipsis dims broadcast right-aligned: name them by distance from the end.
            dots = [f"...{n_ellipsis - j}" for j in range(n_ellipsis)]
            labels = labels[:at] + dots + labels[at + 1:]
        if len(labels) != len(shape):
            raise ShapeUnknownError(f"einsum term {term!r} does not match rank {len(shape)}")
        for label, dim in zip(labels, shape, strict=True):
            sizes[label] = max(sizes.get(label, 1), dim)
    volume = math.prod(sizes.values())
    outputs = f.out_numel(0)
    if len(operands) >= 2:
        macs = volume * (len(operands) - 1)
        return dot_cost(macs, outputs, 0)
    adds = volume - outputs  # a single operand: a reduction (or a pure transpose)
    return Cost(flops=adds, bops=BasicOps(add=adds))
