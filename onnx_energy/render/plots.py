"""PNG plots (matplotlib, the optional ``plot`` extra): validation scatter and per-op-type
breakdown, and scaling curves. Drawn off-screen (Agg); nothing is shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PlotError

if TYPE_CHECKING:
    from ..scale import ScaleStudy
    from ..validate import Validation

INSTALL_HINT = "--plot needs matplotlib: pip install 'onnx-energy[plot]'"


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or a one-line error saying how to install."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError(INSTALL_HINT) from None
    return plt


def _folder(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlotError(f"--plot {folder}: cannot create the folder ({exc.strerror or exc})"
                        ) from None
    return folder


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def _save(fig: Any, path: Path) -> Path:
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise PlotError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        fig.clf()
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


def validation_scatter(v: Validation, folder: Path, target: str = "runtime") -> Path | None:
    """Predicted against measured ``target`` per model, log-log, with the identity line and
    the prediction intervals as bars. None when no model has both."""
    plt = require_matplotlib()
    unit = {"runtime": "s", "energy": "J"}[target]
    pts = [(m.name, getattr(m, target)) for m in v.models]
    pts = [(n, t) for n, t in pts if t.measured is not None and t.predicted is not None]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    xs = [t.measured for _, t in pts]
    ys = [t.predicted for _, t in pts]
    lo = [t.predicted - t.interval[0] if t.interval else 0.0 for _, t in pts]
    hi = [t.interval[1] - t.predicted if t.interval else 0.0 for _, t in pts]
    ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", color="tab:blue", ecolor="tab:gray",
                capsize=4, label="predicted (interval bars)")
    for name, t in pts:
        ax.annotate(name, (t.measured, t.predicted), textcoords="offset points",
                    xytext=(6, 6), fontsize=8)
    ends = [x for x in xs + ys if x > 0]
    ends += [t.interval[0] for _, t in pts if t.interval and t.interval[0] > 0]
    ends += [t.interval[1] for _, t in pts if t.interval and t.interval[1] > 0]
    a, b = min(ends) / 1.5, max(ends) * 1.5
    ax.plot([a, b], [a, b], "--", color="black", linewidth=1, label="identity (exact)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(a, b)
    ax.set_ylim(a, b)
    ax.set_xlabel(f"measured {target} per inference ({unit})")
    ax.set_ylabel(f"predicted {target} per inference ({unit})")
    s = v.scores[target]
    extra = "" if s.mape is None else f": MAPE {s.mape * 100:.1f}%"
    p = v.profile or {}
    ax.set_title(f"{target}, predicted vs measured ({p.get('name')}){extra}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _save(fig, _folder(folder) / f"scatter-{target}.png")


def breakdown_bars(v: Validation, folder: Path, top: int = 12) -> list[Path]:
    """Per model, predicted and measured kernel time per op type as grouped bars."""
    plt = require_matplotlib()
    paths = []
    for m in v.models:
        ops = list(m.by_op.items())[:top]
        if not ops:
            continue
        fig, ax = plt.subplots(figsize=(max(6.4, 0.75 * len(ops) + 2), 4.8))
        idx = list(range(len(ops)))
        width = 0.4
        pred = [d["predicted_s"] * 1e3 for _, d in ops]
        meas = [d["measured_s"] * 1e3 for _, d in ops]
        ax.bar([i - width / 2 for i in idx], pred, width, label="predicted", color="tab:blue")
        ax.bar([i + width / 2 for i in idx], meas, width, label="measured (per-node profile)",
               color="tab:orange")
        ax.set_xticks(idx)
        ax.set_xticklabels([op for op, _ in ops], rotation=30, ha="right", fontsize=8)
        positive = [x for x in pred + meas if x > 0]
        if positive and max(positive) / min(positive) > 100:  # small ops stay visible
            ax.set_yscale("log")
            ax.set_ylabel("kernel time per inference (ms, log scale)")
        else:
            ax.set_ylabel("kernel time per inference (ms)")
        ax.set_title(f"{m.name}: time by op type, predicted vs measured", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        fig.tight_layout()
        paths.append(_save(fig, _folder(folder) / f"breakdown-{_slug(m.name)}.png"))
    return paths


def _data_ticks(ax: Any, values: list[int]) -> None:
    """Label the x axis at the swept values (log axes otherwise crowd minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    step = max(1, len(values) // 8)
    ax.xaxis.set_major_locator(FixedLocator(values[::step]))
    ax.xaxis.set_major_formatter(lambda x, _pos: f"{x:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def scale_plot(study: ScaleStudy, folder: Path) -> Path:
    """The scaling curves (log-log), one panel per metric, with the fitted power laws."""
    from ..scale import METRICS

    plt = require_matplotlib()
    keys = [k for k in METRICS if any(any(v is not None for v in c.metrics[k])
                                      for c in study.curves)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 4.0), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        label, unit = METRICS[key]
        for c in study.curves:
            pts = [(x, y) for x, y in zip(c.values, c.metrics[key], strict=True)
                   if y is not None and x > 0 and y > 0]
            if not pts:
                continue
            line = ax.plot([x for x, _ in pts], [y for _, y in pts], "o",
                           label=_slug(Path(c.model).stem))[0]
            fit = c.fits.get(key)
            if fit is not None:
                xs = [pts[0][0], pts[-1][0]]
                r2 = "—" if fit.r2 is None else f"{fit.r2:.3f}"
                ax.plot(xs, [fit(x) for x in xs], "-", color=line.get_color(),
                        label=f"  k = {fit.exponent:.2f}, R² = {r2}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _data_ticks(ax, sorted({x for c in study.curves for x in c.values if x > 0}))
        ax.set_xlabel(study.dim)
        ax.set_ylabel(f"{label} ({unit})" if unit else label)
        ax.set_title(f"{label} vs {study.dim}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, _folder(folder) / f"scale-{_slug(study.dim)}.png")
