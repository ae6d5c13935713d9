"""`measure()`: runtime and energy of a model (or an in-memory single-op model), honestly.

Every result carries the sensor it came from; with no sensor, energy is None and the reason
is said. Each window is appended to the record file (if given) before the next one starts.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto

from ..errors import MeasurementFailed, MeasurementInterrupted, OnnxEnergyError
from ..render.units import pct, si
from .fingerprint import hardware_fingerprint
from .profiling import NodeTiming, node_timings, parse_profile
from .protocol import Idle, Window, cv, idle_baseline, median, run_window, warm_up
from .records import SCHEMA_ID, RecordWriter
from .runner import Runner, temp_dir
from .sensors import Sensor, SensorReadError, open_sensor

Progress = Callable[[str], None]

#: Above this runtime CV across windows, the result is flagged as noisy.
NOISY_CV = 0.05
#: Windows of fewer inferences are flagged: clock and sensor granularity dominate them.
MIN_ITERATIONS = 10
#: --target-cv lengthens windows up to this many seconds each, by default.
DEFAULT_MAX_WINDOW = 30.0


@dataclass
class Attempt:
    """One set of ``repeats`` windows of one length (``--target-cv`` may take several)."""

    min_window_s: float
    run_id: str
    windows: list[Window]
    failures: list[str]

    @property
    def runtime_cv(self) -> float | None:
        return cv([w.runtime_s for w in self.windows])

    def to_dict(self) -> dict[str, Any]:
        return {"min_window_s": self.min_window_s, "run_id": self.run_id,
                "windows": len(self.windows), "runtime_cv": self.runtime_cv}


def measure_until(
    run: Callable[[float, str], Attempt], min_window: float, target_cv: float | None,
    max_window: float,
) -> list[Attempt]:
    """Run ``run(window_s, run_id)`` once, then, while its runtime CV is above
    ``target_cv`` and the windows are shorter than ``max_window``, again with windows twice
    as long (capped at ``max_window``). Every attempt is returned, the last one counts."""
    attempts = [run(min_window, uuid.uuid4().hex)]
    while target_cv is not None:
        last = attempts[-1]
        noise = last.runtime_cv
        if noise is None or noise <= target_cv or last.min_window_s >= max_window:
            break
        attempts.append(run(min(last.min_window_s * 2, max_window), uuid.uuid4().hex))
    return attempts


def quality_warnings(runtime_cv: float | None, iterations: list[int], runtime_s: float | None,
                     min_window: float, target_cv: float | None, target_met: bool | None,
                     max_window: float) -> list[str]:
    """What makes a measurement less trustworthy than it looks: noise across windows,
    windows of too few inferences, a target CV that was not reached."""
    out: list[str] = []
    if runtime_cv is not None and runtime_cv > NOISY_CV:
        hint = ("the machine is busy or throttling; measure on a quiet machine"
                if target_cv is not None else
                "lengthen the windows with --target-cv 0.02 (or --min-window), and measure on "
                "a quiet machine")
        out.append(f"runtime CV {pct(runtime_cv)} across windows is above "
                   f"{NOISY_CV * 100:.0f}%: {hint}")
    short = [n for n in iterations if n < MIN_ITERATIONS]
    if short:
        need = (MIN_ITERATIONS * runtime_s * 1.2) if runtime_s else None
        hint = (f"; --min-window {math.ceil(need)} or more gives {MIN_ITERATIONS}"
                if need is not None and need > min_window else "")
        out.append(f"{len(short)} of {len(iterations)} windows ran fewer than "
                   f"{MIN_ITERATIONS} inferences (fewest: {min(short)}): one slow run "
                   f"sways them{hint}")
    if target_cv is not None and target_met is False:
        out.append(f"target CV {pct(target_cv)} not met: {pct(runtime_cv)} with windows of "
                   f"{min_window:g} s, the --max-window cap ({max_window:g} s)")
    return out


def coverage(kernel_s: float | None, runtime_s: float | None,
             kernels: int) -> tuple[float | None, float | None, str | None]:
    """How far the profiled kernels account for the runtime: (fraction, estimated profiler
    overhead per kernel when they exceed it, an explanation)."""
    if kernel_s is None or not runtime_s:
        return None, None, None
    fraction = kernel_s / runtime_s
    covered = f"kernels sum to {fraction * 100:.0f}% of the runtime"
    if fraction > 1.05 and kernels:
        overhead = (kernel_s - runtime_s) / kernels
        return fraction, overhead, (
            f"{covered}: the profiler adds about {_fmt_s(overhead)} to each of the {kernels} "
            "kernels per inference, which weighs most on tiny kernels; node times are "
            "overstated, their order and rough shares hold")
    if fraction < 0.95:
        return fraction, None, (
            f"{covered}: the rest is time outside kernels (session overhead, copies and "
            "waits between kernels) or kernels not mapped to nodes; on CUDA, kernel times are "
            "host-side launch times unless onnxruntime was built with CUDA profiling")
    return fraction, None, covered


@dataclass
class Measurement:
    """The result of `measure()`; `to_dict()` is the CLI's JSON."""

    model: str | None
    model_sha256: str
    spec: dict[str, Any] | None
    provider: str
    threads: int
    dims: dict[str, int]
    batch_size: int | None
    inputs: list[dict[str, Any]]
    seed: int
    sensor: str
    sensor_detail: dict[str, Any]
    estimate: bool
    runtime_s: float | None
    runtime_cv: float | None
    energy_j: float | None
    energy_dynamic_j: float | None
    energy_cv: float | None
    power_w: float | None
    idle_power_w: float | None
    windows: int
    windows_failed: int
    iterations: list[int]
    energy_note: str | None = None
    sensor_notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    records: str | None = None
    run_id: str = ""
    nodes: list[NodeTiming] | None = None
    nodes_time_s: float | None = None
    #: nodes_time_s / runtime_s, the profiler overhead per kernel it implies (when above
    #: 1), the number of kernels per inference, and what the coverage means.
    nodes_coverage: float | None = None
    nodes_overhead_per_kernel_s: float | None = None
    nodes_kernels: int | None = None
    nodes_coverage_note: str | None = None
    min_window_s: float | None = None
    max_window_s: float | None = None
    target_cv: float | None = None
    target_cv_met: bool | None = None
    attempts: list[Attempt] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_sha256": self.model_sha256,
            "spec": self.spec,
            "provider": self.provider,
            "threads": self.threads,
            "dims": self.dims,
            "batch_size": self.batch_size,
            "inputs": self.inputs,
            "seed": self.seed,
            "sensor": self.sensor,
            "sensor_detail": self.sensor_detail,
            "estimate": self.estimate,
            "runtime_s": self.runtime_s,
            "runtime_cv": self.runtime_cv,
            "energy_j": self.energy_j,
            "energy_dynamic_j": self.energy_dynamic_j,
            "energy_cv": self.energy_cv,
            "power_w": self.power_w,
            "idle_power_w": self.idle_power_w,
            "energy_note": self.energy_note,
            "sensor_notes": self.sensor_notes,
            "windows": self.windows,
            "windows_failed": self.windows_failed,
            "failures": self.failures,
            "iterations": self.iterations,
            "records": self.records,
            "run_id": self.run_id,
            "min_window_s": self.min_window_s,
            "max_window_s": self.max_window_s,
            "target_cv": self.target_cv,
            "target_cv_met": self.target_cv_met,
            "attempts": [a.to_dict() for a in self.attempts],
            "warnings": self.warnings,
            "nodes_time_s": self.nodes_time_s,
            "nodes_coverage": self.nodes_coverage,
            "nodes_overhead_per_kernel_s": self.nodes_overhead_per_kernel_s,
            "nodes_kernels": self.nodes_kernels,
            "nodes_coverage_note": self.nodes_coverage_note,
            "nodes": None if self.nodes is None else [n.to_dict() for n in self.nodes],
        }


def _record(
    runner: Runner, window: Window, idle: Idle, sensor: Sensor, *, run_id: str,
    model_field: dict[str, Any] | None, spec: dict[str, Any] | None,
    hardware: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "kind": "op" if spec is not None else "model",
        "runner": {"name": "onnxruntime", "version": hardware.get("onnxruntime")},
        "run_id": run_id,
        "window": window.index,
        "timestamp": window.timestamp,
        "model": model_field,
        "spec": spec,
        "provider": runner.provider,
        "threads": runner.threads,
        "dims": dict(runner.bindings),
        "batch_size": runner.batch_size,
        "inputs": runner.input_records(),
        "seed": runner.seed,
        "sensor": sensor.name,
        "sensor_detail": sensor.describe(),
        "estimate": sensor.estimate,
        "iterations": window.iterations,
        "window_s": window.seconds,
        "runtime_s": window.runtime_s,
        "energy_j": window.energy_j,
        "energy_dynamic_j": window.energy_dynamic_j,
        "power_w": window.power_w,
        "idle_power_w": idle.power_w,
        "hardware": hardware,
    }


def measure(
    model: str | os.PathLike[str] | ModelProto,
    *,
    provider: str = "cpu",
    threads: int = 1,
    dims: Mapping[str, int] | None = None,
    batch_size: int | None = None,
    sensor: str | Sensor = "auto",
    min_window: float = 2.0,
    repeats: int = 5,
    target_cv: float | None = None,
    max_window: float = DEFAULT_MAX_WINDOW,
    warmup: int = 10,
    idle: float | None = None,
    per_node: bool = False,
    out: str | os.PathLike[str] | None = None,
    seed: int = 0,
    spec: Mapping[str, Any] | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    device: int = 0,
    progress: Progress | None = None,
) -> Measurement:
    """Measure runtime (and energy, where a sensor exists) of a model per inference.

    ``model`` is a path or an in-memory ModelProto (single-op calibration models; pass their
    ``spec`` to have it recorded). ``sensor`` is a name (auto, rapl, nvml, codecarbon, none)
    or an opened `Sensor`. ``idle`` is the idle-baseline length in seconds (default
    ``min_window``; 0 skips it, and with it dynamic energy). ``warmup`` runs are made first,
    stopping early after ``min_window`` seconds. Each of ``repeats`` windows lasts at least
    ``min_window`` seconds and is appended to ``out`` as one JSON line before the next starts.
    ``target_cv``: while the runtime CV across windows is above it, measure again with windows
    twice as long, up to ``max_window`` seconds each (each attempt has its own ``run_id``;
    the result is the last one). Ctrl-C raises `MeasurementInterrupted`; the windows already
    written stay.
    """
    if repeats < 1:
        raise OnnxEnergyError(f"--repeats must be at least 1, not {repeats}")
    if min_window <= 0:
        raise OnnxEnergyError(f"--min-window must be positive, not {min_window}")
    if target_cv is not None:
        if not 0 < target_cv < 1:
            raise OnnxEnergyError(f"--target-cv must be a fraction in (0, 1), e.g. 0.02, "
                                  f"not {target_cv}")
        if repeats < 2:
            raise OnnxEnergyError("--target-cv needs --repeats 2 or more (a CV needs two "
                                  "windows)")
        if max_window < min_window:
            raise OnnxEnergyError(f"--max-window ({max_window:g} s) is shorter than "
                                  f"--min-window ({min_window:g} s)")
    say = progress or (lambda _msg: None)
    writer: RecordWriter | None = None
    opened: Sensor | None = None
    out_str = None if out is None else str(out)
    try:
        say("loading the model")
        runner = Runner(model, provider=provider, threads=threads, dims=dims,
                        batch_size=batch_size, seed=seed, inputs=inputs, device=device)
        notes: list[str]
        if isinstance(sensor, Sensor):
            the_sensor, notes = sensor, []
        else:
            say(f"opening sensor ({sensor})")
            the_sensor, notes = open_sensor(sensor, provider=provider, device=device)
            opened = the_sensor
        if out is not None:
            writer = RecordWriter(out)
        hardware = hardware_fingerprint(provider, device)
        model_field: dict[str, str | None] | None = None if runner.path is None else {
            "path": str(runner.path), "sha256": runner.sha256}
        if model_field is None and spec is None:
            model_field = {"path": None, "sha256": runner.sha256}
        spec_field = None if spec is None else _jsonable(dict(spec))

        idle_s = min_window if idle is None else idle
        if the_sensor.name != "none" and idle_s > 0:
            say(f"idle baseline ({idle_s:g} s, {the_sensor.name})")
        baseline = idle_baseline(the_sensor, idle_s)
        say("warm-up")
        warm_up(runner, warmup, min_window)

        def attempt(window_s: float, run_id: str) -> Attempt:
            done = Attempt(window_s, run_id, [], [])
            for i in range(repeats):
                say(_window_progress(i, repeats, done.windows, window_s))
                try:
                    w = run_window(runner, the_sensor, window_s, baseline.power_w, i)
                except SensorReadError as exc:
                    done.failures.append(str(exc))
                    continue
                done.windows.append(w)
                if writer is not None:
                    writer.append(_record(runner, w, baseline, the_sensor, run_id=run_id,
                                          model_field=model_field, spec=spec_field,
                                          hardware=hardware))
            return done

        attempts = measure_until(attempt, min_window, target_cv, max_window)
        final = attempts[-1]
        windows, failures, run_id = final.windows, final.failures, final.run_id
        if not windows:
            raise MeasurementFailed(
                f"all {repeats} windows failed to read the sensor {the_sensor.name!r} "
                f"(last: {failures[-1]}); try --sensor none for runtime only"
            )
        runtime = median([w.runtime_s for w in windows])
        energy = median([w.energy_j for w in windows])
        result = Measurement(
            model=None if runner.path is None else str(runner.path),
            model_sha256=runner.sha256,
            spec=spec_field,
            provider=provider,
            threads=threads,
            dims=dict(runner.bindings),
            batch_size=batch_size,
            inputs=runner.input_records(),
            seed=seed,
            sensor=the_sensor.name,
            sensor_detail=the_sensor.describe(),
            estimate=the_sensor.estimate,
            runtime_s=runtime,
            runtime_cv=cv([w.runtime_s for w in windows]),
            energy_j=energy,
            energy_dynamic_j=median([w.energy_dynamic_j for w in windows]),
            energy_cv=cv([w.energy_j for w in windows]),
            power_w=median([w.power_w for w in windows]),
            idle_power_w=baseline.power_w,
            windows=len(windows),
            windows_failed=len(failures),
            iterations=[w.iterations for w in windows],
            sensor_notes=notes,
            failures=failures,
            records=out_str,
            run_id=run_id,
        )
        result.energy_note = _energy_note(the_sensor, notes, baseline, energy, sensor)
        result.min_window_s, result.max_window_s = final.min_window_s, max_window
        result.attempts = attempts
        if target_cv is not None:
            result.target_cv = target_cv
            noise = final.runtime_cv
            result.target_cv_met = noise is not None and noise <= target_cv
        result.warnings = quality_warnings(result.runtime_cv, result.iterations, runtime,
                                           final.min_window_s, target_cv,
                                           result.target_cv_met, max_window)
        if per_node:
            say("per-node profiling")
            result.nodes, result.nodes_time_s = _profile_nodes(
                model, runner, warmup=warmup, min_window=min_window, energy=energy)
            result.nodes_kernels = sum(len(r.kernels) for r in result.nodes)
            (result.nodes_coverage, result.nodes_overhead_per_kernel_s,
             result.nodes_coverage_note) = coverage(result.nodes_time_s, runtime,
                                                    result.nodes_kernels)
        return result
    except KeyboardInterrupt:
        raise MeasurementInterrupted(writer.written if writer else 0, out_str) from None
    finally:
        if writer is not None:
            writer.close()
        if opened is not None:
            opened.close()


def _window_progress(i: int, repeats: int, windows: list[Window], window_s: float) -> str:
    msg = f"window {i + 1}/{repeats} ({window_s:g} s)"
    if windows:
        last = windows[-1]
        msg += f" (last: {_fmt_s(last.runtime_s)}/inference, {last.iterations} it)"
    return msg


def _fmt_s(seconds: float) -> str:
    return si(seconds, "s", sig=4)


def _energy_note(sensor: Sensor, notes: list[str], idle: Idle, energy: float | None,
                 choice: Any) -> str | None:
    if sensor.name == "none":
        if choice == "none":
            return "not measured: no sensor (--sensor none)"
        why = "; ".join(notes) if notes else "no energy sensor available"
        return f"not measured: no sensor ({why})"
    parts = []
    if energy is None:
        parts.append("not measured: every energy reading failed")
    if sensor.estimate:
        parts.append(f"ESTIMATE, not a measurement: {sensor.name} has no real sensor here "
                     f"and models power ({sensor.describe().get('mode')})")
    if idle.power_w is None and energy is not None:
        parts.append("no dynamic energy: "
                     + (f"idle baseline failed ({idle.error})" if idle.error
                        else "idle baseline skipped"))
    return "; ".join(parts) or None


def _profile_nodes(model: Any, runner: Runner, *, warmup: int, min_window: float,
                   energy: float | None) -> tuple[list[NodeTiming], float]:
    """Profile in a separate session (profiling overhead never touches the windows)."""
    with temp_dir() as tmp:
        opt_path = Path(tmp) / "optimized.onnx"
        prof = Runner(
            model if runner.path is None else runner.path,
            provider=runner.provider, threads=runner.threads, dims=runner.bindings,
            batch_size=runner.batch_size, seed=runner.seed, inputs=runner.feeds,
            device=runner.device, profile_dir=tmp, save_optimized=opt_path,
        )
        n_warm, _ = warm_up(prof, warmup, min_window)
        warm_up(prof, 1 << 30, min_window)  # the profiled runs: at least min_window seconds
        profile = parse_profile(prof.end_profiling(), skip_runs=n_warm)
        optimized = onnx.load(str(opt_path), load_external_data=False)
    rows = node_timings(runner.graph_proto.graph, optimized.graph, profile, energy,
                        constants=runner.weight_names)
    return rows, sum(r.time_s for r in rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
