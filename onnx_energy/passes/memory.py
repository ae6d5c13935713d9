"""Peak activation memory: a static liveness plan over the graph's topological order.

Every activation (a graph input, or a tensor a node produces) gets its own buffer, allocated
when it is produced (graph inputs: before the first node) and freed right after its last
consumer runs; graph outputs stay until the end, and an output nobody reads is freed right
after its producer. A node's figure is the bytes live while it runs: its inputs, its outputs,
and everything produced earlier and read later. The peak is the largest of them.

What the plan assumes (docs/memory.md): weights apart (initializers and tensors computed from
constants alone are not activations); the graph's own node order; no in-place reuse and no
aliasing (a Reshape's output is a buffer of its own), so a runtime that reuses buffers needs
at most this much; no allocator fragmentation or alignment; subgraph bodies (If/Loop/Scan)
contribute their node's inputs and outputs, not their internal temporaries, and outer tensors
a body reads stay live until that node has run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..graph import Node, TensorInfo
from .subgraphs import implicit_inputs


@dataclass(frozen=True)
class MemoryPlan:
    """Live activation bytes per node (aligned with the graph's nodes) and their peak.

    Sizes that are not known count as zero and are listed in ``unknown``; ``complete`` is
    false then, and every figure is a lower bound.
    """

    node_bytes: list[int]
    peak_bytes: int
    peak_node: int | None
    unknown: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.unknown


def constant_tensors(nodes: Iterable[Node], weights: Iterable[str]) -> set[str]:
    """Weights and what nodes compute from them alone (Constant nodes included)."""
    const = set(weights)
    for node in nodes:
        reads = {x for x in node.inputs if x}
        if node.proto.attribute:
            reads |= implicit_inputs(node.proto)
        if reads <= const:
            const.update(o for o in node.outputs if o)
    return const


def plan_memory(nodes: Sequence[Node], tensors: Mapping[str, TensorInfo],
                graph_inputs: Sequence[str], graph_outputs: Sequence[str],
                weights: Iterable[str]) -> MemoryPlan:
    """The liveness plan of ``nodes`` (topological order); see the module docstring."""
    const = constant_tensors(nodes, weights)
    end = len(nodes)
    last_use: dict[str, int] = {}
    reads: list[set[str]] = []
    for i, node in enumerate(nodes):
        names = {x for x in node.inputs if x}
        if node.proto.attribute:
            names |= implicit_inputs(node.proto)
        names -= const
        reads.append(names)
        for x in names:
            last_use[x] = i
    for o in graph_outputs:
        last_use[o] = end
    unknown: list[str] = []
    sizes: dict[str, int] = {}

    def size(name: str) -> int:
        got = sizes.get(name)
        if got is None:
            info = tensors.get(name)
            if info is not None and info.is_static and info.dtype:
                got = info.nbytes
            else:
                got = 0
                unknown.append(name)
            sizes[name] = got
        return got

    live = 0
    for x in dict.fromkeys(graph_inputs):
        if x not in const:
            live += size(x)
    frees: dict[int, list[str]] = {}
    for x, i in last_use.items():
        frees.setdefault(i, []).append(x)
    node_bytes: list[int] = []
    peak, peak_node = live, None  # a graph without nodes peaks at its inputs
    for i, node in enumerate(nodes):
        for o in dict.fromkeys(node.outputs):
            if o and o not in const:
                live += size(o)
                if o not in last_use:  # read by nobody: freed once its producer is done
                    frees.setdefault(i, []).append(o)
        node_bytes.append(live)
        if peak_node is None or live > peak:
            peak, peak_node = live, i
        for x in frees.get(i, ()):
            live -= sizes.get(x, 0)
    return MemoryPlan(node_bytes, peak, peak_node, sorted(set(unknown)))
