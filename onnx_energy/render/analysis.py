"""Renderers of an `Analysis`: a readable table, JSON (SI units, stable keys) and CSV.

The table fits a width (`TableOptions.width`): a header, notes on what was assumed or not
counted, the summary per op type with each metric's share of the total, then the costliest
nodes, then the split by phase. Both tables are built from `METRICS`, a list of metric
definitions (header, value of a node or of a sum for a phase, unit, share column or not, how
expendable it is when space runs out): a module adding a metric (predicted time, energy)
calls `add_metric`, and the summary, the node table and ``--sort`` all gain it.
"""

from __future__ import annotations

import csv
import io
import re
import shlex
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..analysis import (
    WORK_FIELDS,
    Analysis,
    NodeResult,
    OpTypeSummary,
    Totals,
    Work,
    phase_work,
)
from ..gcpause import gc_paused
from ..ops.registry import BOP_NAMES
from ..passes.results import Status, op_key
from .json import dumps
from .prediction import carbon_lines, prediction_lines
from .table import Column, common_prefix, fit, layout, middle, name, shape
from .units import share, si


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
    """CSV_COLUMNS (the forward), then native_dtype and TOs; training adds, per phase
    (backward, loss, total), ``PHASE_macs``, ``PHASE_flops``, ``PHASE_bytes_read``,
    ``PHASE_bytes_written``, ``PHASE_add`` ... ``PHASE_root`` and ``tos_COL_PHASE``."""
    cols = (*CSV_COLUMNS, "native_dtype", *(f"tos_{c}" for c in _tos_columns(analysis)))
    if analysis.phase == "training":
        for phase in ("backward", "loss", "total"):
            cols += (*(f"{phase}_{w}" for w in WORK_FIELDS),
                     *(f"{phase}_{b}" for b in BOP_NAMES),
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
    training = analysis.phase == "training"
    cells: list[object] = [_cell(None if low is None else low.native_dtype),
                           *(_cell(None if low is None else (low.tos or {}).get(c))
                             for c in tos_cols)]
    if training:
        for phase in ("backward", "loss", "total"):
            cells += [_cell(v) for v in phase_work(n, phase).fields()]
            bops = tos = None
            if low is not None:
                bops, tos = {"backward": (low.backward, low.tos_backward),
                             "loss": (low.loss, low.tos_loss),
                             "total": (low.total, low.tos_total)}[phase]
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


# ------------------------------------------------------------------------------- the table

#: A node, an op type's sums or the totals: every metric reads all three.
Item = NodeResult | OpTypeSummary | Totals

DEFAULT_TOP = 20
DEFAULT_WIDTH = 100
NODE_VIEWS = ("top", "all", "none")
LOWER = "≥ "


@dataclass(frozen=True)
class Metric:
    """A quantity the table shows for nodes, op types and the totals.

    ``value(analysis, item, phase)`` is the number (None when unknown) for ``phase``
    (``forward``, ``backward``, ``loss`` or ``total``; without training ``total`` is the
    forward); ``share`` adds a column with its fraction of the total in the summary;
    ``drop`` > 0 lets the metric be left out when the table does not fit the width, higher
    first; ``phased`` labels it with its phase in training; ``sub`` is a fixed second
    header line (the TOs precision).
    """

    key: str
    header: str
    value: Callable[[Analysis, Item, str], float | None]
    unit: str = ""
    share: bool = False
    drop: int = 0
    phased: bool = True
    sub: Callable[[Analysis], str] | None = None


def _bytes(_a: Analysis, item: Item, phase: str) -> int | None:
    w = phase_work(item, phase)
    return None if w.bytes_read is None or w.bytes_written is None else (
        w.bytes_read + w.bytes_written)


METRICS: list[Metric] = [
    Metric("macs", "MACs", lambda _a, x, p: phase_work(x, p).macs, share=True),
    Metric("flops", "FLOPs", lambda _a, x, p: phase_work(x, p).flops, share=True, drop=3),
    Metric("bytes", "bytes", _bytes, unit="B", share=True, drop=4),
    Metric("params", "params", lambda _a, x, _p: x.params, phased=False, drop=5),
    Metric("tos", "TOs", lambda a, x, p: a.tos_column(x.lowered, p), drop=6,
           sub=lambda a: a.precision),
]


def add_metric(metric: Metric, *, before: str | None = None) -> None:
    """Add a metric to the tables (and to ``--sort``), before the one keyed ``before`` or
    last; a metric of the same key is replaced."""
    keys = [m.key for m in METRICS]
    if metric.key in keys:
        METRICS[keys.index(metric.key)] = metric
        return
    at = keys.index(before) if before in keys else len(METRICS)
    METRICS.insert(at, metric)


def sort_keys() -> tuple[str, ...]:
    """What ``--sort`` accepts: every metric's key."""
    return tuple(m.key for m in METRICS)


@dataclass(frozen=True)
class TableOptions:
    """What the table shows: ``nodes`` ``top`` (the ``top`` costliest), ``all`` (graph
    order unless ``sort`` is given) or ``none``; ``sort`` a metric key (default MACs);
    ``show_movement`` lists zero-cost data movement instead of folding it into one row;
    ``width`` in characters."""

    top: int = DEFAULT_TOP
    nodes: str = "top"
    sort: str | None = None
    show_movement: bool = False
    width: int = DEFAULT_WIDTH


@dataclass
class _Row:
    """A table row: a label (op type, node name, "total"), its item and which metrics are
    lower bounds there."""

    label: str
    item: Item
    count: str = ""
    op: str = ""
    shape: str = ""
    #: Metrics some node left unknown here (the sum is a lower bound) ...
    lower: set[str] = field(default_factory=set)
    #: ... and, of those, the ones no node knew at all (the sum says nothing: "?").
    unknown: set[str] = field(default_factory=set)


#: The phase the summary and node tables show: the whole step in training, else the forward.
TABLE_PHASE = "total"


def _value(analysis: Analysis, metric: Metric, item: Item) -> float | None:
    return metric.value(analysis, item, TABLE_PHASE)


def _movement(analysis: Analysis, n: NodeResult) -> bool:
    """Zero-cost data movement: a movement op that computes nothing (it still moves bytes)."""
    if n.kind != "movement":
        return False
    w = phase_work(n, TABLE_PHASE)
    return w.macs == 0 and w.flops == 0


def _metric_columns(analysis: Analysis, with_shares: bool,
                    totals: Totals) -> list[Column[_Row]]:
    cols: list[Column[_Row]] = []
    for m in METRICS:
        header, sub = _headers(analysis, m)

        def cell(r: _Row, m: Metric = m) -> str:
            v = _value(analysis, m, r.item)
            if v is None or m.key in r.unknown:
                return "?"
            text = si(v, m.unit, compact=True)
            return LOWER + text if m.key in r.lower else text

        cols.append(Column(header, cell, drop=m.drop, sub=sub, group=m.key))
        if with_shares and m.share:
            total = _value(analysis, m, totals)

            def pct(r: _Row, m: Metric = m, total: float | None = total) -> str:
                v = _value(analysis, m, r.item)
                if v is None or not total or m.key in r.unknown:
                    return ""
                return share(v / total)

            cols.append(Column("%", pct, gap=1, drop=m.drop, group=m.key))
    return cols


def _headers(analysis: Analysis, m: Metric) -> tuple[str, str]:
    """A metric's header and second header line: the phase label in training (``train``),
    its fixed label (the TOs precision) beside the name otherwise."""
    fixed = m.sub(analysis) if m.sub is not None else ""
    if analysis.phase == "training" and m.phased:
        return m.header, f"{fixed} train".strip()
    return f"{m.header} {fixed}".strip(), ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _title(text: str, hint: str, width: int) -> str:
    """A table title, with its hint in parentheses where the width leaves room."""
    full = f"{text} ({hint})" if hint else text
    return full if len(full) <= width else fit(text, width)


def _gaps(analysis: Analysis) -> Callable[[Sequence[str]], tuple[set[str], set[str]]]:
    """A function of op keys (all: ``()``) giving the metrics some of their nodes left
    unknown, and those none of them knew; the nodes are read once."""
    unknown: dict[str, set[str]] = {}
    known: dict[str, set[str]] = {}
    for n in analysis.nodes:
        key = op_key(n.domain, n.op_type)
        for m in METRICS:
            side = known if _value(analysis, m, n) is not None else unknown
            side.setdefault(key, set()).add(m.key)

    def of(keys: Sequence[str]) -> tuple[set[str], set[str]]:
        group = keys or list({*unknown, *known})
        lower = set().union(*(unknown.get(k, set()) for k in group))
        seen = set().union(*(known.get(k, set()) for k in group))
        return lower, lower - seen

    return of


def _row(label: str, item: Item, count: int, gaps: tuple[set[str], set[str]]) -> _Row:
    return _Row(label, item, str(count), lower=gaps[0], unknown=gaps[1])


def _merge(parts: Sequence[OpTypeSummary]) -> OpTypeSummary:
    """The sums of several op types (the folded data-movement row)."""
    out = OpTypeSummary()
    lowered = None
    for s in parts:
        out.count += s.count
        out.macs += s.macs
        out.flops += s.flops
        out.params += s.params
        out.bytes_read += s.bytes_read
        out.bytes_written += s.bytes_written
        out.bops = out.bops + s.bops
        out.complete = out.complete and s.complete
        lowered = s.lowered if lowered is None else lowered + s.lowered
        if s.backward is not None:
            out.backward = (out.backward or Work()).plus_known(s.backward)
            out.loss = (out.loss or Work()).plus_known(s.loss or Work())
    if lowered is not None:
        out.lowered = lowered
    return out


def _sort_metric(options: TableOptions) -> Metric:
    key = options.sort or "macs"
    for m in METRICS:
        if m.key == key:
            return m
    raise ValueError(f"unknown sort key {key!r}; choose from {', '.join(sort_keys())}")


def _order(analysis: Analysis, metric: Metric) -> Callable[[Item], tuple[float, ...]]:
    """Sort key: the metric descending (unknown last), then MACs and FLOPs."""

    def key(item: Item) -> tuple[float, ...]:
        v = _value(analysis, metric, item)
        w = phase_work(item, TABLE_PHASE)
        return (v is not None, v or 0, w.macs or 0, w.flops or 0)

    return key


def summary_lines(analysis: Analysis, options: TableOptions) -> tuple[list[str], list[str]]:
    """The per-op-type table with shares, ending with the totals; and the columns dropped."""
    metric = _sort_metric(options)
    gaps = _gaps(analysis)
    by_key: dict[str, list[NodeResult]] = {}
    for n in analysis.nodes:
        by_key.setdefault(op_key(n.domain, n.op_type), []).append(n)
    movement = [] if options.show_movement else [
        k for k, nodes in by_key.items() if all(_movement(analysis, n) for n in nodes)]
    if len(movement) < 2:  # one op type is its own row: nothing to fold
        movement = []
    rows = [_row(k, s, s.count, gaps([k]))
            for k, s in analysis.by_op_type.items() if k not in movement]
    rows.sort(key=lambda r: _order(analysis, metric)(r.item), reverse=True)
    if movement:
        merged = _merge([analysis.by_op_type[k] for k in movement])
        rows.append(_row("data movement", merged, merged.count, gaps(movement)))
    rows.append(_row("total", analysis.totals, len(analysis.nodes), gaps(())))
    cols: list[Column[_Row]] = [
        Column("op type", lambda r: r.label, align="left", shrink=middle, min_width=14),
        Column("nodes", lambda r: r.count),
        *_metric_columns(analysis, True, analysis.totals),
    ]
    table = layout(cols, rows, options.width)
    share_of = "the counted total" if not analysis.totals.complete else "the total"
    title = _title(f"by op type: {_plural(len(analysis.nodes), 'node')}, "
                   f"{_plural(len(analysis.by_op_type), 'op type')}, % of {share_of}",
                   f"data movement: {_plural(len(movement), 'op type')}, --show-movement"
                   if movement else "", options.width)
    return [title, *_caption(analysis), *table.lines], table.dropped


def node_lines(analysis: Analysis, options: TableOptions) -> tuple[list[str], list[str]]:
    """The costliest nodes (or every node), with the columns dropped to fit."""
    if options.nodes == "none":
        return [], []
    metric = _sort_metric(options)
    shown = [n for n in analysis.nodes if options.show_movement or not _movement(analysis, n)]
    hidden = len(analysis.nodes) - len(shown)
    if options.nodes == "all":
        if options.sort is not None:
            shown = sorted(shown, key=_order(analysis, metric), reverse=True)
        text = (f"all {_plural(len(shown), 'node')}"
                + (f" by {metric.header}" if options.sort else " in graph order"))
        hint = ""
    else:
        shown = sorted(shown, key=_order(analysis, metric), reverse=True)[:options.top]
        text = f"top {_plural(len(shown), 'node')} by {metric.header}"
        hint = "--top N, --nodes all, --sort KEY"
    if hidden:
        text += f", {hidden} zero-cost movement hidden"
        hint = "--show-movement"
    title = _title(text, hint, options.width)
    names = [n.name or "(unnamed)" for n in shown]
    prefix = common_prefix(names)
    rows = [_Row(name[len(prefix):], n, op=_op_label(n), shape=_shape_text(n))
            for name, n in zip(names, shown, strict=True)]
    cols: list[Column[_Row]] = [
        Column("node", lambda r: r.label, align="left", shrink=name, min_width=16),
        Column("op", lambda r: r.op, align="left", shrink=middle, min_width=10, order=2),
        Column("output", lambda r: r.shape, align="left", shrink=shape, min_width=12, order=1),
        *_metric_columns(analysis, False, analysis.totals),
    ]
    table = layout(cols, rows, options.width)
    caption = [fit(f"node names below {prefix}", options.width)] if len(prefix) > 1 else []
    return [title, *_caption(analysis), *caption, *table.lines], table.dropped


def _op_label(n: NodeResult) -> str:
    label = op_key(n.domain, n.op_type)
    if n.status == Status.UNSUPPORTED:
        return label + " (no rule)"
    return label


def memory_lines(analysis: Analysis) -> list[str]:
    """The peak of the activation memory plan (docs/memory.md)."""
    t = analysis.totals
    if t.peak_activation_bytes is None:
        return []
    bound = "" if t.peak_activation_complete else "at least "
    where = f" at {t.peak_activation_node}" if t.peak_activation_node else ""
    peak = si(t.peak_activation_bytes, "B", compact=True)
    return [f"peak activation memory: {bound}{peak}{where} (liveness plan, weights apart)"]


def _caption(analysis: Analysis) -> list[str]:
    if analysis.phase == "training":
        return [f"train = one training step: forward + backward + loss ({analysis.loss})"]
    return []


def header_lines(analysis: Analysis, width: int) -> list[str]:
    """What was analysed, with which bindings and settings, and what was assumed."""

    lines = [f"{'model':<{LABEL}} {middle(analysis.model, max(width - LABEL - 1, 20))}"]
    inputs = [f"{t.name}[{'x'.join(str(d) for d in t.shape) if t.shape is not None else '?'}]"
              f" {t.dtype}" for t in analysis.inputs]
    lines.append(f"{'inputs':<{LABEL}} {_fit_list(inputs, width - LABEL - 1)}")
    if analysis.bindings:
        lines += labelled("bound", ", ".join(f"{k}={v}" for k, v in analysis.bindings.items()),
                          width)
    if analysis.defaulted:
        dims = ", ".join(f"'{d}'" if d != "?" else "(unnamed)" for d in analysis.defaulted_dims)
        lines += labelled("batch", f"{analysis.defaulted['batch']}, assumed: the inputs' leading "
                                   f"dim {dims} was unbound (--batch-size N sets it)", width)
    settings = f"convention {analysis.convention}, phase {analysis.phase}"
    if analysis.phase == "training":
        settings += f" (loss {analysis.loss})"
    table = analysis.transistor_table
    settings += (f", TOs at {analysis.precision}"
                 f" (transistor table {'default' if table is None else table.source})")
    lines += labelled("counting", settings, width)
    return lines


#: Width of the labels of the header lines ("model", "inputs", "note", ...).
LABEL = 9


def labelled(label: str, text: str, width: int) -> list[str]:
    """``label`` then ``text`` wrapped to ``width`` under a hanging indent; an option and its
    value (``--dim seq=N``) stay on one line."""
    glued = re.sub(r"(--[\w-]+) (?=\S)", lambda m: m.group(1) + NBSP, text)
    lines = textwrap.wrap(glued, width, initial_indent=f"{label:<{LABEL}} ",
                          subsequent_indent=" " * (LABEL + 1), break_on_hyphens=False,
                          break_long_words=True)
    return [line.replace(NBSP, " ") for line in lines]


NBSP = "\u00a0"


def _fit_list(items: Sequence[str], width: int) -> str:
    """Comma-joined items, as many as fit, then how many more."""
    out: list[str] = []
    for i, item in enumerate(items):
        rest = len(items) - i - 1
        more = f", … (+{rest} more)" if rest else ""
        candidate = ", ".join([*out, item])
        if len(candidate + more) > width and out:
            return ", ".join(out) + f", … (+{len(items) - i} more)"
        out.append(item)
    return ", ".join(out)


def bind_flags(analysis: Analysis) -> list[str]:
    """The exact options that would make the unknown shapes known."""
    inputs = [t.shape or () for t in analysis.inputs]
    leading = {s[0] for s in inputs if s and isinstance(s[0], str)}
    further = {d for s in inputs for d in s[1:] if isinstance(d, str)}
    flags: list[str] = []
    if any(d in leading and d not in further for d in analysis.unbound_dims):
        flags.append("--batch-size N")
    flags += [f"--dim {shlex.quote(d + '=N')}" for d in analysis.unbound_dims
              if not (d in leading and d not in further)]
    for t in analysis.inputs:  # inputs whose dims have no name: only --input sets them
        if t.name in analysis.anonymous_inputs and t.shape is not None:
            dims = "x".join("N" if not isinstance(d, int) else str(d) for d in t.shape)
            flags.append(f"--input {shlex.quote(f'{t.name}={dims}')}")
    if any("--loop-trips" in u.reason for u in analysis.unresolved):
        flags.append("--loop-trips N")
    return flags


def _uncounted(analysis: Analysis) -> int:
    """Nodes not fully counted: no rule, unresolved, or (training) an unknown phase."""
    return sum(1 for n in analysis.nodes
               if n.status != Status.OK
               or (n.backward is not None and not (n.backward.known
                                                   and (n.loss is None or n.loss.known))))


def gap_lines(analysis: Analysis, width: int = DEFAULT_WIDTH) -> list[str]:
    """What was not counted, unknowns and the options to bind them first: the first line
    stands alone (stderr of JSON/CSV prefixes it), the rest are indented details that fit
    ``width``."""
    if analysis.totals.complete:
        return []
    flags = bind_flags(analysis)
    first = (f"totals are lower bounds: {_uncounted(analysis)} of {len(analysis.nodes)} nodes "
             "not counted")
    if flags:
        first += "; bind with: " + " ".join(flags)
    out = [first]
    if analysis.unresolved:
        head = f"  unresolved shapes, {len(analysis.unresolved)} node(s): "
        out.append(head + _fit_list([f"{u.node or '(unnamed)'} ({u.op_type})"
                                     for u in analysis.unresolved], width - len(head)))
    if analysis.unsupported:
        head = "  no cost rule: "
        out.append(head + _fit_list([f"{op} x{n}" for op, n in
                                     sorted(analysis.unsupported.items())], width - len(head)))
    unknown_phase = sum(1 for n in analysis.nodes if n.status == Status.OK
                        and n.backward is not None and not n.backward.known)
    if unknown_phase:
        out.append(f"  backward not known: {unknown_phase} node(s)")
    return out


def phase_lines(analysis: Analysis, width: int) -> list[str]:
    """Work by phase (training) and the basic and transistor operations."""
    low = analysis.totals.lowered
    table = analysis.transistor_table
    source = "default" if table is None else table.source
    native = low.native_dtype or "-"
    lines: list[str] = []
    training = analysis.phase == "training"
    phases = ["forward", "backward", "loss", "total"] if training else ["forward"]
    lower = {p: {m.key for m in METRICS for n in analysis.nodes
                 if m.value(analysis, n, p) is None} for p in phases}

    def label(p: str) -> str:
        return f"loss ({analysis.loss})" if p == "loss" else p

    if training:
        metrics = [m for m in METRICS if m.phased]
        cols: list[Column[str]] = [Column("phase", label, align="left")]
        for m in metrics:
            def cell(p: str, m: Metric = m) -> str:
                v = m.value(analysis, analysis.totals, p)
                mark = LOWER if m.key in lower[p] and v is not None else ""
                return mark + si(v, m.unit, compact=True)

            fixed = m.sub(analysis) if m.sub is not None else ""
            cols.append(Column(f"{m.header} {fixed}".strip(), cell, drop=m.drop))
        lines.extend(wrap(f"by phase (one training step, loss {analysis.loss})", width))
        lines.extend(layout(cols, phases, width).lines)
        lines.append("")
    lines.extend(wrap(f"basic operations ({analysis.phase}; native dtype: {native}; "
                      f"transistor table: {source})", width))
    parts = {"forward": low.forward, "backward": low.backward, "loss": low.loss,
             "total": low.total}

    def bop(name: str) -> Callable[[str], str]:
        def cell(p: str) -> str:
            bops = parts[p]
            mark = LOWER if "tos" in lower[p] else ""
            return mark + si(None if bops is None else getattr(bops, name), compact=True)

        return cell

    def tos(p: str) -> str:
        mark = LOWER if "tos" in lower[p] else ""
        return mark + si(analysis.tos_column(low, p), compact=True)

    bop_cols: list[Column[str]] = [Column("phase", label, align="left"),
                                   *(Column(b, bop(b)) for b in BOP_NAMES),
                                   Column(f"TOs {analysis.precision}", tos, drop=1)]
    lines.extend(layout(bop_cols, phases, width).lines)
    return lines


def wrap(text: str, width: int) -> list[str]:
    """A line of prose wrapped to ``width``, continued under a two-space indent."""
    return textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False)


@gc_paused()
def render_table(analysis: Analysis, options: TableOptions | None = None) -> str:
    """The report as text at most ``options.width`` wide (where the names allow)."""
    options = options or TableOptions()
    width = options.width
    lines = header_lines(analysis, width)
    gaps = gap_lines(analysis, width)
    if gaps:
        lines += labelled("note", gaps[0].replace("lower bounds", f"lower bounds ({LOWER}…)", 1),
                          width)
    lines.append("")
    summary, dropped = summary_lines(analysis, options)
    lines.extend(summary)
    nodes, dropped_nodes = node_lines(analysis, options)
    if nodes:
        lines.append("")
        lines.extend(nodes)
    lines.append("")
    lines.extend(phase_lines(analysis, width))
    if analysis.phase != "training":
        t = analysis.totals
        mark = LOWER if not t.complete else ""
        lines.append("")
        read, written = (si(b, "B", compact=True) for b in (t.bytes_read, t.bytes_written))
        lines.extend(wrap(f"memory traffic: {mark}{read} read, {mark}{written} written "
                          "(tensor sizes, per inference)", width))
    for line in memory_lines(analysis):
        lines.extend(wrap(line, width))
    if analysis.prediction is not None:
        lines.append("")
        lines.extend(prediction_lines(analysis, width))
    for line in carbon_lines(analysis.carbon):
        lines.extend(wrap(line, width))
    if len(gaps) > 1:
        lines.append("")
        lines.append("not counted:")
        lines.extend(gaps[1:])
    left_out = list(dict.fromkeys([*dropped, *dropped_nodes]))
    if left_out:
        lines.append("")
        lines.extend(wrap(f"(not shown at {width} columns: {', '.join(left_out)}; a wider "
                          "terminal, COLUMNS=N, or --format csv shows every column)", width))
    return "\n".join(lines) + "\n"


#: ``--format`` name -> renderer of the whole output text (ending with a newline). The
#: table options shape the table only: JSON and CSV always hold every node, in graph order.
RENDERERS: dict[str, Callable[[Analysis, TableOptions], str]] = {
    "table": render_table,
    "json": lambda analysis, _options: render_json(analysis) + "\n",
    "csv": lambda analysis, _options: render_csv(analysis),
}
