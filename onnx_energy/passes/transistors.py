"""Transistor-operation (TOs) pass: basic operations x transistors per operation and dtype.

Li, Tsourdos and Guo, section II.B and Alg. 2: ``TOs = sum_op count(op) x transistors(op, p)``.
The transistors of one basic operation at one data type are derived from a table shipped as
data (``onnx_energy/data/transistors.json``, overridable with ``--transistor-table FILE``):

- an n-bit adder is (n-1) full adders and one half adder for the carry-less lowest bit
  (the paper: "a 24-bit adder (23 full-adder and 1 half-adder)"); sub runs in the same adder
  by two's complement, so ``sub == add``;
- a floating-point add/sub is a (mantissa+1)-bit adder (the significand with its hidden bit);
- a floating-point mul/div is a (mantissa+1)-bit multiplier/divider, an exponent-width adder
  and one XOR for the sign;
- an n-bit multiplier (divider) is the 64-bit Booth-Wallace multiplier (SRT divider) scaled
  by ``(n/64)**2``, rounded half up to whole transistors;
- root is Newton-Raphson: ``iterations x (div + add + mul)``, ``iterations =
  max(1, ceil(log2(significand bits / seed bits)))`` (8-bit seed: FP32 2, FP64 3, FP16 1);
- integer types use plain n-bit datapaths (n-bit adder, multiplier, divider, no exponent).

Any derived count can be pinned with ``"ops": {"fp32": {"mul": 12000}}`` in the table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import TransistorTableError
from ..graph import Node, TensorInfo
from ..jsonfile import read_json_object
from ..ops.quantized import native_dtype_for
from ..ops.registry import BOP_NAMES, BasicOps

DEFAULT_TABLE_PATH = Path(__file__).resolve().parent.parent / "data" / "transistors.json"

#: The columns every report carries; ``native`` is the node's own compute dtype.
ALWAYS_COLUMNS = ("fp32", "fp16", "native")
#: What ``--precision`` may pick for the table view.
PRECISIONS = ("fp32", "fp16", "bf16", "native")

#: ONNX element type names (onnx_energy.dtypes) -> transistor-table format keys.
DTYPE_KEYS: dict[str, str] = {
    "float64": "fp64", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16",
    "float8e4m3fn": "fp8e4m3fn", "float8e4m3fnuz": "fp8e4m3fnuz", "float8e5m2": "fp8e5m2",
    "float8e5m2fnuz": "fp8e5m2fnuz", "float4e2m1": "fp4e2m1", "float8e8m0": "fp8e8m0",
    "int64": "int64", "uint64": "uint64", "int32": "int32", "uint32": "uint32",
    "int16": "int16", "uint16": "uint16", "int8": "int8", "uint8": "uint8",
    "int4": "int4", "uint4": "uint4", "int2": "int2", "uint2": "uint2",
    "bool": "bool", "string": "string", "complex64": "complex64", "complex128": "complex128",
}

_COMPONENTS = ("full_adder", "half_adder", "xor", "multiplier_64", "divider_64",
               "reference_bits", "scaling_exponent", "newton_seed_bits")


def dtype_key(dtype: str) -> str:
    """The table key of an ONNX dtype name (``float32`` -> ``fp32``); table keys pass through."""
    return DTYPE_KEYS.get(dtype, dtype)


@dataclass(frozen=True)
class TransistorTable:
    """Transistors per basic operation for each data type, plus the parameters behind them."""

    source: str
    components: Mapping[str, float]
    formats: Mapping[str, Mapping[str, int]]
    per_op: Mapping[str, Mapping[str, int]]

    def dtypes(self) -> list[str]:
        return list(self.per_op)

    def has(self, dtype: str) -> bool:
        return dtype_key(dtype) in self.per_op

    def transistors(self, op: str, dtype: str) -> int:
        """Transistors of one basic operation ``op`` (add/sub/mul/div/root) at ``dtype``."""
        try:
            return self.per_op[dtype_key(dtype)][op]
        except KeyError:
            raise KeyError(f"no transistor count for {op!r} at dtype {dtype!r}") from None

    def tos(self, bops: BasicOps, dtype: str) -> int | None:
        """TOs of ``bops`` at ``dtype``; None when the dtype has no entry and bops are nonzero."""
        if bops.total == 0:
            return 0
        row = self.per_op.get(dtype_key(dtype))
        if row is None:
            return None
        return (bops.add * row["add"] + bops.sub * row["sub"] + bops.mul * row["mul"]
                + bops.div * row["div"] + bops.root * row["root"])

    def columns(self, bops: BasicOps, native: str | None,
                extra: tuple[str, ...] = ()) -> dict[str, int | None]:
        """``{"fp32", "fp16", "native"}`` TOs of ``bops`` (plus any ``extra`` dtype columns)."""
        out: dict[str, int | None] = {
            "fp32": self.tos(bops, "fp32"),
            "fp16": self.tos(bops, "fp16"),
            "native": (0 if bops.total == 0 else None) if native is None
            else self.tos(bops, native),
        }
        for col in extra:
            if col not in out:
                out[col] = self.tos(bops, col)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "per_op": {k: dict(v) for k, v in self.per_op.items()}}


def round_half_up(x: Fraction | float) -> int:
    return math.floor(x + Fraction(1, 2)) if isinstance(x, Fraction) else math.floor(x + 0.5)


def adder(bits: int, c: Mapping[str, float]) -> int:
    """An n-bit ripple adder: (n-1) full adders and one half adder (the lowest bit)."""
    if bits <= 0:
        return 0
    return int((bits - 1) * c["full_adder"] + c["half_adder"])


def _scaled(reference: float, bits: int, c: Mapping[str, float]) -> int:
    ratio = Fraction(bits, int(c["reference_bits"]))
    e = c["scaling_exponent"]
    if float(e).is_integer() and float(reference).is_integer():
        return round_half_up(int(reference) * ratio ** int(e))
    return round_half_up(float(reference) * float(ratio) ** float(e))


def multiplier(bits: int, c: Mapping[str, float]) -> int:
    """An n-bit Booth-Wallace multiplier: the 64-bit one scaled by (n/64)**2."""
    return _scaled(c["multiplier_64"], bits, c)


def divider(bits: int, c: Mapping[str, float]) -> int:
    """An n-bit SRT divider: the 64-bit one scaled by (n/64)**2."""
    return _scaled(c["divider_64"], bits, c)


def newton_iterations(significand_bits: int, c: Mapping[str, float]) -> int:
    """Newton-Raphson doubles the correct bits from a seed: ceil(log2(bits/seed)), at least 1."""
    return max(1, math.ceil(math.log2(significand_bits / c["newton_seed_bits"])))


def derive_row(fmt: Mapping[str, int], c: Mapping[str, float]) -> dict[str, int]:
    """Transistors of add, sub, mul, div and root for one number format."""
    if "mantissa" in fmt:  # IEEE-style float: sign, exponent, mantissa (hidden bit implied)
        p = int(fmt["mantissa"]) + 1
        exp_adder = adder(int(fmt["exponent"]), c)
        sign = int(c["xor"])
        add = adder(p, c)
        mul = multiplier(p, c) + exp_adder + sign
        div = divider(p, c) + exp_adder + sign
    else:  # integer: plain n-bit datapaths
        p = int(fmt["bits"])
        add = adder(p, c)
        mul = multiplier(p, c)
        div = divider(p, c)
    root = newton_iterations(p, c) * (div + add + mul)
    return {"add": add, "sub": add, "mul": mul, "div": div, "root": root}


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, "transistor table", TransistorTableError)


def build_table(data: Mapping[str, Any], source: str = "<dict>") -> TransistorTable:
    """A table from its JSON structure (components, formats, ops); checks every field."""

    def bad(msg: str) -> TransistorTableError:
        return TransistorTableError(f"transistor table {source}: {msg}")

    comps = data.get("components", {})
    formats = data.get("formats", {})
    pinned = data.get("ops", {})
    if not all(isinstance(x, Mapping) for x in (comps, formats, pinned)):
        raise bad("components, formats and ops must be objects")
    c: dict[str, float] = {}
    for name in _COMPONENTS:
        v = comps.get(name)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise bad(f"components.{name} must be a number >= 0")
        c[name] = v
    if c["reference_bits"] <= 0 or c["newton_seed_bits"] <= 0:
        raise bad("reference_bits and newton_seed_bits must be > 0")
    per_op: dict[str, dict[str, int]] = {}
    for key, fmt in formats.items():
        if key.startswith("_"):
            continue
        ok = isinstance(fmt, Mapping) and (
            ("mantissa" in fmt and "exponent" in fmt) or "bits" in fmt)
        if not ok or not all(isinstance(v, int) and v >= 0 for v in fmt.values()):
            raise bad(f"formats.{key} needs integer 'exponent' and 'mantissa', or 'bits'")
        per_op[key] = derive_row(fmt, c)
    for key, row in pinned.items():
        if key.startswith("_"):
            continue
        if not isinstance(row, Mapping):
            raise bad(f"ops.{key} must be an object")
        full = per_op.setdefault(key, {})
        for op, v in row.items():
            if op not in BOP_NAMES or isinstance(v, bool) or not isinstance(v, int | float):
                raise bad(f"ops.{key}.{op} is not a basic op count")
            full[op] = v  # type: ignore[assignment]
        missing = [op for op in BOP_NAMES if op not in full]
        if missing:
            raise bad(f"ops.{key} has no format to derive {', '.join(missing)} from")
    for need in ("fp32", "fp16"):
        if need not in per_op:
            raise bad(f"the table needs an entry for {need}")
    return TransistorTable(source, c, {k: dict(v) for k, v in formats.items()
                                       if not k.startswith("_")}, per_op)


@lru_cache(maxsize=8)
def _load_cached(path: str | None, mtime: float | None) -> TransistorTable:
    data = _read_json(DEFAULT_TABLE_PATH)
    source = "default"
    if path is not None:
        data = _merge(data, _read_json(Path(path)))
        source = path
    return build_table(data, source)


def load_table(path: str | os.PathLike[str] | None = None) -> TransistorTable:
    """The default table, or the default with the JSON file at ``path`` merged over it."""
    if path is None:
        return _load_cached(None, None)
    p = Path(path)
    try:
        mtime = p.stat().st_mtime
    except OSError as exc:
        raise TransistorTableError(f"cannot read transistor table {p}: {exc.strerror}") from None
    return _load_cached(str(p), mtime)


def native_dtype(inputs: list[Any], outputs: list[Any], macs: int = 0) -> str | None:
    """The dtype a node computes in, as a table key (``fp32``, ``bf16``, ``int8`` ...).

    The dtype of its first input, with two exceptions. A bool or integer first input that
    only steers (If's condition, Loop's trip count) gives way to the first float input or
    output. An integer first input with a float output (DequantizeLinear) computes in the
    float type, unless the node does dot products (MatMulIntegerToFloat: the MACs run in
    the integer datapath). Falls back to the first output's dtype; None when nothing is known.
    """
    ins = [t.dtype for t in inputs if t is not None and t.dtype]
    outs = [t.dtype for t in outputs if t is not None and t.dtype]
    floats = [d for d in (*ins, *outs) if _is_float(d)]
    dtype = ins[0] if ins else (outs[0] if outs else "")
    if dtype == "bool" or (dtype in ("int64", "int32") and floats and not macs):
        dtype = floats[0] if floats else next((d for d in (*ins, *outs) if d != "bool"), dtype)
    elif _is_int(dtype) and outs and _is_float(outs[0]) and not macs:
        dtype = outs[0]
    return dtype_key(dtype) if dtype else None


def node_native_dtype(
    node: Node, inputs: Sequence[TensorInfo | None], outputs: Sequence[TensorInfo | None],
    macs: int = 0,
) -> str | None:
    """A node's compute dtype as a table key: a quantized op's narrow type where it has one
    (QuantizeLinear's output type, MatMulNBits' ``uint{bits}``, ...), else `native_dtype`."""
    quantized = native_dtype_for(node, inputs, outputs)
    if quantized is not None:
        return dtype_key(quantized)
    return native_dtype(list(inputs), list(outputs), macs)


def _is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


def _is_int(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


# ------------------------------------------------------------------ per-node lowering

Columns = dict[str, int | None]


def add_columns(a: Columns | None, b: Columns | None) -> Columns | None:
    """Column-wise sum of two TOs records; an unknown (None) column stays unknown."""
    if a is None or b is None:
        return None
    out: Columns = {}
    for k in (*a, *(k for k in b if k not in a)):
        x, y = a.get(k, 0), b.get(k, 0)
        out[k] = None if x is None or y is None else x + y
    return out


def _add_bops(a: BasicOps | None, b: BasicOps | None) -> BasicOps | None:
    return None if a is None or b is None else a + b


def _bops_dict(b: BasicOps | None) -> dict[str, int] | None:
    return None if b is None else b.to_dict()


@dataclass(frozen=True)
class Lowered:
    """Basic operations and TOs of one node, or a sum of nodes, per phase.

    ``forward`` is the inference work; with ``training`` the backward pass and the loss (on
    the node producing the graph output) are kept apart. TOs columns are ``fp32``, ``fp16``,
    ``native`` (each node at its own compute dtype) and any extra ``--precision`` column.
    """

    native_dtype: str | None
    forward: BasicOps | None
    tos: Columns | None
    training: bool = False
    backward: BasicOps | None = None
    tos_backward: Columns | None = None
    loss: BasicOps | None = None
    tos_loss: Columns | None = None

    @classmethod
    def zero(cls, training: bool = False, extra: tuple[str, ...] = ()) -> Lowered:
        cols: Columns = {c: 0 for c in (*ALWAYS_COLUMNS, *extra)}
        if not training:
            return cls(None, BasicOps(), cols)
        return cls(None, BasicOps(), cols, True, BasicOps(), dict(cols), BasicOps(), dict(cols))

    @property
    def total(self) -> BasicOps | None:
        """All basic operations: forward, plus backward and loss when training."""
        if not self.training:
            return self.forward
        return _add_bops(_add_bops(self.forward, self.backward), self.loss)

    @property
    def tos_total(self) -> Columns | None:
        if not self.training:
            return self.tos
        return add_columns(add_columns(self.tos, self.tos_backward), self.tos_loss)

    @property
    def complete(self) -> bool:
        parts: tuple[object, ...] = (self.forward, self.tos)
        if self.training:
            parts += (self.backward, self.tos_backward, self.loss, self.tos_loss)
        return all(p is not None for p in parts)

    @classmethod
    def sum(cls, items: Sequence[Lowered], training: bool = False,
            extra: tuple[str, ...] = ()) -> Lowered:
        """The sum of many records in one pass (``zero`` when there are none)."""
        if not items:
            return cls.zero(training, extra)
        cols = (*ALWAYS_COLUMNS, *extra)
        dtypes = {x.native_dtype for x in items if _does_work(x)}
        dtype = None if not dtypes else dtypes.pop() if len(dtypes) == 1 else "mixed"

        def bops(attr: str) -> BasicOps | None:
            parts = [getattr(x, attr) for x in items]
            if any(p is None for p in parts):
                return None
            return BasicOps(sum(p.add for p in parts), sum(p.sub for p in parts),
                            sum(p.mul for p in parts), sum(p.div for p in parts),
                            sum(p.root for p in parts))

        def tos(attr: str) -> Columns | None:
            parts = [getattr(x, attr) for x in items]
            if any(p is None for p in parts):
                return None
            out: Columns = {}
            for c in cols:
                values = [p.get(c) for p in parts]
                out[c] = None if any(v is None for v in values) else sum(values)
            return out

        if not training:
            return cls(dtype, bops("forward"), tos("tos"))
        return cls(dtype, bops("forward"), tos("tos"), True, bops("backward"),
                   tos("tos_backward"), bops("loss"), tos("tos_loss"))

    def __add__(self, other: Lowered) -> Lowered:
        return Lowered(
            native_dtype=_combine_dtypes(self, other),
            forward=_add_bops(self.forward, other.forward),
            tos=add_columns(self.tos, other.tos),
            training=self.training or other.training,
            backward=_add_bops(self.backward, other.backward),
            tos_backward=add_columns(self.tos_backward, other.tos_backward),
            loss=_add_bops(self.loss, other.loss),
            tos_loss=add_columns(self.tos_loss, other.tos_loss),
        )

    def to_dict(self) -> dict[str, Any]:
        """``bops``, ``tos`` and ``native_dtype``; split by phase when training."""
        if not self.training:
            return {"bops": _bops_dict(self.forward), "tos": self.tos,
                    "native_dtype": self.native_dtype}
        return {
            "bops": {"forward": _bops_dict(self.forward), "backward": _bops_dict(self.backward),
                     "loss": _bops_dict(self.loss), "total": _bops_dict(self.total)},
            "tos": {"forward": self.tos, "backward": self.tos_backward, "loss": self.tos_loss,
                    "total": self.tos_total},
            "native_dtype": self.native_dtype,
        }


def _does_work(x: Lowered) -> bool:
    t = x.total
    return t is None or t.total > 0


def _combine_dtypes(a: Lowered, b: Lowered) -> str | None:
    """The dtype of a sum: the shared one, ``mixed``, or the one side that does any work."""
    da = a.native_dtype if _does_work(a) else None
    db = b.native_dtype if _does_work(b) else None
    if da is None or db is None or da == db:
        return da or db
    return "mixed"


def lower(
    table: TransistorTable,
    forward: BasicOps,
    native: str | None,
    *,
    training: bool = False,
    backward: BasicOps | None = None,
    loss: BasicOps | None = None,
    extra: tuple[str, ...] = (),
) -> Lowered:
    """A node's `Lowered` record: its TOs per phase at fp32, fp16, its native dtype, ``extra``."""

    def cols(b: BasicOps | None) -> Columns | None:
        return None if b is None else table.columns(b, native, extra)

    if not training:
        return Lowered(native, forward, cols(forward))
    return Lowered(native, forward, cols(forward), True, backward, cols(backward),
                   loss, cols(loss))
