"""Renderers of a `Validation`: measured against predicted, per model and overall."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING

from .json import dumps
from .units import si

if TYPE_CHECKING:
    from ..validate import Scores, TargetResult, Validation

_UNITS = {"runtime": "s", "energy": "J"}


def _q(v: float | None, unit: str) -> str:
    return "—" if v is None else si(v, unit, sig=4)


def _err(t: TargetResult) -> str:
    e = t.error
    return "—" if e is None else f"{e * 100:+.1f}%"


def _interval(t: TargetResult, unit: str) -> str:
    if t.interval is None:
        return "—"
    mark = "" if t.inside is None else " ✓" if t.inside else " ✗"
    return f"{si(t.interval[0], unit, sig=3)} … {si(t.interval[1], unit, sig=3)}{mark}"


def _score(s: Scores) -> str:
    if s.n == 0:
        return f"— ({s.note})"
    r2 = "—" if s.r2 is None else f"{s.r2:.3f}"
    out = (f"MAPE {s.mape * 100:.1f}%, RMSPE {s.rmspe * 100:.1f}%, R² {r2} over {s.n} "  # type: ignore[operator]
           f"model(s); {s.inside} inside the interval")
    return out + (f" ({s.note})" if s.note and s.r2 is None else "")


def render_table(v: Validation) -> str:
    p = v.profile or {}
    st = v.settings
    lines = [f"validate: profile {p.get('label') or p.get('name')} ({p.get('kind')}); "
             f"measured on {st.get('provider')}, {st.get('threads')} thread(s), sensor "
             f"{', '.join(sorted({m.sensor for m in v.models})) or '?'}", ""]
    for key in ("runtime", "energy"):
        unit = _UNITS[key]
        rows: list[tuple[str, ...]] = [("model", f"measured {key}", "predicted", "error",
                                        "interval")]
        for m in v.models:
            t = getattr(m, key)
            rows.append((m.name, _q(t.measured, unit), _q(t.predicted, unit), _err(t),
                         _interval(t, unit)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            lines.append("  ".join(c.ljust(w) if i in (0, 4) else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                         .rstrip())
        notes = {getattr(m, key).note for m in v.models} - {None}
        for n in sorted(notes):
            lines.extend(textwrap.wrap(f"({key}: {n})", 98, initial_indent="  ",
                                       subsequent_indent="   "))
        lines.append(f"{key} overall: {_score(v.scores[key])}")
        if key == "runtime" and v.speed_probe is not None:
            lines.append(_drift(v))
        lines.append("")
    for m in v.models:
        if not m.by_op:
            continue
        lines.append(f"{m.name}: kernel time by op type (predicted vs measured per-node "
                     "profile)")
        rows = [("op", "predicted", "measured", "error")]
        for op, d in list(m.by_op.items())[:15]:
            pr, me = d["predicted_s"], d["measured_s"]
            err = f"{(pr / me - 1) * 100:+.0f}%" if me > 0 and pr > 0 else "—"
            rows.append((op, _q(pr or None, "s"), _q(me or None, "s"), err))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(r, widths,
                                                                         strict=True))))
        lines.append("")
    for w in dict.fromkeys(v.warnings):
        lines.append(f"note: {w}")
    return "\n".join(lines).rstrip("\n") + "\n"


def _drift(v: Validation) -> str:
    sp = v.speed_probe or {}
    adjusted = [e for e in (m.error_at_calibrated_speed for m in v.models) if e is not None]
    line = (f"speed probe: {si(sp['measured_s'], 's', sig=3)} per run now, "
            f"{si(sp['calibrated_s'], 's', sig=3)} while calibrating (×{sp['ratio']:.2f})")
    if adjusted:
        mape = sum(abs(e) for e in adjusted) / len(adjusted)
        line += f"; runtime MAPE at the calibrated speed {mape * 100:.1f}%"
    return line


#: ``--format`` name -> renderer of the whole output text (ending with a newline).
RENDERERS: dict[str, Callable[[Validation], str]] = {
    "table": render_table,
    "json": lambda v: dumps(v.to_dict(), pretty=True) + "\n",
}
