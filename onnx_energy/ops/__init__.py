"""Per-op rules, one module per op family, registered into the tables of `registry`.

`base` holds the value types (`BasicOps`, `Cost`, `NodeFacts`), `helpers` what rules share
(`dot_cost`, `bops_cost`, domains, dim arithmetic, shape-rule helpers); every other module
is a family (conv, linalg, pooling, attention, quantized, ...) holding its ops' cost rules
and, where ONNX cannot infer or evaluate an op, its shape and fold rules (`fold` holds the
fold rules of the shape-arithmetic ops).
"""

from .base import BasicOps, Cost, NodeFacts
from .registry import OpRule, all_rules, lookup, register

__all__ = ["BasicOps", "Cost", "NodeFacts", "OpRule", "all_rules", "lookup", "register"]
