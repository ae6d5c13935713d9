"""Renderers of an `Analysis`: a readable table, JSON (SI units, stable keys) and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from .analysis import Analysis, NodeResult
from .ops.registry import BOP_NAMES

_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(value: float | None, unit: str = "") -> str:
    """A number with a readable SI prefix: 4089184256 -> '4.089 G'."""
    if value is None:
        return "?"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.3f} {prefix}{unit}".rstrip()
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3g} {unit}".rstrip()
    return f"{int(value)} {unit}".rstrip()


def render_json(analysis: Analysis) -> str:
    return json.dumps(analysis.to_dict(), separators=(",", ":"))


CSV_COLUMNS = ("name", "op_type", "domain", "status", "output_shape", "macs", "flops",
               "params", "bytes_read", "bytes_written", *BOP_NAMES)


def render_csv(analysis: Analysis) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for n in analysis.nodes:
        bops = n.bops.to_dict() if n.bops is not None else {}
        writer.writerow([
            n.name, n.op_type, n.domain, n.status, _shape_text(n),
            _cell(n.macs), _cell(n.flops), n.params, _cell(n.bytes_read),
            _cell(n.bytes_written), *(_cell(bops.get(b)) for b in BOP_NAMES),
        ])
    return buf.getvalue()


def _cell(value: object) -> object:
    return "" if value is None else value


def _shape_text(n: NodeResult) -> str:
    if not n.outputs:
        return ""
    shape = n.outputs[0].shape
    if shape is None:
        return "?"
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def costliest(nodes: Sequence[NodeResult], top: int) -> list[NodeResult]:
    """The ``top`` nodes by MACs, then FLOPs (unknown costs last)."""
    return sorted(nodes, key=lambda n: (n.macs or 0, n.flops or 0), reverse=True)[:top]


def render_table(analysis: Analysis, top: int | None = None) -> str:
    lines: list[str] = [f"model: {analysis.model}   convention: {analysis.convention}"]
    if analysis.bindings:
        lines.append("bindings: " + ", ".join(f"{k}={v}" for k, v in analysis.bindings.items()))
    lines.append("inputs: " + ", ".join(
        f"{t.name}[{'x'.join(str(d) for d in t.shape) if t.shape is not None else '?'}] {t.dtype}"
        for t in analysis.inputs))
    lines.append("")
    nodes = costliest(analysis.nodes, top) if top else analysis.nodes
    title = f"top {top} nodes by MACs" if top else "nodes"
    lines.append(title)
    rows = [("name", "op", "output shape", "MACs", "FLOPs", "params")]
    for n in nodes:
        flag = "" if n.status == "ok" else f" [{n.status}]"
        rows.append((n.name, n.op_type + flag, _shape_text(n), si(n.macs), si(n.flops),
                     si(n.params)))
    lines.extend(_align(rows, numeric_from=3))
    lines.append("")
    lines.append("by op type")
    rows = [("op", "count", "MACs", "FLOPs", "params")]
    for op, s in sorted(analysis.by_op_type.items(), key=lambda kv: -(kv[1].macs or 0)):
        rows.append((op, str(s.count), si(s.macs), si(s.flops), si(s.params)))
    t = analysis.totals
    rows.append(("total", str(len(analysis.nodes)), si(t.macs), si(t.flops), si(t.params)))
    lines.extend(_align(rows, numeric_from=1))
    lines.append("")
    lines.append(f"memory traffic: {si(t.bytes_read, 'B')} read, {si(t.bytes_written, 'B')} "
                 "written (tensor sizes, per inference)")
    lines.extend(gaps_summary(analysis))
    return "\n".join(lines) + "\n"


def gaps_summary(analysis: Analysis) -> list[str]:
    """Lines naming what was not counted: unsupported ops and unresolved shapes."""
    out: list[str] = []
    if analysis.unsupported:
        out.append("unsupported (not counted): " + ", ".join(
            f"{op} x{n}" for op, n in sorted(analysis.unsupported.items())))
    if analysis.unresolved:
        out.append(f"unresolved shapes: {len(analysis.unresolved)} node(s), e.g. "
                   + ", ".join(f"{u.node} ({u.op_type})" for u in analysis.unresolved[:5]))
        if analysis.unbound_dims:
            out.append("  bind with: " + " ".join(f"--dim {d}=N" for d in analysis.unbound_dims)
                       + "  (or --batch-size N)")
    if out:
        out.insert(0, "totals are INCOMPLETE:")
    return out


def _align(rows: list[tuple[str, ...]], numeric_from: int) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.rjust(w) if i >= numeric_from else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
    return out
