"""A small numpy evaluator for shape subgraphs (Shape -> Gather -> Concat -> Reshape chains).

Only ops that compute shapes and indices are evaluated, and only on small constant inputs
(`MAX_FOLD_ELEMENTS`), so weights are never touched. ONNX's own data propagation stops at
about a dozen ops; this covers the rest of what exporters emit (Div, Where, Range,
ConstantOfShape, ScatterND, Expand, Equal, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..graph import Node, tensor_to_array

#: Values larger than this are never materialised.
MAX_FOLD_ELEMENTS = 4096

Array = np.ndarray
Folder = Callable[[Node, Sequence[Array | None]], list[Array]]
FOLDERS: dict[str, Folder] = {}


class CannotFoldError(Exception):
    """The node cannot be evaluated on the known values (left to shape inference)."""


def folds(*op_types: str) -> Callable[[Folder], Folder]:
    def deco(fn: Folder) -> Folder:
        for op in op_types:
            FOLDERS[op] = fn
        return fn

    return deco


def _need(values: Sequence[Array | None], *idx: int) -> list[Array]:
    out = []
    for i in idx:
        if i >= len(values) or values[i] is None:
            raise CannotFoldError
        out.append(values[i])
    return out


def _opt(values: Sequence[Array | None], i: int) -> Array | None:
    return values[i] if i < len(values) else None


def _check_size(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape) or math.prod(shape) > MAX_FOLD_ELEMENTS:
        raise CannotFoldError
    return shape


def fold_node(node: Node, values: Sequence[Array | None]) -> list[Array] | None:
    """Output values of ``node`` from its input values, or None when it cannot be folded."""
    folder = FOLDERS.get(node.op_type) if node.domain == "" else None
    if folder is None:
        return None
    try:
        outs = folder(node, values)
    except Exception:  # CannotFoldError, or hostile attributes/values: left unknown
        return None
    # numpy scalars (np.take with a scalar index: torch's Shape->Gather) are values too.
    if any(not isinstance(o, (np.ndarray, np.generic)) or o.size > MAX_FOLD_ELEMENTS
           for o in outs):
        return None
    return outs


# ------------------------------------------------------------------------------- the ops


@folds("Identity")
def _identity(node: Node, v: Sequence[Array | None]) -> list[Array]:
    return _need(v, 0)


@folds("Constant")
def _constant(node: Node, v: Sequence[Array | None]) -> list[Array]:
    from onnx import TensorProto

    a = node.attrs
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


@folds("Cast")
def _cast(node: Node, v: Sequence[Array | None]) -> list[Array]:
    from onnx import helper

    (x,) = _need(v, 0)
    to = helper.tensor_dtype_to_np_dtype(int(node.attrs["to"]))
    if to.kind not in "biuf":
        raise CannotFoldError
    return [x.astype(to)]


@folds("Gather")
def _gather(node: Node, v: Sequence[Array | None]) -> list[Array]:
    x, idx = _need(v, 0, 1)
    axis = int(node.attrs.get("axis", 0))
    return [np.take(x, idx.astype(np.int64), axis=axis)]


@folds("Unsqueeze")
def _unsqueeze(node: Node, v: Sequence[Array | None]) -> list[Array]:
    (x,) = _need(v, 0)
    axes = node.attrs.get("axes")
    if axes is None:
        axes = _need(v, 1)[0].tolist()
    rank = x.ndim + len(axes)
    out = x
    for ax in sorted(int(a) % rank for a in axes):
        out = np.expand_dims(out, ax)
    return [out]


@folds("Squeeze")
def _squeeze(node: Node, v: Sequence[Array | None]) -> list[Array]:
    (x,) = _need(v, 0)
    axes = node.attrs.get("axes")
    if axes is None and _opt(v, 1) is not None:
        axes = v[1].tolist()  # type: ignore[union-attr]
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(int(a) % x.ndim for a in axes))]


@folds("Concat")
def _concat(node: Node, v: Sequence[Array | None]) -> list[Array]:
    parts = _need(v, *range(len(v)))
    return [np.concatenate(parts, axis=int(node.attrs.get("axis", 0)))]


@folds("Slice")
def _slice(node: Node, v: Sequence[Array | None]) -> list[Array]:
    (x,) = _need(v, 0)
    if "starts" in node.attrs:  # opset < 10
        starts, ends = node.attrs["starts"], node.attrs["ends"]
        axes = node.attrs.get("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = (a.tolist() for a in _need(v, 1, 2))
        axes = v[3].tolist() if _opt(v, 3) is not None else list(range(len(starts)))  # type: ignore[union-attr]
        steps = v[4].tolist() if _opt(v, 4) is not None else [1] * len(starts)  # type: ignore[union-attr]
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


@folds(*_BINARY)
def _binary(node: Node, v: Sequence[Array | None]) -> list[Array]:
    a, b = _need(v, 0, 1)
    _check_size(np.broadcast_shapes(a.shape, b.shape))
    out = _BINARY[node.op_type](a, b)
    if node.op_type in ("Add", "Sub", "Mul", "Pow"):
        out = out.astype(np.result_type(a, b))
    return [np.asarray(out)]


@folds("Mod")
def _mod(node: Node, v: Sequence[Array | None]) -> list[Array]:
    a, b = _need(v, 0, 1)
    if np.any(b == 0):
        raise CannotFoldError
    return [np.fmod(a, b) if node.attrs.get("fmod", 0) else np.mod(a, b)]


_UNARY: dict[str, Callable[[Array], Array]] = {
    "Neg": np.negative, "Abs": np.abs, "Floor": np.floor, "Ceil": np.ceil, "Sqrt": np.sqrt,
    "Not": np.logical_not, "Sign": np.sign, "Round": np.round, "Reciprocal": np.reciprocal,
}


@folds(*_UNARY)
def _unary(node: Node, v: Sequence[Array | None]) -> list[Array]:
    (x,) = _need(v, 0)
    return [np.asarray(_UNARY[node.op_type](x))]


@folds("Max", "Min", "Sum")
def _variadic(node: Node, v: Sequence[Array | None]) -> list[Array]:
    parts = _need(v, *range(len(v)))
    fn = {"Max": np.maximum, "Min": np.minimum, "Sum": np.add}[node.op_type]
    out = parts[0]
    for p in parts[1:]:
        out = fn(out, p)
    return [np.asarray(out)]


@folds("Where")
def _where(node: Node, v: Sequence[Array | None]) -> list[Array]:
    c, a, b = _need(v, 0, 1, 2)
    _check_size(np.broadcast_shapes(c.shape, a.shape, b.shape))
    return [np.where(c, a, b)]


@folds("Range")
def _range(node: Node, v: Sequence[Array | None]) -> list[Array]:
    start, limit, delta = (x.reshape(()) for x in _need(v, 0, 1, 2))
    if delta == 0:
        raise CannotFoldError
    n = max(int(math.ceil((limit - start) / delta)), 0)
    _check_size((n,))
    return [np.arange(start, limit, delta, dtype=start.dtype)[:n]]


@folds("ConstantOfShape")
def _constant_of_shape(node: Node, v: Sequence[Array | None]) -> list[Array]:
    from onnx import numpy_helper

    (shape,) = _need(v, 0)
    value = node.attrs.get("value")
    fill = np.zeros(1, np.float32) if value is None else numpy_helper.to_array(value).reshape(-1)
    return [np.full(_check_size(shape.tolist()), fill[0], dtype=fill.dtype)]


@folds("Reshape")
def _reshape(node: Node, v: Sequence[Array | None]) -> list[Array]:
    x, shape = _need(v, 0, 1)
    target = [int(d) for d in shape.tolist()]
    if not node.attrs.get("allowzero", 0):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return [x.reshape(target)]


@folds("Expand")
def _expand(node: Node, v: Sequence[Array | None]) -> list[Array]:
    x, shape = _need(v, 0, 1)
    out_shape = _check_size(np.broadcast_shapes(x.shape, tuple(shape.tolist())))
    return [np.broadcast_to(x, out_shape).copy()]


@folds("Tile")
def _tile(node: Node, v: Sequence[Array | None]) -> list[Array]:
    x, reps = _need(v, 0, 1)
    _check_size([d * r for d, r in zip(x.shape, reps.tolist(), strict=True)])
    return [np.tile(x, reps.tolist())]


@folds("Transpose")
def _transpose(node: Node, v: Sequence[Array | None]) -> list[Array]:
    (x,) = _need(v, 0)
    return [np.transpose(x, node.attrs.get("perm"))]


@folds("Flatten")
def _flatten(node: Node, v: Sequence[Array | None]) -> list[Array]:
    (x,) = _need(v, 0)
    axis = int(node.attrs.get("axis", 1)) % max(x.ndim, 1) if x.ndim else 0
    return [x.reshape(math.prod(x.shape[:axis]), -1)]


@folds("ScatterND")
def _scatter_nd(node: Node, v: Sequence[Array | None]) -> list[Array]:
    data, indices, updates = _need(v, 0, 1, 2)
    out = data.copy()
    idx = indices.reshape(-1, indices.shape[-1])
    upd = updates.reshape((idx.shape[0],) + data.shape[indices.shape[-1]:])
    for i, where in enumerate(idx):
        out[tuple(where)] = upd[i]
    return [out]


_REDUCE: dict[str, Callable[..., Array]] = {
    "ReduceProd": np.prod, "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min,
}


@folds(*_REDUCE)
def _reduce(node: Node, v: Sequence[Array | None]) -> list[Array]:
    (x,) = _need(v, 0)
    axes = node.attrs.get("axes")
    if axes is None and _opt(v, 1) is not None:
        axes = v[1].tolist()  # type: ignore[union-attr]
    keep = bool(node.attrs.get("keepdims", 1))
    if not axes:
        if node.attrs.get("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(x.ndim))
    axis = tuple(int(a) % x.ndim for a in axes) if x.ndim else None
    return [np.asarray(_REDUCE[node.op_type](x, axis=axis, keepdims=keep))]


@folds("NonZero")
def _nonzero(node: Node, v: Sequence[Array | None]) -> list[Array]:
    (x,) = _need(v, 0)
    return [np.array(np.nonzero(x), dtype=np.int64)]


@folds("Clip")
def _clip(node: Node, v: Sequence[Array | None]) -> list[Array]:
    (x,) = _need(v, 0)
    lo = _opt(v, 1)
    hi = _opt(v, 2)
    lo = node.attrs.get("min") if lo is None else lo
    hi = node.attrs.get("max") if hi is None else hi
    return [np.clip(x, lo, hi).astype(x.dtype)]
