"""Renderers of a `Measurement`: a readable table, JSON and CSV."""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .json import dumps
from .table import Column, layout, middle
from .units import pct, share, si

if TYPE_CHECKING:  # measure formats with render.units: only the types are needed here
    from ..measure.measurement import Measurement
    from ..measure.profiling import NodeTiming

DEFAULT_WIDTH = 100
LABEL = 9


def _si(value: float | None, unit: str) -> str:
    return si(value, unit, sig=4, missing="—")


def _field(label: str, text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=f"{label:<{LABEL}} ",
                         subsequent_indent=" " * (LABEL + 1), break_on_hyphens=False)


def render_table(m: Measurement, top: int = 10, width: int = DEFAULT_WIDTH) -> str:
    """The measurement as a readable table at most ``width`` wide (``top`` per-node rows)."""
    lines: list[str] = []
    label = m.model if m.model is not None else "(in-memory model)"
    lines.append(f"{'model':<{LABEL}} {middle(label, max(width - LABEL - 16, 20))}  "
                 f"(sha256 {m.model_sha256[:12]})")
    binds = ", ".join(f"{k}={v}" for k, v in m.dims.items())
    extra = f", batch {m.batch_size}" if m.batch_size is not None else ""
    extra += f", dims {binds}" if binds else ""
    lines += _field("provider", f"{m.provider}, {m.threads} intra-op thread(s){extra}", width)
    its = "/".join(str(i) for i in m.iterations)
    failed = f", {m.windows_failed} failed and dropped" if m.windows_failed else ""
    window = f" of {m.min_window_s:g} s" if m.min_window_s is not None else ""
    lines += _field("runtime", f"{_si(m.runtime_s, 's')} per inference (median of {m.windows} "
                               f"windows{window}, CV {pct(m.runtime_cv)}, iterations {its}"
                               f"{failed})", width)
    if m.target_cv is not None:
        tries = len(m.attempts)
        how = (f"met after {tries} attempt(s)" if m.target_cv_met
               else f"NOT met after {tries} attempt(s)")
        lines += _field("target", f"CV {pct(m.target_cv)}: {how} (windows up to "
                                  f"{m.max_window_s:g} s)", width)
    if m.energy_j is None:
        lines += _field("energy", m.energy_note or "not measured", width)
    else:
        dyn = (f", dynamic {_si(m.energy_dynamic_j, 'J')} above idle"
               if m.energy_dynamic_j is not None else "")
        lines += _field("energy", f"{_si(m.energy_j, 'J')} per inference{dyn} "
                                  f"(CV {pct(m.energy_cv)})", width)
        if m.energy_note:
            lines += _field("", m.energy_note, width)
    power = "—" if m.power_w is None else _si(m.power_w, "W")
    if m.power_w is not None and m.idle_power_w is not None:
        power += f" (idle {_si(m.idle_power_w, 'W')})"
    lines.append(f"{'power':<{LABEL}} {power}")
    detail = m.sensor_detail
    domains = ", ".join(detail.get("domains") or [])
    mode = detail.get("mode")
    sensor = m.sensor + (f" ({mode}{': ' + domains if domains else ''})" if mode else "")
    if m.estimate:
        sensor += " — ESTIMATE"
    lines += _field("sensor", sensor, width)
    if m.records:
        lines += _field("records", f"{m.records} ({m.windows} window(s) appended)", width)
    for w in m.warnings:
        lines += _field("warning", w, width)
    if m.nodes is not None:
        lines.append("")
        lines.extend(_node_lines(m, m.nodes, top, width))
    return "\n".join(lines) + "\n"


def _node_lines(m: Measurement, nodes: list[NodeTiming], top: int, width: int) -> list[str]:
    lines = ["top nodes (onnxruntime profiler, a separate session between the windows; time "
             "per inference)"]
    if m.nodes_coverage_note:
        lines += _field("coverage", m.nodes_coverage_note, width)
    energy_col = m.energy_j is not None

    def kind(row: NodeTiming) -> str:
        return row.op_type + (" fused" if row.fused else "")

    cols: list[Column[NodeTiming]] = [
        Column("time", lambda r: _si(r.time_s, "s")),
        Column("share", lambda r: share(r.share)),
    ]
    if energy_col:
        cols.append(Column("energy*", lambda r: _si(r.energy_j, "J")))
    cols += [Column("op", kind, align="left", shrink=middle, min_width=8),
             Column("node", lambda r: r.name, align="left", shrink=middle, min_width=16)]
    lines.extend(layout(cols, nodes[:top], width).lines)
    if len(nodes) > top:
        lines.append(f"  … {len(nodes) - top} more (--top N, or --format json|csv)")
    if energy_col:
        lines.append("  * energy split in proportion to time (not measured per node)")
    return lines


def render_json(m: Measurement) -> str:
    """The measurement as indented JSON (SI units, per inference)."""
    return dumps(m.to_dict(), pretty=True)


#: One row per measurement (without --per-node).
CSV_SUMMARY = ("model", "model_sha256", "provider", "threads", "batch_size", "dims", "sensor",
               "estimate", "runtime_s", "runtime_cv", "energy_j", "energy_dynamic_j",
               "energy_cv", "power_w", "idle_power_w", "windows", "windows_failed",
               "min_window_s", "target_cv", "target_cv_met", "warnings", "run_id")
#: One row per node or fused group (with --per-node), after the model and its runtime.
CSV_NODES = ("model", "runtime_s", "sensor", "name", "op_type", "fused", "inserted", "nodes",
             "kernels", "time_s", "time_raw_s", "share", "energy_j")


def render_csv(m: Measurement) -> str:
    """CSV: one summary row, or with per-node timings one row per node or fused group
    (lists are joined with ``;``, SI units, empty where unknown)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    d = m.to_dict()

    def cell(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, dict):
            return ";".join(f"{k}={v}" for k, v in value.items())
        if isinstance(value, list):
            return ";".join(str(v) for v in value)
        return value

    if m.nodes is None:
        writer.writerow(CSV_SUMMARY)
        writer.writerow([cell(d[k]) for k in CSV_SUMMARY])
        return buf.getvalue()
    writer.writerow(CSV_NODES)
    for row in d["nodes"]:
        writer.writerow([cell(d["model"]), cell(d["runtime_s"]), cell(d["sensor"]),
                         *(cell(row[k]) for k in CSV_NODES[3:])])
    return buf.getvalue()


#: ``--format`` name -> renderer of the whole output text (ending with a newline).
RENDERERS: dict[str, Callable[..., str]] = {
    "table": lambda m, top=10, width=DEFAULT_WIDTH: render_table(m, top, width),
    "json": lambda m, top=10, width=DEFAULT_WIDTH: render_json(m) + "\n",
    "csv": lambda m, top=10, width=DEFAULT_WIDTH: render_csv(m),
}
