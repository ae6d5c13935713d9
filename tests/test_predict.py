"""Calibrated prediction from a hand-made profile: values, intervals, fusion, warnings."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from conftest import make_model, run_cli, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.fusion import NO_FUSION, default_rules
from onnx_energy.machine import machine_fingerprint
from onnx_energy.profile import FittedMap, KeyModels, Profile

F = TensorProto.FLOAT
SIGMA2 = 0.01
T90 = 1.645


def flops_map(scale_s: float, target: str = "runtime_s") -> FittedMap:
    """target = scale_s * (1 + flops), with log residual variance SIGMA2, exact coefs."""
    return FittedMap(target=target, transform="log", features=["flops"], log_features=[True],
                     mean=[0.0], scale=[1.0], powers=[[0], [1]],
                     coef=[math.log(scale_s), 1.0], cov=[[0.0, 0.0], [0.0, 0.0]],
                     sigma2=SIGMA2, dof=100, t_quantile=T90, low=[0.0], high=[30.0])


def profile(energy: bool = False, hardware: dict | None = None, fusion=None) -> Profile:
    conv = KeyModels("Conv", "kernel", "conv", runtime=flops_map(2e-9))
    generic = KeyModels("generic", "generic", "generic", runtime=flops_map(1e-9))
    if energy:
        for km in (conv, generic):
            km.energy = flops_map(40e-9, "energy_j")
            km.energy_form = "direct"
    return Profile(name="hand", kind="calibrated", provider="cpu", threads=1,
                   sensor="rapl" if energy else "none", runner="onnxruntime",
                   hardware=hardware if hardware is not None else dict(machine_fingerprint()),
                   confidence=0.9, fusion=fusion or default_rules("onnxruntime", "cpu"),
                   models={"Conv": conv, "generic": generic}, session_overhead_s=5e-6)


def model():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "g"], ["y"], name="fc", transB=1)]
    return make_model(nodes, [("x", [1, 2, 4, 4], F)], [("y", None, F)],
                      {"w": weights(3, 2, 3, 3), "g": weights(5, 48)})


# hand counts: conv 3x4x4 outputs of 2x3x3 MACs = 864 MACs, 1728 FLOPs, 48 relu compares;
# gemm 5x48 MACs = 240, 480 FLOPs; flatten moves data only.
CONV_GROUP_FLOPS = 1728 + 48
GEMM_FLOPS = 480


def test_runtime_per_kernel_and_in_total():
    a = onnx_energy.analyze(model(), profile=profile())
    by = {n.name: p for n, p in zip(a.nodes, a.prediction.nodes, strict=True)}
    conv_t = 2e-9 * (1 + CONV_GROUP_FLOPS)
    gemm_t = 1e-9 * (1 + GEMM_FLOPS)
    flat_t = 1e-9 * 1  # zero FLOPs: the fallback's fixed cost
    assert by["conv"].runtime_s == pytest.approx(conv_t, rel=1e-12)
    assert by["conv"].predictor == "Conv" and by["conv"].group == "conv + relu"
    assert by["relu"].runtime_s == 0.0 and by["relu"].group == "conv + relu"
    assert by["fc"].runtime_s == pytest.approx(gemm_t) and by["fc"].predictor == "fallback"
    assert by["flat"].runtime_s == pytest.approx(flat_t)
    total = conv_t + gemm_t + flat_t + 5e-6
    assert a.prediction.totals.runtime_s == pytest.approx(total)
    # node interval: exp(±t·σ); totals: normal quantile × sqrt(Σ y² (e^σ² − 1))
    lo, hi = by["conv"].runtime_s_interval
    assert lo == pytest.approx(conv_t * math.exp(-T90 * math.sqrt(SIGMA2)))
    assert hi == pytest.approx(conv_t * math.exp(T90 * math.sqrt(SIGMA2)))
    z = statistics.NormalDist().inv_cdf(0.95)
    half = z * math.sqrt(math.expm1(SIGMA2) * (conv_t ** 2 + gemm_t ** 2 + flat_t ** 2))
    assert a.prediction.totals.runtime_s_interval == pytest.approx([total - half, total + half])
    assert a.prediction.totals.fallback_kernels == 2
    assert a.prediction.totals.energy_j is None
    assert any("no energy model" in w for w in a.prediction.warnings)


def test_without_fusion_the_relu_is_its_own_kernel():
    a = onnx_energy.analyze(model(), profile=profile(fusion=NO_FUSION))
    by = {n.name: p for n, p in zip(a.nodes, a.prediction.nodes, strict=True)}
    assert by["conv"].runtime_s == pytest.approx(2e-9 * (1 + 1728))
    assert by["relu"].runtime_s == pytest.approx(1e-9 * (1 + 48))
    assert by["relu"].predictor == "fallback" and by["relu"].group == "relu"


def test_energy_and_power_from_an_energy_map():
    a = onnx_energy.analyze(model(), profile=profile(energy=True))
    t = a.prediction.totals
    e = 40e-9 * ((1 + CONV_GROUP_FLOPS) + (1 + GEMM_FLOPS) + 1)
    assert t.energy_j == pytest.approx(e)
    assert t.power_w == pytest.approx(e / t.runtime_s)
    conv = a.prediction.nodes[0]
    assert conv.power_w == pytest.approx(20.0)  # 40 nJ / 2 ns per (1 + FLOP)


def test_json_fields_and_the_profile_block(capsys, tmp_path):
    path = tmp_path / "hand.json"
    profile(energy=True).save(path)
    mpath = tmp_path / "m.onnx"
    mpath.write_bytes(model().SerializeToString())
    code, out, err = run_cli(capsys, str(mpath), "--profile", str(path), "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert {k: d["profile"][k] for k in ("name", "kind", "provider", "threads", "sensor",
                                         "fingerprint_match")} == {
        "name": "hand", "kind": "calibrated", "provider": "cpu", "threads": 1,
        "sensor": "rapl", "fingerprint_match": True}
    node = d["nodes"][0]
    for key in ("runtime_s", "power_w", "energy_j", "runtime_s_interval", "energy_j_interval",
                "group", "predictor"):
        assert key in node and key in d["totals"] or key in ("group", "predictor")
    assert node["group"] == "conv + relu" and node["predictor"] == "Conv"
    assert d["totals"]["runtime_s"] == pytest.approx(
        2e-9 * (1 + CONV_GROUP_FLOPS) + 1e-9 * (2 + GEMM_FLOPS) + 5e-6)


def test_a_profile_from_another_machine_is_used_with_a_warning():
    a = onnx_energy.analyze(model(), profile=profile(hardware={"cpu_model": "Other CPU 9000"}))
    assert a.prediction.profile["fingerprint_match"] is False
    assert any("Other CPU 9000 (profile)" in w for w in a.prediction.warnings)
    assert a.prediction.totals.runtime_s > 0


def test_table_shows_time_energy_and_shares(capsys, tmp_path):
    path = tmp_path / "hand.json"
    profile(energy=True).save(path)
    mpath = tmp_path / "m.onnx"
    mpath.write_bytes(model().SerializeToString())
    code, out, err = run_cli(capsys, str(mpath), "--profile", str(path))
    assert code == 0, err
    assert "predicted with profile hand (calibrated, cpu, 1 thread(s), sensor rapl)" in out
    assert "90% interval" in out
    section = out.split("predicted with profile", 1)[1].splitlines()
    conv = next(s for s in section if s.strip().startswith("Conv "))
    total_t = 2e-9 * (1 + CONV_GROUP_FLOPS) + 1e-9 * (2 + GEMM_FLOPS)
    assert f"{2e-9 * (1 + CONV_GROUP_FLOPS) / total_t * 100:.1f}%" in conv


def test_bad_profile_is_one_line_error(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something/else"}')
    mpath = tmp_path / "m.onnx"
    mpath.write_bytes(model().SerializeToString())
    code, out, err = run_cli(capsys, str(mpath), "--profile", str(bad))
    assert code == 2 and out == "" and err.count("\n") == 1 and "not an onnx-energy profile" in err
    code, out, err = run_cli(capsys, str(mpath), "--profile", "no-such-profile-name")
    assert code == 2 and "no profile 'no-such-profile-name'" in err


def test_load_profile_is_public_and_takes_paths_and_names(tmp_path, monkeypatch):
    path = tmp_path / "hand.json"
    profile(energy=True).save(path)
    loaded = onnx_energy.load_profile(path)
    assert isinstance(loaded, onnx_energy.Profile) and loaded.name == "hand"
    monkeypatch.setenv("ONNX_ENERGY_PROFILES", str(tmp_path))
    by_name = onnx_energy.load_profile("hand")
    a = onnx_energy.analyze(model(), profile=by_name)
    assert a.prediction.totals.energy_j == pytest.approx(
        40e-9 * ((1 + CONV_GROUP_FLOPS) + (1 + GEMM_FLOPS) + 1))
    assert onnx_energy.load_profile("theoretical").kind == "theoretical"


def _with_conv_maps(main: FittedMap, safe: FittedMap) -> Profile:
    p = profile()
    p.models["Conv"].runtime = main
    p.models["Conv"].extrapolation["runtime_s"] = safe
    return p


def test_a_kernel_outside_its_maps_range_uses_the_extrapolation_map():
    main = flops_map(7e-9)
    main.high = [5.0]  # log1p(FLOPs) of the conv group is 7.48: outside
    a = onnx_energy.analyze(model(), profile=_with_conv_maps(main, flops_map(2e-9)))
    conv = a.prediction.nodes[0]
    assert conv.runtime_s == pytest.approx(2e-9 * (1 + CONV_GROUP_FLOPS))
    assert conv.extrapolated and a.prediction.totals.extrapolated_kernels == 1


def test_an_implausible_swing_inside_the_range_falls_back_to_the_linear_map():
    swing = flops_map(2e-9 * 100)  # inside the range, but 100x the linear map
    a = onnx_energy.analyze(model(), profile=_with_conv_maps(swing, flops_map(2e-9)))
    assert a.prediction.nodes[0].runtime_s == pytest.approx(2e-9 * (1 + CONV_GROUP_FLOPS))
    assert a.prediction.nodes[0].extrapolated
    near = flops_map(2e-9 * 3)  # within the 4x envelope: the fitted map stands
    b = onnx_energy.analyze(model(), profile=_with_conv_maps(near, flops_map(2e-9)))
    assert b.prediction.nodes[0].runtime_s == pytest.approx(6e-9 * (1 + CONV_GROUP_FLOPS))
    assert not b.prediction.nodes[0].extrapolated


def linear_map(feature: str, per_unit_s: float) -> FittedMap:
    """runtime = per_unit_s * feature, exactly (a relative-error linear map, no intercept)."""
    return FittedMap(target="runtime_s", transform="relative", features=[feature],
                     log_features=[False], mean=[0.0], scale=[1.0], powers=[[1]],
                     coef=[per_unit_s], cov=[[0.0]], sigma2=0.0, dof=100, t_quantile=T90)


def regime_model():
    nodes = [helper.make_node("Conv", ["x", "dw"], ["d"], name="depthwise", group=4,
                              pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["d", "pw"], ["p"], name="pointwise"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "g"], ["y"], name="fc", transB=1)]
    return make_model(nodes, [("x", [1, 4, 4, 4], F)], [("y", None, F)],
                      {"dw": weights(4, 1, 3, 3), "pw": weights(8, 4, 1, 1),
                       "g": weights(5, 128)})


def test_depthwise_convs_and_gemvs_have_keys_of_their_own():
    base = profile()
    base.models["Conv (depthwise)"] = KeyModels("Conv (depthwise)", "kernel",
                                                "conv_depthwise",
                                                runtime=linear_map("macs", 1e-6))
    base.models["Gemm (gemv)"] = KeyModels("Gemm (gemv)", "kernel", "gemm_gemv",
                                           runtime=linear_map("bytes", 1e-9))
    a = onnx_energy.analyze(regime_model(), profile=base)
    by = {n.name: p for n, p in zip(a.nodes, a.prediction.nodes, strict=True)}
    assert by["depthwise"].predictor == "Conv (depthwise)"
    assert by["depthwise"].runtime_s == pytest.approx(1e-6 * 4 * 16 * 9)  # 576 MACs
    assert by["pointwise"].predictor == "Conv"  # a dense conv keeps the Conv map
    # a 1-row Gemm streams its weights: 5x128 weights + 5 outputs... all as float32 bytes
    gemv_bytes = 4 * (128 + 5 * 128 + 5)
    assert by["fc"].predictor == "Gemm (gemv)"
    assert by["fc"].runtime_s == pytest.approx(1e-9 * gemv_bytes)


def test_bytes_beyond_the_calibrated_cache_are_a_feature_of_their_own():
    hardware = dict(machine_fingerprint(), cpu_cache_bytes=1000)
    base = profile(hardware=hardware)
    base.models["Gemm (gemv)"] = KeyModels("Gemm (gemv)", "kernel", "gemm_gemv",
                                           runtime=linear_map("bytes_uncached", 1e-9))
    a = onnx_energy.analyze(regime_model(), profile=base)
    fc = a.prediction.nodes[-1]
    assert fc.runtime_s == pytest.approx(1e-9 * (4 * (128 + 5 * 128 + 5) - 1000))
    assert base.cache_bytes == 1000.0
    base.provider = "cuda"  # the CPU's cache says nothing of a GPU run
    assert base.cache_bytes is None


def test_the_last_level_cache_is_read_from_sysfs(tmp_path):
    from onnx_energy.machine import cache_bytes

    for i, size in enumerate(["32K", "512K", "32768K"]):
        (tmp_path / f"index{i}").mkdir()
        (tmp_path / f"index{i}" / "size").write_text(size + "\n")
    assert cache_bytes(str(tmp_path)) == 32768 * 1024
    assert cache_bytes(str(tmp_path / "missing")) is None


def test_weights_a_network_reads_cold_are_a_feature_of_their_own():
    hardware = dict(machine_fingerprint(), cpu_cache_bytes=10**6)
    base = profile(hardware=hardware)
    base.models["Gemm (gemv)"] = KeyModels("Gemm (gemv)", "kernel", "gemm_gemv",
                                           runtime=linear_map("bytes_cold", 1e-9))
    a = onnx_energy.analyze(regime_model(), profile=base)
    fc = a.prediction.nodes[-1]
    assert fc.runtime_s == pytest.approx(1e-9 * 4 * 5 * 128)  # its weights, not its input
    # beyond the cache a network's and a lone op's weights both stream: nothing extra
    small = profile(hardware=dict(machine_fingerprint(), cpu_cache_bytes=1000))
    small.models["Gemm (gemv)"] = base.models["Gemm (gemv)"]
    fc = onnx_energy.analyze(regime_model(), profile=small).prediction.nodes[-1]
    assert fc.runtime_s == pytest.approx(0.0, abs=1e-15)


def test_a_matmul_on_one_weight_matrix_is_one_gemm_of_all_its_rows():
    # (12, 1, 16) tokens times a 16 x 8 weight: one 12-row GEMM (a ViT's attention input),
    # not twelve one-row GEMVs; a batched product of two activations keeps its batch
    nodes = [helper.make_node("MatMul", ["x", "w"], ["p"], name="proj"),
             helper.make_node("Reshape", ["p", "shape"], ["q"], name="heads"),
             helper.make_node("MatMul", ["q", "k"], ["y"], name="scores")]
    m = make_model(nodes, [("x", [12, 1, 16], F), ("k", [3, 8, 4], F)], [("y", None, F)],
                   {"w": weights(16, 8)})
    m.graph.initializer.append(helper.make_tensor("shape", TensorProto.INT64, [3],
                                                  [3, 4, 8]))
    base = profile()
    base.models["MatMul"] = KeyModels("MatMul", "kernel", "gemm",
                                      runtime=linear_map("macs", 1e-9))
    base.models["MatMul (gemv)"] = KeyModels("MatMul (gemv)", "kernel", "gemm_gemv",
                                             runtime=linear_map("macs", 1e-6))
    a = onnx_energy.analyze(m, profile=base)
    by = {n.name: p for n, p in zip(a.nodes, a.prediction.nodes, strict=True)}
    assert by["proj"].predictor == "MatMul"
    assert by["proj"].runtime_s == pytest.approx(1e-9 * 12 * 16 * 8)
    assert by["scores"].predictor == "MatMul (gemv)"  # 3 products of 4 rows each
    assert by["scores"].runtime_s == pytest.approx(1e-6 * 3 * 4 * 8 * 4)
