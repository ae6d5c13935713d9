"""Renderers of a `Comparison`: a table with deltas against the first model, JSON, markdown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .json import dumps
from .units import si

if TYPE_CHECKING:
    from ..compare import Comparison, ModelRow


def _q(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "g":
        from .prediction import grams

        return grams(value)
    return si(value, unit) if unit in ("", "B") else si(value, unit, sig=4)


def _ratio(r: float | None) -> str:
    return "—" if r is None else f"{r * 100:+.1f}%"


def _keys(c: Comparison) -> list[str]:
    from ..compare import METRICS

    return [k for k in METRICS if k != "co2_g" or c.carbon is not None]


def _header(c: Comparison) -> str:
    p = c.profile or {}
    label = p.get("label") or p.get("name") or "—"
    return f"profile {label}; TOs at {c.precision}; deltas against {c.rows[0].name}"


def _rows(c: Comparison) -> list[tuple[str, ...]]:
    from ..compare import METRICS

    keys = _keys(c)
    rows: list[tuple[str, ...]] = [("model", *(METRICS[k][0] for k in keys))]
    first = c.rows[0]
    for i, r in enumerate(c.rows):
        mark = "" if r.complete else " (≥)"
        rows.append((r.name + mark, *(_q(r.values.get(k), METRICS[k][1]) for k in keys)))
        if i:
            rows.append(("  vs first", *(_ratio(r.delta(first, k)[1]) for k in keys)))
    return rows


def _epr_rows(c: Comparison) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("rank", "model", "error", "EPI", "M")]
    for r in c.ranking:
        rows.append((str(r.rank), r.name, f"{r.error:.4g}", _q(r.values.get("energy_j"), "J"),
                     _q(r.epr, "J")))
    return rows


def _align(rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(x.ljust(w) if i < left else x.rjust(w)
                      for i, (x, w) in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in rows]


def render_table(c: Comparison) -> str:
    lines = [f"compare: {len(c.rows)} model(s); {_header(c)}", ""]
    lines.extend(_align(_rows(c)))
    if c.ranking:
        lines += ["", f"Energy-Precision Ratio M = Error^α · EPI (α = {c.alpha:g}; lower is "
                      "better)"]
        lines.extend(_align(_epr_rows(c), left=2))
    if c.carbon:
        lines.append(f"CO2-eq per inference at {c.carbon['g_per_kwh']:.4g} g/kWh "
                     f"({c.carbon['source']})")
    if all(r.values.get("runtime_s") is None for r in c.rows):
        lines.append("latency: not predicted by this profile (pass a calibrated --profile)")
    for w in dict.fromkeys(c.warnings):
        lines.append(f"note: {w}")
    return "\n".join(lines) + "\n"


def _md_table(rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |",
           "|" + "|".join("---" if i < left else "---:" for i in range(len(rows[0]))) + "|"]
    out += ["| " + " | ".join(x.replace("|", "\\|") for x in r) + " |" for r in rows[1:]]
    return out


def render_markdown(c: Comparison) -> str:
    lines = [f"### onnx-energy compare: {len(c.rows)} model(s)", "", f"{_header(c)}.", ""]
    lines.extend(_md_table(_rows(c)))
    if c.ranking:
        lines += ["", f"Energy-Precision Ratio M = Error^α · EPI (α = {c.alpha:g}; lower is "
                      "better):", ""]
        lines.extend(_md_table(_epr_rows(c), left=2))
    if c.warnings:
        lines.append("")
    for w in dict.fromkeys(c.warnings):
        lines.append(f"- {w}")
    return "\n".join(lines) + "\n"


#: ``--format`` name -> renderer of the whole output text (ending with a newline).
RENDERERS: dict[str, Callable[[Comparison], str]] = {
    "table": render_table,
    "json": lambda c: dumps(c.to_dict(), pretty=True) + "\n",
    "markdown": render_markdown,
}

__all__ = ["RENDERERS", "ModelRow"]
