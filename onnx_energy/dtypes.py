"""ONNX element types by readable name, with their storage width."""

from __future__ import annotations

from onnx import TensorProto

_NAMES: dict[int, str] = {
    TensorProto.FLOAT: "float32",
    TensorProto.DOUBLE: "float64",
    TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16",
    TensorProto.INT8: "int8",
    TensorProto.UINT8: "uint8",
    TensorProto.INT16: "int16",
    TensorProto.UINT16: "uint16",
    TensorProto.INT32: "int32",
    TensorProto.UINT32: "uint32",
    TensorProto.INT64: "int64",
    TensorProto.UINT64: "uint64",
    TensorProto.BOOL: "bool",
    TensorProto.STRING: "string",
    TensorProto.COMPLEX64: "complex64",
    TensorProto.COMPLEX128: "complex128",
}
for _attr, _name in (
    ("FLOAT8E4M3FN", "float8e4m3fn"),
    ("FLOAT8E4M3FNUZ", "float8e4m3fnuz"),
    ("FLOAT8E5M2", "float8e5m2"),
    ("FLOAT8E5M2FNUZ", "float8e5m2fnuz"),
    ("FLOAT8E8M0", "float8e8m0"),
    ("UINT4", "uint4"),
    ("INT4", "int4"),
    ("FLOAT4E2M1", "float4e2m1"),
    ("UINT2", "uint2"),
    ("INT2", "int2"),
):
    if hasattr(TensorProto, _attr):
        _NAMES[getattr(TensorProto, _attr)] = _name

_BITS: dict[str, int] = {
    "float32": 32, "float64": 64, "float16": 16, "bfloat16": 16,
    "int8": 8, "uint8": 8, "int16": 16, "uint16": 16, "int32": 32, "uint32": 32,
    "int64": 64, "uint64": 64, "bool": 8, "complex64": 64, "complex128": 128,
    "float8e4m3fn": 8, "float8e4m3fnuz": 8, "float8e5m2": 8, "float8e5m2fnuz": 8,
    "float8e8m0": 8, "uint4": 4, "int4": 4, "float4e2m1": 4, "uint2": 2, "int2": 2,
}

FLOAT_TYPES = frozenset(
    {"float32", "float64", "float16", "bfloat16", "float8e4m3fn", "float8e4m3fnuz",
     "float8e5m2", "float8e5m2fnuz", "float8e8m0", "float4e2m1"}
)
INDEX_TYPES = frozenset({"int32", "int64", "uint32", "uint64"})


def dtype_name(elem_type: int) -> str:
    """Readable name of an ONNX element type; ``""`` when unset or unknown."""
    return _NAMES.get(elem_type, "")


def dtype_bits(name: str) -> int:
    """Storage width in bits of one element; 0 when unknown (strings, unset)."""
    return _BITS.get(name, 0)


_ELEM_TYPES: dict[str, int] = {name: code for code, name in _NAMES.items()}


def elem_type(name: str) -> int:
    """ONNX element type code of a readable name (0, UNDEFINED, when unknown)."""
    return _ELEM_TYPES.get(name, 0)
