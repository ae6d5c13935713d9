"""The theoretical profile: energy from published per-operation energies, no runtime.

A node costs its basic operations at its native dtype plus its memory traffic:

    E = Σ_op count(op) · e(op, dtype) + Σ_tensors bytes · e_byte(SRAM or DRAM)

The energies (``onnx_energy/data/theoretical_45nm.json``) are those of Horowitz, ISSCC 2014,
at 45 nm: FP32 add 0.9 pJ and mul 3.7 pJ, FP16 add 0.4 and mul 1.1, INT8 add 0.03 and mul
0.2, a 32-bit read from an 8 KB SRAM 5 pJ and from DRAM 640 pJ. Everything else is derived
(docs/energy.md), by rules recorded in the data file:

- ``sub`` runs in the adder (two's complement): e(sub) = e(add);
- ``div`` and ``root`` cost the multiplier's energy times their transistor ratio in the
  transistor table (``data/transistors.json``: an SRT divider; root as Newton-Raphson
  iterations of div + add + mul);
- other float widths (fp64, bf16, fp8, fp4): a power law in significand bits through the two
  published float points, e = e_fp32 · (p / 24)^k, k = ln(e_fp32 / e_fp16) / ln(24 / 11);
- other integer widths (int4, int16, int32, int64, unsigned): from INT8 with the transistor
  model's own scaling, an adder linear and a multiplier quadratic in the width; bool is a
  byte-wide integer;
- memory: a tensor is read (or written) from DRAM when it is larger than the on-chip
  buffer (``cache_bytes``), else from SRAM, at the 32-bit figure per 4 bytes; writes cost
  what reads cost.

The interval of a node is the memory hierarchy's range, not a statistical one: from every
byte in SRAM to every byte from DRAM, the compute fixed.

Numpy only: this module imports no scikit-learn and no onnxruntime.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import ProfileError
from .graph import TensorInfo
from .ops.base import BasicOps
from .passes.costs import METADATA_ONLY
from .passes.results import NodeCost
from .passes.transistors import TransistorTable, load_table

THEORETICAL = "theoretical"
_OPS = ("add", "sub", "mul", "div", "root")
_PJ = 1e-12
_WORD_BYTES = 4  # the published memory figures are per 32-bit access


@dataclass(frozen=True)
class EnergyTable:
    """Energies per basic operation and dtype (joules), per memory byte, and their source."""

    label: str
    citation: str
    technology_nm: int
    per_op_j: Mapping[str, Mapping[str, float]]
    sram_j_per_byte: float
    dram_j_per_byte: float
    cache_bytes: int
    #: dtype -> "published" or the rule that derived it.
    origin: Mapping[str, str]

    def op_energy(self, bops: BasicOps, dtype: str | None) -> float | None:
        """Joules of ``bops`` at ``dtype``; None when the dtype has no energy and work is done."""
        if bops.total == 0:
            return 0.0
        row = self.per_op_j.get(dtype or "")
        if row is None:
            return None
        return (bops.add * row["add"] + bops.sub * row["sub"] + bops.mul * row["mul"]
                + bops.div * row["div"] + bops.root * row["root"])

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "citation": self.citation,
                "technology_nm": self.technology_nm,
                "per_op_pj": {k: {op: v / _PJ for op, v in row.items()}
                              for k, row in self.per_op_j.items()},
                "sram_pj_per_byte": self.sram_j_per_byte / _PJ,
                "dram_pj_per_byte": self.dram_j_per_byte / _PJ,
                "cache_bytes": self.cache_bytes, "origin": dict(self.origin)}


@dataclass(frozen=True)
class NodeEnergy:
    """One node's theoretical energy: compute, memory, and the SRAM…DRAM range."""

    energy_j: float | None
    compute_j: float | None
    memory_j: float | None
    low_j: float | None
    high_j: float | None
    dram_bytes: int | None = None
    sram_bytes: int | None = None

    def detail(self) -> dict[str, Any]:
        return {"energy_compute_j": self.compute_j, "energy_memory_j": self.memory_j,
                "dram_bytes": self.dram_bytes, "sram_bytes": self.sram_bytes}


def _number(data: Mapping[str, Any], key: str, where: str) -> float:
    v = data.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise ProfileError(f"theoretical profile: {where}.{key} must be a number >= 0")
    return float(v)


def build_energy_table(data: Mapping[str, Any],
                       transistors: TransistorTable | None = None) -> EnergyTable:
    """The full table from a profile's ``theoretical`` block (published values + rules)."""
    if not isinstance(data, Mapping):
        raise ProfileError("theoretical profile: the 'theoretical' block must be an object")
    table = transistors or load_table()
    pub = data.get("published_pj")
    mem = data.get("memory")
    if not isinstance(pub, Mapping) or not isinstance(mem, Mapping):
        raise ProfileError("theoretical profile needs 'published_pj' and 'memory' objects")
    base: dict[str, dict[str, float]] = {}
    for key in ("fp32", "fp16", "int8"):
        row = pub.get(key)
        if not isinstance(row, Mapping):
            raise ProfileError(f"theoretical profile: published_pj.{key} is missing")
        base[key] = {op: _number(row, op, f"published_pj.{key}") * _PJ for op in ("add", "mul")}
    sram = _number(pub, "sram_read_32bit", "published_pj") * _PJ / _WORD_BYTES
    dram = _number(pub, "dram_read_32bit", "published_pj") * _PJ / _WORD_BYTES
    cache = int(_number(mem, "cache_bytes", "memory"))

    per_op: dict[str, dict[str, float]] = {}
    origin: dict[str, str] = {}
    e32, e16 = base["fp32"], base["fp16"]
    k = {op: math.log(e32[op] / e16[op]) / math.log(24 / 11) for op in ("add", "mul")}
    for key, fmt in table.formats.items():
        if key in base:
            add_mul = dict(base[key])
            origin[key] = "published (add, mul)"
        elif "mantissa" in fmt:
            p = int(fmt["mantissa"]) + 1
            add_mul = {op: e32[op] * (p / 24) ** k[op] for op in ("add", "mul")}
            origin[key] = (f"fp32 x ({p}/24)^k, k_add {k['add']:.3f}, k_mul {k['mul']:.3f}")
        else:
            bits = int(fmt["bits"])
            add_mul = {"add": base["int8"]["add"] * bits / 8,
                       "mul": base["int8"]["mul"] * (bits / 8) ** 2}
            origin[key] = ("as int8 (the same datapath)" if bits == 8 else
                           f"int8: add x {bits}/8, mul x ({bits}/8)^2")
        if not table.has(key):
            continue
        mul_t = table.transistors("mul", key)
        ratio = {op: table.transistors(op, key) / mul_t for op in ("div", "root")}
        per_op[key] = {"add": add_mul["add"], "sub": add_mul["add"], "mul": add_mul["mul"],
                       "div": add_mul["mul"] * ratio["div"],
                       "root": add_mul["mul"] * ratio["root"]}
    if "uint8" in per_op:
        per_op["bool"] = dict(per_op["uint8"])
        origin["bool"] = "as uint8 (a byte-wide integer)"
    return EnergyTable(label=str(data.get("label") or "theoretical"),
                       citation=str(data.get("citation") or ""),
                       technology_nm=int(_number(data, "technology_nm", "theoretical")),
                       per_op_j=per_op, sram_j_per_byte=sram, dram_j_per_byte=dram,
                       cache_bytes=cache, origin=origin)


@lru_cache(maxsize=4)
def _cached_table(key: str) -> EnergyTable:
    return build_energy_table(json.loads(key))


def energy_table(data: Mapping[str, Any]) -> EnergyTable:
    """`build_energy_table` with the default transistor table, cached per block."""
    try:
        key = json.dumps(data, sort_keys=True)
    except (TypeError, ValueError):
        raise ProfileError("theoretical profile: the 'theoretical' block is not JSON") from None
    return _cached_table(key)


def node_energy(c: NodeCost, bops: BasicOps | None, dtype: str | None,
                table: EnergyTable) -> NodeEnergy:
    """A node's energy: its basic operations at ``dtype`` and its memory traffic."""
    if bops is None or c.bytes_read is None or c.bytes_written is None:
        return NodeEnergy(None, None, None, None, None)
    compute = table.op_energy(bops, dtype)
    moved = c.bytes_read + c.bytes_written
    read: Sequence[TensorInfo] = (() if c.node.domain == "" and c.node.op_type in METADATA_ONLY
                                  else c.inputs)
    dram = sum(t.nbytes for t in (*read, *c.outputs)
               if t.is_static and t.nbytes > table.cache_bytes)
    dram = min(dram, moved)
    sram = moved - dram
    memory = sram * table.sram_j_per_byte + dram * table.dram_j_per_byte
    if compute is None:
        return NodeEnergy(None, None, memory, None, None, dram, sram)
    return NodeEnergy(compute + memory, compute, memory,
                      compute + moved * table.sram_j_per_byte,
                      compute + moved * table.dram_j_per_byte, dram, sram)
