"""`onnx-energy measure`: runtime and energy of a model with onnxruntime and a real sensor."""

from __future__ import annotations

import click

from ..measure.measurement import DEFAULT_MAX_WINDOW, measure
from ..measure.sensors import SENSOR_CHOICES
from ..render.measurement import RENDERERS
from .options import (
    ProgressLine,
    dim_options,
    format_option,
    model_argument,
    output_width,
    warn,
)


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
@click.option("--target-cv", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
              default=None, metavar="CV",
              help="Lengthen the windows (doubling --min-window, up to --max-window) and "
                   "measure again until the runtime CV across windows is at most CV, e.g. "
                   "0.02; the output says whether it was met.")
@click.option("--max-window", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_MAX_WINDOW, show_default=True, metavar="SECONDS",
              help="Longest window --target-cv may use.")
@click.option("--warmup", type=click.IntRange(min=1), default=10, show_default=True,
              help="Warm-up runs before the windows (stops early after --min-window seconds).")
@click.option("--idle", type=click.FloatRange(min=0), default=None,
              help="Idle-baseline seconds before the run [default: --min-window; 0 skips it].")
@click.option("--per-node", is_flag=True,
              help="Profile per-node (and fused-group) runtimes in a separate session, and "
                   "say how much of the runtime the kernels cover and why.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Table only: how many nodes to show with --per-node.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Append one JSON record per window to this file (JSON lines).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--device", type=click.IntRange(min=0), default=0, show_default=True,
              help="CUDA device id.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line on stderr.")
@format_option("table", "json", "csv",
               text="Output format; csv is one summary row, or with --per-node one row per "
                    "node or fused group.")
def measure_command(model: str, dims: dict[str, int], batch_size: int | None, provider: str,
                    threads: int, sensor: str, min_window: float, repeats: int,
                    target_cv: float | None, max_window: float, warmup: int,
                    idle: float | None, per_node: bool, top: int, out: str | None, seed: int,
                    device: int, quiet: bool, fmt: str) -> None:
    """Measure runtime and energy per inference of MODEL with onnxruntime.

    Energy comes only from a real sensor (RAPL, NVML; codecarbon when asked, labelled an
    estimate when it falls back to a TDP model); without one, energy is reported as not
    measured, and why. Noisy results (runtime CV above 5%, windows of fewer than 10
    inferences) are flagged; --target-cv lengthens the windows until the CV is met.
    Measuring runs the model, so its weights (external data included) must be present.
    """
    line = ProgressLine("measuring", enabled=not quiet)
    try:
        result = measure(model, provider=provider, threads=threads, dims=dims,
                         batch_size=batch_size, sensor=sensor, min_window=min_window,
                         repeats=repeats, target_cv=target_cv, max_window=max_window,
                         warmup=warmup, idle=idle, per_node=per_node, out=out, seed=seed,
                         device=device, progress=line)
    finally:
        line.clear()
    click.echo(RENDERERS[fmt](result, top=top, width=output_width()), nl=False)
    if fmt != "table":  # the table shows them; JSON/CSV readers see them on stderr
        for message in result.warnings:
            warn(message)
