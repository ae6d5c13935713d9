"""Renderers of a `Measurement`: a readable table and JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .json import dumps
from .units import pct, si

if TYPE_CHECKING:  # measure formats with render.units: only the type is needed here
    from ..measure.measurement import Measurement


def _si(value: float | None, unit: str) -> str:
    return si(value, unit, sig=4, missing="—")


def render_table(m: Measurement, top: int = 10) -> str:
    """The measurement as a readable table (``top`` per-node rows)."""
    lines = []
    label = m.model if m.model is not None else "(in-memory model)"
    lines.append(f"model     {label}  (sha256 {m.model_sha256[:12]})")
    binds = ", ".join(f"{k}={v}" for k, v in m.dims.items())
    extra = f", batch {m.batch_size}" if m.batch_size is not None else ""
    extra += f", dims {binds}" if binds else ""
    lines.append(f"provider  {m.provider}, {m.threads} intra-op thread(s){extra}")
    its = "/".join(str(i) for i in m.iterations)
    failed = f", {m.windows_failed} failed and dropped" if m.windows_failed else ""
    lines.append(f"runtime   {_si(m.runtime_s, 's')} per inference (median of {m.windows} "
                 f"windows, CV {pct(m.runtime_cv)}, iterations {its}{failed})")
    if m.energy_j is None:
        lines.append(f"energy    {m.energy_note or 'not measured'}")
    else:
        dyn = (f", dynamic {_si(m.energy_dynamic_j, 'J')} above idle"
               if m.energy_dynamic_j is not None else "")
        lines.append(f"energy    {_si(m.energy_j, 'J')} per inference{dyn} "
                     f"(CV {pct(m.energy_cv)})")
        if m.energy_note:
            lines.append(f"          {m.energy_note}")
    power = "—" if m.power_w is None else _si(m.power_w, "W")
    if m.power_w is not None and m.idle_power_w is not None:
        power += f" (idle {_si(m.idle_power_w, 'W')})"
    lines.append(f"power     {power}")
    detail = m.sensor_detail
    domains = ", ".join(detail.get("domains") or [])
    mode = detail.get("mode")
    sensor = m.sensor + (f" ({mode}{': ' + domains if domains else ''})" if mode else "")
    if m.estimate:
        sensor += " — ESTIMATE"
    lines.append(f"sensor    {sensor}")
    if m.records:
        lines.append(f"records   {m.records} ({m.windows} window(s) appended)")
    if m.nodes is not None:
        covered = ""
        rec = m.reconciliation
        if rec is not None and rec.coverage is not None:
            covered = (f"; raw kernels {_si(rec.kernel_time_s, 's')} = "
                       f"{rec.coverage * 100:.1f}% of runtime less session overhead "
                       f"{_si(rec.session_overhead_s, 's')}, reconciled to add up to it")
        elif m.nodes_time_s is not None and m.runtime_s:
            covered = (f"; kernels sum to {_si(m.nodes_time_s, 's')} = "
                       f"{m.nodes_time_s / m.runtime_s * 100:.1f}% of the runtime")
        energy_col = m.energy_j is not None
        lines.append("")
        lines.append(f"top nodes (onnxruntime profiler{covered})")
        head = f"  {'time':>10}  {'share':>7}"
        if energy_col:
            head += f"  {'energy*':>10}"
        lines.append(head + "  node")
        for row in m.nodes[:top]:
            line = f"  {_si(row.time_s, 's'):>10}  {row.share * 100:6.2f}%"
            if energy_col:
                line += f"  {_si(row.energy_j, 'J'):>10}"
            kind = f"[{row.op_type}]"
            if row.fused:
                kind += " fused"
            lines.append(f"{line}  {row.name} {kind}")
        if len(m.nodes) > top:
            lines.append(f"  … {len(m.nodes) - top} more (--top N, or --format json)")
        if energy_col:
            lines.append("  * energy split in proportion to time (not measured per node)")
    return "\n".join(lines) + "\n"


def render_json(m: Measurement) -> str:
    """The measurement as indented JSON (SI units, per inference)."""
    return dumps(m.to_dict(), pretty=True)


#: ``--format`` name -> renderer of the whole output text (ending with a newline).
RENDERERS: dict[str, Callable[..., str]] = {
    "table": lambda m, top=10: render_table(m, top),
    "json": lambda m, top=10: render_json(m) + "\n",
}
