"""What the models users have (PyPI-shipped, optimum, the genai builder, converters) need,
each case a tiny hand-built graph with a hand-computed count."""

from __future__ import annotations

import json

import numpy as np
import onnx
from conftest import make_model, run_cli, weights
from onnx import TensorProto, helper

import onnx_energy

F = TensorProto.FLOAT
B = TensorProto.BOOL


def save(tmp_path, model: onnx.ModelProto, name: str = "m.onnx") -> str:
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return str(path)


def branch(nodes, out: str, name: str) -> onnx.GraphProto:
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, F, None)])


# ------------------------------------------------------------------- "?" dims (paddle2onnx)


def test_question_mark_dims_are_each_their_own_dim(capsys, tmp_path):
    # paddle2onnx names every dynamic dim "?": x (?, 3, ?, ?) is not one dim named "?",
    # so --input x=1x3x2x5 sets all three, and the Relu counts 1*3*2*5 = 30 FLOPs.
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", ["?", 3, "?", "?"], F)])
    path = save(tmp_path, m)
    code, out, err = run_cli(capsys, path, "--input", "x=1x3x2x5", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["totals"]["complete"] is True and d["totals"]["flops"] == 30
    code, out, err = run_cli(capsys, path)
    assert code == 0
    assert "--input x=Nx3xNxN" in out + err and "?=N" not in out + err


# ------------------------------------------------------------------------------------ If


def nested_if_model() -> onnx.ModelProto:
    # Outer If on an input (unknown). Its then branch holds an If on a constant true: x @ A
    # (2x3 @ 3x4 = 24 MACs). Its else branch: x @ Bm (2x3 @ 3x5 = 30 MACs).
    inner = helper.make_node(
        "If", ["yes"], ["t"],
        then_branch=branch([helper.make_node("MatMul", ["x", "A"], ["ti"])], "ti", "ti"),
        else_branch=branch([helper.make_node("Relu", ["x"], ["te"])], "te", "te"))
    outer = helper.make_node(
        "If", ["c"], ["y"], then_branch=branch([inner], "t", "then"),
        else_branch=branch([helper.make_node("MatMul", ["x", "Bm"], ["e"])], "e", "else"))
    yes = helper.make_node("Constant", [], ["yes"], value=helper.make_tensor("v", B, [], [1]))
    return make_model([yes, outer], [("x", [2, 3], F), ("c", [], B)], [("y", None, F)],
                      initializers={"A": weights(3, 4), "Bm": weights(3, 5)})


def test_branch_option_leaves_nested_known_conditions_complete():
    # --branch then picks the outer then branch; the inner If's condition is known (true),
    # so --branch does not apply to it and is no gap: complete, 24 MACs.
    a = onnx_energy.analyze(nested_if_model(), branch="then")
    assert a.totals.complete and a.totals.macs == 24
    a = onnx_energy.analyze(nested_if_model(), branch="else")
    assert a.totals.complete and a.totals.macs == 30


def test_a_branch_that_cannot_run_with_the_shapes_is_not_counted():
    # Unknown condition. The else branch (the costlier by far: an LSTM) feeds the LSTM a
    # rank-4 tensor, which onnxruntime refuses: only the then branch can run, so it counts
    # (x @ A: 24 MACs), complete, and the report says why.
    lstm = helper.make_node("LSTM", ["x4", "W", "R"], ["ly"], hidden_size=2)
    other = branch([helper.make_node("Unsqueeze", ["x", "axes"], ["x4"]), lstm], "ly", "else")
    then = branch([helper.make_node("MatMul", ["x", "A"], ["t"])], "t", "then")
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    m = make_model(nodes, [("x", [2, 3], F), ("c", [], B)], [("y", None, F)],
                   initializers={"A": weights(3, 4), "W": weights(1, 8, 3),
                                 "R": weights(1, 8, 2), "axes": np.array([0, 1], np.int64)})
    a = onnx_energy.analyze(m)
    assert a.totals.complete and a.totals.macs == 24
    node = a.to_dict()["nodes"][0]
    assert node["branch"] == "then" and node["cond"] is None
    assert node["branch_reason"] == "the else branch cannot run with these shapes"
    # --branch still overrides it (the user's choice): the LSTM is then unresolved.
    assert not onnx_energy.analyze(m, branch="else").totals.complete


# ------------------------------------------------------------------ float16 converter types


def test_cast_declared_float16_but_casting_to_float32_still_infers():
    # onnxconverter-common leaves Cast(to=float32) with its output declared float16, then a
    # Div by a float16 constant: the types disagree (onnxruntime refuses the file), the
    # shapes do not. Div on (4, 6) counts 24 div, and the MatMul after it 4*6*5 = 120 MACs.
    H = TensorProto.FLOAT16
    nodes = [helper.make_node("Abs", ["x"], ["a"]),
             helper.make_node("Cast", ["a"], ["c"], to=F),
             helper.make_node("Div", ["c", "k"], ["d"]),
             helper.make_node("MatMul", ["d", "w"], ["y"])]
    g = helper.make_graph(
        nodes, "fp16", [helper.make_tensor_value_info("x", H, ["n", 6])],
        [helper.make_tensor_value_info("y", H, None)],
        [helper.make_tensor("k", H, [], [2.0]),
         helper.make_tensor("w", H, [6, 5], [0.5] * 30)],
        value_info=[helper.make_tensor_value_info("c", H, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    a = onnx_energy.analyze(m, dims={"n": 4})
    assert a.totals.complete
    assert a.totals.macs == 120
    div = next(n for n in a.nodes if n.op_type == "Div")
    assert div.outputs[0].shape == (4, 6) and div.bops.div == 24


# ---------------------------------------------------------- dims the graph implies (genai)


def genai_gqa_model() -> onnx.ModelProto:
    # onnxruntime-genai's builder: packed QKV from one MatMul (x (1, S, 8) @ W (8, 16): two
    # query heads and one K/V head of size 4) and a KV cache whose head size is the name
    # "kv_cache_dim", declared on the present outputs too.
    I32, I64 = TensorProto.INT32, TensorProto.INT64
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["qkv"]),
        helper.make_node("Shape", ["mask"], ["ms"]),
        helper.make_node("Gather", ["ms", "one"], ["t64"], axis=0),
        helper.make_node("Cast", ["t64"], ["total"], to=I32),
        helper.make_node("GroupQueryAttention", ["qkv", "", "", "pk", "pv", "seqlens", "total"],
                         ["o", "present_k", "present_v"], domain="com.microsoft",
                         num_heads=2, kv_num_heads=1),
    ]
    cache = [1, 1, "past_sequence_length", "kv_cache_dim"]
    present = [1, 1, "total_sequence_length", "kv_cache_dim"]
    return make_model(nodes, [
        ("x", [1, "sequence_length", 8], F), ("pk", cache, F), ("pv", cache, F),
        ("seqlens", [1], I32), ("mask", [1, "total_sequence_length"], I64)],
        [("o", None, F), ("present_k", present, F), ("present_v", present, F)],
        initializers={"W": weights(8, 16), "one": np.array(1, np.int64)},
        extra_opsets={"com.microsoft": 1})


def test_kv_cache_head_size_named_on_its_own_is_taken_from_the_graph(capsys, tmp_path):
    # A decode step: 1 new token after 5 cached, total 6. QKV MatMul 1*8*16 = 128 MACs; GQA
    # scores and context 2 heads * 1 query * 6 keys * 4 * 2 = 96: 224, complete, with
    # kv_cache_dim bound to the head size 4 that the packed QKV width implies.
    path = save(tmp_path, genai_gqa_model())
    code, out, err = run_cli(capsys, path, "--dim", "sequence_length=1", "--dim",
                             "past_sequence_length=5", "--dim", "total_sequence_length=6",
                             "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["totals"]["complete"] is True, d["unresolved"]
    assert d["totals"]["macs"] == 224
    assert d["bindings"]["kv_cache_dim"] == 4
    gqa = next(n for n in d["nodes"] if n["op_type"] == "GroupQueryAttention")
    assert gqa["outputs"][1]["shape"] == [1, 1, 6, 4]


def test_control_flow_outputs_imply_no_binding():
    # optimum's merged decoder: the branch without a cache returns empty placeholders, so an
    # If output declared (n, 4) may infer (0, 4). That is no evidence that n is 0: n stays
    # unbound, and once bound the Relu after the input counts n * 4 = 12 FLOPs.
    empty = helper.make_node("Constant", [], ["e"],
                             value=helper.make_tensor("v", F, [0, 4], []))
    nodes = [helper.make_node("If", ["c"], ["y"],
                              then_branch=branch([empty], "e", "then"),
                              else_branch=branch([helper.make_node("Identity", ["x"], ["i"])],
                                                 "i", "else")),
             helper.make_node("Relu", ["x"], ["r"])]
    m = make_model(nodes, [("x", ["n", 4], F), ("c", [], B)],
                   [("y", ["n", 4], F), ("r", ["n", 4], F)])
    d = onnx_energy.analyze(m, branch="then", default_batch=None).to_dict()
    assert d["unbound_dims"] == ["n"] and d["bindings"] == {}
    assert onnx_energy.analyze(m, dims={"n": 3}, branch="then").by_op_type["Relu"].flops == 12


# ----------------------------------------------------------- KV-cache bindings (optimum)


def kv_model() -> onnx.ModelProto:
    # optimum's decoder with past: the mask is (batch, past_sequence_length + sequence_length)
    # and the new keys (batch, 2, past_sequence_length, 4) are matched against the queries.
    nodes = [helper.make_node("Relu", ["mask"], ["r"]),
             helper.make_node("MatMul", ["q", "kt"], ["s"])]
    return make_model(nodes, [
        ("q", ["batch", 2, "sequence_length", 4], F),
        ("kt", ["batch", 2, 4, "past_sequence_length + sequence_length"], F),
        ("mask", ["batch", "past_sequence_length + sequence_length"], F)],
        [("r", None, F), ("s", None, F)])


def test_binding_an_expression_by_its_text_solves_for_its_one_unbound_name():
    # --dim 'past_sequence_length + sequence_length=17' with sequence_length=1: past = 16.
    # Relu over (1, 17): 17 FLOPs; scores (1, 2, 1, 4) @ (1, 2, 4, 17): 2*1*17*4 = 136 MACs.
    a = onnx_energy.analyze(kv_model(), batch_size=1, dims={
        "sequence_length": 1, "past_sequence_length + sequence_length": 17})
    assert a.totals.complete
    assert a.by_op_type["Relu"].flops == 17 and a.totals.macs == 136
    assert a.to_dict()["bindings"]["past_sequence_length"] == 16


def test_an_expression_with_no_whole_solution_binds_no_name():
    # 2*seq = 7 has no whole solution: the dim is 7 as bound, and seq is not guessed.
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [1, "2*seq"], F)])
    d = onnx_energy.analyze(m, dims={"2*seq": 7}).to_dict()
    assert d["bindings"] == {"2*seq": 7} and d["totals"]["flops"] == 7
    d = onnx_energy.analyze(m, dims={"2*seq": 8}).to_dict()
    assert d["bindings"] == {"2*seq": 8, "seq": 4}


# ------------------------------------------------------------ onnxslim, silero-vad shapes


def test_batch_size_leaves_a_fixed_lead_alone_where_another_input_has_the_batch():
    # silero-vad: input (batch, 4) and state (2, batch, 3). --batch-size 1 binds batch; the
    # state's 2 is not a batch (it is h and c), so it stays: Relu on (2, 1, 3) = 6 FLOPs.
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["s"], ["t"])]
    m = make_model(nodes, [("x", ["batch", 4], F), ("s", [2, "batch", 3], F)],
                   [("y", None, F), ("t", None, F)])
    a = onnx_energy.analyze(m, batch_size=1)
    assert [n.outputs[0].shape for n in a.nodes] == [(1, 4), (2, 1, 3)]
    assert a.totals.flops == 4 + 6


def test_a_wrong_dim_expression_in_value_info_does_not_override_inference():
    # onnxslim writes "((n + 64//128)) - 1" (n - 1 by Python's precedence) for a Conv of
    # stride 128 and kernel 256 over n + 64 samples: with n = 512 the real length is
    # (576 - 256) // 128 + 1 = 3, not 511. MACs: 2 channels * 3 * 256 = 1536.
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"]),
             helper.make_node("Conv", ["p", "w"], ["y"], strides=[128], kernel_shape=[256]),
             helper.make_node("Relu", ["y"], ["r"])]
    m = make_model(nodes, [("x", [1, 1, "n"], F)], [("r", None, F)],
                   initializers={"w": weights(2, 1, 256),
                                 "pads": np.array([0, 0, 32, 0, 0, 32], np.int64)})
    m.graph.value_info.extend([
        helper.make_tensor_value_info("p", F, [1, 1, "n + 64"]),
        helper.make_tensor_value_info("y", F, [1, 2, "((n + 64//128)) - 1"])])
    a = onnx_energy.analyze(m, dims={"n": 512})
    conv = next(n for n in a.nodes if n.op_type == "Conv")
    assert conv.outputs[0].shape == (1, 2, 3)
    assert a.totals.macs == 1536


def test_value_info_inside_a_branch_for_an_outer_name_does_not_hide_its_shape():
    # onnxslim copies value_info for an outer tensor into the branch, with a dim it could
    # not name ("k"). The outer scope knows x is (2, 3): the branch's x @ A is 2*3*4 = 24.
    then = branch([helper.make_node("MatMul", ["x", "A"], ["t"])], "t", "then")
    then.value_info.append(helper.make_tensor_value_info("x", F, [2, "k"]))
    other = branch([helper.make_node("Relu", ["x"], ["e"])], "e", "else")
    yes = helper.make_node("Constant", [], ["c"], value=helper.make_tensor("v", B, [], [1]))
    m = make_model([yes, helper.make_node("If", ["c"], ["y"], then_branch=then,
                                          else_branch=other)],
                   [("x", [2, 3], F)], [("y", None, F)], initializers={"A": weights(3, 4)})
    a = onnx_energy.analyze(m)
    assert a.totals.complete and a.totals.macs == 24


# ------------------------------------------- quantized then optimised (ORT_ENABLE_ALL)


def test_channels_last_qlinear_conv_and_pool_of_the_nhwc_transformer():
    # onnxruntime's NHWC transformer writes com.microsoft QLinearConv with channels_last=1:
    # x NHWC (1, 5, 5, 4), W OIHW (8, 4, 3, 3) -> y NHWC (1, 3, 3, 8): 72 outputs x 36 =
    # 2592 MACs; the channels-last global average pool then gives (1, 1, 1, 8).
    U8 = TensorProto.UINT8
    s = {"xs": np.array(0.1, np.float32), "xz": np.array(0, np.uint8),
         "ws": np.array(0.1, np.float32), "wz": np.array(0, np.int8),
         "w": np.ones((8, 4, 3, 3), np.int8)}
    nodes = [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "xs", "xz"],
                              ["y"], domain="com.microsoft", channels_last=1,
                              kernel_shape=[3, 3]),
             helper.make_node("QLinearGlobalAveragePool", ["y", "xs", "xz", "xs", "xz"], ["p"],
                              domain="com.microsoft", channels_last=1)]
    m = make_model(nodes, [("x", [1, 5, 5, 4], U8)], [("p", None, U8)], initializers=s,
                   extra_opsets={"com.microsoft": 1})
    a = onnx_energy.analyze(m)
    assert a.totals.complete
    conv, pool = a.nodes
    assert conv.outputs[0].shape == (1, 3, 3, 8) and conv.macs == 2592
    assert pool.outputs[0].shape == (1, 1, 1, 8)


def test_nhwc_max_pool_and_convs_of_onnxruntime_get_channels_last_shapes():
    # NhwcMaxPool (uint8, a quantized model at ORT_ENABLE_ALL): (1, 6, 6, 4), 2x2 stride 2
    # -> (1, 3, 3, 4): 36 outputs x 4 compares = 144. NhwcConv (1, 5, 5, 4) with W
    # (8, 4, 3, 3) -> (1, 3, 3, 8): 72 x 36 = 2592 MACs; NhwcFusedConv the same plus a Relu.
    H = TensorProto.FLOAT16
    pool = helper.make_node("NhwcMaxPool", ["q"], ["p"], domain="com.microsoft",
                            kernel_shape=[2, 2], strides=[2, 2])
    conv = helper.make_node("NhwcConv", ["x", "w"], ["y"], domain="com.microsoft")
    fused = helper.make_node("NhwcFusedConv", ["x", "w"], ["z"], domain="com.microsoft",
                             activation="Relu")
    m = make_model([pool, conv, fused], [("q", [1, 6, 6, 4], TensorProto.UINT8),
                                         ("x", [1, 5, 5, 4], H)],
                   [("p", None, TensorProto.UINT8), ("y", None, H), ("z", None, H)],
                   initializers={"w": np.ones((8, 4, 3, 3), np.float16)},
                   extra_opsets={"com.microsoft": 1})
    a = onnx_energy.analyze(m)
    assert a.totals.complete
    p, y, z = a.nodes
    assert p.outputs[0].shape == (1, 3, 3, 4) and p.bops.sub == 144
    assert y.outputs[0].shape == (1, 3, 3, 8) and y.macs == 2592
    assert z.outputs[0].shape == (1, 3, 3, 8) and z.macs == 2592
