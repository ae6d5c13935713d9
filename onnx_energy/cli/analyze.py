"""`onnx-energy analyze`: the static cost table of a model."""

from __future__ import annotations

import click

from ..analysis import CONVENTIONS, analyze
from ..errors import StrictModeError
from ..passes.control_flow import BRANCHES, MAX_TRIPS
from ..passes.training import LOSSES, PHASES
from ..passes.transistors import PRECISIONS
from ..render.analysis import (
    DEFAULT_TOP,
    NODE_VIEWS,
    RENDERERS,
    TableOptions,
    gap_lines,
    sort_keys,
)
from .options import (
    ProgressLine,
    carbon_options,
    dim_options,
    format_option,
    input_shape_option,
    model_argument,
    output_width,
    warn,
)


@click.command("analyze")
@model_argument
@dim_options
@input_shape_option
@click.option("--convention", type=click.Choice(CONVENTIONS), default="dot", show_default=True,
              help="MAC convention: dot = dot-product MACs only (torchvision); seed = Getzner "
                   "et al. Table 3 (bias adds, FLOPs/2 for other ops).")
@format_option("table", "json", "csv")
@click.option("--top", type=click.IntRange(min=1), default=DEFAULT_TOP, show_default=True,
              metavar="N", help="Table only: how many of the costliest nodes to list (JSON and "
                                "CSV always hold every node).")
@click.option("--nodes", "node_view", type=click.Choice(NODE_VIEWS), default="top",
              show_default=True, help="Table only: the --top N costliest nodes, all of them "
                                      "(graph order unless --sort), or none (summary only).")
@click.option("--sort", type=click.Choice(sort_keys()), default=None,
              help="Table only: order op types and nodes by this metric (training: the whole "
                   "step)  [default: macs; --nodes all: graph order]")
@click.option("--show-movement", is_flag=True,
              help="Table only: list zero-cost data-movement nodes and op types (Identity, "
                   "Reshape, ...) instead of hiding them / folding them into one row.")
@click.option("--strict", is_flag=True,
              help="Exit with code 3 if any op has no cost rule or any shape stays unresolved.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="Which transistor-operations column the table shows (native = each node's "
                   "own dtype); JSON/CSV always carry fp32, fp16 and native.")
@click.option("--phase", type=click.Choice(PHASES), default="inference", show_default=True,
              help="training adds each node's backward pass and the loss on the graph output.")
@click.option("--loss", type=click.Choice(LOSSES), default="ce", show_default=True,
              help="Loss of --phase training: ce = cross-entropy over the last axis, mse.")
@click.option("--transistor-table", type=click.Path(dir_okay=False, path_type=str),
              default=None, metavar="FILE",
              help="JSON transistor table merged over the default (see docs/basic_ops.md).")
@click.option("--branch", type=click.Choice(BRANCHES), default=None,
              help="If nodes: count this branch (default: the costlier one; both are reported "
                   "in JSON).")
@click.option("--loop-trips", type=click.IntRange(min=0, max=MAX_TRIPS), default=None,
              metavar="N", help="Trip count of Loops (and Scans) whose count is not a constant; "
                                "without it they are reported unresolved.")
@click.option("--profile", "profile_ref", default=None, metavar="PROFILE",
              help="Hardware profile (a .json path, a name in the user profile directory, or "
                   "'theoretical'; see 'onnx-energy profiles list'): predicted runtime, power "
                   "and energy per node and in totals, with intervals. Default: the built-in "
                   "theoretical (45 nm) profile, energy only.")
@carbon_options
def analyze_command(model: str, dims: dict[str, int], batch_size: int | None,
                    input_shapes: dict[str, list[int]], convention: str,
                    fmt: str, top: int, node_view: str, sort: str | None, show_movement: bool,
                    strict: bool, precision: str, phase: str, loss: str,
                    transistor_table: str | None, branch: str | None,
                    loop_trips: int | None, profile_ref: str | None,
                    carbon_intensity: float | None, country: str | None) -> None:
    """Count MACs, FLOPs, parameters, bytes, basic and transistor operations of every node of
    MODEL (weights are never read).

    The table fits the terminal (100 columns when not a terminal, COLUMNS=N to choose):
    the summary per op type with shares of the total, then the costliest nodes. An unbound
    batch is taken as 1 and said so; other unknowns make the totals lower bounds (marked ≥),
    with the options that would bind them.
    """
    # Large graphs take seconds: say what is running, on a terminal only (pipes stay clean).
    profile = None
    if profile_ref is not None:
        from ..profile_store import open_profile

        profile = open_profile(profile_ref)
    from ..carbon import resolve_intensity

    intensity = resolve_intensity(carbon_intensity, country)
    line = ProgressLine("analyzing", tty_only=True, after_s=0.5)
    try:
        result = analyze(model, dims=dims, batch_size=batch_size, convention=convention,
                         phase=phase, loss=loss, precision=precision,
                         transistor_table=transistor_table, branch=branch,
                         loop_trips=loop_trips, input_shapes=input_shapes, profile=profile,
                         progress=line)
    finally:
        line.clear()
    if intensity is not None and result.prediction is not None:
        t = result.prediction.totals
        result.carbon = intensity.report(t.energy_j, t.energy_j_interval)
    options = TableOptions(top=top, nodes=node_view, sort=sort, show_movement=show_movement,
                           width=output_width())
    click.echo(RENDERERS[fmt](result, options), nl=False)
    if fmt != "table":  # the table says it in its notes; JSON/CSV say it on stderr
        if result.defaulted:
            warn(f"batch {result.defaulted['batch']} assumed (the inputs' leading dims were "
                 "unbound; --batch-size N sets it)")
        gaps = gap_lines(result)
        if gaps:
            warn(gaps[0])
            for detail in gaps[1:]:
                click.echo(detail, err=True)
        if result.prediction is not None:
            for warning in result.prediction.warnings:
                warn(warning)
    if strict and (result.unsupported or result.unresolved):
        raise StrictModeError(
            f"--strict: {sum(result.unsupported.values())} node(s) without a cost rule, "
            f"{len(result.unresolved)} with unresolved shapes"
        )
