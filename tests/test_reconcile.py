"""Per-node times reconciled with the unprofiled runtime (measure.profiling.reconcile)."""

from __future__ import annotations

import pytest
from onnx import helper

from onnx_energy.measure.overhead import CHAIN, Overheads, overheads_from
from onnx_energy.measure.profiling import KernelProfile, node_timings, reconcile, spread


def _profile(times: dict[str, float]) -> KernelProfile:
    return KernelProfile({k: [v, v] for k, v in times.items()}, {k: "" for k in times}, 2,
                         [0.001, 0.001])


def test_spread_adds_one_delta_and_clamps_the_smallest_at_zero() -> None:
    times = {"a": 100e-6, "b": 50e-6, "c": 10e-6, "d": 1e-6}
    out, delta, clamped = spread(times, 141e-6)  # 20 µs too much: 5 µs off each ...
    # ... but d (1 µs) cannot lose 5 µs: it is clamped, and the other three share the rest
    assert out["d"] == 0.0 and clamped == 1
    assert delta == pytest.approx((141e-6 - 160e-6) / 3)
    assert [out[k] - times[k] for k in "abc"] == pytest.approx([delta] * 3)
    assert sum(out.values()) == pytest.approx(141e-6, rel=1e-12)
    # a positive remainder (dispatch the profiler did not see) is shared equally
    more, d2, c2 = spread(times, 181e-6)
    assert c2 == 0 and d2 == pytest.approx(5e-6)
    assert [more[k] - times[k] for k in times] == pytest.approx([5e-6] * 4)
    assert spread({}, 1.0) == ({}, 0.0, 0)
    assert spread({"a": 1.0}, 0.0)[0] == {"a": 0.0}


def test_without_profiler_cost_one_delta_makes_groups_sum_to_t_less_s_exactly() -> None:
    n = helper.make_node
    graph = helper.make_graph([
        n("Conv", ["x", "w"], ["c"], name="conv"),
        n("Relu", ["c"], ["r"], name="relu"),
        n("MatMul", ["r", "m"], ["y"], name="mm"),
        n("Softmax", ["y"], ["z"], name="softmax"),
    ], "g", [], [])
    optimized = helper.make_graph([
        n("FusedConv", ["x", "w"], ["r"], name="conv", domain="com.microsoft"),
        n("MatMul", ["r", "m"], ["y"], name="mm"),
        n("Softmax", ["y"], ["z"], name="softmax"),
    ], "g", [], [])
    raw = {"conv": 300e-6, "mm": 120e-6, "softmax": 19e-6}
    prof = _profile(raw)
    t, s = 400e-6, 7e-6
    times, rec = reconcile(prof, t, s)
    rows = node_timings(graph, optimized, prof, kernel_times=times)
    assert sum(r.time_s for r in rows) == pytest.approx(t - s, rel=1e-12)
    assert rec.kernel_time_s == pytest.approx(439e-6) and rec.kernels == 3
    assert rec.coverage == pytest.approx(439e-6 / 393e-6)
    assert rec.per_kernel_s == pytest.approx((393e-6 - 439e-6) / 3) and rec.clamped == 0
    by = {r.name: r for r in rows}
    assert by["conv + relu"].time_raw_s == pytest.approx(300e-6)
    assert by["conv + relu"].time_s == pytest.approx(300e-6 + rec.per_kernel_s)
    assert by["conv + relu"].fused and by["conv + relu"].compute == ["conv", "relu"]
    assert by["softmax"].to_dict()["time_raw_s"] == pytest.approx(19e-6)


def test_kernel_times_are_the_median_of_the_stretch_means() -> None:
    # three stretches of 2, 2 and 1 runs; the second stretch was slowed by another process
    prof = KernelProfile({"k": [1.0, 3.0, 40.0, 60.0, 2.5], "j": [1.0] * 5}, {}, 5)
    assert prof.per_run() == {"k": pytest.approx(21.3), "j": 1.0}
    assert prof.per_run([2, 2, 1]) == {"k": 2.5, "j": 1.0}
    assert prof.per_run([2, 2]) == prof.per_run()  # not the runs it holds: plain mean


def test_overheads_from_the_two_chains() -> None:
    o = overheads_from(7.5e-6, 7.5e-6 + (CHAIN - 1) * 0.3e-6, CHAIN * 2.4e-6)
    assert o.dispatch_s == pytest.approx(0.3e-6) and o.session_s == pytest.approx(7.2e-6)
    assert o.profiled_kernel_s == pytest.approx(2.4e-6)
    assert o.kernel_correction_s == pytest.approx(-2.1e-6)
    assert overheads_from(7e-6, 6e-6) == Overheads(7e-6, 0.0, None)  # noise: no negative d
    assert Overheads(7e-6).kernel_correction_s is None


def test_profiler_cost_is_taken_off_each_kernel_then_the_rest_in_proportion() -> None:
    raw = {"big": 1000e-6, "mid": 100e-6, "tiny": 1.5e-6}
    prof = _profile(raw)
    t, s, c = 1050e-6, 7e-6, -2e-6  # c = d - p: each kernel event costs 2 µs too much
    times, rec = reconcile(prof, t, s, kernel_correction_s=c)
    assert sum(times.values()) == pytest.approx(t - s, rel=1e-12)
    assert times["tiny"] == 0.0 and rec.clamped == 1  # cheaper than the profiler itself
    scale = (t - s) / (998e-6 + 98e-6)
    assert rec.scale == pytest.approx(scale) and rec.per_kernel_s == c
    assert times["big"] == pytest.approx(998e-6 * scale)
    assert times["mid"] == pytest.approx(98e-6 * scale)
    assert rec.to_dict()["scale"] == pytest.approx(scale)


def test_reconciled_groups_of_a_real_network_add_up_and_records_validate() -> None:
    import jsonschema

    from onnx_energy.calibration.networks import reference_networks
    from onnx_energy.calibration.sweep import group_records
    from onnx_energy.measure import NoSensor, measure, record_schema

    net = next(n for n in reference_networks() if n.name.startswith("resnet-basic-w16"))
    model = net.build()
    m = measure(model, sensor="none", min_window=0.12, repeats=3, warmup=5, per_node=True,
                overheads=Overheads(7e-6, 0.3e-6, 2.4e-6))
    rec = m.reconciliation
    assert m.nodes is not None and rec is not None and m.runtime_s is not None
    assert rec.session_overhead_s == 7e-6 and rec.kernels >= 8
    assert rec.per_kernel_s == pytest.approx(-2.1e-6)
    assert m.nodes_time_s == pytest.approx(m.runtime_s - 7e-6, rel=0.05)
    assert sum(r.time_raw_s or 0 for r in m.nodes) == pytest.approx(rec.kernel_time_s)
    groups = {frozenset(r.compute) for r in m.nodes}
    assert frozenset({"/conv1/Conv", "/relu/Relu"}) in groups  # Conv+Relu ran as one kernel
    records = group_records(m, model, name=net.name, item="network:x", sensor=NoSensor(),
                            hardware={"onnxruntime": "1"})
    validator = jsonschema.Draft202012Validator(record_schema())
    for r in records:
        validator.validate(r)
    assert sum(r["runtime_s"] or 0 for r in records) == pytest.approx(m.nodes_time_s)
    assert [r.get("item_complete") for r in records][-1] is True
    stem = next(r for r in records if "/conv1/Conv" in r["group"]["compute"])
    conv = next(n for n in stem["group"]["nodes"] if n["name"] == "/conv1/Conv")
    assert conv["op_type"] == "Conv" and conv["inputs"][0]["shape"] == [1, 3, 64, 64]
    assert conv["inputs"][1]["initializer"] is True
    assert stem["network_runtime_s"] == m.runtime_s and stem["model"]["name"] == net.name
