"""`onnx-energy calibrate`: measure op specs and reference networks (`run`), fit hardware
profiles from measurements (`fit`)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ..errors import CalibrationInterrupted
from .options import ProgressLine, dim_options

#: Command-line family names: the op families of the specs.
_UNITS = {"s": 1, "m": 60, "h": 3600}
_BUDGET = re.compile(r"(\d+(?:\.\d+)?)([smh])")


def parse_budget(text: str) -> float:
    """Seconds from ``90s``, ``10m``, ``1h``, ``1h30m`` or a plain number of seconds."""
    t = text.strip().lower()
    try:
        value = float(t)
    except ValueError:
        pos, value = 0, 0.0
        for m in _BUDGET.finditer(t):
            if m.start() != pos:
                break
            value += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(t) or not t:
            raise ValueError(f"{text!r} is not a duration (e.g. 90s, 10m, 1h, 1h30m)") from None
    if value <= 0:
        raise ValueError(f"{text!r}: the budget must be positive")
    return value


def _budget(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_budget(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _families(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[str] | None:
    from ..calibration.specs import FAMILIES

    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown or not names:
        raise click.BadParameter(f"unknown family {', '.join(unknown) or repr(value)}; "
                                 f"choose from {', '.join(FAMILIES)}")
    return names


def default_records(out: str) -> Path:
    """``PROFILE.records.jsonl`` beside ``--out PROFILE.json``."""
    p = Path(out)
    stem = p.name[: -len(".json")] if p.name.endswith(".json") else p.name
    return p.with_name(f"{stem}.records.jsonl")


@click.group("calibrate")
def calibrate_command() -> None:
    """Calibrate a hardware profile: measure single ops and networks, fit maps to runtime,
    power and energy."""


@calibrate_command.command("run")
@dim_options
@click.option("--provider", type=click.Choice(["cpu", "cuda"]), default="cpu",
              show_default=True, help="onnxruntime execution provider.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Intra-op threads (recorded; a profile is for one thread count).")
@click.option("--device", type=click.IntRange(min=0), default=0, show_default=True,
              help="CUDA device id.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The profile to write (JSON).")
@click.option("--records", type=click.Path(dir_okay=False), default=None,
              help="Record file to append to and resume from "
                   "[default: PROFILE.records.jsonl beside --out].")
@click.option("--budget", callback=_budget, default=None, metavar="DURATION",
              help="Stop measuring before this much time has passed (90s, 10m, 1h), "
                   "then fit; the rest is measured by the next run.")
@click.option("--from-model", "from_models", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Also mine this model's node configurations and measure it per node "
                   "(repeatable).")
@click.option("--families", callback=_families, default=None, metavar="LIST",
              help="Comma-separated op families of the single-op specs [default: all].")
@click.option("--networks/--no-networks", default=True, show_default=True,
              help="Measure the reference networks (in-context group timings).")
@click.option("--random-networks", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also measure this many seeded variations of the reference networks.")
@click.option("--per-family", type=click.IntRange(min=0), default=None,
              help="Random specs per family [default: the built-in counts, about 450 in all].")
@click.option("--sensor", type=click.Choice(["auto", "rapl", "nvml", "codecarbon", "none"]),
              default="auto", show_default=True, help="Energy sensor, as for measure.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random specs, networks and inputs.")
@click.option("--fit/--no-fit", default=True, show_default=True,
              help="Fit and write the profile after measuring (--no-fit: measure only; "
                   "`calibrate fit` fits later).")
@click.option("--op-window", type=click.FloatRange(min=0.001), default=0.1, show_default=True,
              help="Seconds per window for single ops (3 windows each; their CV is recorded).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line on stderr.")
def run_command(dims: dict[str, int], batch_size: int | None, provider: str, threads: int,
                device: int, out: str, records: str | None, budget: float | None,
                from_models: tuple[str, ...], families: list[str] | None, networks: bool,
                random_networks: int, per_family: int | None, sensor: str, seed: int,
                fit: bool, op_window: float, quiet: bool) -> None:
    """Measure op specs and networks into a record file, then fit PROFILE (--out).

    Resumes from the record file: what it already holds for this provider, thread count
    and sensor is not measured again. Ctrl-C keeps every finished measurement.
    """
    import functools

    from ..calibration import networks as nets
    from ..calibration import specs as sp
    from ..calibration import sweep as sw
    from ..measure.probe import speed_probe

    record_path = Path(records) if records else default_records(out)
    settings = sw.Settings(provider=provider, threads=threads, device=device, seed=seed,
                           dims=dims, batch_size=batch_size, op_window=op_window)
    fams = families or list(sp.FAMILIES)
    counts = None if per_family is None else {f: per_family for f in fams}
    net_items = [sw.model_item(p, settings) for p in from_models]  # bindings checked first
    drawn = sp.random_specs(counts, seed=seed, families=fams)
    mined = sp.mine(list(from_models), dims=dims, batch_size=batch_size) if from_models \
        else None
    mined_specs = [s for s in mined.specs if s.family in fams] if mined else []
    specs = sw.interleave_sources(mined_specs, drawn)
    if networks:
        net_items += [sw.network_item(n) for n in nets.reference_networks()]
        net_items += [sw.network_item(n) for n in nets.random_networks(random_networks, seed)]
    items = sw.plan(specs, net_items)
    if budget is not None:  # the plan may end early: more of the same fills the budget
        items += sw.fill_items(items, budget, seed=seed, families=fams, counts=counts,
                               networks=networks,
                               done=sw.finished_keys(record_path, settings))
    line = ProgressLine("calibrating", enabled=not quiet, log_every_s=10.0)
    if mined is not None:
        click.echo(f"mined {len(mined.specs)} distinct configurations from "
                   f"{len(from_models)} model(s) ({mined.folded} constant-folded nodes and "
                   f"{sum(mined.skipped.values())} without a family left out)", err=True)
    try:
        result = sw.Sweep(items, record_path, settings, sensor=sensor, budget_s=budget,
                          progress=line, probe_fn=functools.partial(
                              speed_probe, settings.provider, settings.threads,
                              settings.device)).run()
    finally:
        line.clear()
    click.echo(_summary(result), err=True)
    if result.interrupted:
        raise CalibrationInterrupted(
            f"interrupted; every finished measurement is in {record_path}. Run the same "
            "command again to resume.")
    if not fit:
        click.echo(f"not fitted (--no-fit): onnx-energy calibrate fit {record_path} --out {out}",
                   err=True)
        return
    _fit(record_path, out, provider=provider, threads=threads, sensor=result.sensor or None,
         quiet=quiet)


def _summary(r: object) -> str:
    from ..calibration.sweep import Result

    assert isinstance(r, Result)
    fams = ", ".join(f"{k} {v}" for k, v in sorted(r.by_family.items()))
    planned = len(r.measured) - r.filled
    parts = [f"measured {planned} of {r.planned} items in {r.elapsed_s:.0f} s"
             + (f" and {r.filled} more filling the budget" if r.filled else "")
             + (f" ({fams})" if fams else "")]
    if r.already:
        parts.append(f"{r.already} already in {r.records}")
    if r.left:
        parts.append(f"{len(r.left)} left for the next run"
                     + (" (budget)" if r.budget_hit and not r.interrupted else ""))
    if r.failed:
        first = next(iter(r.failed.items()))
        parts.append(f"{len(r.failed)} failed (first: {first[0]}: {first[1]})")
    if r.overheads is not None:
        o = r.overheads
        text = (f"session overhead {o.session_s * 1e6:.1f} µs, dispatch "
                f"{o.dispatch_s * 1e6:.2f} µs per node")
        if o.profiled_kernel_s is not None:
            text += f", profiler {o.profiled_kernel_s * 1e6:.2f} µs per kernel"
        parts.append(text)
    return "; ".join(parts)


def _fit(records: Path, out: str, *, provider: str, threads: int, sensor: str | None,
         quiet: bool) -> None:
    """Fit the profile from the records of this provider and thread count, and write it."""
    from ..calibration.fit import fit_profile
    from ..render.prediction import render_profile

    line = ProgressLine("fitting", enabled=not quiet)
    try:
        profile = fit_profile([records], provider=provider, threads=threads, sensor=sensor,
                              progress=line)
    finally:
        line.clear()
    profile.save(out)
    click.echo(render_profile(profile), nl=False)
    click.echo(f"wrote {out}")


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
