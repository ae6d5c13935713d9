"""`onnx-energy scale`: energy, runtime, MACs and TOs across a design factor, power-law fits."""

from __future__ import annotations

from pathlib import Path

import click

from ..passes.transistors import PRECISIONS
from .options import format_option, profile_option


@click.command("scale")
@click.argument("models", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=str))
@click.option("--dim", "dim_specs", multiple=True, required=True, metavar="NAME=RANGE",
              help="The design factor, NAME=a:b:step, NAME=a:b:*k (geometric) or "
                   "NAME=v1,v2,...; other --dim NAME=VALUE fix the remaining dims.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Bind the symbolic leading dim of every graph input to N.")
@profile_option("Profile predicting energy and runtime (a name, a path, or 'theoretical'; "
                "default: theoretical (45 nm), energy only).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="native",
              show_default=True, help="Transistor-operations column of the TOs curve.")
@format_option("table", "json")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, metavar="DIR",
              help="Write the curves and their power laws as DIR/scale-NAME.png (needs the "
                   "'plot' extra: pip install 'onnx-energy[plot]').")
def scale_command(models: tuple[str, ...], dim_specs: tuple[str, ...], batch_size: int | None,
                  profile_ref: str | None, precision: str, fmt: str,
                  plot_dir: Path | None) -> None:
    """Predict energy, runtime, MACs and TOs of MODELS across one design factor (a symbolic
    dim) and fit each curve with a power law y = c · x^k (exponent k and R²)."""
    from ..errors import ComparisonError
    from ..profile_store import open_profile
    from ..render.scale import RENDERERS
    from ..scale import parse_range, scale_models

    factor, fixed = None, {}
    for spec in dim_specs:
        name, _, value = spec.partition("=")
        if value.strip().lstrip("-").isdigit():
            fixed[name.strip()] = int(value)
            continue
        if factor is not None:
            raise ComparisonError("scale sweeps one design factor at a time: give one "
                                  "--dim NAME=a:b:step and fix the others with NAME=VALUE")
        factor = parse_range(spec)
    if factor is None:
        raise ComparisonError("scale needs a range: --dim NAME=a:b:step (e.g. seq=64:512:64)")
    if plot_dir is not None:
        from ..render.plots import require_matplotlib

        require_matplotlib()
    profile = None if profile_ref is None else open_profile(profile_ref)
    study = scale_models(list(models), factor, dims=fixed or None, batch_size=batch_size,
                         profile=profile, precision=precision)
    click.echo(RENDERERS[fmt](study), nl=False)
    if plot_dir is not None:
        from ..render.plots import scale_plot

        path = scale_plot(study, plot_dir)
        click.echo(f"wrote {path}", err=True)
