"""Transistor-operation pass: the table's numbers by hand, per dtype, and overriding it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.cli import main
from onnx_energy.examples import EXAMPLE_PATH
from onnx_energy.graph import TensorInfo
from onnx_energy.passes.transistors import load_table, native_dtype

FA, HA, XOR = 10, 6, 4  # full adder (paper), half adder and XOR (documented choices)


def adder(n: int) -> int:
    return (n - 1) * FA + HA


def scaled(t64: int, n: int) -> int:
    return math.floor(t64 * n * n / 4096 + 0.5)  # (n/64)^2, rounded half up


def fp_row(exponent: int, mantissa: int, iterations: int) -> dict[str, int]:
    p = mantissa + 1
    add = adder(p)
    mul = scaled(90_000, p) + adder(exponent) + XOR
    div = scaled(110_000, p) + adder(exponent) + XOR
    return {"add": add, "sub": add, "mul": mul, "div": div,
            "root": iterations * (div + add + mul)}


# Written out by hand from the rules (docs/basic_ops.md); the functions above re-derive them.
HAND = {
    # add: 23 FA + 1 HA; mul: 90000*(24/64)^2 = 12656.25 -> 12656, + 8-bit adder 76 + XOR 4;
    # div: 110000*(24/64)^2 = 15468.75 -> 15469 + 76 + 4; root: ceil(log2(24/8)) = 2 iterations.
    "fp32": {"add": 236, "sub": 236, "mul": 12736, "div": 15549, "root": 2 * 28521},
    # 11-bit significand: add 106; mul 2658.69 -> 2659 + 5-bit adder 46 + 4; div 3249.5 -> 3250
    # + 46 + 4; root: ceil(log2(11/8)) = 1 iteration.
    "fp16": {"add": 106, "sub": 106, "mul": 2709, "div": 3300, "root": 6115},
    # 8-bit significand: add 76; mul 1406.25 -> 1406 + 76 + 4; div 1718.75 -> 1719 + 76 + 4;
    # root: log2(8/8) = 0 -> at least 1 iteration.
    "bf16": {"add": 76, "sub": 76, "mul": 1486, "div": 1799, "root": 3361},
    # 53-bit significand: add 526; mul 61721.2 -> 61721 + 11-bit adder 106 + 4; div 75437.0
    # -> 75437 + 106 + 4; root: ceil(log2(53/8)) = 3 iterations.
    "fp64": {"add": 526, "sub": 526, "mul": 61831, "div": 75547, "root": 3 * 137904},
    # Plain 8-bit integer datapaths: 7 FA + 1 HA; 1406.25 -> 1406; 1718.75 -> 1719; 1 iteration.
    "int8": {"add": 76, "sub": 76, "mul": 1406, "div": 1719, "root": 3201},
    "uint8": {"add": 76, "sub": 76, "mul": 1406, "div": 1719, "root": 3201},
    # 32-bit: 31 FA + 1 HA = 316; 90000/4 = 22500; 110000/4 = 27500; ceil(log2(32/8)) = 2.
    "int32": {"add": 316, "sub": 316, "mul": 22500, "div": 27500, "root": 2 * 50316},
}


@pytest.mark.parametrize("dtype", sorted(HAND))
def test_transistors_per_basic_op_match_hand_values(dtype):
    table = load_table()
    assert {op: table.transistors(op, dtype) for op in HAND[dtype]} == HAND[dtype]


@pytest.mark.parametrize(("dtype", "exponent", "mantissa", "iterations"), [
    ("fp32", 8, 23, 2), ("fp16", 5, 10, 1), ("bf16", 8, 7, 1), ("fp64", 11, 52, 3),
])
def test_float_rows_follow_the_rules(dtype, exponent, mantissa, iterations):
    assert HAND[dtype] == fp_row(exponent, mantissa, iterations)


ELEM = {"fp32": TensorProto.FLOAT, "fp16": TensorProto.FLOAT16,
        "bf16": TensorProto.BFLOAT16, "fp64": TensorProto.DOUBLE, "int8": TensorProto.INT8,
        "int32": TensorProto.INT32}


def single_op_model(op: str, elem: int):
    ins = ["a"] if op == "Sqrt" else ["a", "b"]
    node = helper.make_node(op, ins, ["y"])
    return make_model([node], [(x, [1], elem) for x in ins], outputs=[("y", [1], elem)])


@pytest.mark.parametrize("dtype", sorted(ELEM))
@pytest.mark.parametrize(("op", "bop"), [("Add", "add"), ("Sub", "sub"), ("Mul", "mul"),
                                         ("Div", "div"), ("Sqrt", "root")])
def test_one_basic_op_costs_its_table_entry(op, bop, dtype):
    if op == "Sqrt" and dtype.startswith("int"):
        pytest.skip("Sqrt is defined on floats only")
    (n,) = onnx_energy.analyze(single_op_model(op, ELEM[dtype])).nodes
    assert n.native_dtype == dtype
    assert n.lowered.tos["native"] == HAND[dtype][bop]
    assert n.lowered.tos["fp32"] == HAND["fp32"][bop]
    assert n.lowered.tos["fp16"] == HAND["fp16"][bop]


def test_node_tos_is_the_sum_over_basic_ops():
    # Gemm(4 -> 3, bias) -> Sigmoid: [15, 3, 12, 3, 3] basic operations.
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
             helper.make_node("Sigmoid", ["h"], ["y"])]
    model = make_model(nodes, [("x", [1, 4], TensorProto.FLOAT)],
                       initializers={"w": weights(3, 4), "b": weights(3)})
    a = onnx_energy.analyze(model)
    for col in ("fp32", "fp16"):
        h = HAND[col]
        expect = 15 * h["add"] + 3 * h["sub"] + 12 * h["mul"] + 3 * h["div"] + 3 * h["root"]
        assert a.totals.lowered.tos[col] == expect
    assert a.totals.lowered.tos["fp32"] == 374_853
    assert a.totals.lowered.native_dtype == "fp32"
    d = a.to_dict()
    assert d["totals"]["tos"] == {"fp32": 374_853, "fp16": a.totals.lowered.tos["fp16"],
                                  "native": 374_853}
    assert d["by_op_type"]["Sigmoid"]["tos"]["fp32"] == 3 * (236 + 236 + 15549 + 57042)
    assert d["nodes"][0]["native_dtype"] == "fp32"


def test_overriding_a_component_changes_every_derived_count(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"components": {"full_adder": 28, "xor": 12}}))
    table = load_table(path)
    assert table.transistors("add", "fp32") == 23 * 28 + 6
    assert table.transistors("mul", "fp32") == 12656 + (7 * 28 + 6) + 12
    assert table.source == str(path)
    a = onnx_energy.analyze(single_op_model("Add", TensorProto.FLOAT), transistor_table=path)
    assert a.nodes[0].lowered.tos["fp32"] == 23 * 28 + 6


def test_pinning_a_count_and_adding_a_format(tmp_path, capsys):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({
        "ops": {"fp32": {"mul": 1000}},
        "formats": {"fp8e4m3fn": {"exponent": 4, "mantissa": 3}},
    }))
    model_path = tmp_path / "m.onnx"
    model_path.write_bytes(single_op_model("Mul", TensorProto.FLOAT).SerializeToString())
    assert main(["analyze", str(model_path), "--format", "json",
                 "--transistor-table", str(path)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["nodes"][0]["tos"]["fp32"] == 1000
    assert d["transistor_table"] == str(path)
    assert main(["analyze", str(model_path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"][0]["tos"]["fp32"] == 12736


@pytest.mark.parametrize("content", ["{not json", "[1, 2]",
                                     '{"components": {"full_adder": "ten"}}',
                                     '{"ops": {"fp99": {"add": 1}}}'])
def test_a_bad_table_is_one_line_and_exit_2(tmp_path, capsys, content):
    path = tmp_path / "t.json"
    path.write_text(content)
    model_path = tmp_path / "m.onnx"
    model_path.write_bytes(single_op_model("Add", TensorProto.FLOAT).SerializeToString())
    assert main(["analyze", str(model_path), "--transistor-table", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "transistor table" in err and "t.json" in err


def test_missing_table_file(tmp_path, capsys):
    model_path = tmp_path / "m.onnx"
    model_path.write_bytes(single_op_model("Add", TensorProto.FLOAT).SerializeToString())
    assert main(["analyze", str(model_path), "--transistor-table",
                 str(tmp_path / "nope.json")]) == 2
    assert "cannot read transistor table" in capsys.readouterr().err


def t(dtype):
    return TensorInfo("t", (1,), dtype)


@pytest.mark.parametrize(("ins", "outs", "macs", "expect"), [
    (["bfloat16", "bfloat16"], ["bfloat16"], 0, "bf16"),
    (["float64"], ["float64"], 0, "fp64"),
    (["int8", "float32", "int8"], ["float32"], 0, "fp32"),       # DequantizeLinear
    (["uint8", "int8"], ["int32"], 24, "uint8"),                 # MatMulInteger
    (["uint8", "float32", "uint8", "int8"], ["uint8"], 24, "uint8"),  # QLinearConv
    (["uint8", "int8"], ["float32"], 24, "uint8"),               # MatMulIntegerToFloat
    (["bool", "float32"], ["float16"], 0, "fp32"),               # If: its condition steers
    (["int64", "bool", "float16"], ["float16"], 0, "fp16"),      # Loop: trip count, cond
    (["int64", "int64"], ["int64"], 0, "int64"),                 # shape arithmetic
])
def test_native_dtype(ins, outs, macs, expect):
    assert native_dtype([t(d) for d in ins], [t(d) for d in outs], macs) == expect


def test_precision_picks_the_table_column(tmp_path, capsys):
    model_path = tmp_path / "m.onnx"
    model_path.write_bytes(single_op_model("Mul", TensorProto.FLOAT).SerializeToString())
    assert main(["analyze", str(model_path), "--precision", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "TOs bf16" in out and "1.486 k" in out
    assert main(["analyze", str(model_path), "--precision", "fp16", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["precision"] == "fp16" and set(d["nodes"][0]["tos"]) == {"fp32", "fp16", "native"}
    assert main(["analyze", str(model_path), "--precision", "bf16", "--format", "csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert cells["tos_bf16"] == "1486" and cells["tos_fp32"] == "12736"


def test_mixed_precision_graph_sums_each_node_at_its_own_dtype():
    nodes = [helper.make_node("Mul", ["a", "a"], ["m"]),
             helper.make_node("Cast", ["m"], ["c"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["c", "c"], ["y"])]
    model = make_model(nodes, [("a", [1], TensorProto.FLOAT16)],
                       outputs=[("y", [1], TensorProto.FLOAT)])
    a = onnx_energy.analyze(model)
    low = a.totals.lowered
    assert low.native_dtype == "mixed"
    assert low.tos["native"] == HAND["fp16"]["mul"] + HAND["fp32"]["add"]


def transformer_block(seq=16, d=32, ff=64, heads=4):
    """One pre-LN encoder layer with fused ops: LN, QKV MatMuls, softmax attention, GELU MLP."""
    dh = d // heads
    B = []

    def n(op, ins, out, **attrs):
        B.append(helper.make_node(op, ins, [out], **attrs))
        return out

    inits = {"g": weights(d), "b": weights(d), "wq": weights(d, d), "wk": weights(d, d),
             "wv": weights(d, d), "wo": weights(d, d), "w1": weights(d, ff), "w2": weights(ff, d),
             "shape": np.array([1, seq, heads, dh], np.int64),
             "back": np.array([1, seq, d], np.int64), "scale": np.array(dh ** -0.5, np.float32)}
    x = n("LayerNormalization", ["x", "g", "b"], "ln", axis=-1)
    q, k, v = (n("Transpose", [n("Reshape", [n("MatMul", [x, w], f"{w}o"), "shape"], f"{w}r")],
                 f"{w}t", perm=[0, 2, 1, 3]) for w in ("wq", "wk", "wv"))
    kt = n("Transpose", [k], "kt", perm=[0, 1, 3, 2])
    s = n("Mul", [n("MatMul", [q, kt], "qk"), "scale"], "s")
    p = n("Softmax", [s], "p", axis=-1)
    o = n("Reshape", [n("Transpose", [n("MatMul", [p, v], "pv")], "pvt", perm=[0, 2, 1, 3]),
                      "back"], "o")
    h = n("Add", ["x", n("MatMul", [o, "wo"], "proj")], "h")
    f = n("MatMul", [n("Gelu", [n("MatMul", [n("LayerNormalization", [h, "g", "b"], "ln2",
                                                 axis=-1), "w1"], "f1")], "gl",
                           approximate="tanh"), "w2"], "f2")
    n("Add", [h, f], "y")
    return make_model(B, [("x", [1, seq, d], TensorProto.FLOAT)], initializers=inits, opset=20)


@pytest.mark.parametrize("model", [EXAMPLE_PATH, transformer_block()], ids=["cnn", "transformer"])
@pytest.mark.parametrize("phase", ["inference", "training"])
def test_fp16_tos_are_below_fp32(model, phase):
    a = onnx_energy.analyze(model, batch_size=1, phase=phase)
    assert a.totals.complete
    tos = a.totals.lowered.tos_total
    assert 0 < tos["fp16"] < tos["fp32"]
    assert tos["native"] == tos["fp32"]  # both models are FP32
