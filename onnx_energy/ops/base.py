"""The value types of op rules: basic-operation counts, costs, and `NodeFacts`.

`NodeFacts` is the one view of a node that every per-op rule reads, whichever table the rule
is in (cost, output shapes, constant folding, backward pass): the node, its input and output
tensor facts, the known constant values, the opset, and for backward rules the forward cost
and which inputs need a gradient.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..graph import Node, TensorInfo

BOP_NAMES = ("add", "sub", "mul", "div", "root")

#: A dimension: a value, a symbolic name, or unknown.
Dim = int | str | None
Shape = tuple[Dim, ...]


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


class CannotFoldError(Exception):
    """A node cannot be evaluated on the known values (left to shape inference)."""


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """Everything static about a node that a rule may read.

    ``inputs``/``outputs`` hold None where a name is empty or its facts are unknown.
    ``forward`` and ``needs`` are set for backward rules only: the node's forward cost and,
    per input, whether the gradient must reach it.
    """

    node: Node
    inputs: tuple[TensorInfo | None, ...]
    outputs: tuple[TensorInfo | None, ...] = ()
    values: Mapping[str, np.ndarray] = field(default_factory=dict)
    opset: int = 0
    forward: Cost | None = None
    needs: tuple[bool, ...] = ()

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attrs.get(name, default)

    def has_input(self, i: int) -> bool:
        """Whether input ``i`` is given and its facts are known."""
        return i < len(self.inputs) and self.inputs[i] is not None

    def given(self, i: int) -> bool:
        """Whether input ``i`` is named (given), known or not."""
        return i < len(self.node.inputs) and bool(self.node.inputs[i])

    def shape(self, i: int) -> tuple[int, ...]:
        """Static shape of input ``i``; raises ShapeUnknownError when not known."""
        return _static(self.inputs[i] if i < len(self.inputs) else None)

    def out_shape(self, i: int = 0) -> tuple[int, ...]:
        return _static(self.outputs[i] if i < len(self.outputs) else None)

    def dims(self, i: int) -> Shape | None:
        """Shape of input ``i`` with symbolic dims kept (None when unknown)."""
        info = self.inputs[i] if i < len(self.inputs) else None
        return None if info is None else info.shape

    def dtype(self, i: int) -> str:
        """Element type name of input ``i`` (``""`` when unknown)."""
        info = self.inputs[i] if i < len(self.inputs) else None
        return "" if info is None else info.dtype

    def numel(self, i: int) -> int:
        return math.prod(self.shape(i))

    def out_numel(self, i: int = 0) -> int:
        return math.prod(self.out_shape(i))

    def value(self, i: int) -> np.ndarray | None:
        """Known constant value of input ``i`` (small initializers, folded shapes)."""
        if i >= len(self.node.inputs) or not self.node.inputs[i]:
            return None
        return self.values.get(self.node.inputs[i])

    def scalar(self, i: int) -> int | None:
        """A known one-element input's value as an int, else None."""
        v = self.value(i)
        return None if v is None or v.size != 1 else int(v.reshape(-1)[0])

    def need(self, i: int) -> bool:
        """Backward rules: whether input ``i`` needs a gradient."""
        return i < len(self.needs) and self.needs[i]


def _static(info: TensorInfo | None) -> tuple[int, ...]:
    if info is None or not info.is_static:
        raise ShapeUnknownError(info.name if info is not None else "?")
    return info.shape  # type: ignore[return-value]
