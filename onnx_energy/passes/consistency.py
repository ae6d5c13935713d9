"""Bindings the graph contradicts, found after shape inference and reported as errors.

- A shape an input override (``--input``, or ``--batch-size`` re-batching a fixed export)
  cannot pass: a Reshape whose target is a constant written into the graph either cannot
  hold its input's elements, or keeps the export's batch as a literal (``[1, -1]``) while its
  input now leads with the new batch. The error names that node.
- An attention kernel's total key length that is not past + new: GroupQueryAttention reads
  ``total_sequence_length`` from the mask's shape; bound to a length other than
  ``past_sequence_length + sequence_length`` (more, or fewer than the new tokens), the counts
  would describe no real run. The error names the bindings on both sides.
"""

from __future__ import annotations

import math
import shlex

import numpy as np

from ..errors import BindingError
from ..graph import LoadedModel, Node, shape_text
from ..ops.helpers import MS
from .results import ShapedGraph


def check_bindings(model: LoadedModel, shaped: ShapedGraph) -> None:
    """Raise BindingError at the first node the bindings or overrides contradict."""
    constants = {t.name for t in model.proto.graph.initializer}
    constants |= {o for n in shaped.nodes if n.domain == "" and n.op_type == "Constant"
                  for o in n.outputs}
    for node in shaped.nodes:
        if model.overrides and node.domain == "" and node.op_type == "Reshape":
            _check_reshape(model, shaped, node, constants)
        elif node.domain == MS and node.op_type == "GroupQueryAttention":
            _check_total_length(model, shaped, node)


def _override_text(model: LoadedModel) -> str:
    parts = []
    for name, (_, new) in model.overrides.items():
        parts.append(f"--input {shlex.quote(name + '=' + 'x'.join(str(d) for d in new))}")
    return ", ".join(parts)


def _check_reshape(model: LoadedModel, shaped: ShapedGraph, node: Node,
                   constants: set[str]) -> None:
    if len(node.inputs) < 2 or node.inputs[1] not in constants:
        return
    data = shaped.tensors.get(node.inputs[0])
    target = shaped.values.get(node.inputs[1])
    if data is None or not data.is_static or target is None or target.ndim != 1:
        return
    want = [int(v) for v in target]
    shape = data.static_shape
    where = (f"node {node.name!r} (Reshape) hard-codes the shape {want}, which contradicts "
             f"{_override_text(model)}")
    allowzero = int(node.attrs.get("allowzero", 0))
    fixed = [shape[i] if v == 0 and not allowzero and i < len(shape) else v
             for i, v in enumerate(want)]
    known = math.prod(v for v in fixed if v != -1)
    total = math.prod(shape)
    if (-1 in fixed and (known == 0 or total % known)) or (-1 not in fixed and known != total):
        raise BindingError(f"{where}: it cannot hold the {total} elements of "
                           f"{shape_text(shape)}")
    rebatched = {new[0]: old[0] for old, new in
                 ((o, n) for o, n in model.overrides.values()) if old and new
                 and isinstance(old[0], int) and new[0] != old[0]}
    if shape and shape[0] in rebatched and want and want[0] == rebatched[shape[0]] != shape[0]:
        raise BindingError(f"{where}: its input {shape_text(shape)} leads with the new batch "
                           f"{shape[0]}, its target keeps the export's {want[0]}")


def _named(model: LoadedModel, value: int) -> str:
    names = [n for n, v in model.bindings.items() if v == value]
    return f"{' or '.join(names)}={value}" if names else str(value)


def _check_total_length(model: LoadedModel, shaped: ShapedGraph, node: Node) -> None:
    ins = list(node.inputs) + [""] * 7
    total_value = shaped.values.get(ins[6]) if ins[6] else None
    query = shaped.tensors.get(ins[0])
    past = shaped.tensors.get(ins[3]) if ins[3] else None
    if total_value is None or np.asarray(total_value).size != 1 or query is None \
            or not query.is_static or len(query.static_shape) < 2:
        return
    total = int(np.asarray(total_value).reshape(-1)[0])
    new = query.static_shape[1]
    past_len = 0
    if past is not None:
        if not past.is_static or len(past.static_shape) != 4:
            return
        past_len = past.static_shape[2]
    # A shared KV buffer (past = the buffer's capacity) allows total < past + new.
    if total > past_len + new or total < new:
        raise BindingError(
            f"total_sequence_length {_named(model, total)} of node {node.name!r} "
            f"(GroupQueryAttention) is not past + new: past {_named(model, past_len)} + "
            f"sequence {_named(model, new)} = {past_len + new}; bind them consistently")
