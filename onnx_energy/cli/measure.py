"""`onnx-energy measure`: runtime and energy of a model with onnxruntime and a real sensor."""

from __future__ import annotations

import json

import click

from ..measure.measurement import Measurement, measure
from ..measure.sensors import SENSOR_CHOICES
from .options import ProgressLine, dim_options, format_option, model_argument


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    mag = abs(value)
    for factor, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")):
        if mag >= factor or factor == 1e-9:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"  # pragma: no cover


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def render_table(m: Measurement, top: int) -> str:
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
                 f"windows, CV {_pct(m.runtime_cv)}, iterations {its}{failed})")
    if m.energy_j is None:
        lines.append(f"energy    {m.energy_note or 'not measured'}")
    else:
        dyn = (f", dynamic {_si(m.energy_dynamic_j, 'J')} above idle"
               if m.energy_dynamic_j is not None else "")
        lines.append(f"energy    {_si(m.energy_j, 'J')} per inference{dyn} "
                     f"(CV {_pct(m.energy_cv)})")
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
        if m.nodes_time_s is not None and m.runtime_s:
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


@click.command("measure")
@model_argument
@dim_options
@click.option("--provider", type=click.Choice(["cpu", "cuda"]), default="cpu",
              show_default=True, help="onnxruntime execution provider.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Intra-op threads (1 gives the most stable numbers; recorded).")
@click.option("--sensor", type=click.Choice(SENSOR_CHOICES), default="auto", show_default=True,
              help="Energy sensor; auto picks the best real one (nvml for cuda, rapl for cpu).")
@click.option("--min-window", type=click.FloatRange(min=0, min_open=True), default=2.0,
              show_default=True, help="Each window loops inferences for at least this many "
                                      "seconds.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Number of windows.")
@click.option("--warmup", type=click.IntRange(min=1), default=10, show_default=True,
              help="Warm-up runs before the windows (stops early after --min-window seconds).")
@click.option("--idle", type=click.FloatRange(min=0), default=None,
              help="Idle-baseline seconds before the run [default: --min-window; 0 skips it].")
@click.option("--per-node", is_flag=True, help="Profile per-node (and fused-group) runtimes.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Table: how many nodes to show with --per-node.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Append one JSON record per window to this file (JSON lines).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--device", type=click.IntRange(min=0), default=0, show_default=True,
              help="CUDA device id.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line on stderr.")
@format_option("table", "json")
def measure_command(model: str, dims: dict[str, int], batch_size: int | None, provider: str,
                    threads: int, sensor: str, min_window: float, repeats: int, warmup: int,
                    idle: float | None, per_node: bool, top: int, out: str | None, seed: int,
                    device: int, quiet: bool, fmt: str) -> None:
    """Measure runtime and energy per inference of MODEL with onnxruntime.

    Energy comes only from a real sensor (RAPL, NVML; codecarbon when asked, labelled an
    estimate when it falls back to a TDP model); without one, energy is reported as not
    measured, and why.
    """
    line = ProgressLine("measuring", enabled=not quiet)
    try:
        result = measure(model, provider=provider, threads=threads, dims=dims,
                         batch_size=batch_size, sensor=sensor, min_window=min_window,
                         repeats=repeats, warmup=warmup, idle=idle, per_node=per_node, out=out,
                         seed=seed, device=device, progress=line)
    finally:
        line.clear()
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        click.echo(render_table(result, top), nl=False)
