"""Which nodes run together as one kernel: the grouping rules of a runtime, applied statically.

A calibrated prediction charges each *kernel* the runtime executes, not each ONNX node: a
Relu fused into its Conv is not a kernel of its own, an Identity is removed, and the shape
arithmetic whose inputs are all constants is computed once when the session is created. This
module groups a graph's nodes by rules that mimic what onnxruntime does (its fusions in
``onnxruntime/core/optimizer``: conv-activation and conv-add fusion, the NCHWc transformer,
MatMul+Add to Gemm, MatMul scale and transpose fusion, GELU, FastGelu, LayerNorm,
SimplifiedLayerNorm (RMSNorm) and SkipLayerNorm fusion, QuickGelu), checked against the groups
onnxruntime's profiler reports (docs/calibration.md).

The rules are data (`FusionRules`) and belong to a hardware profile: a profile calibrated on
onnxruntime carries them (with the patterns its own measurements showed), and a profile fitted
only on records from another runtime carries none (`NO_FUSION`). Removing no-op nodes
(Identity, Dropout at inference) and computing constant subgraphs once are facts of the graph,
not of a runtime, so every profile applies them.

Patterns are sequences of op types matched along data edges in topological order, starting
at a node of the first type, each next member a consumer of the members so far (or of the
first member's main input); a match is kept only if no intermediate result is used outside
the group (the runtime must be able to drop it). The longest matching pattern wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .passes.results import GraphAnalysis

#: Ops no runtime executes at inference: they pass their input through.
NO_OPS = frozenset({"Identity", "Dropout"})
#: Ops that are not constant-folded even on constant inputs (random generators).
NOT_FOLDED = frozenset({"RandomUniform", "RandomNormal", "RandomUniformLike",
                        "RandomNormalLike", "Multinomial", "Bernoulli"})

KERNEL = "kernel"
FOLDED = "folded"
ELIMINATED = "eliminated"


@dataclass(frozen=True)
class Pattern:
    """Nodes of these op types, chained along data edges, run as one ``kernel``."""

    ops: tuple[str, ...]
    kernel: str
    #: ``default`` (written from onnxruntime's fusions) or ``observed`` (seen in profiles).
    source: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return {"ops": list(self.ops), "kernel": self.kernel, "source": self.source}


@dataclass(frozen=True)
class FusionRules:
    """How a runtime groups nodes into kernels; ``patterns`` empty means no fusion."""

    runtime: str | None
    provider: str | None
    patterns: tuple[Pattern, ...] = ()
    eliminate: frozenset[str] = NO_OPS
    fold_constants: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "provider": self.provider,
                "eliminate": sorted(self.eliminate), "fold_constants": self.fold_constants,
                "patterns": [p.to_dict() for p in self.patterns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FusionRules:
        return cls(runtime=data.get("runtime"), provider=data.get("provider"),
                   patterns=tuple(Pattern(tuple(p["ops"]), str(p["kernel"]),
                                          str(p.get("source", "default")))
                                  for p in data.get("patterns", [])),
                   eliminate=frozenset(data.get("eliminate", NO_OPS)),
                   fold_constants=bool(data.get("fold_constants", True)))

    def with_patterns(self, extra: Sequence[Pattern]) -> FusionRules:
        """These rules plus ``extra`` patterns not already present."""
        known = {p.ops for p in self.patterns}
        new = tuple(p for p in extra if p.ops not in known)
        return FusionRules(self.runtime, self.provider, self.patterns + new, self.eliminate,
                           self.fold_constants)


#: onnxruntime's CPU fusions as they show in its optimised graphs: the member op types of
#: each fused group in topological order, and the kernel that runs it. Taken from the groups
#: onnxruntime's profiler reported on torchvision and transformers exports (onnxruntime
#: 1.32, ORT_ENABLE_ALL; docs/calibration.md), which are the cases of its conv-activation,
#: conv-add (NCHWc Sum), conv-BatchNorm, MatMul+Add->Gemm (with the Reshapes it adds for 3-D
#: inputs), MatMul scale/transpose, GELU, FastGelu, QuickGelu, SkipLayerNorm and
#: SimplifiedLayerNorm fusions.
_ORT_CPU_FUSIONS: tuple[tuple[str, str], ...] = (
    ("Conv+Relu", "Conv"), ("Conv+Clip", "Conv"), ("Conv+Sigmoid", "Conv"),
    ("Conv+HardSigmoid", "Conv"), ("Conv+HardSwish", "Conv"), ("Conv+LeakyRelu", "Conv"),
    ("Conv+Tanh", "Conv"), ("Conv+Add+Relu", "Conv"), ("Conv+Add+Clip", "Conv"),
    ("Conv+Add", "Conv"), ("Conv+BatchNormalization+Relu", "Conv"),
    ("Conv+BatchNormalization", "Conv"), ("BatchNormalization+Relu+Conv+Relu", "Conv"),
    ("BatchNormalization+Relu+Conv", "Conv"), ("Gemm+Relu", "Gemm"), ("Gemm+Tanh", "Gemm"),
    ("Gemm+Sigmoid", "Gemm"), ("MatMul+Add", "Gemm"), ("MatMul+Add+Reshape", "Gemm"),
    ("Reshape+MatMul+Add+Reshape", "Gemm"), ("Reshape+MatMul+Add", "Gemm"),
    ("MatMul+Mul", "FusedMatMul"), ("MatMul+Div", "FusedMatMul"),
    ("Mul+MatMul", "FusedMatMul"), ("Transpose+Mul+Mul+MatMul", "FusedMatMul"),
    ("Add+LayerNormalization", "SkipLayerNormalization"),
    ("Div+Erf+Add+Mul+Mul", "Gelu"), ("Mul+Pow+Mul+Add+Mul+Tanh+Add+Mul", "FastGelu"),
    ("Sigmoid+Mul", "QuickGelu"),
    ("Cast+Pow+ReduceMean+Add+Sqrt+Div+Mul+Cast+Mul", "SimplifiedLayerNormalization"),
    ("Cast+Pow+ReduceMean+Add+Sqrt+Div+Mul+Mul", "SimplifiedLayerNormalization"),
    ("Pow+ReduceMean+Add+Sqrt+Div+Mul+Mul", "SimplifiedLayerNormalization"),
    ("ReduceMean+Sub+Pow+ReduceMean+Add+Sqrt+Div+Mul+Add", "LayerNormalization"),
    ("Mul+Softmax", "Softmax"), ("Mul+Add", "Add"), ("Slice+Slice", "Split"),
    ("Gather+Gather+Gather", "Split"),
)


def _onnxruntime_cpu_patterns() -> tuple[Pattern, ...]:
    return tuple(Pattern(tuple(ops.split("+")), kernel) for ops, kernel in _ORT_CPU_FUSIONS)


def default_rules(runtime: str | None, provider: str | None) -> FusionRules:
    """The documented rules of a runtime and provider; no fusion for anything but
    onnxruntime (whose CPU and CUDA graph optimisations share these fusions)."""
    if runtime != "onnxruntime":
        return FusionRules(runtime, provider)
    return FusionRules(runtime, provider, _onnxruntime_cpu_patterns())


NO_FUSION = FusionRules(None, None)


@dataclass
class Group:
    """Node indices (topological order) that run as one kernel, or need no kernel."""

    members: list[int]
    kernel: str
    kind: str = KERNEL
    pattern: Pattern | None = None
    #: Output tensors read outside the group (or graph outputs).
    leaves: set[str] = field(default_factory=set)


def group_nodes(graph: GraphAnalysis, rules: FusionRules) -> list[Group]:
    """Group a graph's nodes into kernels by ``rules`` (every node in exactly one group)."""
    nodes = [c.node for c in graph.costs]
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for x in n.inputs:
            if x:
                consumers.setdefault(x, []).append(i)
    graph_outputs = {vi.name for vi in graph.model.proto.graph.output}
    const = _constant_tensors(graph) if rules.fold_constants else set()
    groups: list[Group] = []
    owner: dict[int, int] = {}
    by_start: dict[str, list[Pattern]] = {}
    for p in sorted(rules.patterns, key=lambda p: -len(p.ops)):
        by_start.setdefault(p.ops[0], []).append(p)

    for i, node in enumerate(nodes):
        if i in owner:
            continue
        if node.op_type in rules.eliminate and node.domain == "":
            _add(groups, owner, Group([i], node.op_type, ELIMINATED))
            continue
        outs = [o for o in node.outputs if o]
        if outs and all(o in const for o in outs):
            _add(groups, owner, Group([i], node.op_type, FOLDED))
            continue
        found: tuple[list[int], Pattern] | None = None
        if node.domain == "":
            for pattern in by_start.get(node.op_type, ()):
                members = _match(i, pattern, nodes, consumers, owner, graph_outputs)
                if members is not None:
                    found = members, pattern
                    break
        if found is not None:
            _add(groups, owner, Group(found[0], found[1].kernel, KERNEL, found[1]))
        else:
            _add(groups, owner, Group([i], node.op_type, KERNEL))
    for g in groups:
        g.leaves = {o for m in g.members for o in nodes[m].outputs if o and (
            o in graph_outputs or any(c not in g.members for c in consumers.get(o, ())))}
    return groups


def _add(groups: list[Group], owner: dict[int, int], group: Group) -> None:
    for m in group.members:
        owner[m] = len(groups)
    groups.append(group)


def _match(start: int, pattern: Pattern, nodes: Sequence[Any],
           consumers: Mapping[str, list[int]], owner: Mapping[int, int],
           graph_outputs: set[str]) -> list[int] | None:
    members = [start]
    # The group's main input (e.g. the x of GELU's 0.5·x·(1 + tanh(...))) may feed several
    # members directly, besides the members' own outputs.
    main = [x for x in nodes[start].inputs[:1] if x]
    for op in pattern.ops[1:]:
        reachable = [o for m in members for o in nodes[m].outputs if o] + main
        candidates = sorted(
            c for o in reachable for c in consumers.get(o, ())
            if c not in members and c not in owner and c > start and nodes[c].op_type == op
            and nodes[c].domain == "")
        if not candidates:
            return None
        members.append(candidates[0])
    members.sort()
    last = members[-1]
    for m in members:
        if m == last:
            continue
        for o in nodes[m].outputs:
            if not o:
                continue
            if o in graph_outputs or any(c not in members for c in consumers.get(o, ())):
                return None  # an intermediate result is needed outside: no fusion
    return members


def _constant_tensors(graph: GraphAnalysis) -> set[str]:
    """Tensors computable once, before any inference: initializers and the outputs of nodes
    whose inputs are all constant (Shape and Size of a statically shaped tensor too)."""
    const = set(graph.model.weights)
    const.update(t.name for t in graph.model.proto.graph.initializer)
    for c in graph.costs:
        node = c.node
        if node.op_type in NOT_FOLDED:
            continue
        if node.domain == "" and node.op_type in ("Shape", "Size"):
            src = c.inputs[0] if c.inputs else None
            if src is not None and src.is_static:
                const.update(o for o in node.outputs if o)
            continue
        if node.op_type in ("If", "Loop", "Scan"):
            continue
        if all(x in const for x in node.inputs if x):
            const.update(o for o in node.outputs if o)
    return const
