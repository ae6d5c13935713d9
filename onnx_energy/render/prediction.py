"""Renderers of a calibrated prediction: the lines the analysis table adds, and profiles."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..machine import PROBE_KERNEL
from .json import dumps
from .table import Column, layout, middle
from .units import si

if TYPE_CHECKING:
    from ..analysis import Analysis
    from ..profile import KeyModels, Profile


def _interval(lo: float | None, hi: float | None, unit: str) -> str:
    if lo is None or hi is None:
        return ""
    return f" [{si(lo, unit, sig=3)} … {si(hi, unit, sig=3)}]"


def _prose(lines: list[str], width: int) -> list[str]:
    """Lines of text wrapped to ``width``, continuations indented under the value."""
    out: list[str] = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        out.extend(textwrap.wrap(line, width, subsequent_indent=indent,
                                 break_on_hyphens=False) or [""])
    return out


def _share_table(rows: Sequence[tuple[str, ...]], headers: Sequence[str],
                 width: int) -> list[str]:
    """An op-type share table indented by two spaces, op names shortened to fit."""
    cols: list[Column[tuple[str, ...]]] = [
        Column(headers[0], lambda r: r[0], align="left", shrink=middle, min_width=10)]
    for i, h in enumerate(headers[1:], start=1):
        cols.append(Column(h, _cell_at(i)))
    return ["  " + line for line in layout(cols, list(rows), width - 2).lines]


def _cell_at(i: int) -> Callable[[tuple[str, ...]], str]:
    def cell(row: tuple[str, ...]) -> str:
        return row[i]

    return cell


def prediction_lines(analysis: Analysis, width: int = 100) -> list[str]:
    """The profile, the predicted totals with their intervals, and each op type's share of
    the predicted time and energy, in at most ``width`` columns."""
    pred = analysis.prediction
    if pred is None:
        return []
    p, t = pred.profile, pred.totals
    if p.get("kind") == "theoretical":
        return theoretical_lines(analysis, width)
    conf = f"{(p.get('confidence') or 0.9) * 100:.0f}%"
    match = "" if p.get("fingerprint_match") else "  (measured on another machine)"
    lines = [f"predicted with profile {p['name']} ({p['kind']}, {p.get('provider') or '?'}, "
             f"{p.get('threads') or '?'} thread(s), sensor {p.get('sensor')}){match}"]
    lo, hi = t.runtime_s_interval or (None, None)
    lines.append(f"  runtime  {si(t.runtime_s, 's', sig=4)}{_interval(lo, hi, 's')} per "
                 f"inference ({conf} interval; {t.kernels} kernels, session overhead "
                 f"{si(t.session_overhead_s, 's', sig=3)})")
    if t.energy_j is None:
        lines.append("  energy   not predicted: the profile has no energy model (it was "
                     "calibrated without an energy sensor)")
    else:
        e_lo, e_hi = t.energy_j_interval or (None, None)
        lines.append(f"  energy   {si(t.energy_j, 'J', sig=4)}{_interval(e_lo, e_hi, 'J')} per "
                     f"inference, average power {si(t.power_w, 'W', sig=3)}")
    shares: dict[str, list[float]] = {}
    for n, np_ in zip(analysis.nodes, pred.nodes, strict=True):
        if np_.runtime_s:
            s = shares.setdefault(n.op_type, [0.0, 0.0])
            s[0] += np_.runtime_s
            s[1] += np_.energy_j or 0.0
    total_t = sum(v[0] for v in shares.values()) or 1.0
    total_e = sum(v[1] for v in shares.values()) or 1.0
    rows = []
    for op, (time_s, energy) in sorted(shares.items(), key=lambda kv: -kv[1][0])[:12]:
        rows.append((op, si(time_s, "s", sig=3), f"{time_s / total_t * 100:.1f}%",
                     si(energy, "J", sig=3) if t.energy_j is not None else "-",
                     f"{energy / total_e * 100:.1f}%" if t.energy_j is not None else "-"))
    notes = [f"  note: {w}" for w in pred.warnings]
    return (_prose(lines, width)
            + _share_table(rows, ("op (kernel)", "time", "share", "energy", "share"), width)
            + _prose(notes, width))


def theoretical_lines(analysis: Analysis, width: int = 100) -> list[str]:
    """Energy of the theoretical profile: total, its SRAM…DRAM range, the compute/memory
    split and each op type's share."""
    pred = analysis.prediction
    assert pred is not None
    p, t = pred.profile, pred.totals
    detail = t.detail or {}
    lines = [f"energy, {p.get('label') or 'theoretical'}: per-operation energies of Horowitz, "
             "ISSCC 2014; no runtime"]
    if t.energy_j is None:
        return _prose([*lines, "  energy   not predicted: no node has a known cost (see "
                       "below)"], width)
    e_lo, e_hi = t.energy_j_interval or (None, None)
    lower = "" if analysis.totals.complete else " (lower bound: some nodes not counted)"
    lines.append(f"  energy   {si(t.energy_j, 'J', sig=4)} per inference{lower}: compute "
                 f"{si(detail.get('energy_compute_j'), 'J', sig=3)}, memory "
                 f"{si(detail.get('energy_memory_j'), 'J', sig=3)}")
    lines.append(f"  range    {si(e_lo, 'J', sig=3)} (all data in SRAM) … {si(e_hi, 'J', sig=3)}"
                 " (all data from DRAM)")
    shares: dict[str, float] = {}
    for n, np_ in zip(analysis.nodes, pred.nodes, strict=True):
        if np_.energy_j:
            shares[n.op_type] = shares.get(n.op_type, 0.0) + np_.energy_j
    total = sum(shares.values()) or 1.0
    rows = [(op, si(energy, "J", sig=3), f"{energy / total * 100:.1f}%")
            for op, energy in sorted(shares.items(), key=lambda kv: -kv[1])[:12]]
    notes = [f"  note: {w}" for w in pred.warnings]
    return (_prose(lines, width) + _share_table(rows, ("op", "energy", "share"), width)
            + _prose(notes, width))


def carbon_lines(carbon: dict[str, Any] | None) -> list[str]:
    """gCO2-eq per inference and per million inferences, with the intensity's source."""
    if carbon is None:
        return []
    head = f"  CO2-eq   at {carbon['g_per_kwh']:.4g} g/kWh ({carbon['source']}): "
    g = carbon.get("g_per_inference")
    if g is None:
        return [head + str(carbon.get("note") or "not estimated")]
    return [head + f"{grams(g)} per inference, "
            f"{grams(carbon['g_per_million_inferences'])} per million"]


def grams(g: float | None) -> str:
    """A mass of CO2-eq: ng … g, then kg and t (si() stops at the base unit)."""
    if g is not None and g >= 1e6:
        return f"{g / 1e6:.3g} t"
    if g is not None and g >= 1e3:
        return f"{g / 1e3:.3g} kg"
    return si(g, "g", sig=3)


def _map_cells(km: KeyModels) -> tuple[str, ...]:
    rt = km.runtime
    d = rt.diagnostics if rt is not None else {}
    r2 = d.get("r2")
    energy = "-" if km.energy_form is None else km.energy_form
    e_cv = km.energy.diagnostics.get("cv_rmspe") if km.energy is not None else None
    return (km.key, km.level, km.family, str(km.n_rows), rt.candidate if rt else "-",
            "-" if r2 is None else f"{r2:.3f}", _pct(d.get("rmspe")), _pct(d.get("cv_rmspe")),
            energy, _pct(e_cv))


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def render_theoretical(profile: Profile) -> str:
    """A theoretical profile: its source, memory pricing, and energy per operation."""
    from ..theoretical import energy_table

    t = energy_table(profile.theoretical or {})
    import textwrap

    lines = [f"profile   {profile.name}", f"kind      {t.label}, energy only (no runtime)",
             *textwrap.wrap(t.citation, 98, initial_indent="source    ",
                            subsequent_indent="          "),
             f"memory    SRAM {t.sram_j_per_byte * 1e12:.4g} pJ/B, DRAM "
             f"{t.dram_j_per_byte * 1e12:.4g} pJ/B; tensors over {si(t.cache_bytes, 'B')} "
             "from DRAM", "", "energy per operation (pJ)"]
    rows: list[Sequence[str]] = [("dtype", "add", "sub", "mul", "div", "root", "origin")]
    for key, row in t.per_op_j.items():
        rows.append((key, *(f"{row[op] * 1e12:.4g}" for op in ("add", "sub", "mul", "div",
                                                               "root")),
                     t.origin.get(key, "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i in (0, 6) else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    lines.append("sub = add; div and root = mul x their transistor ratio (data/transistors.json);")
    lines.append("p = significand bits; the rules: docs/energy.md")
    return "\n".join(lines) + "\n"


def render_profile(profile: Profile, top: int | None = None) -> str:
    """What a profile holds and how good each fitted map is."""
    if profile.theoretical is not None:
        return render_theoretical(profile)
    lines = [f"profile   {profile.name}", f"kind      {profile.kind}",
             f"for       provider {profile.provider or '?'}, {profile.threads or '?'} "
             f"thread(s), sensor {profile.sensor}, runner {profile.runner or '?'}"]
    hw = profile.hardware
    if hw:
        lines.append(f"machine   {hw.get('cpu_model') or '?'} ({hw.get('cpu_cores_usable') or '?'}"
                     f" cores), {hw.get('machine') or '?'}"
                     + (f", GPU {hw['gpu_name']}" if hw.get("gpu_name") else ""))
    lines.append(f"created   {profile.created or '?'}; confidence {profile.confidence:.0%}; "
                 f"session overhead {si(profile.session_overhead_s, 's', sig=3)}")
    if profile.speed_probe_s is not None:
        lines.append(f"speed     probe {si(profile.speed_probe_s, 's', sig=3)} per run "
                     f"({PROBE_KERNEL}, the median while calibrating)")
    fusion = profile.fusion
    observed = sum(1 for p in fusion.patterns if p.source == "observed")
    lines.append(f"fusion    {len(fusion.patterns)} pattern(s) ({observed} added from the "
                 "measured groups)"
                 if fusion.patterns else "fusion    none (each node is a kernel)")
    diag = profile.diagnostics
    if diag:
        lines.append(f"records   {diag.get('usable_rows', '?')} usable configurations of "
                     f"{diag.get('rows', '?')}; excluded: {diag.get('excluded_rows') or {}}")
    rows: list[Sequence[str]] = [("key", "level", "family", "rows", "runtime map", "R²",
                                  "RMSPE", "CV-RMSPE", "energy", "CV-RMSPE")]
    for km in list(profile.models.values())[:top]:
        rows.append(_map_cells(km))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines.append("")
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i < 5 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    return "\n".join(lines) + "\n"


#: ``--format`` name -> renderer of ``profiles show``.
PROFILE_RENDERERS: dict[str, Callable[..., str]] = {
    "table": lambda profile: render_profile(profile),
    "json": lambda profile: dumps(profile.to_dict(), pretty=True) + "\n",
}
