"""Load an ONNX model without reading its weights, check it is safe, bind its symbolic dims.

The loaded model keeps every node and every tensor header. Initializers larger than
``SMALL_TENSOR_ELEMENTS`` are detached: their shape and dtype are kept as `TensorInfo`
records and they become typed graph inputs, so shape inference never copies weight bytes.
Small initializers stay, because shape subgraphs (Reshape targets, Resize scales) need
their values.
"""

from __future__ import annotations

import functools
import math
import os
import shlex
import stat
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import (
    AttributeProto,
    GraphProto,
    ModelProto,
    NodeProto,
    TensorProto,
    ValueInfoProto,
    numpy_helper,
)
from onnx import helper as onnx_helper

from . import dimexpr
from .dtypes import dtype_bits, dtype_name, elem_type
from .errors import BindingError, InvalidGraphError, ModelLoadError, UnsafeModelError
from .protoskim import read_model as read_skimmed_model

#: Initializers with at most this many elements keep their values (shape constants).
SMALL_TENSOR_ELEMENTS = 1024
#: External-data initializers with at most this many elements are read (shape constants only).
SMALL_EXTERNAL_ELEMENTS = 64
#: Largest dimension accepted from a model or a binding; larger ones are treated as hostile
#: (2**36, about 6.9e10: the largest real dims, flattened LLM activations, are near 1e10,
#: so a dim of 1e12 is refused).
MAX_DIM = 2**36
#: Largest element count of one tensor: beyond it, counts stop fitting a float (a rank-30
#: tensor of valid dims is still hostile).
MAX_ELEMENTS = 2**60

Dim = int | str | None
Shape = tuple[Dim, ...]

#: dtypes of values that are not tensors (ai.onnx.ml's maps, ZipMap's output): they have no
#: shape and their bytes are not counted, like strings'.
MAP = "map"
SEQUENCE_OF_MAPS = "seq(map)"
NON_TENSOR = frozenset({MAP, SEQUENCE_OF_MAPS})


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """Static facts about one tensor: name, shape (ints, symbolic names or None), dtype."""

    name: str
    shape: Shape | None
    dtype: str
    # Whether every dim is an int: asked tens of thousands of times per large graph, so it is
    # computed once here rather than in a property.
    is_static: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape = self.shape
        static = shape is not None and all(type(d) is int for d in shape)
        object.__setattr__(self, "is_static", static)

    @property
    def numel(self) -> int:
        """Number of elements; the shape must be static."""
        if not self.is_static:
            raise ValueError(f"tensor {self.name!r} has no static shape")
        return math.prod(self.shape)  # type: ignore[arg-type]

    @property
    def static_shape(self) -> tuple[int, ...]:
        """The shape as ints; the shape must be static."""
        if not self.is_static:
            raise ValueError(f"tensor {self.name!r} has no static shape")
        return self.shape  # type: ignore[return-value]  # is_static: every dim is an int

    @property
    def nbytes(self) -> int:
        return (self.numel * dtype_bits(self.dtype) + 7) // 8

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": None if self.shape is None else list(self.shape),
            "dtype": self.dtype,
        }


@dataclass(frozen=True, slots=True)
class Node:
    """One graph node with decoded attributes (subgraphs stay as GraphProto)."""

    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    proto: NodeProto = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, proto: NodeProto, index: int) -> Node:
        domain = proto.domain
        if domain == "ai.onnx":
            domain = ""
        attrs = {a.name: _attribute_value(a) for a in proto.attribute} if proto.attribute else {}
        return cls(
            name=proto.name or f"{proto.op_type}_{index}",
            op_type=proto.op_type,
            domain=domain,
            inputs=tuple(proto.input[:]),  # a slice copies in one call: faster than iterating
            outputs=tuple(proto.output[:]),
            attrs=attrs,
            proto=proto,
        )


_INT, _INTS, _FLOAT, _FLOATS, _TENSOR = (
    AttributeProto.INT, AttributeProto.INTS, AttributeProto.FLOAT, AttributeProto.FLOATS,
    AttributeProto.TENSOR,
)


def _attribute_value(attr: AttributeProto) -> Any:
    kind = attr.type
    # Fast paths for the common kinds, as onnx.helper.get_attribute_value decodes them.
    if not attr.ref_attr_name:
        if kind == _TENSOR:
            return attr.t  # external or not: never read here
        if kind == _INT:
            return attr.i
        if kind == _INTS:
            return list(attr.ints)
        if kind == _FLOAT:
            return attr.f
        if kind == _FLOATS:
            return list(attr.floats)
    if attr.type == AttributeProto.TENSOR and attr.t.data_location == TensorProto.EXTERNAL:
        return attr.t  # never read external data here
    if attr.type == AttributeProto.STRING:
        return attr.s.decode("utf-8", "replace")
    if attr.type == AttributeProto.STRINGS:
        return [s.decode("utf-8", "replace") for s in attr.strings]
    return onnx_helper.get_attribute_value(attr)


@dataclass
class LoadedModel:
    """A model with its large weights detached (see module docstring)."""

    proto: ModelProto
    path: Path | None
    weights: dict[str, TensorInfo]
    input_names: list[str]
    #: Small initializers whose values were read from the external data file: shape folding
    #: may use them, cost rules never do (a cost must not depend on the file being present).
    external_values: frozenset[str] = frozenset()
    #: The names ``bind_dims`` bound (user, batch, and names set through --input).
    bindings: dict[str, int] = field(default_factory=dict)
    #: Graph inputs whose shape --input or a re-batching --batch-size replaced:
    #: name -> (the declared shape, the new one).
    overrides: dict[str, tuple[Shape | None, Shape]] = field(default_factory=dict)
    #: External data a run would need but cannot read (the file is absent or too short):
    #: (where, file) per tensor. Analysis never reads it; measuring does.
    missing_data: list[tuple[str, str]] = field(default_factory=list)

    @property
    def opsets(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for imp in self.proto.opset_import:
            out["" if imp.domain == "ai.onnx" else imp.domain] = imp.version
        return out

    def dim_names(self) -> frozenset[str]:
        """Every dim name the model uses on its own (not inside an expression), and those
        already bound."""
        plain = {t for t in _dim_texts(self.proto.graph) if dimexpr.parse(t) is None}
        return frozenset(plain | set(self.bindings))

    def symbolic_input_dims(self) -> list[str]:
        """The names to bind for the real graph inputs' symbolic dims, in first-seen order:
        a dim named by an expression (``past + seq``) asks for the names it reads."""
        known = self.dim_names()
        names: list[str] = []
        for vi in self.proto.graph.input:
            if vi.name in self.input_names:
                for d in vi.type.tensor_type.shape.dim:
                    if d.HasField("dim_param"):
                        for n in dimexpr.free_names(d.dim_param, known):
                            if n not in names:
                                names.append(n)
        return names

    def anonymous_inputs(self) -> list[str]:
        """Real inputs with a dim that has neither a value nor a name (set with --input)."""
        out = []
        for vi in self.proto.graph.input:
            shape = vi.type.tensor_type.shape
            if vi.name in self.input_names and vi.type.tensor_type.HasField("shape") and any(
                    not d.HasField("dim_value") and not d.dim_param for d in shape.dim):
                out.append(vi.name)
        return out


# ---------------------------------------------------------------------------------- loading


def load_model(source: str | os.PathLike[str] | ModelProto) -> LoadedModel:
    """Load a model from a path (never reading external data) or copy a given ModelProto."""
    if isinstance(source, ModelProto):
        proto = ModelProto()
        proto.CopyFrom(source)
        path = None
    else:
        path = Path(source)
        proto = _read_proto(path)
    _check_text(proto, path)
    _check_model_header(proto, path)
    base_dir = path.parent if path is not None else None
    missing: list[tuple[str, str]] = []
    sizes: dict[str, int | None] = {}
    for tensor, where in _iter_tensors(proto.graph):
        if tensor.data_location == TensorProto.EXTERNAL:
            _check_external_location(tensor, base_dir, where)
            if base_dir is not None and not _external_readable(tensor, base_dir, sizes):
                missing.append((where, _external_info(tensor)["location"]))
    input_names = _real_input_names(proto.graph)
    external: set[str] = set()
    weights = detach_weights(proto.graph, base_dir, read_external=external)
    return LoadedModel(proto=proto, path=path, weights=weights, input_names=input_names,
                       external_values=frozenset(external), missing_data=missing)


def _external_readable(tensor: TensorProto, base_dir: Path, sizes: dict[str, int | None]) -> bool:
    """Whether the file of an external tensor exists and holds its bytes (``sizes`` caches
    each file's size; None: absent)."""
    info = _external_info(tensor)
    location = info["location"]
    if location not in sizes:
        try:
            sizes[location] = (base_dir / location).stat().st_size
        except OSError:
            sizes[location] = None
    size = sizes[location]
    if size is None:
        return False
    length = _external_int(info, "length") or (
        math.prod(tensor.dims) * dtype_bits(dtype_name(tensor.data_type)) + 7) // 8
    return (_external_int(info, "offset") or 0) + length <= size


def _read_proto(path: Path) -> ModelProto:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelLoadError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise ModelLoadError(f"{path}: empty file, not an ONNX model")
    # Memory-mapped and skimmed: payloads of initializers that _detach_weights detaches
    # anyway (above SMALL_TENSOR_ELEMENTS) are never read, so memory stays flat.
    return read_skimmed_model(path, SMALL_TENSOR_ELEMENTS)


def _check_text(proto: ModelProto, path: Path | None) -> None:
    """Refuse names that are not UTF-8. protobuf hands such proto2 string fields back as
    bytes, which no later step expects; a proto3 twin of the schema checks them in C."""
    strict = _strict_model_class()
    if strict is None:
        return
    try:
        data = proto.SerializeToString()
    except Exception:  # over protobuf's 2 GB limit (an in-memory model): left unchecked
        return
    try:
        strict().ParseFromString(data)
    except DecodeError as exc:
        if "UTF-8" not in str(exc):
            return  # anything else was already accepted by the real parser
        label = str(path) if path is not None else "model"
        raise ModelLoadError(
            f"{label}: not a valid ONNX model (a name or string field is not valid UTF-8)"
        ) from None


@functools.cache
def _strict_model_class() -> type | None:
    """ModelProto under proto3 rules (string fields must be UTF-8); None if unavailable."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        fdp = descriptor_pb2.FileDescriptorProto()
        ModelProto.DESCRIPTOR.file.CopyToProto(fdp)
        fdp.syntax = "proto3"
        fdp.name = "onnx_energy_utf8_check.proto"
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fdp)
        return message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{fdp.package}.ModelProto"))
    except Exception:  # another protobuf runtime: the check is skipped
        return None


def _check_model_header(proto: ModelProto, path: Path | None) -> None:
    label = str(path) if path is not None else "model"
    if not proto.HasField("graph") or proto.ir_version <= 0:
        raise ModelLoadError(f"{label}: not an ONNX model (no graph or no IR version)")
    if not proto.graph.node and not proto.graph.output:
        raise ModelLoadError(f"{label}: the graph is empty")
    imported = {"" if imp.domain == "ai.onnx" else imp.domain for imp in proto.opset_import}
    missing = sorted({n.domain or "ai.onnx" for n in proto.graph.node
                      if ("" if n.domain == "ai.onnx" else n.domain) not in imported})
    # IR >= 3 requires opset_import, which is serialized last: a file cut short loses it first.
    if missing and proto.ir_version >= 3:
        raise ModelLoadError(
            f"{label}: not a valid ONNX model (no opset_import for {', '.join(missing)}; "
            "truncated?)"
        )
    newest = onnx.defs.onnx_opset_version()
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > newest:
            raise ModelLoadError(
                f"{label}: needs ONNX opset {imp.version}, newer than the installed onnx "
                f"{onnx.__version__} supports ({newest}); upgrade onnx"
            )


def _iter_tensors(graph: GraphProto, depth: int = 0) -> Iterator[tuple[TensorProto, str]]:
    """Every TensorProto in a graph and its subgraphs, with a label saying where it is."""
    for t in graph.initializer:
        yield t, f"initializer {t.name!r}"
    for st in graph.sparse_initializer:
        yield st.values, f"sparse initializer {st.values.name!r}"
        yield st.indices, f"sparse initializer {st.values.name!r}"
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.TENSOR:
                yield attr.t, f"attribute {attr.name!r} of node {node.name or node.op_type!r}"
            elif attr.type == AttributeProto.TENSORS:
                for t in attr.tensors:
                    yield t, f"attribute {attr.name!r} of node {node.name or node.op_type!r}"
            elif attr.type == AttributeProto.GRAPH:
                yield from _iter_tensors(attr.g, depth + 1)
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _iter_tensors(g, depth + 1)


def _external_info(tensor: TensorProto) -> dict[str, str]:
    return {e.key: e.value for e in tensor.external_data}


def _check_external_location(tensor: TensorProto, base_dir: Path | None, where: str) -> None:
    info = _external_info(tensor)
    location = info.get("location", "")
    if not location:
        raise UnsafeModelError(f"{where}: external data without a location")
    for key in ("offset", "length"):
        if _external_int(info, key) is None:
            raise ModelLoadError(
                f"{where}: external data {key} {info[key][:40]!r} is not a byte count"
            )
    if "\0" in location or len(location) > 4096:
        raise UnsafeModelError(f"{where}: external data location {location[:60]!r}... is not a "
                               "file name; refused")
    if base_dir is None:
        return  # an in-memory model: nothing is ever read from disk
    loc = Path(location)
    if loc.is_absolute() or ".." in loc.parts:
        raise UnsafeModelError(
            f"{where}: external data location {location!r} escapes the model's folder; refused"
        )
    try:
        base = base_dir.resolve()
        target = (base / loc).resolve()
        if target != base and base not in target.parents:
            raise UnsafeModelError(
                f"{where}: external data location {location!r} resolves outside the model's "
                "folder (symlink?); refused"
            )
        if target.exists() and not target.is_file():
            raise UnsafeModelError(
                f"{where}: external data location {location!r} is not a regular file; refused"
            )
    except (OSError, RuntimeError) as exc:  # name too long, symlink loop, ...
        raise UnsafeModelError(
            f"{where}: external data location {location[:60]!r} cannot be resolved "
            f"({getattr(exc, 'strerror', None) or exc}); refused"
        ) from None


def _external_int(info: dict[str, str], key: str) -> int | None:
    """The ``offset``/``length`` of external data: 0 when absent, None when not a byte count."""
    text = info.get(key, "") or "0"
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def _real_input_names(graph: GraphProto) -> list[str]:
    init = {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    return [vi.name for vi in graph.input if vi.name not in init]


def tensor_header(t: TensorProto) -> TensorInfo:
    """Shape and dtype of a tensor from its header (its data is never read)."""
    return TensorInfo(t.name, tuple(int(d) for d in t.dims), dtype_name(t.data_type))


def detach_weights(graph: GraphProto, base_dir: Path | None,
                   read_external: set[str] | None = None) -> dict[str, TensorInfo]:
    """Headers of every initializer; large ones (and sparse ones) leave the initializer list
    and become typed graph inputs. Small external tensors are read only with a ``base_dir``;
    the names of those read are added to ``read_external``."""
    weights: dict[str, TensorInfo] = {}
    keep: list[TensorProto] = []
    detached: list[TensorInfo] = []
    for t in graph.initializer:
        info = tensor_header(t)
        if not valid_shape(info.shape):
            raise InvalidGraphError(
                f"initializer {t.name!r} has an invalid shape {shape_text(info.shape)}")
        weights[t.name] = info
        n = info.numel if info.is_static else 0
        if t.data_location == TensorProto.EXTERNAL:
            if n <= SMALL_EXTERNAL_ELEMENTS and base_dir is not None:
                small = _read_small_external(t, base_dir)
                if small is not None:
                    keep.append(small)
                    if read_external is not None:
                        read_external.add(t.name)
                    continue
            detached.append(info)
        elif n <= SMALL_TENSOR_ELEMENTS:
            keep.append(t)
        else:
            detached.append(info)
    for st in graph.sparse_initializer:
        info = TensorInfo(st.values.name, tuple(int(d) for d in st.dims),
                          dtype_name(st.values.data_type))
        if not valid_shape(info.shape):
            raise InvalidGraphError(f"sparse initializer {info.name!r} has an invalid shape "
                                    f"{shape_text(info.shape)}")
        weights[info.name] = info
        detached.append(info)
    if detached:
        del graph.initializer[:]
        graph.initializer.extend(keep)
        del graph.sparse_initializer[:]
        declared = {vi.name: vi for vi in graph.input}
        for info in detached:
            vi = declared.get(info.name)
            if vi is None:
                vi = graph.input.add()
                vi.name = info.name
            vi.type.tensor_type.elem_type = elem_type(info.dtype)
            vi.type.tensor_type.shape.Clear()
            for d in info.static_shape:  # initializer dims are ints
                vi.type.tensor_type.shape.dim.add().dim_value = d
    return weights


def _read_small_external(t: TensorProto, base_dir: Path) -> TensorProto | None:
    """Read a tiny external tensor (a shape constant); None if its file is absent or short."""
    info = _external_info(t)
    path = base_dir / info["location"]
    offset = _external_int(info, "offset") or 0  # checked by _check_external_location
    length = _external_int(info, "length") or 0
    need = (math.prod(t.dims) * dtype_bits(dtype_name(t.data_type)) + 7) // 8
    if length and length != need:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            raw = fh.read(need)
    except OSError:
        return None
    if len(raw) != need:
        return None
    out = TensorProto()
    out.CopyFrom(t)
    del out.external_data[:]
    out.data_location = TensorProto.DEFAULT
    out.raw_data = raw
    return out


# ------------------------------------------------------------------------------ dim binding


def bind_dims(
    model: LoadedModel, dims: Mapping[str, int] | None = None, batch_size: int | None = None,
    inputs: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, int]:
    """Replace symbolic dims by values in place; returns the bindings by name.

    ``dims`` binds by name; a dim named by an expression of bound names (``past + seq``) is
    evaluated, and a binding of such a dim by its text must agree with it. ``inputs`` sets
    whole input shapes (dims with no name, ``?``, ``-1`` or fixed; a named dim binds its
    name). ``batch_size`` binds the leading dim of every real input, re-batching a fixed one.
    A ``-1`` dim_value is a dynamic dim, as onnxruntime reads it.
    """
    dims = dict(dims or {})
    for name, value in dims.items():
        # 0 is a real binding for a named dim (an empty KV cache: --dim past=0).
        _check_dim_value(f"--dim {name}", value, smallest=0)
    graph = model.proto.graph
    _dynamic_minus_one(graph)
    texts = _dim_texts(graph)
    plain = {t for t in texts if dimexpr.parse(t) is None}
    exprs = {t: e for t in texts if (e := dimexpr.arithmetic(t, plain | set(dims))) is not None}
    usable = plain | set(exprs) | {n for e in exprs.values() for n in dimexpr.names(e)}
    unknown = [n for n in dims if n not in usable]
    if unknown:
        available = model.symbolic_input_dims()
        have = ", ".join(available) if available else "none"
        raise BindingError(
            f"dimension {unknown[0]!r} is not in the model; its symbolic input dims are: {have}"
        )
    if inputs:
        _override_inputs(model, inputs, dims)
    if batch_size is not None:
        _bind_batch(model, batch_size, dims)
    derived: dict[str, int] = {}
    for text, expr in exprs.items():
        found = dimexpr.evaluate(expr, dims)
        if found is None:
            continue
        value = found
        reads = ", ".join(f"{n}={dims[n]}" for n in dimexpr.names(expr))
        if text in dims and dims[text] != value:
            raise BindingError(
                f"--dim {shlex.quote(f'{text}={dims[text]}')} contradicts the other bindings: "
                f"{text} = {value} with {reads}")
        _check_dim_value(f"dimension {text!r} ({reads})", value, smallest=0)
        derived[text] = value
    values = {**derived, **dims}
    if values:
        for vi in _iter_value_infos(graph):
            for d in vi.type.tensor_type.shape.dim:
                if d.HasField("dim_param") and d.dim_param in values:
                    d.dim_value = values[d.dim_param]
    _check_input_dims(model)
    model.bindings = dict(dims)
    return dims


def _dim_texts(graph: GraphProto) -> list[str]:
    """Every dim_param text of the graph's inputs, outputs and value_info, first-seen order."""
    seen: dict[str, None] = {}
    for vi in _iter_value_infos(graph):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param:
                seen.setdefault(d.dim_param)
    return list(seen)


def _dynamic_minus_one(graph: GraphProto) -> None:
    for vi in _iter_value_infos(graph):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value == -1:
                d.Clear()


def _real_inputs(model: LoadedModel) -> dict[str, ValueInfoProto]:
    return {vi.name: vi for vi in model.proto.graph.input if vi.name in model.input_names}


def _declared(vi: ValueInfoProto) -> Shape | None:
    return tensor_info_from_value_info(vi).shape


def _bind_name(dims: dict[str, int], name: str, value: int, source: str) -> None:
    if name in dims and dims[name] != value:
        raise BindingError(f"{source} sets dimension {name!r} to {value}, but --dim "
                           f"{shlex.quote(f'{name}={dims[name]}')} binds it; they must agree")
    dims[name] = value


def _override_inputs(model: LoadedModel, inputs: Mapping[str, Sequence[int]],
                     dims: dict[str, int]) -> None:
    real = _real_inputs(model)
    for name, shape in inputs.items():
        vi = real.get(name)
        label = f"--input {shlex.quote(name + '=' + 'x'.join(str(d) for d in shape))}"
        if vi is None:
            have = ", ".join(real) or "none"
            raise BindingError(f"{label}: the model has no input {name!r}; its inputs are: {have}")
        for d in shape:
            _check_dim_value(label, d, smallest=0)
        tt = vi.type.tensor_type
        declared = _declared(vi)
        if tt.HasField("shape") and declared is not None and len(declared) != len(shape):
            raise BindingError(f"{label}: {len(shape)} dims, but input {name!r} has rank "
                               f"{len(declared)} {shape_text(declared)}")
        for i, value in enumerate(shape):
            text = declared[i] if declared is not None and i < len(declared) else None
            if isinstance(text, str) and dimexpr.parse(text) is None:
                _bind_name(dims, text, value, label)  # a plain name: bound everywhere
        tt.ClearField("shape")
        tt.shape.SetInParent()
        for value in shape:
            tt.shape.dim.add().dim_value = value
        model.overrides[name] = (declared, tuple(shape))


def _bind_batch(model: LoadedModel, batch_size: int, dims: dict[str, int]) -> None:
    _check_dim_value("--batch-size", batch_size)
    real = _real_inputs(model)
    if not real:
        raise BindingError("--batch-size given but the model has no inputs")
    for name, vi in real.items():
        shape = vi.type.tensor_type.shape
        if not vi.type.tensor_type.HasField("shape") or not shape.dim:
            continue
        lead = shape.dim[0]
        if lead.HasField("dim_param") and dimexpr.parse(lead.dim_param) is None:
            param = lead.dim_param
            if param in dims and dims[param] != batch_size:
                raise BindingError(
                    f"--batch-size {batch_size} and --dim {shlex.quote(f'{param}={dims[param]}')}"
                    f" disagree (input {name!r}'s leading dim is {param!r})")
            dims[param] = batch_size
        elif lead.HasField("dim_value") and lead.dim_value > 0:
            if lead.dim_value != batch_size and name not in model.overrides:
                declared = _declared(vi)
                lead.dim_value = batch_size
                model.overrides[name] = (declared, (batch_size, *(declared or ())[1:]))
        elif not lead.HasField("dim_param"):
            lead.dim_value = batch_size


def _check_dim_value(label: str, value: int, smallest: int = 1) -> None:
    if not isinstance(value, (int, np.integer)) or not smallest <= value <= MAX_DIM:
        raise BindingError(f"{label}: {value!r} is not a dimension ({smallest} … {MAX_DIM})")


def _dim_name_used(graph: GraphProto, name: str) -> bool:
    return any(
        d.HasField("dim_param") and d.dim_param == name
        for vi in _iter_value_infos(graph)
        for d in vi.type.tensor_type.shape.dim
    )


def _iter_value_infos(graph: GraphProto) -> Iterator[ValueInfoProto]:
    yield from graph.input
    yield from graph.output
    yield from graph.value_info


def _check_input_dims(model: LoadedModel) -> None:
    for vi in model.proto.graph.input:
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and (d.dim_value < 0 or d.dim_value > MAX_DIM):
                raise InvalidGraphError(
                    f"input {vi.name!r} has an invalid dimension {d.dim_value}"
                )
        shape = tensor_info_from_value_info(vi).shape
        if not valid_shape(shape):
            raise InvalidGraphError(f"input {vi.name!r} has an invalid shape {shape_text(shape)}")


def unbound_batch_dims(model: LoadedModel) -> list[str] | None:
    """The unbound leading dims of the real inputs, when they are the only unbound dims.

    Returns their names (``?`` for a leading dim with neither a value nor a name), ``[]``
    when no leading dim is unbound, and None when any other input dim is unbound (then a
    batch would not make the shapes known, and none is assumed).
    """
    leading: list[str] = []
    for vi in model.proto.graph.input:
        if vi.name not in model.input_names or not vi.type.tensor_type.HasField("shape"):
            continue
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                continue
            if i > 0:
                return None
            name = d.dim_param if d.HasField("dim_param") else "?"
            if name not in leading:
                leading.append(name)
    return leading


def bind_default_batch(model: LoadedModel, batch: int) -> list[str]:
    """Bind ``batch`` into the unbound leading dims when they are the only unbound input
    dims (see `unbound_batch_dims`) and ``--batch-size`` would accept it (no input has
    another fixed leading dim: then the leading dims are not a batch, e.g. a scan axis).
    Returns the dims so bound (none: nothing was done)."""
    leading = unbound_batch_dims(model)
    if not leading:
        return []
    _check_dim_value("the default batch", batch)
    heads = [vi.type.tensor_type.shape.dim[0] for vi in model.proto.graph.input
             if vi.name in model.input_names and vi.type.tensor_type.HasField("shape")
             and vi.type.tensor_type.shape.dim]
    if any(d.HasField("dim_value") and d.dim_value not in (0, batch) for d in heads):
        return []
    named = {n: batch for n in leading if n != "?"}
    for d in heads:
        if not d.HasField("dim_value") and not d.HasField("dim_param"):
            d.dim_value = batch
    if named:
        bind_dims(model, named)
    return leading


def shape_text(shape: Shape | None) -> str:
    """A shape for an error message, shortened past 8 dims."""
    if shape is None:
        return "?"
    dims = [str(d) for d in shape[:8]] + ([f"... ({len(shape)} dims)"] if len(shape) > 8 else [])
    return "[" + ", ".join(dims) + "]"


def valid_shape(shape: Shape | None) -> bool:
    """No dim below 0 or above MAX_DIM and at most MAX_ELEMENTS elements (unknown dims
    count as 1); an unknown shape is valid."""
    if shape is None:
        return True
    n = 1
    for d in shape:
        if isinstance(d, int):
            if d < 0 or d > MAX_DIM:
                return False
            n *= d
    return n <= MAX_ELEMENTS


def tensor_info_from_value_info(vi: ValueInfoProto) -> TensorInfo:
    """TensorInfo of a ValueInfoProto (non-tensor types get an unknown shape)."""
    return tensor_info_from_type_proto(vi.name, vi.type)


def tensor_info_from_type_proto(name: str, tp: onnx.TypeProto) -> TensorInfo:
    """TensorInfo of a tensor ``name`` of type ``tp`` (non-tensor types: unknown shape)."""
    # Graphs repeat a few types many times: decode each distinct (serialized) type once.
    shape, dtype = _type_facts(tp.SerializeToString())
    return TensorInfo(name, shape, dtype)


@functools.lru_cache(maxsize=8192)
def _type_facts(serialized_type: bytes) -> tuple[Shape | None, str]:
    """(shape, dtype) of a serialized TypeProto."""
    tp = onnx.TypeProto()
    tp.ParseFromString(serialized_type)
    kind = tp.WhichOneof("value")
    if kind == "map_type":
        return None, MAP
    if kind == "sequence_type" and tp.sequence_type.elem_type.WhichOneof("value") == "map_type":
        return None, SEQUENCE_OF_MAPS
    tt = tp.tensor_type
    if not tp.HasField("tensor_type") or not tt.HasField("shape"):
        return None, dtype_name(tt.elem_type)
    dims: list[Dim] = []
    for d in tt.shape.dim:
        which = d.WhichOneof("value")
        if which == "dim_value":
            dims.append(d.dim_value)
        elif which == "dim_param":
            dims.append(d.dim_param or None)
        else:
            dims.append(None)
    return tuple(dims), dtype_name(tt.elem_type)


def constant_value(t: TensorProto) -> np.ndarray | None:
    """Value of an embedded tensor, or None when its data is external."""
    if t.data_location == TensorProto.EXTERNAL:
        return None
    try:
        return tensor_to_array(t)
    except Exception:  # malformed tensor payloads are treated as unknown values
        return None


_LITTLE_ENDIAN = sys.byteorder == "little"
#: Element types whose raw data numpy_helper.to_array reads with a plain np.frombuffer.
_RAW_NUMPY_DTYPES: dict[int, np.dtype] = {
    code: np.dtype(name) for code, name in (
        (TensorProto.FLOAT, "float32"), (TensorProto.DOUBLE, "float64"),
        (TensorProto.FLOAT16, "float16"), (TensorProto.INT8, "int8"),
        (TensorProto.UINT8, "uint8"), (TensorProto.INT16, "int16"),
        (TensorProto.UINT16, "uint16"), (TensorProto.INT32, "int32"),
        (TensorProto.UINT32, "uint32"), (TensorProto.INT64, "int64"),
        (TensorProto.UINT64, "uint64"), (TensorProto.BOOL, "bool"),
    )
}


def tensor_to_array(t: TensorProto) -> np.ndarray:
    """`numpy_helper.to_array` of an embedded tensor (same result and errors), with a fast
    path for the raw data of native dtypes: shape constants are decoded by the thousand."""
    dtype = _RAW_NUMPY_DTYPES.get(t.data_type)
    if (dtype is not None and _LITTLE_ENDIAN and t.HasField("raw_data")
            and t.data_location != TensorProto.EXTERNAL and not t.HasField("segment")):
        return np.frombuffer(t.raw_data, dtype=dtype).reshape(t.dims)
    return numpy_helper.to_array(t)
