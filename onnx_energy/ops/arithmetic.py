"""Element-wise arithmetic, comparisons and math functions (with broadcasting).

Costs are per output element. Transcendentals count as one ``root``; comparisons as one
``sub``; variadic ops (Sum, Max, ...) cost one op per extra input.
"""

from __future__ import annotations

from .helpers import bops_cost, elementwise
from .registry import ZERO_BOPS, BasicOps, Cost, NodeFacts, register

B = BasicOps

UNARY_AND_BINARY: dict[str, BasicOps] = {
    "Add": B(add=1),
    "Sub": B(sub=1),
    "Mul": B(mul=1),
    "Div": B(div=1),
    "Mod": B(div=1, mul=1, sub=1),      # a - b*trunc(a/b)
    "Neg": B(sub=1),                    # 0 - x
    "Abs": B(sub=1),                    # compare (sign) and negate in the adder
    "Sign": B(sub=1),                   # comparison
    "Reciprocal": B(div=1),
    "Sqrt": B(root=1),
    "Exp": B(root=1),
    "Log": B(root=1),
    "Sin": B(root=1), "Cos": B(root=1), "Tan": B(root=1),
    "Asin": B(root=1), "Acos": B(root=1), "Atan": B(root=1),
    "Sinh": B(root=1), "Cosh": B(root=1), "Asinh": B(root=1), "Acosh": B(root=1),
    "Atanh": B(root=1),
    "Floor": B(sub=1), "Ceil": B(sub=1), "Round": B(sub=1),  # rounding in the adder
    "Equal": B(sub=1), "Less": B(sub=1), "Greater": B(sub=1),
    "LessOrEqual": B(sub=1), "GreaterOrEqual": B(sub=1),
    "IsNaN": B(sub=1), "IsInf": B(sub=1),
    "BitShift": B(),                    # shifter, no arithmetic datapath
    "Not": B(), "And": B(), "Or": B(), "Xor": B(),  # bitwise logic, no arithmetic datapath
    "BitwiseAnd": B(), "BitwiseOr": B(), "BitwiseXor": B(), "BitwiseNot": B(),
}

#: Backward family of each op above (passes/training.py): binary ops send a gradient to both
#: operands; rounding, comparisons and logic are piecewise constant (zero gradient).
_BINARY = ("Add", "Sub", "Mul", "Div", "Mod")
_PIECEWISE_CONSTANT = (
    "Sign", "Floor", "Ceil", "Round", "Equal", "Less", "Greater", "LessOrEqual",
    "GreaterOrEqual", "IsNaN", "IsInf", "BitShift", "Not", "And", "Or", "Xor", "BitwiseAnd",
    "BitwiseOr", "BitwiseXor", "BitwiseNot",
)

for _op, _per_element in UNARY_AND_BINARY.items():
    _family = ("binary" if _op in _BINARY
               else "piecewise_constant" if _op in _PIECEWISE_CONSTANT else "unary")
    register(_op, backward=_family)(elementwise(_per_element))


@register("Pow", backward="pow")
def pow_(f: NodeFacts) -> Cost:
    """x**2 is one mul, x**0.5 one root, x**1 free; a general power is exp(y*log x)."""
    exponent = f.value(1)
    per = B(root=2, mul=1)
    if exponent is not None and exponent.size == 1:
        e = float(exponent.reshape(-1)[0])
        per = {2.0: B(mul=1), 0.5: B(root=1), 1.0: B(), 3.0: B(mul=2), -1.0: B(div=1)}.get(e, per)
    return elementwise(per)(f)


VARIADIC: dict[str, BasicOps] = {
    "Sum": B(add=1),
    "Max": B(sub=1),
    "Min": B(sub=1),
}


def _variadic(per_extra_input: BasicOps, extra: BasicOps = ZERO_BOPS):
    def rule(f: NodeFacts) -> Cost:
        n_inputs = sum(1 for t in f.inputs if t is not None)
        bops = (per_extra_input * max(n_inputs - 1, 0) + extra) * f.out_numel(0)
        return bops_cost(bops)

    return rule


for _op, _per in VARIADIC.items():
    register(_op, backward="sum" if _op == "Sum" else "select")(_variadic(_per))
register("Mean", backward="mean")(_variadic(B(add=1), B(div=1)))


@register("CumSum", backward="unary")
def cumsum(f: NodeFacts) -> Cost:
    # A running sum of L elements takes L-1 adds per line along the axis (all n if unknown).
    n = f.out_numel(0)
    axis, shape = f.value(1), f.out_shape(0)
    adds = n
    if axis is not None and axis.size == 1 and shape:
        length = shape[int(axis.reshape(-1)[0]) % len(shape)]
        adds = n - (n // length if length else 0)
    return Cost(flops=adds, bops=B(add=adds))
