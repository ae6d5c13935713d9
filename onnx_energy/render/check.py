"""Renderers of a `CheckReport`: a table, JSON, and markdown fit for a pull-request comment."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING

from .json import dumps
from .units import si

if TYPE_CHECKING:
    from ..check import CheckReport, ModelCheck, Verdict

WIDTH = 100
_MARK = {"pass": "✅ pass", "fail": "❌ fail", "unjudgeable": "⚠️ unjudgeable"}


def quantity(value: float | None, unit: str) -> str:
    """A budget quantity with its unit: counts and bytes with prefixes, the rest 4 digits."""
    if value is None:
        return "—"
    if unit in ("", "B"):
        return si(value, unit)
    return si(value, unit, sig=4)


def value_text(v: Verdict) -> str:
    text = quantity(v.value, v.unit)
    if v.value is None:
        return text
    if v.lower_bound:
        text = "≥ " + text
    if v.basis == "upper" and v.unit in ("J", "s", "g"):
        text += " (upper)"
    return text


def margin(v: Verdict) -> str:
    """By how much a budget is exceeded (``+6.33 µJ (+126.7%) over``), or how much of it
    is used (``23.1% of the limit``)."""
    r, excess = v.excess_ratio, v.excess
    if r is None or excess is None or v.status == "unjudgeable":
        return ""
    if excess > 0:
        return f"+{quantity(excess, v.unit)} ({r * 100:+.1f}%) over"
    return f"{(r + 1) * 100:.3g}% of the limit"


def headline(report: CheckReport) -> str:
    fails, unj = report.failures(), report.unjudgeable()
    n = sum(len(m.verdicts) for m in report.models)
    if fails:
        return f"{len(fails)} of {n} budget(s) exceeded"
    if unj:
        return f"{len(unj)} of {n} budget(s) cannot be judged"
    return f"all {n} budget(s) hold"


def _profile(m: ModelCheck) -> str:
    p = m.profile or {}
    return str(p.get("label") or p.get("name") or "—")


def render_table(report: CheckReport) -> str:
    lines = [f"onnx-energy check: {headline(report)}"]
    if report.config:
        lines.append(f"budgets from {report.config} (the command line overrides)")
    rows = [("model", "budget", "limit", "value", "status", "margin")]
    notes: list[str] = []
    for m in report.models:
        if not m.verdicts:
            rows.append((m.model, "—", "", "", "no budget", ""))
        for i, v in enumerate(m.verdicts):
            rows.append((m.model if i == 0 else "", v.budget, quantity(v.limit, v.unit),
                         value_text(v), v.status, margin(v)))
            if v.reason:
                notes.append(f"{m.model} {v.budget}: {v.reason}")
        notes += [f"{m.model}: {w}" for w in m.warnings]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  ".join(c.rjust(w) if i in (2, 3) else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    profiles = sorted({_profile(m) for m in report.models if m.verdicts})
    if profiles:
        lines.append(f"profile: {', '.join(profiles)}")
    for m in report.models:
        c = m.carbon
        if c and c.get("g_per_inference") is not None:
            lines.append(f"{m.model}: {si(c['g_per_inference'], 'g', sig=3)} CO2-eq per "
                         f"inference at {c['g_per_kwh']:.4g} g/kWh ({c['source']})")
    for note in notes:
        lines.extend(textwrap.wrap(note, WIDTH, initial_indent="note: ",
                                   subsequent_indent="      "))
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(report: CheckReport) -> str:
    fails, unj = report.failures(), report.unjudgeable()
    icon = "❌" if fails else "⚠️" if unj else "✅"
    lines = [f"### {icon} onnx-energy check: {headline(report)}", "",
             "| model | budget | limit | value | status | margin |",
             "|---|---|---:|---:|---|---|"]
    notes = []
    for m in report.models:
        if not m.verdicts:
            lines.append(f"| `{_md(m.model)}` | — | | | no budget | |")
        for v in m.verdicts:
            lines.append(f"| `{_md(m.model)}` | {v.budget} | {_md(quantity(v.limit, v.unit))} "
                         f"| {_md(value_text(v))} | {_MARK[v.status]} | {margin(v)} |")
            if v.reason:
                notes.append(f"- `{_md(m.model)}` {v.budget}: {v.reason}")
        notes += [f"- `{_md(m.model)}`: {w}" for w in m.warnings]
    profiles = sorted({_profile(m) for m in report.models if m.verdicts})
    lines.append("")
    if profiles:
        lines.append(f"Profile: {', '.join(profiles)}.")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


#: ``--format`` name -> renderer of the whole output text (ending with a newline).
RENDERERS: dict[str, Callable[[CheckReport], str]] = {
    "table": render_table,
    "json": lambda report: dumps(report.to_dict(), pretty=True) + "\n",
    "markdown": render_markdown,
}
