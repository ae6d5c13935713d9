"""`measure()`: runtime and energy of a model (or an in-memory single-op model), honestly.

Every result carries the sensor it came from; with no sensor, energy is None and the reason
is said. Each window is appended to the record file (if given) before the next one starts.
"""

from __future__ import annotations

import contextlib
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
from .overhead import Overheads, overhead_models, overheads_from
from .profiling import NodeTiming, Reconciliation, node_timings, parse_profile, reconcile
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


def coverage(kernel_s: float | None, runtime_s: float | None, kernels: int,
             reconciled: bool = False) -> tuple[float | None, float | None, str | None]:
    """How far the profiled kernels (their raw sum) account for the runtime: (fraction,
    estimated profiler overhead per kernel when they exceed it, an explanation). With
    ``reconciled``, the node times were made to add up to the runtime (less the session
    overhead) and the note says so."""
    if kernel_s is None or not runtime_s:
        return None, None, None
    fraction = kernel_s / runtime_s
    covered = f"kernels sum to {fraction * 100:.0f}% of the runtime"
    fixed = ("; node times are reconciled to add up to the runtime less the session overhead"
             if reconciled else "")
    if fraction > 1.05 and kernels:
        overhead = (kernel_s - runtime_s) / kernels
        if reconciled:
            return fraction, overhead, (
                f"{covered} as profiled: the profiler adds about {_fmt_s(overhead)} to each of "
                f"the {kernels} kernels per inference{fixed}")
        return fraction, overhead, (
            f"{covered}: the profiler adds about {_fmt_s(overhead)} to each of the {kernels} "
            "kernels per inference, which weighs most on tiny kernels; node times are "
            "overstated, their order and rough shares hold")
    if fraction < 0.95:
        return fraction, None, (
            f"{covered}{' as profiled' if reconciled else ''}: the rest is time outside "
            "kernels (session overhead, copies and waits between kernels) or kernels not "
            "mapped to nodes; on CUDA, kernel times are host-side launch times unless "
            f"onnxruntime was built with CUDA profiling{fixed}")
    return fraction, None, covered + fixed


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
    #: With per-node profiling: how kernel times were reconciled with the runtime.
    reconciliation: Reconciliation | None = None

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
            "nodes_time_raw_s": (None if self.reconciliation is None
                                 else self.reconciliation.kernel_time_s),
            "per_node": None if self.reconciliation is None else self.reconciliation.to_dict(),
            "nodes": None if self.nodes is None else [n.to_dict() for n in self.nodes],
        }


def _record(
    runner: Runner, window: Window, idle: Idle, sensor: Sensor, *, run_id: str,
    model_field: dict[str, Any] | None, spec: dict[str, Any] | None,
    hardware: dict[str, Any], so_far: list[Window],
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
        "cpu_time_s": window.cpu_s,
        # the CV of this run's windows so far: the last window's record has the run's CV
        "runtime_cv": cv([w.runtime_s for w in so_far]),
        "energy_j": window.energy_j,
        "energy_cv": cv([w.energy_j for w in so_far]),
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
    model_name: str | None = None,
    overheads: Overheads | None = None,
    record_fields: Mapping[str, Any] | None = None,
    last_record_fields: Mapping[str, Any] | None = None,
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

    ``per_node`` profiles the kernels in a second session, in stretches between the
    windows, and reconciles their times with the runtime (`profiling.reconcile`) using
    ``overheads`` (the session overhead, dispatch and profiler cost; measured with
    `measure_overheads` when not given). ``model_name`` is recorded as the model's
    readable name; ``record_fields`` are added to every record written and
    ``last_record_fields`` to the record of the last window of an attempt (calibration's
    work items).
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
    stack = contextlib.ExitStack()
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
        if model_field is not None and model_name is not None:
            model_field["name"] = model_name
        spec_field = None if spec is None else _jsonable(dict(spec))

        if per_node and overheads is None:
            say("session overhead")
            overheads = measure_overheads(provider, threads, device)
        idle_s = min_window if idle is None else idle
        if the_sensor.name != "none" and idle_s > 0:
            say(f"idle baseline ({idle_s:g} s, {the_sensor.name})")
        baseline = idle_baseline(the_sensor, idle_s)
        say("warm-up")
        warm_up(runner, warmup, min_window)
        profiler = None
        if per_node:
            say("warm-up (profiled session)")
            profiler = stack.enter_context(_NodeProfiler(model, runner, warmup, min_window))

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
                    rec = _record(runner, w, baseline, the_sensor, run_id=run_id,
                                  model_field=model_field, spec=spec_field, hardware=hardware,
                                  so_far=done.windows)
                    rec.update(record_fields or {})
                    if i == repeats - 1:
                        rec.update(last_record_fields or {})
                    writer.append(rec)
                if profiler is not None:  # profiled runs between the windows: one machine
                    profiler.stretch(window_s / repeats)
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
        if profiler is not None:
            say("per-node times")
            assert runtime is not None and overheads is not None
            result.nodes, result.reconciliation = profiler.finish(runtime, overheads, energy)
            result.nodes_time_s = sum(r.time_s for r in result.nodes)
            result.nodes_kernels = sum(len(r.kernels) for r in result.nodes)
            (result.nodes_coverage, result.nodes_overhead_per_kernel_s,
             result.nodes_coverage_note) = coverage(result.reconciliation.kernel_time_s,
                                                    runtime, result.nodes_kernels,
                                                    reconciled=True)
        return result
    except KeyboardInterrupt:
        raise MeasurementInterrupted(writer.written if writer else 0, out_str) from None
    finally:
        stack.close()
        if writer is not None:
            writer.close()
        if opened is not None:
            opened.close()


def measure_overheads(provider: str = "cpu", threads: int = 1, device: int = 0,
                      min_window: float = 0.1, repeats: int = 5) -> Overheads:
    """The session overhead, dispatch and profiler cost on this machine, for this provider
    and thread count (`overhead`: one- and nine-node chains of a near-empty kernel, the
    longer one also profiled)."""
    common: dict[str, Any] = {"provider": provider, "threads": threads, "device": device,
                              "sensor": "none", "min_window": min_window, "repeats": repeats,
                              "warmup": 1000, "idle": 0}
    (_, one_model), (_, chain_model) = overhead_models()
    one = measure(one_model, **common).runtime_s
    assert one is not None  # sensor none: every window counts
    chain = measure(chain_model, per_node=True, overheads=Overheads(one), **common)
    assert chain.runtime_s is not None and chain.reconciliation is not None
    return overheads_from(one, chain.runtime_s, chain.reconciliation.kernel_time_s)


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


class _NodeProfiler:
    """A second session of the model with onnxruntime's profiler on (its overhead never
    touches the windows). Its runs come in stretches between the windows, so the kernels
    and the runtime they are reconciled with are measured on the same machine state."""

    def __init__(self, model: Any, runner: Runner, warmup: int, min_window: float) -> None:
        self._tmp = temp_dir()
        tmp = self._tmp.name
        self.runner = runner
        self.opt_path = Path(tmp) / "optimized.onnx"
        self.prof = Runner(
            model if runner.path is None else runner.path,
            provider=runner.provider, threads=runner.threads, dims=runner.bindings,
            batch_size=runner.batch_size, seed=runner.seed, inputs=runner.feeds,
            device=runner.device, profile_dir=tmp, save_optimized=self.opt_path,
        )
        self.n_warm, _ = warm_up(self.prof, warmup, min_window)
        self.stretches: list[int] = []

    def __enter__(self) -> _NodeProfiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def stretch(self, seconds: float) -> None:
        n, _ = warm_up(self.prof, 1 << 30, seconds)  # at least one profiled run
        self.stretches.append(n)
        warm_up(self.runner, 2, seconds / 10)  # the caches back to the measured session

    def finish(self, runtime_s: float, overheads: Overheads, energy: float | None,
               ) -> tuple[list[NodeTiming], Reconciliation]:
        profile = parse_profile(self.prof.end_profiling(), skip_runs=self.n_warm)
        optimized = onnx.load(str(self.opt_path), load_external_data=False)
        times, rec = reconcile(profile, runtime_s, overheads.session_s,
                               stretches=self.stretches,
                               kernel_correction_s=overheads.kernel_correction_s)
        rows = node_timings(self.runner.graph_proto.graph, optimized.graph, profile, energy,
                            constants=self.runner.weight_names, kernel_times=times,
                            raw_times=profile.per_run(self.stretches))
        return rows, rec


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
