"""`onnx-energy compare`: candidate models side by side, ranked by Energy-Precision Ratio."""

from __future__ import annotations

import click

from ..passes.transistors import PRECISIONS
from .options import carbon_options, dim_options, format_option, profile_option


def _parse_errors(_ctx: click.Context, _param: click.Parameter,
                  values: tuple[str, ...]) -> dict[str, float]:
    from ..compare import parse_error

    out: dict[str, float] = {}
    for item in values:
        name, sep, value = item.rpartition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME=ERROR (e.g. resnet50=0.239)")
        out[name.strip()] = parse_error(value)
    return out


@click.command("compare")
@click.argument("models", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=str))
@click.option("--error", "errors", multiple=True, callback=_parse_errors,
              metavar="NAME=ERROR",
              help="A model's error (NAME: its file stem or path; ERROR: a fraction such as "
                   "0.073, or 7.3%): adds the Energy-Precision Ratio M = Error^α · EPI and "
                   "the ranking it implies (repeatable).")
@click.option("--alpha", type=float, default=1.0, show_default=True,
              help="α of the Energy-Precision Ratio: larger weighs precision more.")
@profile_option("Profile predicting energy and latency (a name, a path, or 'theoretical'; "
                "default: theoretical (45 nm), energy only).")
@dim_options
@click.option("--precision", type=click.Choice(PRECISIONS), default="native",
              show_default=True, help="Transistor-operations column compared.")
@carbon_options
@format_option("table", "json", "markdown")
def compare_command(models: tuple[str, ...], errors: dict[str, float], alpha: float,
                    profile_ref: str | None, dims: dict[str, int], batch_size: int | None,
                    precision: str, carbon_intensity: float | None, country: str | None,
                    fmt: str) -> None:
    """Compare MODELS: MACs, TOs, params, peak memory, predicted energy and latency, with
    deltas against the first model."""
    from ..carbon import resolve_intensity
    from ..compare import compare_models
    from ..profile_store import open_profile
    from ..render.compare import RENDERERS

    intensity = resolve_intensity(carbon_intensity, country)
    profile = None if profile_ref is None else open_profile(profile_ref)
    result = compare_models(list(models), profile=profile, dims=dims or None,
                            batch_size=batch_size, errors=errors, alpha=alpha,
                            precision=precision, intensity=intensity)
    click.echo(RENDERERS[fmt](result), nl=False)
