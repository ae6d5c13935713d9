"""What real exports need to bind: dims named by expressions, --input shape overrides,
re-batching, contradicting bindings, If nodes with a known condition, rank checks."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import assert_one_line_error, make_model, run_cli, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.errors import BindingError

F = TensorProto.FLOAT
I64 = TensorProto.INT64
I32 = TensorProto.INT32
MASK_DIM = "past_sequence_length + sequence_length"


def save(tmp_path, model: onnx.ModelProto, name: str = "m.onnx") -> str:
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return str(path)


def mask_model() -> onnx.ModelProto:
    # optimum's attention mask is (batch, past + seq); Relu over it and a MatMul on the
    # (batch, 2*seq, 8) input: both counted once the names inside are bound.
    nodes = [helper.make_node("Relu", ["mask"], ["r"]),
             helper.make_node("MatMul", ["x", "w"], ["y"])]
    return make_model(nodes, [("ids", ["batch", "sequence_length"], I64),
                              ("past", ["batch", 2, "past_sequence_length", 4], F),
                              ("mask", ["batch", MASK_DIM], F), ("x", ["batch", "2*seq", 8], F)],
                      [("r", None, F), ("y", None, F)], initializers={"w": weights(8, 4)})


def test_expression_dims_ask_for_their_names_and_evaluate(capsys, tmp_path):
    path = save(tmp_path, mask_model())
    code, out, err = run_cli(capsys, path, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["unbound_dims"] == ["batch", "sequence_length",
                                               "past_sequence_length", "seq"]
    code, out, err = run_cli(capsys, path, "--batch-size", "2", "--dim", "sequence_length=4",
                             "--dim", "past_sequence_length=3", "--dim", "seq=5",
                             "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["totals"]["complete"] is True
    relu = next(n for n in d["nodes"] if n["op_type"] == "Relu")
    assert relu["outputs"][0]["shape"] == [2, 7] and relu["flops"] == 14
    assert d["totals"]["macs"] == 2 * 10 * 4 * 8  # 2*seq = 10 rows per batch


def test_an_expression_bound_against_its_names_is_an_error(capsys, tmp_path):
    path = save(tmp_path, mask_model())
    code, out, err = run_cli(capsys, path, "--dim", "sequence_length=4", "--dim",
                             "past_sequence_length=3", "--dim", f"{MASK_DIM}=9")
    assert_one_line_error(code, out, err, "past_sequence_length=3", "sequence_length=4",
                          "= 7")


def test_unbound_names_are_shell_quoted_in_the_hint(capsys, tmp_path):
    # (a non-leading dim: an unbound leading one alone would be taken as batch 1)
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [3, "seq len"], F)])
    code, out, _ = run_cli(capsys, save(tmp_path, m))
    assert code == 0
    assert "--dim 'seq len=N'" in out


def test_input_override_sets_anonymous_and_minus_one_dims(capsys, tmp_path):
    # x (?, 3, -1, ?): --input x=1x3x8x8; Conv 3x3 pad 1 to 4 channels: 256 outputs × 27.
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                   [("x", [None, 3, None, None], F)], initializers={"w": weights(4, 3, 3, 3)})
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = -1
    path = save(tmp_path, m)
    code, out, _ = run_cli(capsys, path)
    assert code == 0 and "--input x=Nx3xNxN" in out  # the dims still to set
    code, out, err = run_cli(capsys, path, "--input", "x=1x3x8x8", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["inputs"][0]["shape"] == [1, 3, 8, 8]
    assert d["totals"]["macs"] == 256 * 27 and d["totals"]["complete"]
    assert_one_line_error(*run_cli(capsys, path, "--input", "x=1x3x8"), "rank 4")
    assert_one_line_error(*run_cli(capsys, path, "--input", "nope=1x3"), "no input 'nope'")
    assert_one_line_error(*run_cli(capsys, path, "--input", "x=1xAx8"), "--input")


def test_rebatching_a_hard_coded_reshape_names_the_node(capsys, tmp_path):
    # A batch-1 export: Reshape to the constant [1, -1] before a Gemm of 48 features.
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["flat"], name="flatten_hard"),
             helper.make_node("Gemm", ["flat", "w"], ["y"])]
    m = make_model(nodes, [("x", [1, 3, 4, 4], F)], initializers={
        "shape": np.array([1, -1], np.int64), "w": weights(48, 2)})
    path = save(tmp_path, m)
    code, out, err = run_cli(capsys, path, "--format", "json")
    assert code == 0 and json.loads(out)["totals"]["macs"] == 96
    assert_one_line_error(*run_cli(capsys, path, "--batch-size", "8"), "'flatten_hard'",
                          "[1, -1]", "--input x=8x3x4x4")


def test_rebatching_works_where_the_graph_allows_it(capsys, tmp_path):
    nodes = [helper.make_node("Flatten", ["x"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w"], ["y"])]
    m = make_model(nodes, [("x", [1, 3, 4, 4], F)], initializers={"w": weights(48, 2)})
    code, out, err = run_cli(capsys, save(tmp_path, m), "--batch-size", "8", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["totals"]["macs"] == 8 * 96


def test_batch_size_and_a_different_dim_for_the_batch_is_an_error(capsys, tmp_path):
    path = save(tmp_path, mask_model())
    assert_one_line_error(*run_cli(capsys, path, "--batch-size", "2", "--dim", "batch=3"),
                          "--batch-size 2", "batch=3")


def gqa_model() -> onnx.ModelProto:
    # genai-style: total_sequence_length is the mask's length, read through Shape.
    nodes = [
        helper.make_node("Shape", ["mask"], ["ms"]),
        helper.make_node("Gather", ["ms", "one"], ["t64"], axis=0),
        helper.make_node("Cast", ["t64"], ["total"], to=I32),
        helper.make_node("GroupQueryAttention",
                         ["q", "k", "v", "pk", "pv", "seqlens", "total"],
                         ["o", "present_k", "present_v"], name="gqa", domain="com.microsoft",
                         num_heads=2, kv_num_heads=1),
    ]
    return make_model(nodes, [
        ("q", [1, "sequence_length", 8], F), ("k", [1, "sequence_length", 4], F),
        ("v", [1, "sequence_length", 4], F), ("pk", [1, 1, "past_sequence_length", 4], F),
        ("pv", [1, 1, "past_sequence_length", 4], F), ("seqlens", [1], I32),
        ("mask", [1, "total_sequence_length"], I64)], [("o", None, F)],
        initializers={"one": np.array(1, np.int64)}, extra_opsets={"com.microsoft": 1})


def test_a_total_length_that_is_not_past_plus_new_is_an_error(capsys, tmp_path):
    path = save(tmp_path, gqa_model())
    ok = run_cli(capsys, path, "--dim", "sequence_length=4", "--dim", "past_sequence_length=2",
                 "--dim", "total_sequence_length=6", "--format", "json")
    assert ok[0] == 0, ok[2]
    # 2 heads × 4 queries × 6 keys, head size 4: scores and context 2·(48·4) = 384 MACs.
    assert json.loads(ok[1])["totals"]["macs"] == 384
    assert_one_line_error(*run_cli(capsys, path, "--dim", "sequence_length=4", "--dim",
                                   "past_sequence_length=0", "--dim", "total_sequence_length=9"),
                          "total_sequence_length=9", "past_sequence_length=0",
                          "sequence_length=4")


def test_if_with_a_condition_folded_from_shapes_counts_the_taken_branch():
    # cond = Shape(x)[1] > 4 with x (2, 3): false, so the else branch (x @ W, 30 MACs) is
    # counted, not the costlier then branch (two MatMuls, 54 MACs); its (2, 5) output flows.
    def g(nodes, out, name):
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, F, None)])

    then = g([helper.make_node("MatMul", ["x", "A"], ["t1"]),
              helper.make_node("MatMul", ["t1", "Bm"], ["t"])], "t", "then")
    other = g([helper.make_node("MatMul", ["x", "W"], ["e"])], "e", "else")
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["d"], axis=0),
             helper.make_node("Greater", ["d", "four"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
             helper.make_node("Relu", ["y"], ["z"])]
    m = make_model(nodes, [("x", [2, 3], F)], [("z", None, F)], initializers={
        "A": weights(3, 3), "Bm": weights(3, 6), "W": weights(3, 5),
        "one": np.array(1, np.int64), "four": np.array(4, np.int64)})
    a = onnx_energy.analyze(m)
    node = a.to_dict()["nodes"][3]
    assert node["cond"] is False and node["branch"] == "else"
    assert node["branches"]["then"]["totals"]["macs"] == 18 + 36
    assert a.totals.macs == 30
    relu = next(n for n in a.nodes if n.op_type == "Relu")
    assert relu.outputs[0].shape == (2, 5) and relu.flops == 10


def test_lstm_fed_a_4d_tensor_is_unresolved_not_miscounted():
    n = helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=2)
    m = make_model([n], [("x", [1, 2, 3, 4], F)],
                   initializers={"w": weights(1, 8, 4), "r": weights(1, 8, 2)})
    lstm = onnx_energy.analyze(m).nodes[0]
    assert lstm.status == "unresolved" and lstm.macs is None
    assert "rank 4" in lstm.reason


def test_api_input_shapes():
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [None, 4], F)])
    assert onnx_energy.analyze(m, input_shapes={"x": [3, 4]}).totals.flops == 12
    with pytest.raises(BindingError, match="rank 2"):
        onnx_energy.analyze(m, input_shapes={"x": [3]})


def test_shape_split_fusion_of_onnxruntime_still_folds():
    # onnxruntime fuses Shape -> Gather x2 into Shape -> Split -> Squeeze: the Reshape target
    # [d0 * d1, 4] still folds, so the MatMul after it is counted: 6 rows × 4 × 3 = 72 MACs.
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Split", ["s", "parts"], ["a", "b", "c"], axis=0),
             helper.make_node("Mul", ["a", "b"], ["ab"]),
             helper.make_node("Concat", ["ab", "c"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["y"])]
    m = make_model(nodes, [("x", [2, 3, 4], F)], initializers={
        "parts": np.array([1, 1, 1], np.int64), "w": weights(4, 3)}, opset=13)
    m.graph.value_info.append(helper.make_tensor_value_info("flat", F, None))
    a = onnx_energy.analyze(m)
    assert a.totals.complete, a.unresolved
    assert a.totals.macs == 72
