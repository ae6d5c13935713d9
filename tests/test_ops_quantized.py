"""Quantized graphs: Q/DQ, DynamicQuantizeLinear, integer and QLinear matmuls/convs,
com.microsoft QLinearAdd/Mul and MatMulNBits, and the native dtype they compute in."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.graph import Node, TensorInfo, load_model
from onnx_energy.ops.quantized import native_bits, native_dtype, native_dtype_for
from onnx_energy.ops.registry import NodeFacts
from onnx_energy.passes.shapes import infer_shapes

F = TensorProto.FLOAT
U8 = TensorProto.UINT8
I8 = TensorProto.INT8
MS = "com.microsoft"


def only(a, op):
    return next(n for n in a.nodes if n.op_type == op)


def u8(v) -> np.ndarray:
    return np.array(v, np.uint8)


def i8(*shape: int) -> np.ndarray:
    return np.ones(shape, np.int8)


def test_quantize_dequantize_matmul():
    # Q: x/scale, round, 2 saturating compares, + zp = 5 per element; DQ: − zp, · scale = 2;
    # then a float MatMul (2, 8) · (8, 3): 6 × 8 = 48 MACs.
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["dq"]),
             helper.make_node("MatMul", ["dq", "w"], ["y"])]
    m = make_model(nodes, [("x", [2, 8], F)],
                   initializers={"s": np.array(0.1, np.float32), "zp": u8(128),
                                 "w": weights(8, 3)})
    a = onnx_energy.analyze(m)
    assert a.totals.macs == 48
    assert only(a, "QuantizeLinear").flops == 16 * 5
    assert only(a, "QuantizeLinear").macs == 0
    assert only(a, "DequantizeLinear").flops == 16 * 2


@pytest.mark.parametrize("zp", [0, 3])
def test_dequantize_counts_the_zero_point_whatever_its_value(zp):
    # The zero point is a weight: its value is never read, so a model whose weights are
    # absent costs the same. 16 elements: − zp, · scale.
    n = helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"])
    m = make_model([n], [("q", [4, 4], I8)],
                   initializers={"s": np.array(0.5, np.float32), "zp": np.array(zp, np.int8)})
    a = onnx_energy.analyze(m)
    assert only(a, "DequantizeLinear").bops.to_dict() == {
        "add": 0, "sub": 16, "mul": 16, "div": 0, "root": 0}


def test_dynamic_quantize_linear():
    # Per element: running min and max (2 sub) + quantize (div, round, 2 compares, + zp);
    # once: scale and zero point (5 sub, 2 div). 64 elements: 64·7 + 7 = 455.
    n = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "y_scale", "y_zp"])
    m = make_model([n], [("x", [4, 16], F)], [("y", None, U8)])
    a = onnx_energy.analyze(m)
    dql = only(a, "DynamicQuantizeLinear")
    assert dql.status == "ok"
    assert dql.macs == 0 and dql.flops == 455


def test_matmul_integer_with_zero_points():
    # (3, 8) uint8 · (8, 5) int8: 15 outputs × 8 = 120 MACs; a_zero_point 7 subtracted from
    # the 24 elements of A; b's zero point is absent.
    n = helper.make_node("MatMulInteger", ["a", "b", "a_zp"], ["y"])
    m = make_model([n], [("a", [3, 8], U8)], [("y", None, TensorProto.INT32)],
                   initializers={"b": i8(8, 5), "a_zp": u8(7)})
    a = onnx_energy.analyze(m)
    mmi = only(a, "MatMulInteger")
    assert mmi.macs == 120
    assert mmi.flops == 2 * 120 + 24


def test_qlinear_matmul_requantizes_each_output():
    # (2, 4, 8) · (8, 6): 48 outputs × 8 = 384 MACs; zero points (given, values never read):
    # A's (64 subs), B's (48 subs); requantize: mul, round, + zp, 2 compares = 5 per output.
    n = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    inits = {"sa": np.array(0.1, np.float32), "za": u8(0), "b": i8(8, 6),
             "sb": np.array(0.2, np.float32), "zb": np.array(1, np.int8),
             "sy": np.array(0.3, np.float32), "zy": u8(128)}
    m = make_model([n], [("a", [2, 4, 8], U8)], [("y", None, U8)], initializers=inits)
    a = onnx_energy.analyze(m)
    q = only(a, "QLinearMatMul")
    assert q.macs == 384
    assert q.flops == 2 * 384 + 64 + 48 + 48 * 5


def test_qlinear_conv_and_conv_integer():
    # QLinearConv: (1, 3, 8, 8) ⊛ (4, 3, 3, 3), pad 1: 256 outputs × 27 = 6912 MACs + int32
    # bias, zero-point subs on x (192) and w (108); ConvInteger: (1, 2, 5, 5) ⊛ (3, 2, 3, 3):
    # 27 outputs × 18 = 486 MACs.
    qc = helper.make_node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"],
                          ["y"], pads=[1, 1, 1, 1])
    ci = helper.make_node("ConvInteger", ["x2", "w2"], ["y2"])
    inits = {"sx": np.array(0.1, np.float32), "zx": u8(0), "w": i8(4, 3, 3, 3),
             "sw": np.array(0.1, np.float32), "zw": np.array(0, np.int8),
             "sy": np.array(0.1, np.float32), "zy": u8(0), "b": np.zeros(4, np.int32),
             "w2": np.ones((3, 2, 3, 3), np.uint8)}
    m = make_model([qc, ci], [("x", [1, 3, 8, 8], U8), ("x2", [1, 2, 5, 5], U8)],
                   [("y", None, U8), ("y2", None, TensorProto.INT32)], initializers=inits)
    a = onnx_energy.analyze(m)
    q = only(a, "QLinearConv")
    assert q.macs == 6912
    assert q.flops == 2 * 6912 + 256 + 5 * 256 + 192 + 108
    assert only(a, "ConvInteger").macs == 486


def test_ms_qlinear_add_and_mul():
    # (2, 3, 4) with a broadcast (4,): 24 outputs. Add: two scaled terms and the sum (mul, add),
    # 2 zero-point subs, requantize (5) = 9; Mul: one product (mul) + 2 subs + 5 = 8.
    def q(op):
        return helper.make_node(op, ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], [op],
                                domain=MS)

    inits = {"sa": np.array(0.1, np.float32), "za": u8(1), "b": u8([1, 2, 3, 4]),
             "sb": np.array(0.1, np.float32), "zb": u8(2), "sc": np.array(0.2, np.float32),
             "zc": u8(3)}
    m = make_model([q("QLinearAdd"), q("QLinearMul")], [("a", [2, 3, 4], U8)],
                   [("QLinearAdd", None, U8), ("QLinearMul", None, U8)], initializers=inits,
                   extra_opsets={MS: 1})
    a = onnx_energy.analyze(m)
    add, mul = only(a, "QLinearAdd"), only(a, "QLinearMul")
    assert add.outputs[0].shape == (2, 3, 4) and add.outputs[0].dtype == "uint8"
    assert add.macs == 0 and add.flops == 24 * 9
    assert mul.flops == 24 * 8
    assert a.totals.complete


@pytest.mark.parametrize("bits", [4, 8])
def test_matmul_nbits(bits):
    # A (1, 5, 64) · B (N=32, K=64) in `bits`-bit blocks of 32: 5·32 outputs × 64 = 10240 MACs;
    # each of the 32·64 weights is dequantized once ((w − zp)·scale: 2 ops); + bias adds.
    blob = 32 * bits // 8
    n = helper.make_node("MatMulNBits", ["a", "b", "s", "", "", "bias"], ["y"], domain=MS,
                         K=64, N=32, bits=bits, block_size=32)
    m = make_model([n], [("a", [1, 5, 64], F)],
                   initializers={"b": np.zeros((32, 2, blob), np.uint8), "s": weights(64),
                                 "bias": weights(32)},
                   extra_opsets={MS: 1})
    a = onnx_energy.analyze(m)
    mm = only(a, "MatMulNBits")
    assert mm.outputs[0].shape == (1, 5, 32)
    assert mm.macs == 10240
    assert mm.flops == 2 * 10240 + 160 + 2 * 32 * 64


def test_dynamic_quantize_matmul_and_integer_to_float():
    # (4, 8) · (8, 3): 12 outputs × 8 = 96 MACs each.
    dqm = helper.make_node("DynamicQuantizeMatMul", ["a", "b", "bs"], ["y1"], domain=MS)
    mif = helper.make_node("MatMulIntegerToFloat", ["qa", "b", "as", "bs"], ["y2"], domain=MS)
    m = make_model([dqm, mif], [("a", [4, 8], F), ("qa", [4, 8], U8)],
                   [("y1", None, F), ("y2", None, F)],
                   initializers={"b": i8(8, 3), "bs": np.array(0.1, np.float32),
                                 "as": np.array(0.2, np.float32)},
                   extra_opsets={MS: 1})
    a = onnx_energy.analyze(m)
    assert only(a, "DynamicQuantizeMatMul").macs == 96
    assert only(a, "MatMulIntegerToFloat").macs == 96
    assert a.totals.complete


# ---------------------------------------------------------------------- native dtypes


def facts(op: str, inputs, outputs, domain: str = "", **attrs) -> NodeFacts:
    proto = helper.make_node(op, [t.name if t else "" for t in inputs],
                             [t.name for t in outputs], domain=domain, **attrs)
    return NodeFacts(node=Node.from_proto(proto, 0), inputs=tuple(inputs),
                     outputs=tuple(outputs))


def t(name: str, dtype: str) -> TensorInfo:
    return TensorInfo(name, (1,), dtype)


def test_native_dtypes_of_quantized_ops():
    assert native_dtype(facts("QuantizeLinear", [t("x", "float32"), t("s", "float32"),
                                                 t("z", "int4")], [t("y", "int4")])) == "int4"
    assert native_dtype(facts("DequantizeLinear", [t("q", "int8"), t("s", "float32")],
                              [t("y", "float32")])) == "int8"
    assert native_dtype(facts("DynamicQuantizeLinear", [t("x", "float32")],
                              [t("y", "uint8")])) == "uint8"
    assert native_dtype(facts("QLinearConv", [t("x", "uint8")], [t("y", "uint8")])) == "uint8"
    assert native_dtype(facts("MatMulInteger", [t("a", "int8"), t("b", "int8")],
                              [t("y", "int32")])) == "int8"
    assert native_dtype(facts("QLinearAdd", [t("a", "int8")], [t("c", "int8")],
                              domain=MS)) == "int8"
    nbits = facts("MatMulNBits", [t("a", "float16"), t("b", "uint8")], [t("y", "float16")],
                  domain=MS, bits=4, K=64, N=32)
    assert native_dtype(nbits) == "uint4"
    assert native_bits(nbits) == 4
    three = facts("MatMulNBits", [t("a", "float16")], [t("y", "float16")], domain=MS, bits=3)
    assert native_bits(three) == 3
    # float ops compute in their tensors' own type: no native override
    assert native_dtype(facts("MatMul", [t("a", "float32")], [t("y", "float32")])) is None


def test_native_dtype_from_shaped_graph():
    # Through the shape pass: QuantizeLinear's uint8 output type comes from ONNX inference.
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"])]
    m = make_model(nodes, [("x", [2, 2], F)], [("q", None, U8)],
                   initializers={"s": np.array(0.1, np.float32), "zp": u8(0)})
    shaped = infer_shapes(load_model(m))
    n = shaped.nodes[0]
    ins = [shaped.tensors.get(x) for x in n.inputs]
    outs = [shaped.tensors.get(o) for o in n.outputs]
    assert native_dtype_for(n, ins, outs) == "uint8"
