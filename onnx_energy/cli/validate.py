"""`onnx-energy validate`: measure models, predict them with a profile, and compare."""

from __future__ import annotations

from pathlib import Path

import click

from .options import ProgressLine, dim_options, format_option


@click.command("validate")
@click.argument("models", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=str))
@click.option("--profile", "profile_ref", required=True, metavar="PROFILE",
              help="The profile to validate (a name, a path, or 'theoretical').")
@dim_options
@click.option("--provider", type=click.Choice(("cpu", "cuda")), default=None,
              help="Execution provider (default: the profile's).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Intra-op threads (default: the profile's).")
@click.option("--sensor", type=click.Choice(("auto", "rapl", "nvml", "codecarbon", "none")),
              default="auto", show_default=True,
              help="Energy sensor (none: runtime only).")
@click.option("--min-window", type=click.FloatRange(min=0, min_open=True), default=0.5,
              show_default=True, help="Seconds per timed window.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed windows per model (the median is reported).")
@click.option("--no-per-node", is_flag=True,
              help="Skip onnxruntime's per-node profile (no per-op-type breakdown).")
@format_option("table", "json")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, metavar="DIR",
              help="Write PNGs to DIR: scatter-runtime.png (and scatter-energy.png with a "
                   "sensor), predicted vs measured with the identity line and interval bars; "
                   "breakdown-MODEL.png, time per op type (needs the 'plot' extra: "
                   "pip install 'onnx-energy[plot]').")
def validate_command(models: tuple[str, ...], profile_ref: str, dims: dict[str, int],
                     batch_size: int | None, provider: str | None, threads: int | None,
                     sensor: str, min_window: float, repeats: int, no_per_node: bool,
                     fmt: str, plot_dir: Path | None) -> None:
    """Measure each of MODELS, predict it with --profile, and report measured against
    predicted runtime and energy (where a sensor exists) with MAPE, RMSPE and R²."""
    from ..profile_store import open_profile
    from ..render.validate import RENDERERS
    from ..validate import validate_models

    if plot_dir is not None:
        from ..render.plots import require_matplotlib

        require_matplotlib()  # before minutes of measurement, not after
    profile = open_profile(profile_ref)
    line = ProgressLine("validating")
    try:
        result = validate_models(list(models), profile, dims=dims or None,
                                 batch_size=batch_size, provider=provider, threads=threads,
                                 sensor=sensor, min_window=min_window, repeats=repeats,
                                 per_node=not no_per_node, progress=line)
    finally:
        line.clear()
    click.echo(RENDERERS[fmt](result), nl=False)
    if plot_dir is not None:
        from ..render.plots import breakdown_bars, validation_scatter

        written = [validation_scatter(result, plot_dir, t) for t in ("runtime", "energy")]
        written += breakdown_bars(result, plot_dir)
        for path in written:
            if path is not None:
                click.echo(f"wrote {path}", err=True)
