"""Renderers of an `Analysis`: a readable table, JSON (SI units, stable keys) and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence

from ..analysis import Analysis, NodeResult
from ..gcpause import gc_paused
from ..ops.registry import BOP_NAMES
from ..passes.results import Status
from .json import dumps
from .prediction import carbon_lines, prediction_lines
from .units import si


@gc_paused()
def render_json(analysis: Analysis) -> str:
    """The JSON report (compact, SI units, stable keys), without a trailing newline."""
    return dumps(analysis.to_dict())


CSV_COLUMNS = ("name", "op_type", "domain", "status", "output_shape", "macs", "flops",
               "params", "bytes_read", "bytes_written", *BOP_NAMES)


def _tos_columns(analysis: Analysis) -> tuple[str, ...]:
    extra = () if analysis.precision in ("fp32", "fp16", "native") else (analysis.precision,)
    return ("fp32", "fp16", "native", *extra)


def csv_columns(analysis: Analysis) -> tuple[str, ...]:
    """CSV_COLUMNS (forward basic ops), then native_dtype and TOs; training adds, per phase
    (backward, loss, total), ``PHASE_add`` ... ``PHASE_root`` and ``tos_COL_PHASE``."""
    cols = (*CSV_COLUMNS, "native_dtype", *(f"tos_{c}" for c in _tos_columns(analysis)))
    if analysis.phase == "training":
        for phase in ("backward", "loss", "total"):
            cols += (*(f"{phase}_{b}" for b in BOP_NAMES),
                     *(f"tos_{c}_{phase}" for c in _tos_columns(analysis)))
    if analysis.prediction is not None:
        cols += PREDICTION_COLUMNS
    return cols


#: Columns a calibrated prediction adds to the CSV (SI units, per inference).
PREDICTION_COLUMNS = ("runtime_s", "runtime_s_lo", "runtime_s_hi", "power_w", "energy_j",
                      "energy_j_lo", "energy_j_hi", "group", "predictor")


def _prediction_cells(analysis: Analysis, i: int) -> list[object]:
    if analysis.prediction is None:
        return []
    p = analysis.prediction.nodes[i]
    rt: Sequence[float | None] = p.runtime_s_interval or (None, None)
    en: Sequence[float | None] = p.energy_j_interval or (None, None)
    return [_cell(v) for v in (p.runtime_s, rt[0], rt[1], p.power_w, p.energy_j, en[0], en[1],
                               p.group, p.predictor)]


def _lowered_cells(analysis: Analysis, n: NodeResult) -> list[object]:
    low = n.lowered
    tos_cols = _tos_columns(analysis)
    if low is None:
        width = 1 + len(tos_cols)
        if analysis.phase == "training":
            width += 3 * (len(BOP_NAMES) + len(tos_cols))
        return [""] * width
    cells: list[object] = [_cell(low.native_dtype),
                           *(_cell((low.tos or {}).get(c)) for c in tos_cols)]
    if analysis.phase == "training":
        for bops, tos in ((low.backward, low.tos_backward), (low.loss, low.tos_loss),
                          (low.total, low.tos_total)):
            d = bops.to_dict() if bops is not None else {}
            cells += [_cell(d.get(b)) for b in BOP_NAMES]
            cells += [_cell((tos or {}).get(c)) for c in tos_cols]
    return cells


@gc_paused()
def render_csv(analysis: Analysis) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(csv_columns(analysis))
    for i, n in enumerate(analysis.nodes):
        bops = n.bops.to_dict() if n.bops is not None else {}
        writer.writerow([
            n.name, n.op_type, n.domain, n.status, _shape_text(n),
            _cell(n.macs), _cell(n.flops), n.params, _cell(n.bytes_read),
            _cell(n.bytes_written), *(_cell(bops.get(b)) for b in BOP_NAMES),
            *_lowered_cells(analysis, n), *_prediction_cells(analysis, i),
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


@gc_paused()
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
    tos_head = _tos_heading(analysis)
    rows: list[tuple[str, ...]] = [("name", "op", "output shape", "MACs", "FLOPs", "params",
                                    tos_head)]
    for n in nodes:
        flag = "" if n.status == Status.OK else f" [{n.status.value}]"
        rows.append((n.name, n.op_type + flag, _shape_text(n), si(n.macs), si(n.flops),
                     si(n.params), si(analysis.tos_column(n.lowered))))
    lines.extend(_align(rows, numeric_from=3))
    lines.append("")
    lines.append("by op type")
    rows = [("op", "count", "MACs", "FLOPs", "params", tos_head)]
    for op, s in sorted(analysis.by_op_type.items(), key=lambda kv: -(kv[1].macs or 0)):
        rows.append((op, str(s.count), si(s.macs), si(s.flops), si(s.params),
                     si(analysis.tos_column(s.lowered))))
    t = analysis.totals
    rows.append(("total", str(len(analysis.nodes)), si(t.macs), si(t.flops), si(t.params),
                 si(analysis.tos_column(t.lowered))))
    lines.extend(_align(rows, numeric_from=1))
    lines.append("")
    lines.extend(phase_summary(analysis))
    lines.append("")
    lines.append(f"memory traffic: {si(t.bytes_read, 'B')} read, {si(t.bytes_written, 'B')} "
                 "written (tensor sizes, per inference)")
    lines.extend(memory_lines(analysis))
    if analysis.prediction is not None:
        lines.append("")
        lines.extend(prediction_lines(analysis))
    lines.extend(carbon_lines(analysis.carbon))
    lines.extend(gaps_summary(analysis))
    return "\n".join(lines) + "\n"


def memory_lines(analysis: Analysis) -> list[str]:
    """The peak of the activation memory plan (docs/memory.md)."""
    t = analysis.totals
    if t.peak_activation_bytes is None:
        return []
    bound = "" if t.peak_activation_complete else "at least "
    where = f" at {t.peak_activation_node}" if t.peak_activation_node else ""
    return [f"peak activation memory: {bound}{si(t.peak_activation_bytes, 'B')}{where} "
            "(liveness plan, weights apart)"]


def _tos_heading(analysis: Analysis) -> str:
    if analysis.phase == "training":
        return f"TOs ({analysis.precision}, fwd+bwd+loss)"
    return f"TOs ({analysis.precision})"


def phase_summary(analysis: Analysis) -> list[str]:
    """Basic and transistor operations overall, by phase when training (Li et al., Alg. 2)."""
    low = analysis.totals.lowered
    table = analysis.transistor_table
    source = "default" if table is None else table.source
    native = low.native_dtype or "-"
    lines = [f"basic and transistor operations ({analysis.phase}; native dtype: {native}; "
             f"transistor table: {source})"]
    rows: list[tuple[str, ...]] = [("phase", *BOP_NAMES, f"TOs ({analysis.precision})")]
    phases = [("forward", low.forward)]
    if analysis.phase == "training":
        phases += [("backward", low.backward), (f"loss ({analysis.loss})", low.loss),
                   ("total", low.total)]
    for label, bops in phases:
        d = bops.to_dict() if bops is not None else {}
        key = label.split(" ")[0]
        rows.append((label, *(si(d.get(b)) for b in BOP_NAMES),
                     si(analysis.tos_column(low, key))))
    lines.extend(_align(rows, numeric_from=1))
    return lines


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


def _align(rows: Sequence[Sequence[str]], numeric_from: int) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.rjust(w) if i >= numeric_from else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
    return out


#: ``--format`` name -> renderer of the whole output text (ending with a newline).
RENDERERS: dict[str, Callable[..., str]] = {
    "table": lambda analysis, top=None: render_table(analysis, top=top),
    "json": lambda analysis, top=None: render_json(analysis) + "\n",
    "csv": lambda analysis, top=None: render_csv(analysis),
}
