"""`onnx-energy analyze`: the static cost table of a model."""

from __future__ import annotations

import click

from ..analysis import CONVENTIONS, analyze
from ..errors import StrictModeError
from ..report import gaps_summary, render_csv, render_json, render_table
from .options import dim_options, format_option, model_argument


@click.command("analyze")
@model_argument
@dim_options
@click.option("--convention", type=click.Choice(CONVENTIONS), default="dot", show_default=True,
              help="MAC convention: dot = dot-product MACs only (torchvision); seed = Getzner "
                   "et al. Table 3 (bias adds, FLOPs/2 for other ops).")
@format_option("table", "json", "csv")
@click.option("--top", type=click.IntRange(min=1), default=None,
              help="Table: show only the N costliest nodes.")
@click.option("--strict", is_flag=True,
              help="Exit with code 3 if any op has no cost rule or any shape stays unresolved.")
def analyze_command(model: str, dims: dict[str, int], batch_size: int | None, convention: str,
                    fmt: str, top: int | None, strict: bool) -> None:
    """Count MACs, FLOPs, parameters and bytes of every node of MODEL (weights are never read)."""
    result = analyze(model, dims=dims, batch_size=batch_size, convention=convention)
    if fmt == "json":
        click.echo(render_json(result))
    elif fmt == "csv":
        click.echo(render_csv(result), nl=False)
    else:
        click.echo(render_table(result, top=top), nl=False)
    if fmt != "table":
        for line in gaps_summary(result):
            click.echo(line, err=True)
    if strict and (result.unsupported or result.unresolved):
        raise StrictModeError(
            f"--strict: {sum(result.unsupported.values())} node(s) without a cost rule, "
            f"{len(result.unresolved)} with unresolved shapes"
        )
