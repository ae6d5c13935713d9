"""Structure of nested graphs: a node's subgraphs, the outer names they read, their depth."""

from __future__ import annotations

from onnx import AttributeProto, GraphProto, NodeProto

#: Ops whose cost is the cost of their subgraphs.
CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan"})
#: Deepest nesting of subgraphs analysed (the protobuf parser itself stops near 31 levels).
MAX_SUBGRAPH_DEPTH = 24


def subgraphs(proto: NodeProto) -> list[tuple[str, GraphProto]]:
    """The (attribute name, graph) pairs of a node; empty for ordinary nodes."""
    out: list[tuple[str, GraphProto]] = []
    for a in proto.attribute:
        if a.type == AttributeProto.GRAPH:
            out.append((a.name, a.g))
        elif a.type == AttributeProto.GRAPHS:
            out.extend((f"{a.name}[{i}]", g) for i, g in enumerate(a.graphs))
    return out


def free_names(graph: GraphProto) -> set[str]:
    """Names a graph (or any graph nested in it) reads from its enclosing scopes."""
    defined = {vi.name for vi in graph.input}
    defined.update(t.name for t in graph.initializer)
    defined.update(s.values.name for s in graph.sparse_initializer)
    used: set[str] = set()
    for node in graph.node:
        used.update(x for x in node.input if x)
        for _, g in subgraphs(node):
            used |= free_names(g)
        defined.update(node.output)
    return used - defined


def implicit_inputs(proto: NodeProto) -> set[str]:
    """Outer-scope names a node's subgraphs read: dependencies as real as its inputs."""
    names: set[str] = set()
    for _, g in subgraphs(proto):
        names |= free_names(g)
    return names


def subgraph_depth(graph: GraphProto) -> int:
    """How deeply subgraphs nest inside ``graph`` (0 for a graph without control flow)."""
    deepest = 0
    stack: list[tuple[GraphProto, int]] = [(graph, 0)]
    while stack:
        g, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_SUBGRAPH_DEPTH:
            break
        for node in g.node:
            stack.extend((sub, depth + 1) for _, sub in subgraphs(node))
    return deepest
