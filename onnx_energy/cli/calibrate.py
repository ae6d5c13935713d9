"""`onnx-energy calibrate`: fit hardware profiles from measurements."""

from __future__ import annotations

from pathlib import Path

import click

from .options import ProgressLine


@click.group("calibrate")
def calibrate_command() -> None:
    """Calibrate a hardware profile: measure single ops and networks, fit maps to runtime,
    power and energy."""


@calibrate_command.command("fit")
@click.argument("records", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Profile file to write (JSON).")
@click.option("--provider", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Use the records of this provider (when the files mix several).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Use the records of this thread count (when the files mix several).")
@click.option("--name", default=None, help="Profile name [default: the machine and config].")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.9,
              show_default=True, help="Confidence level of the prediction intervals.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line on stderr.")
def fit_command(records: tuple[Path, ...], out: Path, provider: str | None,
                threads: int | None, name: str | None, confidence: float, quiet: bool) -> None:
    """Fit a profile from RECORDS (JSON-lines record files: this machine's calibration, or
    measurements made elsewhere in the documented schema)."""
    from ..calibration.fit import fit_profile
    from ..render.prediction import render_profile

    line = ProgressLine("fitting", enabled=not quiet)
    try:
        profile = fit_profile(list(records), provider=provider, threads=threads, name=name,
                              confidence=confidence, progress=line)
    finally:
        line.clear()
    profile.save(out)
    click.echo(render_profile(profile), nl=False)
    click.echo(f"wrote {out}")
