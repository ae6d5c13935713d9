"""The op-rule tables: one registration mechanism for every kind of per-op knowledge.

Each table maps ``(domain, op_type)`` to a rule and refuses a second rule for the same op,
so there is exactly one source of truth per op and kind of knowledge:

- `COSTS`: the cost rule (`Cost` from `NodeFacts`), the op's kind (``compute`` or
  ``movement``) and its backward family (see passes/training.py); registered with
  `register` / `register_movement`;
- `SHAPES`: output shapes of ops ONNX cannot infer (contrib ops), with `shape_rule`;
- `FOLDS`: numpy evaluation of shape arithmetic on small constants, with `fold_rule`.

A new op is added in its family module under ``ops/``: a cost rule there, and a shape or
fold rule beside it when ONNX cannot infer or evaluate it. Family modules are found by
`load_rules` (every module of this package), never listed by hand.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from .base import (  # noqa: F401  (re-exported: the rules' vocabulary)
    BOP_NAMES,
    ZERO_BOPS,
    ZERO_COST,
    BasicOps,
    CannotFoldError,
    Cost,
    NodeFacts,
    Shape,
    ShapeUnknownError,
)
from .helpers import canonical_domain, elementwise  # noqa: F401

T = TypeVar("T")
Key = tuple[str, str]


class Registry(Generic[T]):
    """A table of per-op rules keyed by (domain, op type); duplicates are refused."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._rules: dict[Key, T] = {}

    def add(self, domain: str, op_type: str, rule: T) -> None:
        key = (canonical_domain(domain), op_type)
        if key in self._rules:
            raise ValueError(f"duplicate {self.what} for {key[0] or 'ai.onnx'}::{op_type}")
        self._rules[key] = rule

    def get(self, domain: str, op_type: str) -> T | None:
        return self._rules.get((canonical_domain(domain), op_type))

    def __contains__(self, key: object) -> bool:
        return key in self._rules

    def __iter__(self) -> Iterator[Key]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def items(self) -> list[tuple[Key, T]]:
        return list(self._rules.items())


Rule = Callable[[NodeFacts], Cost]
#: Output (shape, dtype) per output; None where the rule cannot tell.
ShapeOut = tuple[Shape | None, str]
ShapeRule = Callable[[NodeFacts], Sequence[ShapeOut | None] | None]
FoldRule = Callable[[NodeFacts], list[np.ndarray]]

#: ``compute`` ops do arithmetic; ``movement`` ops only move or reinterpret data
#: (zero arithmetic, their bytes are still counted).
KINDS = ("compute", "movement")


@dataclass(frozen=True, slots=True)
class OpRule:
    """An op's cost rule, kind and backward family (None: the family of its kind)."""

    domain: str
    op_type: str
    cost: Rule
    kind: str
    backward: str | None = None


COSTS: Registry[OpRule] = Registry("cost rule")
SHAPES: Registry[ShapeRule] = Registry("shape rule")
FOLDS: Registry[FoldRule] = Registry("fold rule")


def register(*op_types: str, domain: str = "", kind: str = "compute",
             backward: str | None = None) -> Callable[[Rule], Rule]:
    """Register a cost rule for each op type in ``domain`` (a second rule is an error).

    ``backward`` names the op's backward family (passes/training.py); without it the op
    takes its kind's family (``compute``: 2 x forward, ``movement``: zero).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")

    def deco(rule: Rule) -> Rule:
        for op in op_types:
            COSTS.add(domain, op, OpRule(canonical_domain(domain), op, rule, kind, backward))
        return rule

    return deco


def _no_arithmetic(_: NodeFacts) -> Cost:
    return ZERO_COST


def register_movement(*op_types: str, domain: str = "", backward: str | None = None) -> None:
    """Register ops that only move data: zero arithmetic, bytes still counted."""
    register(*op_types, domain=domain, kind="movement", backward=backward)(_no_arithmetic)


def shape_rule(*op_types: str, domain: str = "") -> Callable[[ShapeRule], ShapeRule]:
    """Register the output-shape rule of ops ONNX shape inference does not know."""

    def deco(rule: ShapeRule) -> ShapeRule:
        for op in op_types:
            SHAPES.add(domain, op, rule)
        return rule

    return deco


def fold_rule(*op_types: str, domain: str = "") -> Callable[[FoldRule], FoldRule]:
    """Register the numpy evaluation of an op on small constant inputs (shape arithmetic)."""

    def deco(rule: FoldRule) -> FoldRule:
        for op in op_types:
            FOLDS.add(domain, op, rule)
        return rule

    return deco


def lookup(domain: str, op_type: str) -> OpRule | None:
    """The cost rule of an op, or None (unsupported)."""
    load_rules()
    return COSTS.get(domain, op_type)


def all_rules() -> dict[Key, OpRule]:
    """The whole cost table, loaded."""
    load_rules()
    return dict(COSTS.items())


_LOADED = False
#: Modules of this package that hold no rules.
_NOT_FAMILIES = frozenset({"base", "helpers", "registry"})


def load_rules() -> None:
    """Import every family module of ``ops`` once (importing registers their rules)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    package = importlib.import_module(__package__ or "onnx_energy.ops")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_FAMILIES:
            importlib.import_module(f"{package.__name__}.{info.name}")
