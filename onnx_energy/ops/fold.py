"""Constant folding rules: numpy evaluation of the ops shape subgraphs are made of.

Shape -> Gather -> Concat -> Reshape chains, and what exporters add around them (Div, Where,
Range, ConstantOfShape, ScatterND, Expand, Equal, ...), are evaluated on small constant
inputs only (`MAX_FOLD_ELEMENTS`), so weights are never touched. ONNX's own data
propagation stops at about a dozen ops; ``passes/fold.py`` runs these rules for the rest.
A rule reads its inputs' values from `NodeFacts` and raises `CannotFoldError` when it
cannot answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..graph import tensor_to_array
from .base import CannotFoldError, NodeFacts
from .registry import fold_rule

#: Values larger than this are never materialised.
MAX_FOLD_ELEMENTS = 4096

Array = np.ndarray


def _need(f: NodeFacts, *idx: int) -> list[Array]:
    out = []
    for i in idx:
        v = f.value(i)
        if v is None:
            raise CannotFoldError
        out.append(v)
    return out


def _check_size(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape) or math.prod(shape) > MAX_FOLD_ELEMENTS:
        raise CannotFoldError
    return shape


# ------------------------------------------------------------------------------- the ops


@fold_rule("Identity")
def _identity(f: NodeFacts) -> list[Array]:
    return _need(f, 0)


@fold_rule("Constant")
def _constant(f: NodeFacts) -> list[Array]:
    from onnx import TensorProto

    a = f.node.attrs
    if "value" in a:
        t = a["value"]
        if not isinstance(t, TensorProto) or t.data_location == TensorProto.EXTERNAL:
            raise CannotFoldError
        if math.prod(t.dims) > MAX_FOLD_ELEMENTS:
            raise CannotFoldError
        return [tensor_to_array(t)]
    for key, dtype in (("value_int", np.int64), ("value_float", np.float32)):
        if key in a:
            return [np.array(a[key], dtype=dtype)]
    for key, dtype in (("value_ints", np.int64), ("value_floats", np.float32)):
        if key in a:
            return [np.array(a[key], dtype=dtype)]
    raise CannotFoldError


@fold_rule("Cast")
def _cast(f: NodeFacts) -> list[Array]:
    from onnx import helper

    (x,) = _need(f, 0)
    to = helper.tensor_dtype_to_np_dtype(int(f.node.attrs["to"]))
    if to.kind not in "biuf":
        raise CannotFoldError
    return [x.astype(to)]


@fold_rule("Gather")
def _gather(f: NodeFacts) -> list[Array]:
    x, idx = _need(f, 0, 1)
    axis = int(f.node.attrs.get("axis", 0))
    return [np.take(x, idx.astype(np.int64), axis=axis)]


@fold_rule("Unsqueeze")
def _unsqueeze(f: NodeFacts) -> list[Array]:
    (x,) = _need(f, 0)
    axes = f.node.attrs.get("axes")
    if axes is None:
        axes = _need(f, 1)[0].tolist()
    rank = x.ndim + len(axes)
    out = x
    for ax in sorted(int(a) % rank for a in axes):
        out = np.expand_dims(out, ax)
    return [out]


@fold_rule("Squeeze")
def _squeeze(f: NodeFacts) -> list[Array]:
    (x,) = _need(f, 0)
    axes = f.node.attrs.get("axes")
    if axes is None and f.value(1) is not None:
        axes = f.value(1).tolist()  # type: ignore[union-attr]
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(int(a) % x.ndim for a in axes))]


@fold_rule("Split")
def _split(f: NodeFacts) -> list[Array]:
    """Split of a shape vector (onnxruntime fuses Shape -> Gather... into Shape -> Split)."""
    (x,) = _need(f, 0)
    axis = int(f.node.attrs.get("axis", 0)) % max(x.ndim, 1)
    parts = f.node.attrs.get("split")
    if parts is None and len(f.node.inputs) > 1 and f.node.inputs[1]:
        parts = _need(f, 1)[0].tolist()
    n = len(f.node.outputs)
    if parts is None:
        size = x.shape[axis]
        step = -(-size // n) if n else 0
        parts = [min(step, size - i * step) for i in range(n)]
    if len(parts) != n or sum(int(p) for p in parts) != x.shape[axis] or min(parts) < 0:
        raise CannotFoldError
    cuts = np.cumsum([int(p) for p in parts])[:-1]
    return list(np.split(x, cuts, axis=axis))


@fold_rule("Concat")
def _concat(f: NodeFacts) -> list[Array]:
    parts = _need(f, *range(len(f.node.inputs)))
    return [np.concatenate(parts, axis=int(f.node.attrs.get("axis", 0)))]


@fold_rule("Slice")
def _slice(f: NodeFacts) -> list[Array]:
    (x,) = _need(f, 0)
    if "starts" in f.node.attrs:  # opset < 10
        starts, ends = f.node.attrs["starts"], f.node.attrs["ends"]
        axes = f.node.attrs.get("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = (a.tolist() for a in _need(f, 1, 2))
        axes = f.value(3).tolist() if f.value(3) is not None else list(range(len(starts)))  # type: ignore[union-attr]
        steps = f.value(4).tolist() if f.value(4) is not None else [1] * len(starts)  # type: ignore[union-attr]
    index: list[Any] = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        index[int(a) % x.ndim] = slice(int(s), int(e), int(st))
    return [x[tuple(index)]]


def _int_div(a: Array, b: Array) -> Array:
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        if np.any(b == 0):
            raise CannotFoldError
        return np.trunc(a / b).astype(np.result_type(a, b))  # C-style truncation
    return a / b


_BINARY: dict[str, Callable[[Array, Array], Array]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": _int_div,
    "Equal": np.equal, "Less": np.less, "Greater": np.greater,
    "LessOrEqual": np.less_equal, "GreaterOrEqual": np.greater_equal,
    "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor,
    "Pow": np.power,
}


@fold_rule(*_BINARY)
def _binary(f: NodeFacts) -> list[Array]:
    a, b = _need(f, 0, 1)
    _check_size(np.broadcast_shapes(a.shape, b.shape))
    out = _BINARY[f.node.op_type](a, b)
    if f.node.op_type in ("Add", "Sub", "Mul", "Pow"):
        out = out.astype(np.result_type(a, b))
    return [np.asarray(out)]


@fold_rule("Mod")
def _mod(f: NodeFacts) -> list[Array]:
    a, b = _need(f, 0, 1)
    if np.any(b == 0):
        raise CannotFoldError
    return [np.fmod(a, b) if f.node.attrs.get("fmod", 0) else np.mod(a, b)]


_UNARY: dict[str, Callable[[Array], Array]] = {
    "Neg": np.negative, "Abs": np.abs, "Floor": np.floor, "Ceil": np.ceil, "Sqrt": np.sqrt,
    "Not": np.logical_not, "Sign": np.sign, "Round": np.round, "Reciprocal": np.reciprocal,
}


@fold_rule(*_UNARY)
def _unary(f: NodeFacts) -> list[Array]:
    (x,) = _need(f, 0)
    return [np.asarray(_UNARY[f.node.op_type](x))]


@fold_rule("Max", "Min", "Sum")
def _variadic(f: NodeFacts) -> list[Array]:
    parts = _need(f, *range(len(f.node.inputs)))
    fn = {"Max": np.maximum, "Min": np.minimum, "Sum": np.add}[f.node.op_type]
    out = parts[0]
    for p in parts[1:]:
        out = fn(out, p)
    return [np.asarray(out)]


@fold_rule("Where")
def _where(f: NodeFacts) -> list[Array]:
    c, a, b = _need(f, 0, 1, 2)
    _check_size(np.broadcast_shapes(c.shape, a.shape, b.shape))
    return [np.where(c, a, b)]


@fold_rule("Range")
def _range(f: NodeFacts) -> list[Array]:
    start, limit, delta = (x.reshape(()) for x in _need(f, 0, 1, 2))
    if delta == 0:
        raise CannotFoldError
    n = max(int(math.ceil((limit - start) / delta)), 0)
    _check_size((n,))
    return [np.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype)[:n]]


@fold_rule("ConstantOfShape")
def _constant_of_shape(f: NodeFacts) -> list[Array]:
    from onnx import numpy_helper

    (shape,) = _need(f, 0)
    value = f.node.attrs.get("value")
    fill = np.zeros(1, np.float32) if value is None else numpy_helper.to_array(value).reshape(-1)
    return [np.full(_check_size(shape.tolist()), fill[0], dtype=fill.dtype)]


@fold_rule("Reshape")
def _reshape(f: NodeFacts) -> list[Array]:
    x, shape = _need(f, 0, 1)
    target = [int(d) for d in shape.tolist()]
    if not f.node.attrs.get("allowzero", 0):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return [x.reshape(target)]


@fold_rule("Expand")
def _expand(f: NodeFacts) -> list[Array]:
    x, shape = _need(f, 0, 1)
    out_shape = _check_size(np.broadcast_shapes(x.shape, tuple(shape.tolist())))
    return [np.broadcast_to(x, out_shape).copy()]


@fold_rule("Tile")
def _tile(f: NodeFacts) -> list[Array]:
    x, reps = _need(f, 0, 1)
    _check_size([d * r for d, r in zip(x.shape, reps.tolist(), strict=True)])
    return [np.tile(x, reps.tolist())]


@fold_rule("Transpose")
def _transpose(f: NodeFacts) -> list[Array]:
    (x,) = _need(f, 0)
    return [np.transpose(x, f.node.attrs.get("perm"))]


@fold_rule("Flatten")
def _flatten(f: NodeFacts) -> list[Array]:
    (x,) = _need(f, 0)
    axis = int(f.node.attrs.get("axis", 1)) % max(x.ndim, 1) if x.ndim else 0
    return [x.reshape(math.prod(x.shape[:axis]), -1)]


@fold_rule("ScatterND")
def _scatter_nd(f: NodeFacts) -> list[Array]:
    data, indices, updates = _need(f, 0, 1, 2)
    out = data.copy()
    idx = indices.reshape(-1, indices.shape[-1])
    upd = updates.reshape((idx.shape[0],) + data.shape[indices.shape[-1]:])
    for i, where in enumerate(idx):
        out[tuple(where)] = upd[i]
    return [out]


_REDUCE: dict[str, Callable[..., Array]] = {
    "ReduceProd": np.prod, "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min,
}


@fold_rule(*_REDUCE)
def _reduce(f: NodeFacts) -> list[Array]:
    (x,) = _need(f, 0)
    axes = f.node.attrs.get("axes")
    if axes is None and f.value(1) is not None:
        axes = f.value(1).tolist()  # type: ignore[union-attr]
    keep = bool(f.node.attrs.get("keepdims", 1))
    if not axes:
        if f.node.attrs.get("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(x.ndim))
    axis = tuple(int(a) % x.ndim for a in axes) if x.ndim else None
    return [np.asarray(_REDUCE[f.node.op_type](x, axis=axis, keepdims=keep))]


@fold_rule("NonZero")
def _nonzero(f: NodeFacts) -> list[Array]:
    (x,) = _need(f, 0)
    return [np.array(np.nonzero(x), dtype=np.int64)]


@fold_rule("Clip")
def _clip(f: NodeFacts) -> list[Array]:
    (x,) = _need(f, 0)
    lo = f.value(1)
    hi = f.value(2)
    lo = f.node.attrs.get("min") if lo is None else lo
    hi = f.node.attrs.get("max") if hi is None else hi
    return [np.clip(x, lo, hi).astype(x.dtype)]
