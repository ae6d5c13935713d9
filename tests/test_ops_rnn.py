"""RNN, GRU and LSTM: MACs = gates × hidden × (input + hidden) × seq × batch × directions."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy

F = TensorProto.FLOAT


def recurrent_model(op: str, gates: int, *, seq=5, batch=2, inp=3, hidden=4, directions=1,
                    bias=True, layout=0, **attrs):
    direction = "bidirectional" if directions == 2 else "forward"
    inputs = ["x", "w", "r", "b" if bias else ""]
    n = helper.make_node(op, inputs, ["y", "y_h"], hidden_size=hidden, direction=direction,
                         layout=layout, **attrs)
    x_shape = [batch, seq, inp] if layout else [seq, batch, inp]
    inits = {"w": weights(directions, gates * hidden, inp),
             "r": weights(directions, gates * hidden, hidden)}
    if bias:
        inits["b"] = weights(directions, 2 * gates * hidden)
    return make_model([n], [("x", x_shape, F)], [("y", None, F), ("y_h", None, F)],
                      initializers=inits)


def only(a, op):
    return next(n for n in a.nodes if n.op_type == op)


def test_lstm_macs_and_basic_operations():
    # 4 gates · 4 hidden · (3 + 4) · 5 steps · 2 batch = 1120 MACs; 160 gate outputs with
    # two bias adds each.
    a = onnx_energy.analyze(recurrent_model("LSTM", 4))
    lstm = only(a, "LSTM")
    assert lstm.status == "ok"
    assert lstm.macs == 1120
    # per unit and step (40): 3 sigmoids (sub, add, div, root), 2 tanh (root), 3 mul, 1 add
    units = 5 * 2 * 4
    assert lstm.bops.mul == 1120 + 3 * units
    assert lstm.bops.add == (1120 - 160 + 320) + (3 + 1) * units
    assert lstm.bops.root == 5 * units
    assert lstm.bops.div == 3 * units
    assert lstm.flops == 2 * 1120 + 320 + 18 * units


def test_bidirectional_gru_doubles():
    # 3 gates · 6 hidden · (5 + 6) · 7 · 1 · 2 directions = 2772
    a = onnx_energy.analyze(recurrent_model("GRU", 3, seq=7, batch=1, inp=5, hidden=6,
                                            directions=2, bias=False))
    gru = only(a, "GRU")
    assert gru.macs == 2772
    assert gru.flops == 2 * 2772 + (2 * 4 + 1 + 5) * (7 * 1 * 2 * 6)


def test_rnn_batch_first_layout():
    # layout=1: X (batch=3, seq=4, input=2); 1 gate · 5 · (2 + 5) · 4 · 3 = 420
    a = onnx_energy.analyze(recurrent_model("RNN", 1, seq=4, batch=3, inp=2, hidden=5,
                                            layout=1), )
    assert only(a, "RNN").macs == 420


@pytest.mark.parametrize(("activations", "per_unit"), [(["Relu"], 1), (["Tanh"], 1),
                                                       (["Sigmoid"], 4)])
def test_rnn_activation_attribute(activations, per_unit):
    a = onnx_energy.analyze(recurrent_model("RNN", 1, bias=False, activations=activations))
    rnn = only(a, "RNN")
    units = 5 * 2 * 4
    assert rnn.flops == 2 * rnn.macs + per_unit * units


def test_lstm_peepholes_and_clip():
    n = helper.make_node("LSTM", ["x", "w", "r", "", "", "", "", "p"], ["y"], hidden_size=2,
                         clip=3.0)
    m = make_model([n], [("x", [1, 1, 1], F)],
                   initializers={"w": weights(1, 8, 1), "r": weights(1, 8, 2),
                                 "p": np.zeros((1, 6), np.float32)})
    a = onnx_energy.analyze(m)
    lstm = only(a, "LSTM")
    assert lstm.macs == 4 * 2 * (1 + 2)  # 24
    # 2 units: base 18 + peepholes 6 each; clip 2 compares per gate pre-activation (8)
    assert lstm.flops == 2 * 24 + (18 + 6) * 2 + 2 * 8
