"""End-to-end checks of `analyze` on small models: totals, conventions, dim binding."""

from __future__ import annotations

import numpy as np
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.examples import EXAMPLE_PATH, build_small_cnn

F = TensorProto.FLOAT


def conv_relu_pool_gemm() -> object:
    # x[1,3,8,8] -Conv(4,3,3x3,pad1,bias)-> [1,4,8,8] -Relu- MaxPool2 -> [1,4,4,4]
    # -Flatten-> [1,64] -Gemm(10, bias)-> [1,10]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    inits = {"w": weights(4, 3, 3, 3), "b": weights(4), "fw": weights(10, 64), "fb": weights(10)}
    return make_model(nodes, [("x", ["N", 3, 8, 8], F)], initializers=inits)


def test_dot_convention_counts_dot_products_only():
    a = onnx_energy.analyze(conv_relu_pool_gemm(), batch_size=1)
    # Conv: 4*8*8 outputs x 3*3*3 = 6912; Gemm: 10*64 = 640
    assert a.by_op_type["Conv"].macs == 6912
    assert a.by_op_type["Gemm"].macs == 640
    assert a.by_op_type["Relu"].macs == 0
    assert a.totals.macs == 6912 + 640
    assert a.totals.complete


def test_seed_convention_follows_table_3():
    a = onnx_energy.analyze(conv_relu_pool_gemm(), batch_size=1, convention="seed")
    assert a.by_op_type["Conv"].macs == 6912 + 256  # + one bias add per output
    assert a.by_op_type["Gemm"].macs == 640 + 10
    assert a.by_op_type["MaxPool"].macs == 4 * 64 / 2  # kernel volume x outputs / 2
    assert a.by_op_type["Relu"].macs == 256 / 2  # elements / 2


def test_batch_size_scales_every_count():
    one = onnx_energy.analyze(conv_relu_pool_gemm(), batch_size=1)
    eight = onnx_energy.analyze(conv_relu_pool_gemm(), batch_size=8)
    assert eight.totals.macs == 8 * one.totals.macs
    assert eight.totals.flops == 8 * one.totals.flops
    assert eight.totals.params == one.totals.params == 4 * 27 + 4 + 640 + 10


def test_unbound_dim_is_reported_never_zero():
    a = onnx_energy.analyze(conv_relu_pool_gemm(), default_batch=None)
    assert not a.totals.complete
    assert a.unbound_dims == ["N"]
    unresolved = {u.op_type for u in a.unresolved}
    assert {"Conv", "Gemm"} <= unresolved
    conv = next(n for n in a.nodes if n.op_type == "Conv")
    assert conv.macs is None and conv.status == "unresolved"


def test_shape_subgraph_is_evaluated():
    # Reshape target computed through Shape -> Gather -> Div -> Unsqueeze -> Concat, which
    # ONNX's data propagation cannot follow past Div.
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i1"], ["c"], axis=0),
        helper.make_node("Div", ["c", "two"], ["half"]),
        helper.make_node("Unsqueeze", ["half", "ax"], ["u"]),
        helper.make_node("Concat", ["u", "m1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"]),
        helper.make_node("MatMul", ["r", "w"], ["y"]),
    ]
    inits = {"i1": np.array(1, np.int64), "two": np.array(2, np.int64),
             "ax": np.array([0], np.int64), "m1": np.array([-1], np.int64),
             "w": weights(16, 5)}
    # x[2,6,4]: target = [6/2, -1] = [3, 16], so MatMul is [3,16] x [16,5].
    model = make_model(nodes, [("x", [2, 6, 4], F)], initializers=inits)
    a = onnx_energy.analyze(model)
    reshape = next(n for n in a.nodes if n.op_type == "Reshape")
    assert reshape.outputs[0].shape == (3, 16)
    assert a.by_op_type["MatMul"].macs == 3 * 16 * 5
    assert a.totals.complete


def test_bundled_example_is_what_the_code_builds():
    assert EXAMPLE_PATH.read_bytes() == build_small_cnn().SerializeToString()
    a = onnx_energy.analyze(EXAMPLE_PATH, batch_size=1)
    # stem 16x32x32 x 3*9, block1 32x16x16 x 16*9, block2 32x8x8 x 32*9, fc 10x32
    assert a.totals.macs == 16 * 1024 * 27 + 32 * 256 * 144 + 32 * 64 * 288 + 320
    assert a.totals.complete


def test_to_dict_has_the_public_keys():
    d = onnx_energy.analyze(conv_relu_pool_gemm(), batch_size=1).to_dict()
    assert {"model", "convention", "inputs", "nodes", "by_op_type", "totals", "unsupported",
            "unresolved"} <= set(d)
    node_keys = {"name", "op_type", "domain", "inputs", "outputs", "macs", "flops", "params",
                 "bytes_read", "bytes_written"}
    assert node_keys <= set(d["nodes"][0])
    assert {"macs", "flops", "params", "bytes_read", "bytes_written"} <= set(d["totals"])
    # Conv reads x (1*3*8*8) + w (108) + b (4) floats, writes 256 floats.
    conv = d["nodes"][0]
    assert conv["bytes_read"] == 4 * (192 + 108 + 4)
    assert conv["bytes_written"] == 4 * 256
