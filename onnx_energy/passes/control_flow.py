"""Control flow: If, Loop and Scan costed through their subgraphs; model-local functions inlined.

Every subgraph is analysed as a model of its own, with the same passes as the main graph:
its formal inputs get the shapes the node feeds them (Loop-carried values, Scan slices) and
every outer-scope name it reads becomes an input with the outer tensor's shape, or an
initializer holding the outer value when that is a known constant, so shape inference,
shape-subgraph folding and the cost rules run unchanged, to any depth.

- **If**: both branches are analysed and reported. A known condition (a constant, or one
  folded from shapes and bound dims) picks the branch counted, and its output shapes flow
  on; an unknown one counts the costlier branch (by FLOPs, then MACs) unless ``branch``
  picks one. Its outputs take the counted branch's shapes where ONNX could not merge them.
- **Loop**: body cost × trip count. The trip count is the constant ``M`` input (a value of
  ``M`` above `MAX_TRIPS`, such as the INT64_MAX exporters write for while-loops, is a
  placeholder), 0 when the initial condition is a constant false, else ``loop_trips``;
  without one the node is unresolved, never zero.
- **Scan**: body cost × the scan inputs' axis length (``loop_trips`` when that is unknown).

The shape pass calls `ControlFlow.infer` at each control-flow node (subgraph shapes need the
outer tensors' shapes, and later nodes need the node's outputs); the cost pass then applies
the result with `apply_control_flow`.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx
import onnx.inliner
from onnx import GraphProto, ModelProto, numpy_helper

from ..dtypes import elem_type
from ..errors import InvalidGraphError, OnnxEnergyError
from ..graph import (
    MAX_DIM,
    LoadedModel,
    Node,
    TensorInfo,
    detach_weights,
    valid_shape,
)
from ..ops.base import Cost
from .costs import ABSURD_REASON, absurd_cost
from .fold import MAX_FOLD_ELEMENTS
from .results import (
    ControlFlowOptions,
    ControlFlowResult,
    GraphAnalysis,
    NodeCost,
    Status,
    SubgraphResult,
    scale_cost,
)
from .subgraphs import (
    CONTROL_FLOW_OPS,
    MAX_SUBGRAPH_DEPTH,
    free_names,
    implicit_inputs,
    subgraph_depth,
    subgraphs,
)

__all__ = ["BRANCHES", "CONTROL_FLOW_OPS", "MAX_SUBGRAPH_DEPTH", "MAX_TRIPS", "ControlFlow",
           "ControlFlowOptions", "ControlFlowResult", "SubgraphResult", "apply_control_flow",
           "implicit_inputs", "prepare", "scale_cost"]

#: Analyses one subgraph, built as a model of its own, with the given options: the pipeline.
Analyse = Callable[[LoadedModel, ControlFlowOptions], GraphAnalysis]

BRANCHES = ("then", "else")
#: A Loop's constant M above this is a placeholder for "until the condition is false".
MAX_TRIPS = MAX_DIM

#: The facts of a node's outputs, in order (None where unknown).
Outs = list[TensorInfo | None]

SOURCE_M = "M"
SOURCE_COND = "cond"
SOURCE_OPTION = "--loop-trips"
SOURCE_SCAN = "scan axis"


# ------------------------------------------------------------------------ graph helpers


def prepare(model: LoadedModel) -> None:
    """Inline the model-local functions, in place. (Nesting deeper than MAX_SUBGRAPH_DEPTH is
    refused as the shape pass reaches it; protobuf's parser stops near 31 levels anyway.)"""
    inline_functions(model)


def inline_functions(model: LoadedModel) -> None:
    """Expand every call of a model-local function (ModelProto.functions) in place.

    The functions' opset versions are aligned with the model's first: ONNX's inliner skips
    a function whose opsets differ, and the cost rules read both attribute and input forms.
    """
    proto = model.proto
    if not proto.functions:
        return
    for f in proto.functions:
        if subgraph_depth(_function_graph(f)) > MAX_SUBGRAPH_DEPTH:
            raise InvalidGraphError(
                f"function {f.name!r}: subgraphs are nested more than {MAX_SUBGRAPH_DEPTH} "
                "levels deep; refused"
            )
    work = ModelProto()
    work.CopyFrom(proto)
    versions = {imp.domain or "": imp.version for imp in work.opset_import}
    for f in work.functions:
        for imp in f.opset_import:
            if (imp.domain or "") in versions:
                imp.version = versions[imp.domain or ""]
    try:
        inlined = onnx.inliner.inline_local_functions(work, convert_version=False)
    except Exception as exc:  # recursive, malformed or mistyped functions
        raise InvalidGraphError(
            f"cannot expand the model-local functions: {_first_line(exc)}"
        ) from None
    del proto.graph.node[:]
    proto.graph.node.extend(inlined.graph.node)
    del proto.functions[:]


def _function_graph(f: onnx.FunctionProto) -> GraphProto:
    g = GraphProto()
    g.node.extend(f.node)
    return g


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


# ------------------------------------------------------------------------------- results


def flow_key(node: Node) -> tuple[str, tuple[str, ...]]:
    return node.name, node.outputs


def apply_control_flow(nc: NodeCost, results: Mapping[Any, ControlFlowResult]) -> NodeCost:
    """A control-flow node's NodeCost from its analysed subgraphs (as the cost pass left it
    when the node was not analysed)."""
    result = results.get(flow_key(nc.node))
    if result is None:
        return nc
    cost = result.cost()
    moved = result.bytes_moved()
    reason = "" if cost is not None and result.complete else result.reason()
    if cost is not None and absurd_cost(cost):
        cost, moved, reason = None, None, ABSURD_REASON
    return dataclasses.replace(
        nc, cost=cost, status=Status.UNRESOLVED if reason else Status.OK, kind="compute",
        params=result.params(), bytes_read=None if moved is None else moved[0],
        bytes_written=None if moved is None else moved[1], reason=reason, control=result,
    )


# ------------------------------------------------------------------------- the analysis


class ControlFlow:
    """The shape-pass hook of one graph: analyses each control-flow node it is given.

    ``analyse`` runs the analysis pipeline on a subgraph turned into a model of its own (it
    is passed in, so this module does not depend on the pipeline that uses it).
    """

    def __init__(self, model: LoadedModel, options: ControlFlowOptions | None,
                 analyse: Analyse) -> None:
        self.options = options or ControlFlowOptions()
        self.analyse = analyse
        self.weights = model.weights
        self.opset_import = list(model.proto.opset_import)
        self.ir_version = model.proto.ir_version
        self.results: dict[Any, ControlFlowResult] = {}

    def infer(
        self, node: Node, tensors: dict[str, TensorInfo], values: Mapping[str, np.ndarray]
    ) -> None:
        """Analyse ``node``'s subgraphs, record the result, fill in its outputs' shapes."""
        if self.options.depth >= MAX_SUBGRAPH_DEPTH:
            raise InvalidGraphError(
                f"subgraphs are nested more than {MAX_SUBGRAPH_DEPTH} levels deep; refused"
            )
        try:
            if node.op_type == "If":
                result, outs = self._if(node, tensors, values)
            elif node.op_type == "Loop":
                result, outs = self._loop(node, tensors, values)
            else:
                result, outs = self._scan(node, tensors, values)
        except OnnxEnergyError as exc:
            raise _in_scope(exc, f"{node.op_type} {node.name!r}") from None
        except RecursionError:
            raise InvalidGraphError(
                f"node {node.name!r} ({node.op_type}): subgraphs nested too deeply"
            ) from None
        except Exception as exc:  # hostile attributes: unresolved with a reason, no crash
            note = f"subgraphs not analysed: {type(exc).__name__}: {exc}"[:300]
            result, outs = ControlFlowResult(node.op_type, {}, [], trips=None, notes=[note]), []
        self.results[flow_key(node)] = result
        for name, info in zip(node.outputs, outs, strict=False):
            if not name or info is None or info.shape is None or not valid_shape(info.shape):
                continue  # unknown, or a stacked shape too large to be real: left unknown
            old = tensors.get(name)
            if old is None or not old.is_static:
                tensors[name] = TensorInfo(name, info.shape, info.dtype or (old.dtype if old
                                                                            else ""))

    # ------------------------------------------------------------------------- If

    def _if(self, node: Node, tensors: dict[str, TensorInfo],
            values: Mapping[str, np.ndarray]) -> tuple[ControlFlowResult, Outs]:
        graphs = _graph_attrs(node, "then_branch", "else_branch")
        subs = {label: self._analyse(label, g, [], tensors, values)
                for label, g in zip(BRANCHES, graphs, strict=True)}
        cond = _scalar(values, node.inputs[0] if node.inputs else "")
        notes: list[str] = []
        if cond is not None:
            # A known condition (a constant, or folded from shapes and bound dims) decides.
            chosen = "then" if cond else "else"
            if self.options.branch not in (None, chosen):
                notes.append(f"--branch {self.options.branch} ignored: the condition is "
                             f"known ({bool(cond)})")
        elif self.options.branch is not None:
            chosen = self.options.branch
        else:
            then, other = subs["then"], subs["else"]
            chosen = "else" if _key(other.cost) > _key(then.cost) else "then"
            if not (then.complete and other.complete):
                notes.append("the costlier branch is not known (a branch is not fully "
                             "counted); choose one with --branch")
        result = ControlFlowResult("If", subs, [chosen], cond=None if cond is None
                                   else bool(cond), notes=notes)
        return result, subs[chosen].outputs

    # ----------------------------------------------------------------------- Loop

    def _loop(self, node: Node, tensors: dict[str, TensorInfo],
              values: Mapping[str, np.ndarray]) -> tuple[ControlFlowResult, Outs]:
        (body,) = _graph_attrs(node, "body")
        ins = list(node.inputs) + ["", ""]
        m_name, cond_name, carried = ins[0], ins[1], list(node.inputs[2:])
        formal: list[TensorInfo | None] = [TensorInfo("", (), "int64"), TensorInfo("", (), "bool")]
        formal += [tensors.get(x) if x else None for x in carried]
        sub = self._analyse("body", body, formal, tensors, values)
        notes: list[str] = []
        trips, source = None, ""
        m = _scalar(values, m_name)
        cond = _scalar(values, cond_name)
        if cond is not None and not cond:
            trips, source = 0, SOURCE_COND
        elif m is not None and m <= MAX_TRIPS:
            trips, source = max(int(m), 0), SOURCE_M
        elif self.options.loop_trips is not None:
            trips, source = self.options.loop_trips, SOURCE_OPTION
        elif m is not None:
            notes.append(f"trip count unknown (M={int(m)} is a placeholder: the loop runs until "
                         "its condition is false); pass --loop-trips N")
        else:
            notes.append("trip count unknown (M is not a constant); pass --loop-trips N")
        outs_body = sub.outputs
        n_carried = len(carried)
        notes += _changing_shapes(formal[2:], outs_body[1:1 + n_carried], carried)
        outs: list[TensorInfo | None] = list(outs_body[1:1 + n_carried])
        for info in outs_body[1 + n_carried:]:
            outs.append(_stacked(info, trips, 0))
        result = ControlFlowResult("Loop", {"body": sub}, ["body"], trips=trips,
                                   trips_source=source, cond=None if cond is None
                                   else bool(cond), notes=notes)
        return result, outs

    # ----------------------------------------------------------------------- Scan

    def _scan(self, node: Node, tensors: dict[str, TensorInfo],
              values: Mapping[str, np.ndarray]) -> tuple[ControlFlowResult, Outs]:
        (body,) = _graph_attrs(node, "body")
        opset = next((imp.version for imp in self.opset_import if imp.domain in ("", "ai.onnx")),
                     0)
        batched = opset < 9  # Scan-8: a leading batch axis and a sequence_lens input
        ins = list(node.inputs[1:] if batched else node.inputs)
        n_scan = node.attrs.get("num_scan_inputs")
        if not isinstance(n_scan, int) or not 0 < n_scan <= len(ins):
            raise InvalidGraphError(f"num_scan_inputs={_short(n_scan)} does not fit "
                                    f"{len(ins)} input(s)")
        n_state = len(ins) - n_scan
        states = [tensors.get(x) if x else None for x in ins[:n_state]]
        scans = [tensors.get(x) if x else None for x in ins[n_state:]]
        axes = _int_list(node, "scan_input_axes", [0] * n_scan) if not batched else [1] * n_scan
        if len(axes) != n_scan:
            raise InvalidGraphError(f"scan_input_axes has {len(axes)} entries for "
                                    f"{n_scan} scan input(s)")
        formal: list[TensorInfo | None] = [_drop_axis(s, 0) if batched else s for s in states]
        lengths: list[int | str | None] = []
        batch: int | str | None = 1
        for info, axis in zip(scans, axes, strict=True):
            if info is None or info.shape is None:
                formal.append(None)
                lengths.append(None)
                continue
            rank = len(info.shape)
            if not -rank <= int(axis) < rank:
                raise InvalidGraphError(f"scan axis {axis} is out of range for rank {rank}")
            ax = int(axis) % rank
            lengths.append(info.shape[ax])
            sliced = _drop_axis(info, ax)
            if batched and sliced is not None and sliced.shape:
                batch = info.shape[0]
                sliced = _drop_axis(sliced, 0)
            formal.append(sliced)
        sub = self._analyse("body", body, formal, tensors, values)
        notes: list[str] = []
        known = [d for d in lengths if isinstance(d, int)]
        trips: int | None = None
        source = ""
        if known and isinstance(batch, int):
            trips, source = known[0] * batch, SOURCE_SCAN
            if any(d != known[0] for d in known):
                notes.append(f"scan inputs disagree on their length ({known})")
        elif self.options.loop_trips is not None:
            trips, source = self.options.loop_trips, SOURCE_OPTION
        else:
            names = sorted({d for d in (*lengths, batch) if isinstance(d, str)})
            hint = ("bind with " + " ".join(f"--dim {shlex.quote(n + '=N')}" for n in names)
                    if names else "pass --loop-trips N")
            notes.append(f"scan length unknown; {hint}")
        outs_body = sub.outputs
        notes += _changing_shapes(formal[:n_state], outs_body[:n_state], ins[:n_state])
        outs: list[TensorInfo | None] = []
        for info in outs_body[:n_state]:
            outs.append(_stacked(info, batch if isinstance(batch, int) else None, 0)
                        if batched else info)
        out_axes = _int_list(node, "scan_output_axes", [])
        for k, info in enumerate(outs_body[n_state:]):
            if batched:
                seq = known[0] if known else None
                stacked = _stacked(info, seq, 0)
                outs.append(_stacked(stacked, batch if isinstance(batch, int) else None, 0))
            else:
                axis = int(out_axes[k]) if k < len(out_axes) else 0
                outs.append(_stacked(info, trips if source == SOURCE_SCAN else None, axis))
        result = ControlFlowResult("Scan", {"body": sub}, ["body"], trips=trips,
                                   trips_source=source, notes=notes)
        return result, outs

    # ------------------------------------------------------------------- subgraphs

    def _analyse(self, label: str, graph: GraphProto, formal: list[TensorInfo | None],
                 tensors: Mapping[str, TensorInfo],
                 values: Mapping[str, np.ndarray]) -> SubgraphResult:
        if len(formal) != len(graph.input):
            raise InvalidGraphError(
                f"{label}: the subgraph takes {len(graph.input)} input(s), the node gives "
                f"{len(formal)}"
            )
        model, params = self._sub_model(graph, formal, tensors, values)
        analysed = self.analyse(model, self.options.deeper())
        outputs = [analysed.shaped.tensors.get(vi.name) for vi in model.proto.graph.output]
        own = {k: v for k, v in model.weights.items() if k not in model.input_names
               and k not in free_names(graph)}
        return SubgraphResult(label, analysed.costs, params, outputs, own, analysed.lowered)

    def _sub_model(
        self, graph: GraphProto, formal: list[TensorInfo | None],
        tensors: Mapping[str, TensorInfo], values: Mapping[str, np.ndarray],
    ) -> tuple[LoadedModel, dict[str, TensorInfo]]:
        """A standalone model of ``graph``: formal inputs typed from the node, outer names
        as inputs (or initializers holding their known values), large weights detached."""
        g = GraphProto()
        g.CopyFrom(graph)
        for vi, info in zip(g.input, formal, strict=True):
            _set_type(vi, info)
        input_names = [vi.name for vi in g.input]  # before weights become typed inputs
        headers = detach_weights(g, base_dir=None)
        params = dict(headers)
        for name in sorted(free_names(graph)):
            outer = tensors.get(name)
            if name in self.weights:
                params[name] = self.weights[name]
            value = values.get(name)
            if value is not None and value.size <= MAX_FOLD_ELEMENTS:
                try:
                    g.initializer.append(numpy_helper.from_array(np.asarray(value), name))
                    headers[name] = TensorInfo(name, tuple(int(d) for d in value.shape),
                                               outer.dtype if outer is not None else "")
                    continue
                except Exception:  # an odd dtype: pass the shape only
                    pass
            vi = g.input.add()
            vi.name = name
            _set_type(vi, outer)
            input_names.append(name)
            if name in self.weights:
                headers[name] = self.weights[name]
        model = ModelProto()
        model.ir_version = self.ir_version
        model.opset_import.extend(self.opset_import)
        model.graph.CopyFrom(g)
        return LoadedModel(proto=model, path=None, weights=headers,
                           input_names=input_names), params


# ------------------------------------------------------------------------------ helpers


def _in_scope(exc: OnnxEnergyError, where: str) -> OnnxEnergyError:
    """The same error, saying which control-flow nodes (outermost first) it is inside."""
    scope = [where, *getattr(exc, "scope", [])]
    base = getattr(exc, "base_message", str(exc))
    shown = scope if len(scope) <= 4 else [*scope[:2], f"({len(scope) - 3} more)", scope[-1]]
    new = type(exc)(f"in {' > '.join(shown)}: {base}")
    new.scope, new.base_message = scope, base  # type: ignore[attr-defined]
    return new


def _graph_attrs(node: Node, *names: str) -> list[GraphProto]:
    found = dict(subgraphs(node.proto))
    missing = [n for n in names if n not in found]
    if missing:
        raise InvalidGraphError(f"the {missing[0]} subgraph is missing")
    return [found[n] for n in names]


def _int_list(node: Node, name: str, default: list[int]) -> list[int]:
    value = node.attrs.get(name)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise InvalidGraphError(f"attribute {name}={_short(value)} is not a list of ints")
    return value


def _short(value: Any) -> str:
    return " ".join(repr(value).split())[:60]


def _scalar(values: Mapping[str, np.ndarray], name: str) -> int | float | bool | None:
    if not name:
        return None
    v = values.get(name)
    if v is None or v.size != 1:
        return None
    x = v.reshape(-1)[0]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)) and np.isfinite(x):
        return int(x)
    return None


def _key(cost: Cost) -> tuple[int | float, int | float]:
    return cost.flops, cost.macs


def _drop_axis(info: TensorInfo | None, axis: int) -> TensorInfo | None:
    if info is None or info.shape is None or not info.shape:
        return None
    return TensorInfo(info.name, info.shape[:axis] + info.shape[axis + 1:], info.dtype)


def _stacked(info: TensorInfo | None, n: int | None, axis: int) -> TensorInfo | None:
    if info is None or info.shape is None or n is None:
        return None
    rank = len(info.shape) + 1
    if not -rank <= axis < rank:
        return None
    axis %= rank
    return TensorInfo(info.name, info.shape[:axis] + (n,) + info.shape[axis:], info.dtype)


def _changing_shapes(before: list[TensorInfo | None], after: list[TensorInfo | None],
                     names: list[str]) -> list[str]:
    """Notes on loop-carried values whose static shape differs between iterations."""
    notes = []
    for b, a, name in zip(before, after, names, strict=False):
        if b is not None and a is not None and b.is_static and a.is_static and b.shape != a.shape:
            notes.append(f"the loop-carried {name!r} changes shape each iteration "
                         f"({list(b.shape or ())} -> {list(a.shape or ())}); per-iteration "
                         "costs differ")
    return notes


def _set_type(vi: onnx.ValueInfoProto, info: TensorInfo | None) -> None:
    """Type a subgraph input from the tensor the node feeds it (unknown: keep what it says)."""
    if info is None:
        return
    if info.shape is None and not info.dtype:
        return
    if vi.type.WhichOneof("value") not in (None, "tensor_type"):
        return  # a sequence, map or optional: keep the declared type
    tt = vi.type.tensor_type
    if info.dtype and elem_type(info.dtype):
        tt.elem_type = elem_type(info.dtype)
    if info.shape is not None:
        tt.ClearField("shape")
        shape = tt.shape
        shape.SetInParent()  # a scalar has a shape with no dims, not no shape
        for d in info.shape:
            dim = shape.dim.add()
            if isinstance(d, int):
                dim.dim_value = d
            elif isinstance(d, str) and d:
                dim.dim_param = d
