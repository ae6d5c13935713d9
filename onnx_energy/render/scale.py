"""Renderers of a scaling study: the curve per model with its power laws, and JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .json import dumps
from .units import si

if TYPE_CHECKING:
    from ..scale import ScaleStudy


def _q(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    return si(v, unit) if unit == "" else si(v, unit, sig=4)


def render_table(study: ScaleStudy) -> str:
    from ..scale import METRICS

    lines: list[str] = []
    p = study.profile or {}
    for c in study.curves:
        keys = [k for k in METRICS if any(v is not None for v in c.metrics[k])]
        lines.append(f"{c.model}: {c.dim} from {c.values[0]} to {c.values[-1]} "
                     f"({len(c.values)} points; profile {p.get('label') or p.get('name')})")
        rows: list[tuple[str, ...]] = [(c.dim, *(METRICS[k][0] for k in keys))]
        for i, v in enumerate(c.values):
            mark = "" if c.complete[i] else " (≥)"
            rows.append((f"{v}{mark}", *(_q(c.metrics[k][i], METRICS[k][1]) for k in keys)))
        widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
        for r in rows:
            lines.append("  " + "  ".join(x.rjust(w) for x, w in zip(r, widths, strict=True)))
        lines.append("  power law y = c · " + c.dim + "^k:")
        for k in METRICS:
            f = c.fits.get(k)
            if f is None:
                why = ("not predicted by this profile" if all(v is None for v in c.metrics[k])
                       else "fewer than two positive points")
                lines.append(f"    {METRICS[k][0]:8s} —  ({why})")
                continue
            r2 = "—" if f.r2 is None else f"{f.r2:.4f}"
            lines.append(f"    {METRICS[k][0]:8s} k = {f.exponent:.3f}  R² = {r2}  "
                         f"c = {_q(f.coefficient, METRICS[k][1])}")
        lines.append("")
    return "\n".join(lines)


#: ``--format`` name -> renderer of the whole output text (ending with a newline).
RENDERERS: dict[str, Callable[[ScaleStudy], str]] = {
    "table": render_table,
    "json": lambda study: dumps(study.to_dict(), pretty=True) + "\n",
}
