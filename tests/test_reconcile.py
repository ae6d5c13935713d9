"""Per-node times reconciled with the unprofiled runtime (measure.profiling.reconcile)."""

from __future__ import annotations

import pytest
from onnx import helper

from onnx_energy.measure.overhead import CHAIN, session_overhead_from
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


def test_reconciled_groups_sum_to_runtime_less_session_overhead_exactly() -> None:
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
    # runtime seen alongside the profile 400 µs, the windows' 420 µs: carried in proportion
    times2, rec2 = reconcile(prof, t, s, target_s=420e-6 - s)
    assert sum(times2.values()) == pytest.approx(413e-6, rel=1e-12)
    assert rec2.scale == pytest.approx(413 / 393)
    assert times2["mm"] / times["mm"] == pytest.approx(413 / 393)


def test_session_overhead_is_the_one_node_time_less_one_dispatch() -> None:
    s, dispatch = session_overhead_from(7.5e-6, 7.5e-6 + (CHAIN - 1) * 0.3e-6)
    assert dispatch == pytest.approx(0.3e-6) and s == pytest.approx(7.2e-6)
    assert session_overhead_from(7e-6, 6e-6) == (7e-6, 0.0)  # noise: no negative dispatch
def test_reconciled_groups_of_a_real_network_add_up_and_records_validate() -> None:
    import jsonschema

    from onnx_energy.calibration.networks import reference_networks
    from onnx_energy.calibration.sweep import group_records
    from onnx_energy.measure import NoSensor, measure, record_schema

    net = next(n for n in reference_networks() if n.name.startswith("resnet-basic-w16"))
    model = net.build()
    m = measure(model, sensor="none", min_window=0.12, repeats=3, warmup=5, per_node=True,
                session_overhead_s=7e-6)
    rec = m.reconciliation
    assert m.nodes is not None and rec is not None and m.runtime_s is not None
    assert rec.session_overhead_s == 7e-6 and rec.kernels >= 8
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
