"""Reductions: reducing n inputs to m outputs takes n-m combining ops, plus per-output work."""

from __future__ import annotations

from .helpers import bops_cost
from .registry import BasicOps, Cost, NodeFacts, register

B = BasicOps

# (per input element, per combine, per output element)
REDUCTIONS: dict[str, tuple[BasicOps, BasicOps, BasicOps]] = {
    "ReduceSum": (B(), B(add=1), B()),
    "ReduceMean": (B(), B(add=1), B(div=1)),
    "ReduceMax": (B(), B(sub=1), B()),
    "ReduceMin": (B(), B(sub=1), B()),
    "ReduceProd": (B(), B(mul=1), B()),
    "ReduceL1": (B(sub=1), B(add=1), B()),
    "ReduceL2": (B(mul=1), B(add=1), B(root=1)),
    "ReduceSumSquare": (B(mul=1), B(add=1), B()),
    "ReduceLogSum": (B(), B(add=1), B(root=1)),
    "ReduceLogSumExp": (B(root=1), B(add=1), B(root=1)),
    "ArgMax": (B(), B(sub=1), B()),
    "ArgMin": (B(), B(sub=1), B()),
}


def _reduction(per_in: BasicOps, per_combine: BasicOps, per_out: BasicOps):
    def rule(f: NodeFacts) -> Cost:
        n_in, n_out = f.numel(0), f.out_numel(0)
        bops = per_in * n_in + per_combine * max(n_in - n_out, 0) + per_out * n_out
        return bops_cost(bops)

    return rule


for _op, _parts in REDUCTIONS.items():
    # ArgMax/ArgMin return indices: piecewise constant, no gradient.
    _family = "piecewise_constant" if _op.startswith("Arg") else "reduction"
    register(_op, backward=_family)(_reduction(*_parts))
