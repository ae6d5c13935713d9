"""If, Loop and Scan: their cost is their subgraphs' cost (see passes/control_flow.py).

The shape pass analyses the subgraphs with the outer scope in view and the cost pass
replaces this rule's answer by theirs; the rule itself only runs when a node was not
analysed, and then says so (unresolved, never zero).
"""

from __future__ import annotations

from .registry import Cost, NodeFacts, ShapeUnknownError, register


@register("If", "Loop", "Scan")
def control_flow(f: NodeFacts) -> Cost:
    raise ShapeUnknownError(f"{f.node.op_type}: its subgraphs were not analysed")
