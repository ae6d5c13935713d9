"""Pooling and normalization cost rules against hand-computed FLOPs (they have no MACs).

Seed convention (Getzner et al. Table 3): FLOPs/2 for every op that is not a dot product,
with MaxPool FLOPs = kernel volume x output elements.
"""

from __future__ import annotations

from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy

F = TensorProto.FLOAT


def analyze_one(model, convention: str = "dot"):
    a = onnx_energy.analyze(model, convention=convention)
    assert a.totals.complete, [(u.node, u.reason) for u in a.unresolved]
    (node,) = a.nodes
    return node, a


def pool(op, x_shape, **attrs):
    return make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", x_shape, F)])


def test_max_pool_is_kernel_volume_times_outputs():
    # [1,2,8,8], k3 s2 p1: out (8+2-3)//2+1 = 4 -> [1,2,4,4] = 32 outputs x 9 = 288 FLOPs.
    model = pool("MaxPool", [1, 2, 8, 8], kernel_shape=[3, 3], strides=[2, 2],
                 pads=[1, 1, 1, 1])
    n, _ = analyze_one(model)
    assert n.outputs[0].shape == (1, 2, 4, 4)
    assert n.macs == 0
    assert n.flops == 288
    assert analyze_one(model, "seed")[0].macs == 144  # 288 / 2


def test_max_pool_ceil_mode_and_1d():
    # [1,1,5,5], k2 s2 ceil_mode: out ceil((5-2)/2)+1 = 3 -> 9 outputs x 4 = 36 FLOPs.
    n, _ = analyze_one(pool("MaxPool", [1, 1, 5, 5], kernel_shape=[2, 2], strides=[2, 2],
                            ceil_mode=1))
    assert n.outputs[0].shape == (1, 1, 3, 3)
    assert n.flops == 36
    # 1-D: [1,3,10], k3 s1 -> [1,3,8] = 24 outputs x 3 = 72 FLOPs.
    n, _ = analyze_one(pool("MaxPool", [1, 3, 10], kernel_shape=[3]))
    assert n.flops == 72


def test_average_pool():
    # [1,3,6,6], k2 s2 -> [1,3,3,3] = 27 outputs x (3 adds + 1 div) = 108 FLOPs.
    model = pool("AveragePool", [1, 3, 6, 6], kernel_shape=[2, 2], strides=[2, 2])
    n, _ = analyze_one(model)
    assert n.outputs[0].shape == (1, 3, 3, 3)
    assert n.flops == 108
    assert n.macs == 0
    assert analyze_one(model, "seed")[0].macs == 54


def test_global_pools():
    # [2,4,5,5]: 8 (n, c) windows of 25. Average: 24 adds + 1 div each = 200 FLOPs.
    n, _ = analyze_one(pool("GlobalAveragePool", [2, 4, 5, 5]))
    assert n.outputs[0].shape == (2, 4, 1, 1)
    assert n.flops == 8 * (24 + 1)
    # Max: kernel volume x outputs, as for MaxPool: 25 x 8 = 200.
    n, _ = analyze_one(pool("GlobalMaxPool", [2, 4, 5, 5]))
    assert n.flops == 25 * 8


def batch_norm_model():
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"])
    inits = {k: weights(3, seed=i) for i, k in enumerate(("scale", "bias", "mean", "var"))}
    return make_model([node], [("x", [2, 3, 4, 4], F)], initializers=inits)


def test_batch_normalization():
    # [2,3,4,4] = 96 elements: x*scale + shift = 96 mul + 96 add; per channel the folding
    # scale = gamma/sqrt(var+eps), shift = beta - mean*scale = add, root, div, mul, sub (x3).
    n, a = analyze_one(batch_norm_model())
    assert n.macs == 0
    assert n.flops == 96 + 96 + 3 * 5
    assert analyze_one(batch_norm_model(), "seed")[0].macs == 207 / 2


def test_batch_norm_running_stats_are_not_params():
    # Learnable: scale[3] + bias[3] = 6; running mean/var are buffers (torchvision excludes).
    n, a = analyze_one(batch_norm_model())
    assert n.params == 6
    assert a.totals.params == 6
    assert a.by_op_type["BatchNormalization"].params == 6


def test_buffer_also_used_as_a_weight_still_counts():
    # "mean" also feeds an Add, so it is a weight there: params = 3 + 3 + 3 = 9 in the total.
    nodes = [
        helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["b"]),
        helper.make_node("Add", ["b", "mean3"], ["y"]),
        helper.make_node("Identity", ["mean"], ["m2"]),
    ]
    inits = {k: weights(3, seed=i) for i, k in enumerate(("scale", "bias", "mean", "var"))}
    inits["mean3"] = weights(3, 1, 1)
    model = make_model(nodes, [("x", [1, 3, 2, 2], F)],
                       [("y", None, F), ("m2", None, F)], initializers=inits)
    a = onnx_energy.analyze(model)
    assert a.totals.params == 3 + 3 + 3 + 3  # scale, bias, mean (used by Identity), mean3


def test_layer_normalization():
    # [2,5,8], axis -1: 80 elements x (2 add, 1 sub, 2 mul + gamma mul + beta add = 7) = 560,
    # 10 rows x (3 div, 1 add, 1 root = 5) = 50 -> 610 FLOPs.
    node = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)
    model = make_model([node], [("x", [2, 5, 8], F)],
                       initializers={"g": weights(8), "b": weights(8)})
    n, _ = analyze_one(model)
    assert n.macs == 0
    assert n.flops == 610
    assert n.params == 16
    assert analyze_one(model, "seed")[0].macs == 305


def test_layer_normalization_axis_1_without_bias():
    # [2,5,8], axis 1: 2 rows of 40; 80 x (5 + gamma mul = 6) + 2 x 5 = 490 FLOPs.
    node = helper.make_node("LayerNormalization", ["x", "g"], ["y"], axis=1)
    model = make_model([node], [("x", [2, 5, 8], F)], initializers={"g": weights(5, 8)})
    n, _ = analyze_one(model)
    assert n.flops == 490
    assert n.params == 40


def test_instance_normalization():
    # [1,3,4,4]: 3 rows of 16; 48 x 7 + 3 x 5 = 351 FLOPs.
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"])
    model = make_model([node], [("x", [1, 3, 4, 4], F)],
                       initializers={"s": weights(3), "b": weights(3)})
    assert analyze_one(model)[0].flops == 351


def test_softmax():
    # [2,10]: per element compare, sub, exp, add, div = 5 -> 100 FLOPs; seed 50.
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)],
                       [("x", [2, 10], F)])
    n, _ = analyze_one(model)
    assert n.macs == 0
    assert n.flops == 100
    assert analyze_one(model, "seed")[0].macs == 50


def test_log_softmax():
    # [2,10]: per element compare, 2 sub, exp, add = 5 -> 100, plus one log per row (2) = 102.
    model = make_model([helper.make_node("LogSoftmax", ["x"], ["y"], axis=-1)],
                       [("x", [2, 10], F)])
    assert analyze_one(model)[0].flops == 102
