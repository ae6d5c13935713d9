"""Peak activation memory from the static liveness plan equals the hand count."""

from __future__ import annotations

from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy

F = TensorProto.FLOAT


def test_chain_holds_at_most_an_input_and_an_output():
    # x[1,8] -> Relu a[1,8] -> Gemm(w 8x16) h[1,16] -> Relu y[1,16]
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r1"),
             helper.make_node("Gemm", ["a", "w"], ["h"], name="fc"),
             helper.make_node("Relu", ["h"], ["y"], name="r2")]
    a = onnx_energy.analyze(make_model(nodes, [("x", [1, 8], F)], [("y", None, F)],
                                       {"w": weights(8, 16)}))
    live = [n.peak_activation_bytes for n in a.nodes]
    # r1: x + a = 32 + 32; fc: a + h = 32 + 64 (x freed, the weight apart); r2: h + y
    assert live == [64, 96, 128]
    assert a.totals.peak_activation_bytes == 128
    assert a.totals.peak_activation_node == "r2"
    assert a.totals.peak_activation_complete


def test_branches_keep_their_shared_input_alive_until_both_have_read_it():
    # x[2,4] feeds a Relu and a Sigmoid; both feed an Add; a side Sqrt of x is never read.
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="left"),
             helper.make_node("Sigmoid", ["x"], ["b"], name="right"),
             helper.make_node("Sqrt", ["x"], ["unused"], name="dead"),
             helper.make_node("Concat", ["a", "b"], ["y"], name="join", axis=1)]
    a = onnx_energy.analyze(make_model(nodes, [("x", [2, 4], F)], [("y", None, F)]))
    live = {n.name: n.peak_activation_bytes for n in a.nodes}
    t = 2 * 4 * 4  # one [2,4] fp32 tensor
    assert live == {"left": 2 * t,  # x + a
                    "right": 3 * t,  # x + a + b
                    "dead": 4 * t,  # x + a + b + unused (freed right after: nobody reads it)
                    "join": 2 * t + 2 * t}  # a + b + y[2,8]; x freed after its last reader
    assert a.totals.peak_activation_bytes == 4 * t
    assert a.totals.peak_activation_node == "dead"


def test_unknown_sizes_make_the_peak_a_lower_bound():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    a = onnx_energy.analyze(make_model(nodes, [("x", ["n", 4], F)], [("y", None, F)]),
                            default_batch=None)  # n stays unknown
    assert not a.totals.peak_activation_complete
    assert a.totals.peak_activation_bytes == 0
    d = a.to_dict()
    assert d["totals"]["peak_activation_complete"] is False
    assert d["nodes"][0]["peak_activation_bytes"] == 0
