"""The calibration sweep: measure op specs and networks, resumably, within a budget.

A sweep is a list of work items with stable keys:

- ``session-overhead``: the fixed per-run cost s, the dispatch cost per node and the
  profiler's cost per kernel (`measure.overhead`), measured first, because the networks'
  per-node times are reconciled with them;
- ``op:<spec key>``: one single-op spec, measured with short windows (records of kind
  ``op``, one per window);
- ``network:<name>`` and ``model:<sha256>``: a reference network or a ``--from-model``
  model, measured whole (kind ``model``, one record per window) and profiled per node
  (one kind ``group`` record per node group, its time reconciled with the runtime).

Every record a sweep writes carries ``item`` (the work item's key); the last record of a
finished item also carries ``item_complete: true``. An existing record file is read first,
and items finished there (same provider, threads and sensor) are skipped: a sweep resumes
where the last one stopped. Items are interleaved across families (and networks) so that a
budget cut leaves some of every family. Before each item the sweep checks that its
expected time (the mean of the items of its kind measured so far) still fits the budget;
items that do not fit are left for the next run. Ctrl-C stops the sweep: every record of a
finished item is on disk (each is fsynced), the item in progress is measured again next time.

With a speed probe (`measure.probe`), the sweep times it before its first item and again
whenever `PROBE_EVERY_S` have passed, and stamps each record with the latest time
(``probe_s``): the profile keeps their median, the machine's speed while it was calibrated.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onnx import ModelProto

from ..errors import MeasurementInterrupted
from ..measure.fingerprint import hardware_fingerprint
from ..measure.measurement import Measurement, measure
from ..measure.overhead import CHAIN, Overheads, overhead_models, overheads_from
from ..measure.overhead import NAMES as OVERHEAD_NAMES
from ..measure.protocol import utc_now
from ..measure.records import SCHEMA_ID, RecordWriter, read_records
from ..measure.sensors import Sensor, open_sensor
from .build import build_model, spec_of_node
from .networks import Network
from .specs import FAMILIES, OpSpec

OVERHEAD_KEY = "session-overhead"
#: Prior time estimates per item kind (seconds), before any item of the kind was measured.
PRIOR_S = {"overhead": 1.5, "op": 0.6, "network": 5.0}
#: Seconds between two timings of the speed probe (each about 0.4 s: 1% of a sweep).
PROBE_EVERY_S = 30.0


@dataclass
class Settings:
    """How items are measured. Ops get short windows (their CV is recorded); networks get
    longer ones and per-node profiling."""

    provider: str = "cpu"
    threads: int = 1
    device: int = 0
    seed: int = 0
    op_window: float = 0.1
    op_repeats: int = 3
    op_warmup: int = 20
    net_window: float = 0.3
    net_repeats: int = 3
    net_warmup: int = 10
    overhead_window: float = 0.1
    overhead_repeats: int = 5
    dims: Mapping[str, int] = field(default_factory=dict)
    batch_size: int | None = None


@dataclass
class Item:
    """One unit of work: a spec, a network, a model file, or the session overhead."""

    key: str
    kind: str  # overhead | op | network
    family: str
    label: str
    spec: OpSpec | None = None
    network: Network | None = None
    path: str | None = None
    #: A model file's bindings: the --dim values its inputs use, and --batch-size.
    dims: dict[str, int] = field(default_factory=dict)
    batch_size: int | None = None
    #: Filling a budget (`fill_items`): not "left for the next run" when the budget ends.
    optional: bool = False


def spec_item(spec: OpSpec) -> Item:
    return Item(f"op:{spec.key}", "op", spec.family, spec.label(), spec=spec)


def network_item(net: Network) -> Item:
    return Item(f"network:{net.name}", "network", "network", net.name, network=net)


def model_item(path: str | os.PathLike[str], settings: Settings) -> Item:
    """A ``--from-model`` model as a work item, its dims bound (or a BindingError now, not
    when the sweep reaches it)."""
    from ..errors import BindingError
    from ..graph import bind_dims, load_model
    from ..measure.runner import sha256_file

    loaded = load_model(path)
    dims = {k: v for k, v in settings.dims.items() if k in loaded.symbolic_input_dims()}
    bind_dims(loaded, dims, settings.batch_size)
    unbound = loaded.symbolic_input_dims()
    if unbound:
        hint = " ".join(f"--dim {d}=N" for d in unbound)
        raise BindingError(f"{path}: input dims {', '.join(unbound)} are not bound; pass {hint} "
                           "(or --batch-size N for a leading one)")
    digest = sha256_file(path)
    binds = ",".join(f"{k}={v}" for k, v in sorted(dims.items()))
    if settings.batch_size is not None:
        binds += f",batch={settings.batch_size}"
    return Item(f"model:{digest[:16]}:{binds.strip(',')}", "network", "network",
                Path(path).name, path=str(path), dims=dims, batch_size=settings.batch_size)


def plan(specs: Sequence[OpSpec], networks: Sequence[Item]) -> list[Item]:
    """The session overhead first, then one item per family in turn (the families in
    `FAMILIES` order, then a network), so that any prefix covers every family."""
    queues: dict[str, list[Item]] = defaultdict(list)
    for spec in specs:
        queues[spec.family].append(spec_item(spec))
    order = [f for f in FAMILIES if f in queues] + [f for f in queues if f not in FAMILIES]
    lanes = [queues[f] for f in order] + [list(networks)]
    items = [Item(OVERHEAD_KEY, "overhead", "overhead", "session overhead")]
    for row in itertools.zip_longest(*lanes):
        items.extend(i for i in row if i is not None)
    return items


#: Seconds of budget per fill round (`fill_items`): about what one round takes here.
FILL_ROUND_S = 120.0
#: Network variations per fill round.
FILL_NETWORKS = 15
#: At most this many fill rounds (a bound on resuming a record file forever).
FILL_ROUNDS_MAX = 200


def fill_items(planned: Sequence[Item], budget_s: float, *, seed: int,
               families: Sequence[str], counts: Mapping[str, int] | None = None,
               networks: bool = True, done: Collection[str] = ()) -> list[Item]:
    """What a budgeted sweep measures once its plan is done: rounds of fresh random specs
    (seeds ``seed + 1``, ``seed + 2``, ...) and network variations, interleaved like the
    plan, enough to outlast the budget. They are optional: the budget ends them without
    leaving work for the next run, and a resumed run continues them: rounds whose items
    are all in ``done`` (the record file's finished keys) do not count towards the budget."""
    from .networks import random_networks
    from .specs import random_specs

    wanted = max(1, math.ceil(budget_s / FILL_ROUND_S))
    seen = {i.key for i in planned}
    nets = random_networks(FILL_ROUNDS_MAX * FILL_NETWORKS, seed) if networks else iter(())
    out: list[Item] = []
    fresh = 0
    for k in range(FILL_ROUNDS_MAX):
        specs = random_specs(counts, seed=seed + 1 + k, families=families)
        round_nets = [network_item(n) for n in itertools.islice(nets, FILL_NETWORKS)]
        new = []
        for item in plan(specs, round_nets):
            if item.kind != "overhead" and item.key not in seen:
                seen.add(item.key)
                new.append(dataclasses.replace(item, optional=True))
        out += new
        fresh += any(i.key not in done for i in new)
        if fresh >= wanted:
            break
    return out


def interleave_sources(mined: Sequence[OpSpec], drawn: Sequence[OpSpec]) -> list[OpSpec]:
    """Mined and random specs alternately within each family (mined first), without
    duplicates: a budget cut keeps some of each."""
    out: list[OpSpec] = []
    seen: set[str] = set()
    by_family: dict[str, tuple[list[OpSpec], list[OpSpec]]] = defaultdict(lambda: ([], []))
    for s in mined:
        by_family[s.family][0].append(s)
    for s in drawn:
        by_family[s.family][1].append(s)
    for fam in list(by_family):
        a, b = by_family[fam]
        for s in (x for pair in itertools.zip_longest(a, b) for x in pair if x is not None):
            if s.key not in seen:
                seen.add(s.key)
                out.append(s)
    return out


@dataclass
class Result:
    """What a sweep did."""

    planned: int
    already: int
    measured: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    budget_hit: bool = False
    #: Optional (budget-filling) items measured, and those the budget did not reach.
    filled: int = 0
    spare: int = 0
    elapsed_s: float = 0.0
    overheads: Overheads | None = None
    records: str = ""
    #: The sensor the records name (``none`` without one).
    sensor: str = ""
    by_family: dict[str, int] = field(default_factory=dict)


Clock = Callable[[], float]
MeasureFn = Callable[..., Measurement]


def finished_keys(records: str | os.PathLike[str], settings: Settings,
                  sensor_name: str | None = None) -> set[str]:
    """Keys of the items a record file holds, finished, for these settings' provider and
    thread count (and sensor, when named)."""
    return {r["item"] for r in _item_records(Path(records), settings, sensor_name)
            if r.get("item_complete")}


def _item_records(path: Path, s: Settings, sensor_name: str | None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [r for r in read_records(path).records
            if r.get("provider") == s.provider and r.get("threads") == s.threads
            and (sensor_name is None or r.get("sensor") == sensor_name)
            and isinstance(r.get("item"), str)]


class Sweep:
    """Runs items into a record file (see the module docstring)."""

    def __init__(self, items: Sequence[Item], records: str | os.PathLike[str],
                 settings: Settings | None = None, *, sensor: str | Sensor = "none",
                 budget_s: float | None = None, clock: Clock = time.monotonic,
                 measure_fn: MeasureFn = measure,
                 progress: Callable[[str], None] | None = None,
                 probe_fn: Callable[[], float] | None = None) -> None:
        self.items = list(items)
        self.records = Path(records)
        self.settings = settings or Settings()
        self.sensor_choice = sensor
        self.budget_s = budget_s
        self.clock = clock
        self.measure = measure_fn
        self.say = progress or (lambda _msg: None)
        self.probe = probe_fn
        self._probed: tuple[float, float] | None = None  # (when, seconds per probe run)
        self._times: dict[tuple[str, str], list[float]] = defaultdict(list)

    # ------------------------------------------------------------------ resume

    def finished(self, sensor_name: str) -> tuple[set[str], Overheads | None]:
        """Keys of the items this record file already holds, finished, for this provider,
        thread count and sensor; and the overheads it recorded, if any."""
        recs = _item_records(self.records, self.settings, sensor_name)
        done = {r["item"] for r in recs if r.get("item_complete")}
        overhead = None
        if OVERHEAD_KEY in done:
            overhead = _overhead_from_records(recs)
        return done, overhead

    # ------------------------------------------------------------------ running

    def estimate(self, item: Item) -> float:
        own = self._times.get((item.kind, item.family))
        if own:
            return sum(own) / len(own)
        kind = [t for (k, _f), ts in self._times.items() if k == item.kind for t in ts]
        if kind:
            return sum(kind) / len(kind)
        return PRIOR_S[item.kind]

    def run(self) -> Result:
        sensor, opened = self._open_sensor()
        try:
            return self._run(sensor)
        finally:
            if opened:
                sensor.close()

    def _open_sensor(self) -> tuple[Sensor, bool]:
        if isinstance(self.sensor_choice, Sensor):
            return self.sensor_choice, False
        sensor, _notes = open_sensor(self.sensor_choice, provider=self.settings.provider,
                                     device=self.settings.device)
        return sensor, True

    def _run(self, sensor: Sensor) -> Result:
        start = self.clock()
        done, overhead = self.finished(sensor.name)
        todo = [i for i in self.items if i.key not in done]
        if overhead is not None and any(i.kind == "network" for i in todo):
            # s and d come back from the records; the profiler's cost is measured again
            overhead = dataclasses.replace(
                overhead, profiled_kernel_s=self._profiled_chain(sensor) / CHAIN)
        required = [i for i in self.items if not i.optional]
        result = Result(planned=len(required),
                        already=sum(1 for i in required if i.key in done),
                        overheads=overhead, records=str(self.records), sensor=sensor.name)
        self._hardware = hardware_fingerprint(self.settings.provider, self.settings.device)
        for n, item in enumerate(todo):
            elapsed = self.clock() - start
            if self.budget_s is not None and elapsed + self.estimate(item) > self.budget_s:
                if item.optional:
                    result.spare += 1
                else:
                    result.left.append(item.key)
                result.budget_hit = True
                continue
            self.say(self._progress(n, todo, elapsed, item))
            t0 = self.clock()
            try:
                self._probe_if_due()
                if item.kind == "overhead":
                    result.overheads = self._measure_overhead(sensor)
                elif item.kind == "op":
                    self._measure_op(item, sensor)
                else:
                    if result.overheads is None:
                        raise RuntimeError("the session overhead was not measured")
                    self._measure_network(item, sensor, result.overheads)
            except (KeyboardInterrupt, MeasurementInterrupted):
                result.interrupted = True
                result.left.extend(i.key for i in todo[n:] if not i.optional)
                break
            except Exception as exc:  # one bad spec or model must not end the sweep
                if item.kind == "overhead":
                    raise
                result.failed[item.key] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                continue
            self._times[(item.kind, item.family)].append(self.clock() - t0)
            result.measured.append(item.key)
            result.filled += item.optional
            result.by_family[item.family] = result.by_family.get(item.family, 0) + 1
        result.elapsed_s = self.clock() - start
        return result

    def _progress(self, n: int, todo: Sequence[Item], elapsed: float, item: Item) -> str:
        remaining = sum(self.estimate(i) for i in todo[n:])
        if self.budget_s is not None:
            remaining = min(remaining, max(0.0, self.budget_s - elapsed))
        return (f"[{n + 1}/{len(todo)}] {item.family}: {item.label} · "
                f"{_clock_text(elapsed)} elapsed · ETA {_clock_text(remaining)}")

    def _probe_if_due(self) -> None:
        if self.probe is None:
            return
        now = self.clock()
        if self._probed is None or now - self._probed[0] >= PROBE_EVERY_S:
            self._probed = (now, self.probe())

    def _stamp(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Record fields with the latest speed probe, where one was timed."""
        return fields if self._probed is None else {**fields, "probe_s": self._probed[1]}

    def _common(self, sensor: Sensor) -> dict[str, Any]:
        s = self.settings
        return {"provider": s.provider, "threads": s.threads, "device": s.device,
                "sensor": sensor, "seed": s.seed, "out": self.records}

    def _measure_overhead(self, sensor: Sensor) -> Overheads:
        s = self.settings
        (one_name, one_model), (chain_name, chain_model) = overhead_models()
        common = {**self._common(sensor), "min_window": s.overhead_window,
                  "repeats": s.overhead_repeats, "warmup": 1000, "idle": 0,
                  "record_fields": self._stamp({"item": OVERHEAD_KEY})}
        one = self.measure(one_model, model_name=one_name, **common)
        assert one.runtime_s is not None  # every window of a sensorless run counts
        last = {"item_complete": True}
        chain = self.measure(chain_model, model_name=chain_name, last_record_fields=last,
                             **common)
        assert chain.runtime_s is not None
        return overheads_from(one.runtime_s, chain.runtime_s, self._profiled_chain(sensor))

    def _profiled_chain(self, sensor: Sensor) -> float:
        """The profiled kernel time of the nine-node chain (p times nine), not recorded:
        its nine tiny Relu kernels are no data for the fit."""
        s = self.settings
        _, chain_model = overhead_models()[1]
        common = {**self._common(sensor), "out": None}
        m = self.measure(chain_model, **common, min_window=s.overhead_window,
                         repeats=s.overhead_repeats, warmup=1000, idle=0, per_node=True,
                         overheads=Overheads(0.0))
        assert m.reconciliation is not None
        return m.reconciliation.kernel_time_s

    def _write(self, records: list[dict[str, Any]]) -> None:
        with RecordWriter(self.records) as writer:
            for rec in records:
                writer.append(rec)

    def _measure_op(self, item: Item, sensor: Sensor) -> None:
        assert item.spec is not None
        s = self.settings
        self.measure(build_model(item.spec), **self._common(sensor), spec=item.spec.to_json(),
                     min_window=s.op_window, repeats=s.op_repeats, warmup=s.op_warmup,
                     idle=s.op_window if sensor.name != "none" else 0,
                     record_fields=self._stamp({"item": item.key}),
                     last_record_fields={"item_complete": True})

    def _measure_network(self, item: Item, sensor: Sensor, overheads: Overheads) -> None:
        s = self.settings
        model: str | ModelProto
        if item.network is not None:
            model, name = item.network.build(), item.network.name
            dims, batch = None, None
        else:
            assert item.path is not None
            model, name = item.path, Path(item.path).name
            dims, batch = dict(item.dims), item.batch_size
        m = self.measure(model, **self._common(sensor), dims=dims, batch_size=batch,
                         min_window=s.net_window, repeats=s.net_repeats, warmup=s.net_warmup,
                         idle=s.net_window if sensor.name != "none" else 0, per_node=True,
                         overheads=overheads, model_name=name,
                         record_fields=self._stamp({"item": item.key}))
        groups = group_records(m, model, name=name, item=item.key, sensor=sensor,
                               hardware=self._hardware, dims=dims, batch_size=batch)
        self._write([self._stamp(g) for g in groups])


def _overhead_from_records(records: Iterable[dict[str, Any]]) -> Overheads | None:
    """s and d from the overhead item's records: the medians of the two chains' windows in
    the run that completed the item (the profiler's cost p is not recorded)."""
    import statistics

    recs = [r for r in records if r.get("item") == OVERHEAD_KEY and r.get("kind") == "model"]
    if not any(r.get("item_complete") for r in recs):
        return None
    runs: dict[str, list[float]] = defaultdict(list)
    for r in recs:
        if r.get("runtime_s"):
            runs[(r.get("model") or {}).get("name") or ""].append(r["runtime_s"])
    if not all(runs.get(n) for n in OVERHEAD_NAMES):
        return None
    one, chain = (statistics.median(runs[n]) for n in OVERHEAD_NAMES)
    return overheads_from(one, chain)


def group_records(m: Measurement, model: str | ModelProto, *, name: str, item: str,
                  sensor: Sensor, hardware: Mapping[str, Any],
                  dims: Mapping[str, int] | None = None,
                  batch_size: int | None = None) -> list[dict[str, Any]]:
    """One kind ``group`` record per timed node group of a profiled measurement: the
    group's reconciled time, its raw profiler time, and its member nodes as specs."""
    assert m.nodes is not None and m.reconciliation is not None
    nodes = _analysed_nodes(model, dims, batch_size)
    rec = m.reconciliation
    out: list[dict[str, Any]] = []
    stamp = utc_now()
    for row in m.nodes:
        if not row.kernels:  # constant-folded or eliminated: nothing ran
            continue
        members = [nodes[n] for n in row.nodes if n in nodes]
        out.append({
            "schema": SCHEMA_ID, "kind": "group",
            "runner": {"name": "onnxruntime", "version": hardware.get("onnxruntime")},
            "run_id": m.run_id or uuid.uuid4().hex, "window": None, "timestamp": stamp,
            "model": {"path": m.model, "sha256": m.model_sha256, "name": name},
            "spec": None,
            "group": {
                "name": row.name, "op_type": row.op_type, "kernels": row.kernels,
                "fused": row.fused, "inserted": row.inserted, "nodes": members,
                "compute": row.compute, "runtime_raw_s": row.time_raw_s,
                "share": row.share, "session_overhead_s": rec.session_overhead_s,
                "correction_s": rec.per_kernel_s, "scale": rec.scale,
                "coverage": rec.coverage,
            },
            "provider": m.provider, "threads": m.threads, "dims": m.dims,
            "batch_size": m.batch_size, "inputs": m.inputs, "seed": m.seed,
            "sensor": sensor.name, "sensor_detail": sensor.describe(),
            "estimate": sensor.estimate, "iterations": None, "window_s": None,
            # zero after reconciliation: cheaper than the profiler's own cost per kernel
            "runtime_s": row.time_s if row.time_s > 0 else None,
            "runtime_cv": None, "energy_j": None, "energy_cv": None,
            "energy_dynamic_j": None, "power_w": None, "idle_power_w": None,
            "network_runtime_s": m.runtime_s, "hardware": dict(hardware), "item": item,
        })
    if out:
        out[-1]["item_complete"] = True
    return out


def _analysed_nodes(model: str | ModelProto, dims: Mapping[str, int] | None,
                    batch_size: int | None) -> dict[str, dict[str, Any]]:
    """Each node's JSON spec (with its name), from the analysis pipeline's shapes."""
    from ..graph import bind_dims, load_model
    from ..passes.control_flow import prepare as prepare_control_flow
    from ..passes.pipeline import run_pipeline

    loaded = load_model(model)
    prepare_control_flow(loaded)
    bind_dims(loaded, {k: v for k, v in (dims or {}).items()
                       if k in loaded.symbolic_input_dims()}, batch_size)
    graph = run_pipeline(loaded)
    weights = set(loaded.weights) | {t.name for t in loaded.proto.graph.initializer}
    tensors, values = graph.shaped.tensors, graph.shaped.values
    opset = loaded.opsets.get("", 17)
    out = {}
    for c in graph.costs:
        node = c.node
        ins = [tensors.get(t) if t else None for t in node.inputs]
        outs = [tensors.get(t) if t else None for t in node.outputs]
        out[node.name] = spec_of_node(node, ins, outs, initializers=weights, values=values,
                                      opset=opset, name=True)
    return out


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


__all__ = ["OVERHEAD_KEY", "Item", "Result", "Settings", "Sweep", "group_records",
           "interleave_sources", "model_item", "network_item", "plan", "spec_item",
           "utc_now"]
