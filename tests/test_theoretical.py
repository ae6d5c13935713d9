"""The built-in theoretical profile: Horowitz (ISSCC 2014) energies, derived values, pricing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import make_model, run_cli, weights
from onnx import TensorProto, helper, numpy_helper
from snapshot_models import cases

import onnx_energy
from onnx_energy.examples import build_small_cnn
from onnx_energy.passes.transistors import load_table
from onnx_energy.profile_store import BUILTIN, default_profile, open_profile
from onnx_energy.theoretical import energy_table

F, H = TensorProto.FLOAT, TensorProto.FLOAT16
PJ = 1e-12


def gemm_model():
    # x[1,8] @ w[8,4]: 4 dot products of length 8 = 32 mul + 28 add; bytes 32 + 128 read, 16
    # written.
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return make_model(nodes, [("x", [1, 8], F)], [("y", None, F)], {"w": weights(8, 4)})


def test_published_values_and_the_derived_ones():
    t = energy_table(default_profile().theoretical)
    assert t.per_op_j["fp32"]["add"] == pytest.approx(0.9 * PJ)
    assert t.per_op_j["fp32"]["mul"] == pytest.approx(3.7 * PJ)
    assert t.per_op_j["fp16"]["add"] == pytest.approx(0.4 * PJ)
    assert t.per_op_j["fp16"]["mul"] == pytest.approx(1.1 * PJ)
    assert t.per_op_j["int8"]["add"] == pytest.approx(0.03 * PJ)
    assert t.per_op_j["int8"]["mul"] == pytest.approx(0.2 * PJ)
    assert t.sram_j_per_byte == pytest.approx(5 * PJ / 4)
    assert t.dram_j_per_byte == pytest.approx(640 * PJ / 4)
    tr = load_table()
    # div and root: the multiplier's energy times the transistor ratio
    assert t.per_op_j["fp32"]["div"] == pytest.approx(
        3.7 * PJ * tr.transistors("div", "fp32") / tr.transistors("mul", "fp32"))
    assert t.per_op_j["fp16"]["root"] == pytest.approx(
        1.1 * PJ * tr.transistors("root", "fp16") / tr.transistors("mul", "fp16"))
    assert t.per_op_j["fp32"]["sub"] == t.per_op_j["fp32"]["add"]
    # float widths: the power law through both published points, by significand bits
    k_mul = math.log(3.7 / 1.1) / math.log(24 / 11)
    assert t.per_op_j["bf16"]["mul"] == pytest.approx(3.7 * PJ * (8 / 24) ** k_mul)
    assert t.per_op_j["fp64"]["mul"] == pytest.approx(3.7 * PJ * (53 / 24) ** k_mul)
    # integer widths: adder linear, multiplier quadratic in the width
    assert t.per_op_j["int32"]["add"] == pytest.approx(0.03 * PJ * 4)
    assert t.per_op_j["int32"]["mul"] == pytest.approx(0.2 * PJ * 16)
    assert t.per_op_j["uint8"] == t.per_op_j["int8"]
    data = json.loads(BUILTIN["theoretical-45nm"].read_text())
    assert "Horowitz" in data["theoretical"]["citation"]
    assert "ISSCC" in data["theoretical"]["citation"]


def test_a_matmul_costs_its_operations_and_its_bytes():
    a = onnx_energy.analyze(gemm_model())
    p = a.prediction.nodes[0]
    compute = (28 * 0.9 + 32 * 3.7) * PJ
    memory = (32 + 128 + 16) * 1.25 * PJ
    assert p.energy_j == pytest.approx(compute + memory)
    assert p.energy_j_interval == pytest.approx([compute + memory, compute + 176 * 160 * PJ])
    assert p.runtime_s is None and p.predictor == "theoretical"
    t = a.prediction.totals
    assert t.energy_j == pytest.approx(compute + memory) and t.runtime_s is None
    d = a.to_dict()
    assert d["profile"]["kind"] == "theoretical"
    assert d["profile"]["label"] == "theoretical (45 nm)"
    assert d["totals"]["energy_compute_j"] == pytest.approx(compute)
    assert d["totals"]["energy_memory_j"] == pytest.approx(memory)
    assert d["nodes"][0]["runtime_s"] is None


def test_tensors_larger_than_the_cache_come_from_dram(tmp_path):
    data = json.loads(BUILTIN["theoretical-45nm"].read_text())
    data["theoretical"]["memory"]["cache_bytes"] = 64  # w (128 B) spills, x and y do not
    path = tmp_path / "small-cache.json"
    path.write_text(json.dumps(data))
    a = onnx_energy.analyze(gemm_model(), profile=path)
    compute = (28 * 0.9 + 32 * 3.7) * PJ
    assert a.prediction.nodes[0].energy_j == pytest.approx(
        compute + (32 + 16) * 1.25 * PJ + 128 * 160 * PJ)
    assert a.prediction.nodes[0].detail["dram_bytes"] == 128


def _conv(elem: int, np_dtype) -> object:
    w = numpy_helper.from_array(weights(8, 3, 3, 3).astype(np_dtype), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])], "twin",
        [helper.make_tensor_value_info("x", elem, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", elem, None)], [w])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _qlinear_conv():
    qc = helper.make_node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"],
                          ["y"], pads=[1, 1, 1, 1])
    inits = {"sx": np.array(0.1, np.float32), "zx": np.array(0, np.uint8),
             "w": np.ones((8, 3, 3, 3), np.int8), "sw": np.array(0.1, np.float32),
             "zw": np.array(0, np.int8), "sy": np.array(0.1, np.float32),
             "zy": np.array(0, np.uint8)}
    return make_model([qc], [("x", [1, 3, 16, 16], TensorProto.UINT8)],
                      [("y", None, TensorProto.UINT8)], initializers=inits)


def test_fp16_costs_less_than_its_fp32_twin_and_int8_less_still():
    e32 = onnx_energy.analyze(_conv(F, np.float32)).prediction.totals.energy_j
    e16 = onnx_energy.analyze(_conv(H, np.float16)).prediction.totals.energy_j
    e8 = onnx_energy.analyze(_qlinear_conv()).prediction.totals.energy_j
    assert all(math.isfinite(e) and e > 0 for e in (e32, e16, e8))
    assert e16 < 0.5 * e32  # fp16: add 0.44x, mul 0.30x, half the bytes
    assert e8 < e16


@pytest.mark.parametrize("name", sorted(cases()))
def test_every_test_model_gets_a_finite_energy(name):
    build, options = cases()[name]
    a = onnx_energy.analyze(build(), **options)
    e = a.prediction.totals.energy_j
    if name == "small_cnn-unbound":  # no dim bound: no node is known, so no number at all
        assert e is None and any("no known cost" in w for w in a.prediction.warnings)
        return
    assert e is not None and math.isfinite(e) and e > 0
    lo, hi = a.prediction.totals.energy_j_interval
    assert lo <= e <= hi


def test_bundled_example_table_says_theoretical(capsys, tmp_path):
    path = tmp_path / "cnn.onnx"
    path.write_bytes(build_small_cnn().SerializeToString())
    code, out, err = run_cli(capsys, str(path), "--batch-size", "1")
    assert code == 0, err
    assert "energy, theoretical (45 nm)" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("energy "))
    assert "J per inference" in line
    assert "runtime" not in out.split("energy, theoretical", 1)[1].split("\n")[1]


def test_named_profile_and_alias_resolve_to_the_builtin():
    assert open_profile("theoretical") is default_profile()
    assert open_profile("theoretical-45nm").kind == "theoretical"


def test_a_theoretical_profile_without_energies_is_refused(tmp_path, capsys):
    data = json.loads(BUILTIN["theoretical-45nm"].read_text())
    del data["theoretical"]["published_pj"]["fp16"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    mpath = tmp_path / "m.onnx"
    mpath.write_bytes(gemm_model().SerializeToString())
    code, out, err = run_cli(capsys, str(mpath), "--profile", str(bad))
    assert code == 2 and out == "" and "published_pj.fp16 is missing" in err
