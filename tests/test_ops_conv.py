"""Conv and ConvTranspose cost rules against hand-computed MACs and FLOPs.

Conv MACs = output elements x (C_in/groups) x kernel volume; ConvTranspose MACs use the
input volume: N x C_in x in_spatial x (C_out/groups) x kernel volume. FLOPs = 2 x MACs + one
bias add per output when there is a bias; the seed convention counts MACs + bias adds.
"""

from __future__ import annotations

from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy

F = TensorProto.FLOAT


def conv_model(x_shape, w_shape, bias: bool = True, op: str = "Conv", **attrs):
    ins = ["x", "w", "b"] if bias else ["x", "w"]
    inits = {"w": weights(*w_shape)}
    if bias:
        c_out = w_shape[0] if op == "Conv" else w_shape[1] * attrs.get("group", 1)
        inits["b"] = weights(c_out)
    node = helper.make_node(op, ins, ["y"], **attrs)
    return make_model([node], [("x", x_shape, F)], initializers=inits)


def only_node(model, convention: str = "dot"):
    a = onnx_energy.analyze(model, convention=convention)
    assert a.totals.complete, [(u.node, u.reason) for u in a.unresolved]
    (node,) = a.nodes
    return node


def test_depthwise_conv_without_bias():
    # x[1,8,10,10], w[8,1,3,3], group=8, pad 1 -> y[1,8,10,10]: 800 outputs x 1*9 = 7200 MACs.
    model = conv_model([1, 8, 10, 10], [8, 1, 3, 3], bias=False, group=8, pads=[1, 1, 1, 1])
    n = only_node(model)
    assert n.outputs[0].shape == (1, 8, 10, 10)
    assert n.macs == 7200
    assert n.flops == 2 * 7200  # no bias adds
    assert n.params == 72  # 8*1*3*3
    assert only_node(model, "seed").macs == 7200  # nothing to add without a bias


def test_grouped_conv():
    # x[1,4,5,5], w[6,2,3,3], group=2, pad 1 -> y[1,6,5,5]: 150 outputs x 2*9 = 2700 MACs.
    model = conv_model([1, 4, 5, 5], [6, 2, 3, 3], group=2, pads=[1, 1, 1, 1])
    n = only_node(model)
    assert n.macs == 2700
    assert n.flops == 2 * 2700 + 150  # one bias add per output
    assert n.params == 108 + 6  # 6*2*3*3 weights + 6 biases
    assert only_node(model, "seed").macs == 2700 + 150


def test_dilated_conv():
    # x[1,2,9,9], w[3,2,3,3], dilation 2: effective kernel 5, out (9-5)+1 = 5 -> y[1,3,5,5].
    # 75 outputs x 2*9 = 1350 MACs; the dilation does not change the taps per output.
    model = conv_model([1, 2, 9, 9], [3, 2, 3, 3], dilations=[2, 2])
    n = only_node(model)
    assert n.outputs[0].shape == (1, 3, 5, 5)
    assert n.macs == 1350
    assert n.flops == 2700 + 75
    assert only_node(model, "seed").macs == 1350 + 75


def test_strided_conv():
    # x[1,3,11,11], w[4,3,3,3], stride 2, no pad: out (11-3)//2+1 = 5 -> y[1,4,5,5].
    # 100 outputs x 27 = 2700 MACs.
    model = conv_model([1, 3, 11, 11], [4, 3, 3, 3], strides=[2, 2])
    n = only_node(model)
    assert n.outputs[0].shape == (1, 4, 5, 5)
    assert n.macs == 2700
    assert n.flops == 5400 + 100


def test_same_upper_strided_conv():
    # x[1,1,7,7], w[2,1,3,3], stride 2, SAME_UPPER: out ceil(7/2) = 4 -> y[1,2,4,4].
    # 32 outputs x 9 = 288 MACs.
    model = conv_model([1, 1, 7, 7], [2, 1, 3, 3], bias=False, strides=[2, 2],
                       auto_pad="SAME_UPPER")
    assert only_node(model).macs == 288


def test_conv_1d_batched():
    # x[2,4,16], w[6,4,5], pad 2 -> y[2,6,16]: 192 outputs x 4*5 = 3840 MACs.
    model = conv_model([2, 4, 16], [6, 4, 5], pads=[2, 2])
    n = only_node(model)
    assert n.outputs[0].shape == (2, 6, 16)
    assert n.macs == 3840
    assert n.flops == 7680 + 192


def test_conv_3d():
    # x[1,2,4,6,6], w[3,2,3,3,3], pad 1 -> y[1,3,4,6,6]: 432 outputs x 2*27 = 23328 MACs.
    model = conv_model([1, 2, 4, 6, 6], [3, 2, 3, 3, 3], pads=[1] * 6)
    n = only_node(model)
    assert n.outputs[0].shape == (1, 3, 4, 6, 6)
    assert n.macs == 23328
    assert n.flops == 2 * 23328 + 432
    assert only_node(model, "seed").macs == 23328 + 432


def test_conv_transpose_uses_the_input_volume():
    # x[1,4,5,5], w[4,3,3,3] (C_in, C_out/groups, k), stride 2: out (5-1)*2+3 = 11 -> y[1,3,11,11].
    # MACs = N*C_in*in_spatial*(C_out/groups)*k = 1*4*25*3*9 = 2700, not 363 outputs x 36.
    model = conv_model([1, 4, 5, 5], [4, 3, 3, 3], op="ConvTranspose", strides=[2, 2])
    n = only_node(model)
    assert n.outputs[0].shape == (1, 3, 11, 11)
    assert n.macs == 2700
    assert n.flops == 5400 + 363  # bias add on each of the 3*11*11 outputs
    assert only_node(model, "seed").macs == 2700 + 363


def test_grouped_conv_transpose_without_bias():
    # x[2,4,3,3], w[4,2,2,2], group=2 -> C_out = 4, out (3-1)*1+2 = 4 -> y[2,4,4,4].
    # MACs = 2*4*9*2*4 = 576.
    model = conv_model([2, 4, 3, 3], [4, 2, 2, 2], bias=False, op="ConvTranspose", group=2)
    n = only_node(model)
    assert n.outputs[0].shape == (2, 4, 4, 4)
    assert n.macs == 576
    assert n.flops == 1152


def test_conv_transpose_1d():
    # x[1,2,7], w[2,5,3], stride 1 -> y[1,5,9]; MACs = 1*2*7*5*3 = 210.
    model = conv_model([1, 2, 7], [2, 5, 3], bias=False, op="ConvTranspose")
    n = only_node(model)
    assert n.outputs[0].shape == (1, 5, 9)
    assert n.macs == 210
