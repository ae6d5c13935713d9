"""`onnx-energy check`: do models fit their energy, latency, MACs, params, memory, CO2 budgets?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import BudgetExceeded, UnjudgeableError
from .options import carbon_options, dim_options, format_option, profile_option

_BUDGET_HELP = {
    "max-energy": "Energy per inference, e.g. 50mJ (predicted by the profile).",
    "max-latency": "Latency per inference, e.g. 20ms (needs a calibrated --profile).",
    "max-macs": "MACs per inference, e.g. 5G.",
    "max-params": "Parameters, e.g. 30M.",
    "max-memory": "Peak activation memory, e.g. 200MB or 190MiB (weights apart).",
    "max-co2": "Grams of CO2-eq per inference, e.g. 0.5mg (needs --carbon-intensity or "
               "--country).",
}


def _budget_options(fn: Any) -> Any:
    for key in reversed(list(_BUDGET_HELP)):
        fn = click.option(f"--{key}", key.replace("-", "_"), default=None, metavar="QUANTITY",
                          help=_BUDGET_HELP[key])(fn)
    return fn


@click.command("check")
@click.argument("models", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=str))
@_budget_options
@profile_option("Profile predicting energy and latency (a name, a path, or 'theoretical'; "
                "default: the budget table's, else the theoretical (45 nm) profile).")
@dim_options
@click.option("--confidence", type=click.Choice(("value", "upper")), default=None,
              help="Judge energy, latency and CO2 at the predicted value (default) or at the "
                   "upper end of the prediction interval.")
@carbon_options
@format_option("table", "json", "markdown")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="Budget file to use (pyproject.toml or onnx-energy.toml) instead of the "
                   "first one found from the current directory upward.")
@click.option("--no-config", is_flag=True, help="Ignore budget files: command-line budgets only.")
@click.option("--allow-unbudgeted", is_flag=True,
              help="List models no budget applies to instead of refusing them (for hooks "
                   "that pass every changed .onnx file).")
def check_command(models: tuple[str, ...], profile_ref: str | None, dims: dict[str, int],
                  batch_size: int | None, confidence: str | None,
                  carbon_intensity: float | None, country: str | None, fmt: str,
                  config_path: Path | None, no_config: bool, allow_unbudgeted: bool,
                  **budgets: str | None) -> None:
    """Check MODELS against budgets; exit 0 when every budget holds, 1 when one is exceeded,
    3 when one cannot be judged, 2 on bad input. Budgets come from the command line and from
    [[tool.onnx-energy.budget]] tables in pyproject.toml or onnx-energy.toml (docs/check.md)."""
    from ..budgets import METRICS, find_budget_file, parse_quantity, read_budget_file
    from ..check import check_models
    from ..profile_store import default_profile, open_profile
    from ..render.check import RENDERERS

    limits: dict[str, float] = {}
    for key, metric in METRICS.items():
        text = budgets.get(key.replace("-", "_"))
        if text is not None:
            limits[key] = parse_quantity(text, metric.kind, f"--{key}")
    settings: dict[str, Any] = {}
    for key, v in (("profile", profile_ref), ("batch-size", batch_size),
                   ("confidence", confidence), ("carbon-intensity", carbon_intensity),
                   ("country", country)):
        if v is not None:
            settings[key] = v
    if dims:
        settings["dims"] = dims
    if "carbon-intensity" in settings:  # the command line's choice replaces the table's
        settings.setdefault("country", None)
    elif "country" in settings:
        settings["carbon-intensity"] = None
    budget_file = None
    if config_path is not None:
        budget_file = read_budget_file(config_path)
    elif not no_config:
        budget_file = find_budget_file()
    opened: dict[str | None, Any] = {}

    def load(ref: str | None) -> Any:
        if ref not in opened:
            opened[ref] = default_profile() if ref is None else open_profile(ref)
        return opened[ref]

    report = check_models(list(models), limits=limits, settings=settings,
                          budget_file=budget_file, load_profile=load,
                          allow_unbudgeted=allow_unbudgeted)
    click.echo(RENDERERS[fmt](report), nl=False)
    fails = report.failures()
    if fails:
        from ..render.check import margin, quantity, value_text

        raise BudgetExceeded("budget exceeded: " + "; ".join(
            f"{model} {v.budget} {value_text(v)} > {quantity(v.limit, v.unit)} ({margin(v)})"
            for model, v in fails))
    unjudgeable = report.unjudgeable()
    if unjudgeable:
        raise UnjudgeableError("cannot judge: " + "; ".join(
            f"{model} {v.budget}: {v.reason}" for model, v in unjudgeable))
