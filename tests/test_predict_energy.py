"""Energy from a profile fitted on synthetic records of known coefficients: per-node and
total energy equal the law, and intervals widen away from the training data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnx_energy
from onnx_energy.calibration.fit import fit_profile

# energy = exp(A + B log1p(MACs) + C log1p(bytes)); runtime a law of its own
A, B, C = -16.0, 0.8, 0.2


def energy_law(macs: int, nbytes: int) -> float:
    return math.exp(A + B * math.log1p(macs) + C * math.log1p(nbytes))


def f32(shape):
    return {"shape": list(shape), "dtype": "float32"}


def records(n=60, seed=3):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b, c, o = 1, int(rng.integers(2, 40)), int(rng.integers(2, 40))
        k, h = int(rng.choice([1, 3])), int(rng.integers(4, 32))
        macs = b * o * c * k * k * h * h
        nbytes = 4 * (b * c * h * h + o * c * k * k + o + b * o * h * h)
        t = math.exp(-19 + 0.9 * math.log1p(macs))
        out.append({"schema": "onnx-energy/record/2", "kind": "op", "run_id": f"r{i}",
                    "runner": {"name": "pytorch"}, "sensor": "rapl", "provider": "cpu",
                    "runtime_s": t, "energy_j": energy_law(macs, nbytes),
                    "spec": {"op_type": "Conv", "domain": "",
                             "attrs": {"kernel_shape": [k, k], "pads": [k // 2] * 4},
                             "inputs": [f32([b, c, h, h]), f32([o, c, k, k]), f32([o])]}})
    return out


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records()))
    p = fit_profile([path], only=["loglinear-work"])
    assert p.models["Conv"].energy_form in ("direct", "runtime_x_power")  # both exact here
    return p


def two_convs(c1: int, c2: int, h: int):
    """Conv 3x3 (c1 -> c2) then Conv 1x1 (c2 -> c2), with biases, same padding."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w1", (c2, c1, 3, 3)), ("b1", (c2,)), ("w2", (c2, c2, 1, 1)),
                          ("b2", (c2,)))]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="c1", pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["h", "w2", "b2"], ["y"], name="c2")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c1, h, h])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def conv_terms(c_in, c_out, k, h):
    macs = c_out * c_in * k * k * h * h
    nbytes = 4 * (c_in * h * h + c_out * c_in * k * k + c_out + c_out * h * h)
    return macs, nbytes


def test_node_and_total_energy_equal_the_law(profile):
    a = onnx_energy.analyze(two_convs(8, 16, 12), profile=profile)
    e1 = energy_law(*conv_terms(8, 16, 3, 12))
    e2 = energy_law(*conv_terms(16, 16, 1, 12))
    n1, n2 = a.prediction.nodes
    assert n1.energy_j == pytest.approx(e1, rel=1e-6)
    assert n2.energy_j == pytest.approx(e2, rel=1e-6)
    assert n1.predictor == "Conv" and n1.energy_j_interval[0] < e1 < n1.energy_j_interval[1]
    t = a.prediction.totals
    assert t.energy_j == pytest.approx(e1 + e2 + (profile.session_overhead_j or 0.0), rel=1e-6)
    assert t.power_w == pytest.approx(t.energy_j / t.runtime_s)


def test_energy_intervals_widen_away_from_the_training_data(profile):
    def width(c_in, c_out, h):
        node = onnx_energy.analyze(two_convs(c_in, c_out, h), profile=profile).prediction
        lo, hi = node.nodes[0].energy_j_interval
        return math.log(hi / lo), node.nodes[0].extrapolated

    near, near_out = width(16, 16, 16)  # inside the sampled shapes
    far, far_out = width(256, 256, 128)  # MACs ~ 1e4x the largest record
    assert far > 1.2 * near
    assert not near_out and far_out
