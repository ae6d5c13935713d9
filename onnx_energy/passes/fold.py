"""Constant folding of shape subgraphs: runs the fold rules of ``ops/fold.py``.

Only ops that compute shapes and indices have rules, and only small constant inputs
(`MAX_FOLD_ELEMENTS`) are evaluated, so weights are never touched.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from ..graph import Node
from ..ops.base import NodeFacts
from ..ops.fold import MAX_FOLD_ELEMENTS
from ..ops.registry import FOLDS, load_rules

__all__ = ["MAX_FOLD_ELEMENTS", "foldable_ops", "fold_node"]


@functools.cache
def foldable_ops() -> frozenset[str]:
    """The ONNX-domain op types with a fold rule (asked for every node: a set lookup)."""
    load_rules()
    return frozenset(op for domain, op in FOLDS if domain == "")


def fold_node(node: Node, values: Mapping[str, np.ndarray]) -> list[np.ndarray] | None:
    """Output values of ``node`` from the known ``values``, or None when it cannot be folded."""
    rule = FOLDS.get("", node.op_type) if node.domain == "" else None
    if rule is None:
        return None
    try:
        outs = rule(NodeFacts(node, (), values=values))
    except Exception:  # CannotFoldError, or hostile attributes/values: left unknown
        return None
    # numpy scalars (np.take with a scalar index: torch's Shape->Gather) are values too.
    if any(not isinstance(o, (np.ndarray, np.generic)) or o.size > MAX_FOLD_ELEMENTS
           for o in outs):
        return None
    return outs
