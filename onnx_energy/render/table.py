"""Text tables that fit a width: built from column definitions, long cells shortened in the
middle, and, only when shortening is not enough, the most expendable columns left out (the
caller is told which, to say so).

A `Column` is a header, a cell function of the row, an alignment and a width policy; a
table is a list of them, so a module can add a column without touching the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")

ELLIPSIS = "…"


def fit(text: str, width: int) -> str:
    """A title or note line cut to ``width`` (in the middle), for lines outside tables."""
    return middle(text, width)


def middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by replacing its middle with an ellipsis; the end
    keeps a little more (the leaf of a node name, the file of a path say the most)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) * 2 // 5
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + text[len(text) - tail:]


def name(text: str, width: int) -> str:
    """A ``/``-separated node name cut to ``width`` by leaving out whole segments (never
    the last), keeping those with indices (layer and block numbers) first, then as much as
    fits: ``model/layers.0/mlp/gate_proj/MatMul`` -> ``…/layers.0/mlp/gate_proj/MatMul``.
    A cut must keep a segment besides the leaf; names where it cannot are cut in the
    middle."""
    if len(text) <= width:
        return text
    segments = text.split("/")
    best: tuple[int, int, int] | None = None
    best_text = ""
    for i in range(len(segments) - 1):
        for j in range(i, len(segments) - 1):
            kept = segments[:i] + [ELLIPSIS] + segments[j + 1:]
            candidate = "/".join(kept)
            if len(candidate) > width or len(kept) < 3:  # the leaf alone says too little
                continue
            score = (_indices(kept), len(candidate), -i)
            if best is None or score > best:
                best, best_text = score, candidate
    return best_text if best is not None else middle(text, width)


def _indices(segments: Sequence[str]) -> int:
    """Segments carrying an index (a digit), not counting one that the next segment repeats
    (``features.1`` before ``features.1.0``)."""
    return sum(1 for k, s in enumerate(segments)
               if any(c.isdigit() for c in s)
               and not (k + 1 < len(segments) and segments[k + 1].startswith(s)))


def common_prefix(names: Sequence[str], sep: str = "/") -> str:
    """The longest prefix, ending with ``sep``, that every name has beyond it (``""``
    when there is none or only one name)."""
    if len(names) < 2:
        return ""
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    cut = first.rfind(sep, 0, n) + 1
    prefix = first[:cut]
    return prefix if prefix and all(len(x) > len(prefix) for x in names) else ""


def shape(text: str, width: int) -> str:
    """A shape like ``1x12x128x64`` cut to ``width`` at dim boundaries, keeping the first and
    the last dims (``1x…x64``); cut in the middle when even that is too long."""
    if len(text) <= width:
        return text
    dims = text.split("x")
    head, tail = dims[:1], dims[1:]
    while tail:
        candidate = "x".join([*head, ELLIPSIS, *tail])
        if len(candidate) <= width:
            return candidate
        tail = tail[1:]
    return middle(text, width)


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column: ``cell`` renders a row's value.

    ``shrink`` shortens a cell to a width (None: the column never shrinks) down to
    ``min_width``, columns of a lower ``order`` first; ``drop`` > 0 lets the column be left
    out when the table does not fit even shrunk, higher numbers first; ``sub`` is an
    optional second header line (a phase, a precision); ``gap`` is the spaces before the
    column (1 ties a share to its value); ``group`` drops columns together (a value and its
    share).
    """

    header: str
    cell: Callable[[R], str]
    align: str = "right"
    shrink: Callable[[str, int], str] | None = None
    min_width: int = 0
    drop: int = 0
    sub: str = ""
    gap: int = 2
    group: str = ""
    order: int = 0


@dataclass
class Table:
    lines: list[str]
    #: Headers of the columns left out to fit the width.
    dropped: list[str]


def layout(columns: Sequence[Column[R]], rows: Sequence[R], width: int) -> Table:
    """Render ``rows`` under ``columns`` in at most ``width`` characters where possible."""
    cols = list(columns)
    cells = {id(c): [c.cell(r) for r in rows] for c in cols}
    dropped: list[str] = []
    while True:
        widths = [_natural(c, cells[id(c)]) for c in cols]
        _shrink(cols, widths, width)
        if _total(cols, widths) <= width:
            break
        victims = [c for c in cols if c.drop > 0]
        if not victims:
            break
        worst = max(victims, key=lambda c: c.drop)
        group = worst.group or str(id(worst))
        gone = [c for c in cols if (c.group or str(id(c))) == group]
        dropped.append(" ".join(c.header for c in gone if c.header != "%") or worst.header)
        cols = [c for c in cols if c not in gone]
    has_sub = any(c.sub for c in cols)
    header_rows = [[c.header for c in cols]] + ([[c.sub for c in cols]] if has_sub else [])
    lines = [_line(cols, widths, texts) for texts in header_rows]
    for i in range(len(rows)):
        lines.append(_line(cols, widths, [cells[id(c)][i] for c in cols]))
    return Table(lines, dropped)


def _natural(c: Column[R], cells: list[str]) -> int:
    return max([len(c.header), len(c.sub), *(len(x) for x in cells)])


def _total(cols: Sequence[Column[R]], widths: Sequence[int]) -> int:
    return sum(widths) + sum(c.gap for c in cols[1:])


def _shrink(cols: Sequence[Column[R]], widths: list[int], width: int) -> None:
    """Narrow shrinkable columns until the table fits: by ``order``, and within an order the
    one with the most to spare first."""
    excess = _total(cols, widths) - width
    while excess > 0:
        spare = [(-c.order, widths[i] - max(c.min_width, len(c.header), len(c.sub)), i)
                 for i, c in enumerate(cols) if c.shrink is not None]
        spare = [x for x in spare if x[1] > 0]
        if not spare:
            return
        _, _, i = max(spare)
        widths[i] -= 1
        excess -= 1


def _line(cols: Sequence[Column[R]], widths: Sequence[int], texts: Sequence[str]) -> str:
    parts = []
    for k, (c, w, text) in enumerate(zip(cols, widths, texts, strict=True)):
        if len(text) > w:
            text = c.shrink(text, w) if c.shrink is not None else text
        cell = text.ljust(w) if c.align == "left" else text.rjust(w)
        parts.append((" " * c.gap if k else "") + cell)
    return "".join(parts).rstrip()
