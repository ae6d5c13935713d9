"""The op-rule registry: one pure cost function per (domain, op_type).

A rule receives a node's static facts (`NodeFacts`: shapes, dtypes, attributes, known
constant values) and returns a `Cost`. Rules are registered with `register`, which refuses
duplicates, so there is exactly one source of truth for what an op costs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..graph import Node, TensorInfo

BOP_NAMES = ("add", "sub", "mul", "div", "root")


@dataclass(frozen=True, slots=True)
class BasicOps:
    """Counts of the five basic operations of the transistor-operations model."""

    add: int = 0
    sub: int = 0
    mul: int = 0
    div: int = 0
    root: int = 0

    def __add__(self, other: BasicOps) -> BasicOps:
        return BasicOps(self.add + other.add, self.sub + other.sub, self.mul + other.mul,
                        self.div + other.div, self.root + other.root)

    def __mul__(self, k: int) -> BasicOps:
        return BasicOps(self.add * k, self.sub * k, self.mul * k, self.div * k, self.root * k)

    __rmul__ = __mul__

    @property
    def total(self) -> int:
        return self.add + self.sub + self.mul + self.div + self.root

    def to_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in BOP_NAMES}


ZERO_BOPS = BasicOps()


@dataclass(frozen=True, slots=True)
class Cost:
    """What one node costs per inference.

    ``macs`` are dot-product multiply-accumulates only; ``bias`` counts the bias additions
    that are part of ``flops`` (kept apart for the seed convention); ``bops`` are the exact
    basic operations (a dot product of length K is K mul and K-1 add, plus the bias add).
    """

    macs: int = 0
    flops: int = 0
    bias: int = 0
    bops: BasicOps = ZERO_BOPS

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.macs + other.macs, self.flops + other.flops,
                    self.bias + other.bias, self.bops + other.bops)


ZERO_COST = Cost()


class ShapeUnknownError(Exception):
    """A rule needed a shape or value that analysis could not determine."""


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """Everything static about a node that a cost rule may read."""

    node: Node
    inputs: tuple[TensorInfo | None, ...]
    outputs: tuple[TensorInfo | None, ...]
    values: Mapping[str, np.ndarray] = field(default_factory=dict)
    opset: int = 0

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attrs.get(name, default)

    def has_input(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] is not None

    def shape(self, i: int) -> tuple[int, ...]:
        """Static shape of input ``i``; raises ShapeUnknownError when not known."""
        return _static(self.inputs[i] if i < len(self.inputs) else None)

    def out_shape(self, i: int = 0) -> tuple[int, ...]:
        return _static(self.outputs[i] if i < len(self.outputs) else None)

    def numel(self, i: int) -> int:
        return math.prod(self.shape(i))

    def out_numel(self, i: int = 0) -> int:
        return math.prod(self.out_shape(i))

    def value(self, i: int) -> np.ndarray | None:
        """Known constant value of input ``i`` (small initializers, folded shapes)."""
        if i >= len(self.node.inputs) or not self.node.inputs[i]:
            return None
        return self.values.get(self.node.inputs[i])


def _static(info: TensorInfo | None) -> tuple[int, ...]:
    if info is None or not info.is_static:
        raise ShapeUnknownError(info.name if info is not None else "?")
    return info.shape  # type: ignore[return-value]


Rule = Callable[[NodeFacts], Cost]

#: ``compute`` ops do arithmetic; ``movement`` ops only move or reinterpret data
#: (zero arithmetic, their bytes are still counted).
KINDS = ("compute", "movement")


@dataclass(frozen=True, slots=True)
class OpRule:
    domain: str
    op_type: str
    cost: Rule
    kind: str


REGISTRY: dict[tuple[str, str], OpRule] = {}


def register(*op_types: str, domain: str = "", kind: str = "compute") -> Callable[[Rule], Rule]:
    """Register ``rule`` for each op type in ``domain``; a second rule for one op is an error."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")

    def deco(rule: Rule) -> Rule:
        for op in op_types:
            key = (domain, op)
            if key in REGISTRY:
                raise ValueError(f"duplicate cost rule for {domain or 'ai.onnx'}::{op}")
            REGISTRY[key] = OpRule(domain, op, rule, kind)
        return rule

    return deco


def _no_arithmetic(_: NodeFacts) -> Cost:
    return ZERO_COST


def register_movement(*op_types: str, domain: str = "") -> None:
    """Register ops that only move data: zero arithmetic, bytes still counted."""
    register(*op_types, domain=domain, kind="movement")(_no_arithmetic)


def elementwise(per_element: BasicOps, *, over: str = "output") -> Rule:
    """A rule costing ``per_element`` basic operations per output (or input 0) element."""

    def rule(f: NodeFacts) -> Cost:
        n = f.out_numel(0) if over == "output" else f.numel(0)
        bops = per_element * n
        return Cost(flops=bops.total, bops=bops)

    return rule


def lookup(domain: str, op_type: str) -> OpRule | None:
    _load_rules()
    return REGISTRY.get(("" if domain == "ai.onnx" else domain, op_type))


_LOADED = False


def _load_rules() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from . import (  # noqa: F401  (importing registers the rules)
        activation,
        arithmetic,
        attention,
        contrib,
        control_flow,
        conv,
        detection,
        linalg,
        misc,
        movement,
        normalization,
        pooling,
        quantized,
        reduce,
        resize,
        rnn,
        signal,
    )


def all_rules() -> dict[tuple[str, str], OpRule]:
    """The whole registry, loaded."""
    _load_rules()
    return dict(REGISTRY)
