"""The same answer with or without the external weight file: rules read no weight values."""

from __future__ import annotations

import numpy as np
import onnx
from conftest import make_model
from onnx import TensorProto, helper

import onnx_energy

F = TensorProto.FLOAT


def _qdq_pow_model() -> onnx.ModelProto:
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["dq"]),
             helper.make_node("Pow", ["dq", "e"], ["y"])]
    return make_model(nodes, [("x", [4, 8], F)], initializers={
        "s": np.array(0.1, np.float32), "zp": np.array(0, np.uint8),
        "e": np.array(2.0, np.float32)})


def test_costs_do_not_depend_on_the_external_file(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_qdq_pow_model(), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.data", size_threshold=0)
    with_file = onnx_energy.analyze(path).to_dict()
    (tmp_path / "m.data").unlink()
    without = onnx_energy.analyze(path).to_dict()
    assert with_file["totals"] == without["totals"]
    dq = next(n for n in without["nodes"] if n["op_type"] == "DequantizeLinear")
    # 32 elements: − zp (given, its zero value never read), · scale
    assert dq["bops"]["sub"] == 32 and dq["bops"]["mul"] == 32
    # an exponent read from the external file is not used by the rule: exp(y·log x)
    pw = next(n for n in without["nodes"] if n["op_type"] == "Pow")
    assert pw["flops"] == 32 * 3
