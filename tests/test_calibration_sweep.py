"""The resumable calibration sweep and `onnx-energy calibrate run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_one_line_error

from onnx_energy.calibration.specs import random_specs
from onnx_energy.calibration.sweep import (
    OVERHEAD_KEY,
    Settings,
    Sweep,
    fill_items,
    finished_keys,
    interleave_sources,
    plan,
)
from onnx_energy.cli.calibrate import default_records, parse_budget
from onnx_energy.measure import measure, read_records

FAST = Settings(op_window=0.01, op_repeats=2, op_warmup=2, overhead_window=0.01,
                overhead_repeats=2)


def _specs(n: int = 3) -> list:
    return random_specs({"activation": n}, seed=5, families=["activation"])


class Counting:
    """The real `measure`, counting calls; ``interrupt_at`` raises Ctrl-C inside that call
    (after its first window was written)."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.calls = 0
        self.interrupt_at = interrupt_at

    def __call__(self, model: Any, **kw: Any) -> Any:
        self.calls += 1
        if self.calls == self.interrupt_at:
            def progress(msg: str) -> None:
                if msg.startswith("window 2/"):
                    raise KeyboardInterrupt
            kw["progress"] = progress
        return measure(model, **kw)


class FakeClock:
    """Seconds advance only when `measure` is called: each call 'takes' ``step``."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        return self.now

    def wrap(self, fn: Any) -> Any:
        def timed(*a: Any, **kw: Any) -> Any:
            self.now += self.step
            return fn(*a, **kw)
        return timed


def test_plan_interleaves_families_and_networks() -> None:
    specs = random_specs({"conv": 3, "gemm": 1, "norm": 2}, families=["conv", "gemm", "norm"])
    from onnx_energy.calibration.networks import reference_networks
    from onnx_energy.calibration.sweep import network_item

    nets = [network_item(n) for n in reference_networks()[:2]]
    items = plan(specs, nets)
    assert items[0].key == OVERHEAD_KEY
    assert [i.family for i in items[1:]] == ["conv", "gemm", "norm", "network",
                                              "conv", "norm", "network", "conv"]
    mined = [s for s in random_specs({"conv": 2}, seed=9, families=["conv"])]
    mixed = interleave_sources(mined, specs[:3] + [mined[0]])
    assert [s.key for s in mixed] == [mined[0].key, specs[0].key, mined[1].key,
                                      specs[1].key, specs[2].key]


def test_resume_skips_what_the_records_hold(tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    items = plan(_specs(), [])
    first = Counting()
    r1 = Sweep(items, records, FAST, measure_fn=first).run()
    assert r1.measured == [i.key for i in items] and not r1.left and not r1.interrupted
    assert first.calls == 3 + 3  # the two overhead chains and the longer one profiled; specs
    recs = read_records(records).records
    assert {r["item"] for r in recs if r.get("item_complete")} == {i.key for i in items}
    assert all(r["item"] for r in recs)
    o = r1.overheads
    assert o is not None and 0 < o.session_s < 1e-3 and o.profiled_kernel_s is not None
    assert 0 <= o.dispatch_s < o.profiled_kernel_s  # the profiler costs more than dispatch
    # the last window's record carries the run's CV
    op = [r for r in recs if r["kind"] == "op"]
    assert op[0]["runtime_cv"] is None and op[1]["runtime_cv"] is not None
    assert op[1]["spec"]["family"] == "activation" and op[1]["spec"]["key"] in op[1]["item"]
    # CPU time per inference, one thread: at most the wall time (plus clock granularity)
    assert all(0 < r["cpu_time_s"] <= r["runtime_s"] * 1.5 for r in op)
    second = Counting()
    r2 = Sweep(items, records, FAST, measure_fn=second).run()
    assert second.calls == 0 and r2.measured == [] and r2.already == len(items)
    assert r2.overheads is not None  # s and d read back from the records
    assert (r2.overheads.session_s, r2.overheads.dispatch_s) == pytest.approx(
        (o.session_s, o.dispatch_s))
    assert r2.overheads.profiled_kernel_s is None  # measured again only for networks
    assert len(read_records(records).records) == len(recs)
    # another thread count is another profile: nothing counts as done
    other = Sweep(items[:1], records, Settings(threads=2, overhead_window=0.01,
                                               overhead_repeats=2))
    assert other.finished("none") == (set(), None)


def test_budget_stops_before_an_item_that_would_overrun(tmp_path: Path) -> None:
    clock = FakeClock(step=1.0)  # every measure() call takes one fake second
    items = plan(_specs(4), [])
    sweep = Sweep(items, tmp_path / "r.jsonl", FAST, budget_s=5.5, clock=clock,
                  measure_fn=clock.wrap(measure))
    r = sweep.run()
    # overhead (3 calls = 3 s), then specs of 1 s each until the next would pass 5.5 s
    assert r.measured == [i.key for i in items[:3]]
    assert r.left == [i.key for i in items[3:]] and r.budget_hit
    assert sweep.estimate(items[3]) == pytest.approx(1.0)  # learnt from the measured specs
    assert r.elapsed_s == pytest.approx(5.0)
    # the next run picks up exactly what was left
    clock2 = FakeClock(step=1.0)
    r2 = Sweep(items, tmp_path / "r.jsonl", FAST, budget_s=100, clock=clock2,
               measure_fn=clock2.wrap(measure)).run()
    assert r2.measured == [i.key for i in items[3:]] and r2.already == 3


def test_fill_items_outlast_the_budget_and_are_not_work_left(tmp_path: Path) -> None:
    items = plan(_specs(2), [])
    fill = fill_items(items, 250.0, seed=5, families=["activation"],
                      counts={"activation": 2}, networks=False)
    # 250 s at 120 s a round: 3 rounds of 2 fresh specs, none repeating the plan's
    assert len(fill) == 6 and all(i.optional for i in fill)
    assert not {i.key for i in fill} & {i.key for i in items}
    clock = FakeClock(step=1.0)
    r = Sweep(items + fill, tmp_path / "r.jsonl", FAST, budget_s=7.5, clock=clock,
              measure_fn=clock.wrap(measure)).run()
    # overhead 3 s + 2 planned specs, then 2 fill specs until the next would pass 7.5 s
    assert r.planned == 3 and r.filled == 2 and r.spare == 4
    assert r.left == [] and r.budget_hit


def test_a_resumed_run_fills_its_budget_with_rounds_not_yet_recorded(
        tmp_path: Path) -> None:
    items = plan(_specs(2), [])
    first = fill_items(items, 250.0, seed=5, families=["activation"],
                       counts={"activation": 2}, networks=False)
    clock = FakeClock(step=1.0)
    Sweep(items + first, tmp_path / "r.jsonl", FAST, clock=clock,
          measure_fn=clock.wrap(measure)).run()
    done = finished_keys(tmp_path / "r.jsonl", FAST)
    assert {i.key for i in items + first} <= done
    # a second 250 s run: the 3 recorded rounds again, then 3 rounds it has not measured
    again = fill_items(items, 250.0, seed=5, families=["activation"],
                       counts={"activation": 2}, networks=False, done=done)
    assert [i.key for i in again[:6]] == [i.key for i in first]
    fresh = [i for i in again if i.key not in done]
    assert len(again) == 12 and len(fresh) == 6


def test_ctrl_c_keeps_the_finished_items_and_the_next_run_redoes_the_rest(
        tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    items = plan(_specs(), [])
    # calls: 1-3 overhead, 4 the first spec, 5 the second spec: Ctrl-C after its window 1
    r = Sweep(items, records, FAST, measure_fn=Counting(interrupt_at=5)).run()
    assert r.interrupted and r.measured == [i.key for i in items[:2]]
    assert r.left == [i.key for i in items[2:]]
    recs = read_records(records).records
    done = {x["item"] for x in recs if x.get("item_complete")}
    assert done == {OVERHEAD_KEY, items[1].key}
    partial = [x for x in recs if x["item"] == items[2].key]
    assert len(partial) == 1 and "item_complete" not in partial[0]  # its first window only
    again = Counting()
    r2 = Sweep(items, records, FAST, measure_fn=again).run()
    assert again.calls == 2 and r2.measured == [i.key for i in items[2:]]


def test_a_network_item_writes_windows_and_group_records(tmp_path: Path) -> None:
    from onnx_energy.calibration.networks import reference_networks
    from onnx_energy.calibration.sweep import network_item

    net = next(n for n in reference_networks() if n.name.startswith("resnet-basic-w16"))
    records = tmp_path / "r.jsonl"
    settings = Settings(net_window=0.05, net_repeats=2, net_warmup=2, overhead_window=0.01,
                        overhead_repeats=2)
    r = Sweep(plan([], [network_item(net)]), records, settings).run()
    assert r.measured == [OVERHEAD_KEY, f"network:{net.name}"]
    recs = [x for x in read_records(records).records if x["item"] == f"network:{net.name}"]
    windows = [x for x in recs if x["kind"] == "model"]
    groups = [x for x in recs if x["kind"] == "group"]
    assert len(windows) == 2 and windows[0]["model"]["name"] == net.name
    assert groups and groups[-1]["item_complete"] is True
    assert r.overheads is not None
    o = r.overheads
    assert all(g["group"]["session_overhead_s"] == pytest.approx(o.session_s) for g in groups)
    assert groups[0]["group"]["correction_s"] == pytest.approx(o.kernel_correction_s)
    total = sum(g["runtime_s"] or 0 for g in groups)
    t = groups[0]["network_runtime_s"]
    assert total == pytest.approx(t - o.session_s, rel=1e-6)


def test_budget_parsing() -> None:
    assert [parse_budget(t) for t in ("90s", "10m", "1h", "1h30m", "2.5m", "45", " 2M ")] == \
        [90, 600, 3600, 5400, 150, 45, 120]
    for bad in ("ten", "10x", "", "m", "10m5", "0s", "-5m"):
        with pytest.raises(ValueError):
            parse_budget(bad)
    assert default_records("out/p.json") == Path("out/p.records.jsonl")
    assert default_records("prof") == Path("prof.records.jsonl")


def _calibrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from onnx_energy.cli import main

    code = main(["calibrate", "run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_bad_options_are_one_line_errors(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    out = str(tmp_path / "p.json")
    code, o, e = _calibrate(capsys, "--budget", "10x", "--out", out)
    assert_one_line_error(code, o, e, "--budget", "10x")
    code, o, e = _calibrate(capsys, "--families", "conv,bogus", "--out", out)
    assert_one_line_error(code, o, e, "bogus", "conv_depthwise")
    code, o, e = _calibrate(capsys, "--budget", "0s", "--out", out)
    assert_one_line_error(code, o, e, "positive")


def test_cli_run_measures_fits_and_resumes(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The fit itself is tested with the fit; here: that run hands it the records it wrote.
    import onnx_energy.calibration.fit as fit
    import onnx_energy.render.prediction as prediction

    calls: list[tuple[list[Path], dict[str, Any]]] = []

    class Saved:
        def save(self, path: str) -> None:
            Path(path).write_text("{}")

    def fake_fit(paths: list[Path], **kw: Any) -> Saved:
        calls.append((list(paths), kw))
        return Saved()

    monkeypatch.setattr(fit, "fit_profile", fake_fit)
    monkeypatch.setattr(prediction, "render_profile", lambda _p: "the profile\n")
    out = tmp_path / "p.json"
    args = ("--families", "softmax", "--per-family", "2", "--no-networks", "--sensor", "none",
            "--op-window", "0.01", "--threads", "2", "--out", str(out), "-q")
    code, stdout, err = _calibrate(capsys, *args)
    assert code == 0, err
    assert "measured 3 of 3 items" in err and stdout == f"the profile\nwrote {out}\n"
    records = tmp_path / "p.records.jsonl"
    ((paths, kw),) = calls
    assert paths == [records] and out.read_text() == "{}"
    assert kw["provider"] == "cpu" and kw["threads"] == 2 and kw["sensor"] == "none"
    recs = [json.loads(line) for line in records.read_text().splitlines()]
    assert {r["item"] for r in recs if r.get("item_complete")} >= {OVERHEAD_KEY}
    assert sum(r["kind"] == "op" and r.get("item_complete") is True for r in recs) == 2
    assert not any(r["kind"] == "group" for r in recs)  # the overhead chain is no fit data
    assert {r["threads"] for r in recs} == {2}
    code, stdout, err = _calibrate(capsys, *args)
    assert code == 0 and "measured 0 of 3 items" in err and "3 already in" in err
    assert len(calls) == 2  # refitted on the same records


def _tiny_model(path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((16, 8), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
         helper.make_node("Relu", ["m"], ["y"], name="relu")], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_cli_from_model_mines_and_measures_it_in_context(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = tmp_path / "tiny.onnx"
    _tiny_model(model)
    out = str(tmp_path / "p.json")
    base = ("--from-model", str(model), "--families", "gemm", "--per-family", "0",
            "--no-networks", "--sensor", "none", "--no-fit", "--out", out, "-q")
    code, o, e = _calibrate(capsys, *base)
    assert_one_line_error(code, o, e, "batch", "--dim batch=N")  # unbound: refused up front
    code, o, e = _calibrate(capsys, *base, "--batch-size", "4")
    assert code == 0, e
    assert "mined 2 distinct configurations" in e and "measured 3 of 3 items" in e
    assert "not fitted (--no-fit)" in e and not Path(out).exists()
    recs = read_records(tmp_path / "p.records.jsonl").records
    (spec,) = {json.dumps(r["spec"], sort_keys=True) for r in recs if r["kind"] == "op"}
    assert json.loads(spec)["source"] == "mined"
    assert json.loads(spec)["inputs"][0]["shape"] == [4, 16]
    groups = [r for r in recs if r["kind"] == "group" and r["model"]["name"] == "tiny.onnx"]
    assert groups and groups[-1]["item_complete"] and groups[0]["batch_size"] == 4


def test_cli_ctrl_c_says_how_to_resume_and_exits_130(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from onnx_energy.calibration import sweep

    def interrupted(self: Sweep) -> sweep.Result:
        return sweep.Result(planned=3, already=0, measured=["a"], left=["b", "c"],
                            interrupted=True, records=str(self.records))

    monkeypatch.setattr(sweep.Sweep, "run", interrupted)
    code, o, e = _calibrate(capsys, "--out", str(tmp_path / "p.json"), "-q")
    assert code == 130 and o == ""
    assert "measured 1 of 3 items" in e and "2 left for the next run" in e
    assert "Run the same command again to resume" in e and str(tmp_path) in e


def test_records_carry_the_latest_speed_probe(tmp_path: Path) -> None:
    from onnx_energy.calibration.sweep import PROBE_EVERY_S

    clock = FakeClock(step=PROBE_EVERY_S / 2)  # every measure() call takes 15 fake seconds
    probes = iter([1e-3, 2e-3, 3e-3, 4e-3])
    taken: list[float] = []

    def probe() -> float:
        taken.append(clock.now)
        return next(probes)

    items = plan(_specs(3), [])
    Sweep(items, tmp_path / "r.jsonl", FAST, clock=clock, measure_fn=clock.wrap(measure),
          probe_fn=probe).run()
    # before the overhead (t=0); the overhead's 3 calls take 45 s, so again before the
    # first spec (t=45); each spec takes 15 s: again before the third (t=75)
    assert taken == [0.0, 45.0, 75.0]
    by_item: dict[str, set] = {}
    for r in read_records(tmp_path / "r.jsonl").records:
        by_item.setdefault(r["item"], set()).add(r["probe_s"])
    assert by_item[OVERHEAD_KEY] == {1e-3}
    assert [by_item[i.key] for i in items[1:]] == [{2e-3}, {2e-3}, {3e-3}]


def test_the_speed_probe_is_a_matmul_timed_here() -> None:
    import numpy as np
    import onnxruntime as ort

    from onnx_energy.measure.probe import median_probe, probe_model, speed_probe

    model = probe_model()
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.eye(256, dtype=np.float32)
    w = np.frombuffer(model.graph.initializer[0].raw_data, dtype=np.float32).reshape(256, 256)
    assert np.allclose(sess.run(None, {"x": x})[0], w)  # I @ w
    t = speed_probe(window=0.01, repeats=2)
    assert 1e-6 < t < 0.1  # 33.6 MFLOP: microseconds to milliseconds on any CPU
    assert median_probe([{"probe_s": 3.0}, {"probe_s": 1.0}, {"probe_s": 2.0}, {}]) == (2.0, 3)
    assert median_probe([{"runtime_s": 1.0}]) == (None, 0)
