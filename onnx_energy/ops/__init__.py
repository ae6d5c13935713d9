"""Per-op cost rules, grouped by family and registered into `registry.REGISTRY`."""

from .registry import BasicOps, Cost, NodeFacts, OpRule, all_rules, lookup, register

__all__ = ["BasicOps", "Cost", "NodeFacts", "OpRule", "all_rules", "lookup", "register"]
