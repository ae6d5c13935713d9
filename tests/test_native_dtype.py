"""The node's native compute dtype drives `tos.native`, quantized ops included."""

from __future__ import annotations

import numpy as np
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.passes.transistors import load_table

F = TensorProto.FLOAT


def test_quantized_nodes_report_their_narrow_dtype_and_its_tos():
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["dq"]),
             helper.make_node("MatMul", ["dq", "w"], ["y"])]
    m = make_model(nodes, [("x", [2, 8], F)],
                   initializers={"s": np.array(0.1, np.float32),
                                 "zp": np.array(128, np.uint8), "w": weights(8, 3)})
    by_op = {n["op_type"]: n for n in onnx_energy.analyze(m).to_dict()["nodes"]}
    table = load_table()
    # QuantizeLinear computes toward its uint8 output; DequantizeLinear reads uint8.
    assert by_op["QuantizeLinear"]["native_dtype"] == "uint8"
    assert by_op["DequantizeLinear"]["native_dtype"] == "uint8"
    assert by_op["MatMul"]["native_dtype"] == "fp32"
    dq = by_op["DequantizeLinear"]
    # 16 elements x (sub zp + mul scale) at uint8 widths
    expected = 16 * (table.transistors("sub", "uint8") + table.transistors("mul", "uint8"))
    assert dq["tos"]["native"] == expected
    assert dq["tos"]["native"] < dq["tos"]["fp32"]
