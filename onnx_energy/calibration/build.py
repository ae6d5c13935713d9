"""Single-op models from op specs, and op specs from analysed nodes.

The JSON spec form is the record's ``spec`` (docs/measurement.md, data/record.schema.json)
with what building needs on top:

```
{"op_type", "domain", "opset", "attrs": {name: JSON value},
 "inputs": [{"shape", "dtype", "initializer"?: bool, "value"?: [...]} | null, ...],
 "num_outputs"?: int, "outputs"?: [{"shape", "dtype"}]}
```

An input marked ``initializer`` is a weight or a constant of the model (onnxruntime
pre-packs constant weights and folds constant shapes, so the difference matters); the
others are graph inputs the runner feeds with seeded random data. ``value`` gives the
values of a constant that must have them (Reshape targets, Slice bounds, Pad pads, Resize
scales, Clip bounds, Pow exponents, Split sizes): flat, in row-major order. Weights without
a ``value`` get seeded random values: N(0, 1) scaled by 1/sqrt(fan-in) for floats, variances
kept positive, indices in range.

`build_model` and `spec_of_node` work on this JSON form, so calibration's `OpSpec` (in
`specs`) and the records share one representation.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import ModelProto, helper, numpy_helper

from ..dtypes import elem_type
from ..graph import Node, TensorInfo

if TYPE_CHECKING:
    from .specs import OpSpec

#: Opset of built models unless the op needs a later one (see `MIN_OPSET`).
DEFAULT_OPSET = 17
#: Ops whose spec'd form needs a later opset than the default.
MIN_OPSET = {"Gelu": 20, "GroupNormalization": 21}
#: Ops whose output has their first input's shape (where ONNX's inference gives none).
SAME_SHAPE = frozenset({"GroupNormalization", "RMSNormalization", "LayerNormalization"})
#: Integer constants up to this many elements keep their values in a spec of a node.
VALUE_ELEMENTS = 64
#: Float constants whose values change what the op does (not just the numbers it makes):
#: (op type, input index). Weights' values never matter to the time and are not kept.
FLOAT_VALUE_SLOTS = frozenset({("Pow", 1), ("Clip", 1), ("Clip", 2), ("Resize", 1),
                               ("Resize", 2), ("Upsample", 1), ("Pad", 2)})
_NP = {"float32": np.float32, "float16": np.float16, "float64": np.float64,
       "int64": np.int64, "int32": np.int32, "int8": np.int8, "uint8": np.uint8,
       "bool": np.bool_}


def _json_spec(spec: OpSpec | Mapping[str, Any]) -> Mapping[str, Any]:
    return spec if isinstance(spec, Mapping) else spec.to_json()


def _seed(spec: Mapping[str, Any]) -> int:
    text = repr((spec["op_type"], spec.get("attrs"), spec.get("inputs")))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _weight(rng: np.random.Generator, op: str, index: int, shape: tuple[int, ...],
            dtype: str, index_high: int) -> np.ndarray:
    np_type = _NP.get(dtype)
    if np_type is None:
        raise ValueError(f"cannot make a {dtype} initializer")
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(np.bool_)
    if np.issubdtype(np_type, np.integer):  # indices: inside the axis they index
        return rng.integers(0, max(1, index_high), shape).astype(np_type)
    if op in ("BatchNormalization",) and index == 4:  # running variance
        return (np.abs(rng.standard_normal(shape)) + 0.5).astype(np_type)
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
    return (rng.standard_normal(shape) / math.sqrt(max(1, fan_in))).astype(np_type)


def build_model(spec: OpSpec | Mapping[str, Any]) -> ModelProto:
    """A one-node model that runs the spec: data inputs are graph inputs, the rest
    initializers (given values or seeded random ones)."""
    s = _json_spec(spec)
    op = s["op_type"]
    domain = s.get("domain", "")
    opset = max(int(s.get("opset") or DEFAULT_OPSET), MIN_OPSET.get(op, 0))
    rng = np.random.default_rng(_seed(s))
    inputs: list[str] = []
    graph_inputs = []
    inits = []
    specs_in: Sequence[Mapping[str, Any] | None] = s.get("inputs", [])
    attrs = dict(s.get("attrs") or {})
    index_high = 2  # the runner's integer inputs are drawn from {0, 1} as well
    if op in ("Gather", "GatherElements") and specs_in and specs_in[0] is not None:
        data_shape = specs_in[0]["shape"]
        if data_shape:
            index_high = int(data_shape[int(attrs.get("axis", 0)) % len(data_shape)])
    for i, t in enumerate(specs_in):
        if t is None:
            inputs.append("")
            continue
        name = f"in{i}"
        inputs.append(name)
        shape = tuple(int(d) for d in t["shape"])
        dtype = t["dtype"]
        if t.get("initializer"):
            arr: np.ndarray
            if t.get("value") is not None:
                arr = np.array(t["value"], dtype=_NP[dtype]).reshape(shape)
            else:
                arr = _weight(rng, op, i, shape, dtype, index_high)
            inits.append(numpy_helper.from_array(arr, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, elem_type(dtype), shape))
    outs_given = s.get("outputs") or []
    n_out = int(s.get("num_outputs") or len(outs_given) or 1)
    out_dtype = next((t["dtype"] for t in specs_in
                      if t is not None and t["dtype"] != "bool"), "float32")
    outputs = []
    for j in range(n_out):
        given = outs_given[j] if j < len(outs_given) else None
        dtype = given["dtype"] if given else out_dtype
        outputs.append(helper.make_tensor_value_info(f"out{j}", elem_type(dtype), None))
    node = helper.make_node(op, inputs, [f"out{j}" for j in range(n_out)], name=op.lower(),
                            domain=domain or None, **attrs)
    graph = helper.make_graph([node], f"spec_{op}", graph_inputs, outputs, inits)
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="onnx-energy")
    model.ir_version = 8 if opset <= 17 else 10
    # the outputs' shapes as ONNX infers them (a model's outputs must have one)
    inferred = onnx.shape_inference.infer_shapes(model).graph.output
    for out, found in zip(model.graph.output, inferred, strict=True):
        if found.type.tensor_type.HasField("shape"):
            out.CopyFrom(found)
        elif op in SAME_SHAPE and graph_inputs:  # ONNX infers no shape through some functions
            out.type.tensor_type.shape.CopyFrom(graph_inputs[0].type.tensor_type.shape)
    return model


def _attr_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_attr_json(v) for v in value]
    return value


def _jsonable_attr(value: Any) -> bool:
    """Attributes a spec keeps: numbers, strings and lists of them (no graphs, tensors)."""
    if isinstance(value, bool | int | float | str | bytes | np.generic):
        return True
    if isinstance(value, list | tuple):
        return all(isinstance(v, int | float | str | bytes | np.generic) for v in value)
    return False


def spec_of_node(
    node: Node,
    inputs: Sequence[TensorInfo | None],
    outputs: Sequence[TensorInfo | None] = (),
    *,
    initializers: Mapping[str, Any] | set[str] | frozenset[str] = frozenset(),
    values: Mapping[str, np.ndarray] | None = None,
    opset: int = DEFAULT_OPSET,
    name: bool = False,
) -> dict[str, Any]:
    """The JSON spec of an analysed node (op type, domain, attributes, input/output facts).

    ``initializers`` names the model's weights and constants; ``values`` holds the values
    shape inference knew (small initializers, folded shape arithmetic): an integer input
    with a known value of at most `VALUE_ELEMENTS` elements becomes a constant with it
    (what onnxruntime sees after constant folding), a larger known one a constant without.
    Float values are kept only where they change what the op does (`FLOAT_VALUE_SLOTS`).
    ``name`` adds the node's name (group records).
    """
    known = values or {}
    ins: list[dict[str, Any] | None] = []
    for slot, (tensor_name, info) in enumerate(zip(node.inputs, inputs, strict=False)):
        if not tensor_name or info is None:
            ins.append(None)
            continue
        entry: dict[str, Any] = {
            "shape": list(info.shape) if info.shape is not None else None,
            "dtype": info.dtype,
        }
        value = known.get(tensor_name)
        keep = value is not None and np.size(value) <= VALUE_ELEMENTS and (
            not info.dtype.startswith(("float", "bfloat"))
            or (node.op_type, slot) in FLOAT_VALUE_SLOTS)
        if keep:
            entry["initializer"] = True
            entry["value"] = np.asarray(value).reshape(-1).tolist()
        elif tensor_name in initializers or value is not None:
            entry["initializer"] = True
        ins.append(entry)
    ins += [None] * (len(node.inputs) - len(ins))
    while ins and ins[-1] is None:  # trailing omitted optionals say nothing
        ins.pop()
    spec: dict[str, Any] = {
        "op_type": node.op_type,
        "domain": node.domain,
        "opset": opset,
        "attrs": {k: _attr_json(v) for k, v in sorted(node.attrs.items())
                  if _jsonable_attr(v)},
        "inputs": ins,
    }
    outs = [o for o in node.outputs]
    if len(outs) > 1:
        spec["num_outputs"] = len(outs)
    if outputs:
        spec["outputs"] = [None if o is None else
                           {"shape": None if o.shape is None else list(o.shape),
                            "dtype": o.dtype} for o in outputs]
    if name:
        spec["name"] = node.name
    return spec


def check_model(model: ModelProto) -> None:
    """ONNX's checker and strict shape inference on a built model (raises on a bad spec)."""
    onnx.checker.check_model(model)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)


__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "build_model", "check_model", "spec_of_node"]
