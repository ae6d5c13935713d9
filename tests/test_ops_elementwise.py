"""Activations, element-wise arithmetic, reductions, Resize and data movement against
hand-computed FLOPs. None of them is a dot product: dot-convention MACs are 0 and the seed
convention counts FLOPs/2."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy

F = TensorProto.FLOAT
X = [2, 3, 4]  # 24 elements


def analyze_one(model, convention: str = "dot"):
    a = onnx_energy.analyze(model, convention=convention)
    assert a.totals.complete, [(u.node, u.reason) for u in a.unresolved]
    (node,) = a.nodes
    return node


def unary(op, opset=17, inputs=("x",), inits=None, **attrs):
    node = helper.make_node(op, list(inputs), ["y"], **attrs)
    return make_model([node], [("x", X, F)], initializers=inits, opset=opset)


@pytest.mark.parametrize(("op", "per_element", "opset", "attrs"), [
    ("Relu", 1, 17, {}),           # max(0, x): one comparison
    ("Sigmoid", 4, 17, {}),        # 1/(1+exp(-x)): sub, exp, add, div
    ("Tanh", 1, 17, {}),           # one transcendental
    ("Erf", 1, 17, {}),            # one transcendental
    ("HardSigmoid", 4, 17, {}),    # alpha*x + beta, clamp to [0, 1]: mul, add, 2 compares
    ("HardSwish", 5, 17, {}),      # x * hardsigmoid(x): one more mul
    ("Elu", 4, 17, {}),            # compare, exp, sub 1, mul alpha
    ("LeakyRelu", 2, 17, {}),      # compare, mul alpha
    ("Gelu", 5, 20, {}),           # 0.5*x*(1+erf(x/sqrt2)): div, erf, add, 2 mul
    ("Gelu", 6, 20, {"approximate": "tanh"}),  # sub, add, div, tanh, 2 mul (Li et al.)
])
def test_activation(op, per_element, opset, attrs):
    model = unary(op, opset=opset, **attrs)
    n = analyze_one(model)
    assert n.macs == 0
    assert n.flops == 24 * per_element
    assert analyze_one(model, "seed").macs == 24 * per_element / 2
    assert n.bytes_read == n.bytes_written == 24 * 4


def test_relu_seed_is_half_the_elements():
    # Getzner et al. Table 3: ReLU FLOPs = elements, MACs = FLOPs/2 -> 12 for 24 elements.
    assert analyze_one(unary("Relu"), "seed").macs == 12


def test_clip_with_bounds_as_inputs():
    # Clip (opset 13+) takes min and max as inputs: two comparisons per element = 48 FLOPs.
    inits = {"lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    n = analyze_one(unary("Clip", inputs=("x", "lo", "hi"), inits=inits))
    assert n.flops == 48
    assert n.macs == 0


def binary(op, a_shape, b_shape):
    node = helper.make_node(op, ["a", "b"], ["y"])
    return make_model([node], [("a", a_shape, F), ("b", b_shape, F)])


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_binary_arithmetic_broadcasts(op):
    # [2,3,4] op [4] -> 24 outputs, one op each.
    n = analyze_one(binary(op, [2, 3, 4], [4]))
    assert n.outputs[0].shape == (2, 3, 4)
    assert n.flops == 24
    assert n.macs == 0
    assert n.bytes_read == (24 + 4) * 4
    assert n.bytes_written == 24 * 4
    # [3,1] op [1,5] -> [3,5]: both sides broadcast, 15 outputs.
    n = analyze_one(binary(op, [3, 1], [1, 5]))
    assert n.outputs[0].shape == (3, 5)
    assert n.flops == 15


def test_arithmetic_seed_is_half():
    assert analyze_one(binary("Add", [2, 3, 4], [4]), "seed").macs == 12


def test_variadic_sum_and_mean():
    # Sum of [4], [1], [2,4] -> [2,4]: 8 outputs x 2 adds = 16.
    node = helper.make_node("Sum", ["a", "b", "c"], ["y"])
    model = make_model([node], [("a", [4], F), ("b", [1], F), ("c", [2, 4], F)])
    assert analyze_one(model).flops == 16
    # Mean of three [4]: 4 x (2 adds + 1 div) = 12.
    node = helper.make_node("Mean", ["a", "b", "c"], ["y"])
    model = make_model([node], [("a", [4], F), ("b", [4], F), ("c", [4], F)])
    assert analyze_one(model).flops == 12


def test_pow_by_exponent():
    # x**2 is one mul per element (24); a general power is exp(y*log x): 2 transcendentals
    # + 1 mul per element (72).
    sq = unary("Pow", inputs=("x", "e"), inits={"e": np.array(2.0, np.float32)})
    assert analyze_one(sq).flops == 24
    gen = unary("Pow", inputs=("x", "e"), inits={"e": np.array(3.7, np.float32)})
    assert analyze_one(gen).flops == 72


def reduce_model(op, x_shape, axes_input=None, **attrs):
    ins = ["x"] + (["axes"] if axes_input is not None else [])
    inits = {"axes": np.array(axes_input, np.int64)} if axes_input is not None else None
    node = helper.make_node(op, ins, ["y"], **attrs)
    return make_model([node], [("x", x_shape, F)], initializers=inits)


def test_reductions():
    # ReduceSum [3,4] over axis 1 (axes as input, opset 13+) -> [3,1]: 12 - 3 = 9 adds.
    n = analyze_one(reduce_model("ReduceSum", [3, 4], axes_input=[1]))
    assert n.outputs[0].shape == (3, 1)
    assert n.flops == 9
    assert n.params == 0  # int64 axes are not weights
    # ReduceMean [3,4] axes=[1] keepdims=0 -> [3]: 9 adds + 3 divs = 12.
    n = analyze_one(reduce_model("ReduceMean", [3, 4], axes=[1], keepdims=0))
    assert n.outputs[0].shape == (3,)
    assert n.flops == 12
    # ReduceMean over everything: [2,3,4] -> [1,1,1]: 23 adds + 1 div = 24.
    assert analyze_one(reduce_model("ReduceMean", [2, 3, 4])).flops == 24
    # ReduceMax [2,3,4] axes [0,2] -> [1,3,1]: 24 - 3 = 21 comparisons.
    assert analyze_one(reduce_model("ReduceMax", [2, 3, 4], axes=[0, 2])).flops == 21
    # ReduceL2 [3,4] axis 1: 12 squares + 9 adds + 3 roots = 24.
    assert analyze_one(reduce_model("ReduceL2", [3, 4], axes=[1])).flops == 24
    # ArgMax [3,4] axis 1 -> [3,1]: 9 comparisons.
    assert analyze_one(reduce_model("ArgMax", [3, 4], axis=1)).flops == 9


def resize_model(mode, scales=None, sizes=None):
    if sizes is not None:
        ins, inits = ["x", "", "", "sizes"], {"sizes": np.array(sizes, np.int64)}
    else:
        ins, inits = ["x", "", "scales"], {"scales": np.array(scales, np.float32)}
    node = helper.make_node("Resize", ins, ["y"], mode=mode)
    return make_model([node], [("x", [1, 2, 4, 4], F)], initializers=inits)


def test_resize_nearest_is_a_copy():
    # [1,2,4,4] x2 -> [1,2,8,8]: nearest copies, no arithmetic; bytes still counted.
    n = analyze_one(resize_model("nearest", scales=[1, 1, 2, 2]))
    assert n.outputs[0].shape == (1, 2, 8, 8)
    assert n.flops == 0
    assert n.macs == 0
    assert n.bytes_written == 128 * 4


def test_resize_linear_blends_taps():
    # Bilinear over 2 axes: 4 taps = 4 mul + 3 add = 7 per output, 128 outputs = 896.
    n = analyze_one(resize_model("linear", scales=[1, 1, 2, 2]))
    assert n.flops == 896
    assert n.macs == 0
    assert analyze_one(resize_model("linear", scales=[1, 1, 2, 2]), "seed").macs == 448
    # Linear over 1 axis (sizes given): [1,2,4,8] = 64 outputs x (2 mul + 1 add) = 192.
    n = analyze_one(resize_model("linear", sizes=[1, 2, 4, 8]))
    assert n.outputs[0].shape == (1, 2, 4, 8)
    assert n.flops == 192
    # Cubic over 2 axes: 16 taps = 16 mul + 15 add = 31 per output, x 128 = 3968.
    assert analyze_one(resize_model("cubic", scales=[1, 1, 2, 2])).flops == 3968


def test_pad_is_zero_cost_but_moves_bytes():
    # [1,2,3,3] padded by 1 on H and W -> [1,2,5,5]. Reads x (18 floats) + pads (8 int64),
    # writes 50 floats.
    node = helper.make_node("Pad", ["x", "pads"], ["y"])
    model = make_model([node], [("x", [1, 2, 3, 3], F)],
                       initializers={"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)})
    n = analyze_one(model)
    assert n.outputs[0].shape == (1, 2, 5, 5)
    assert n.macs == 0 and n.flops == 0
    assert analyze_one(model, "seed").macs == 0
    assert n.bytes_read == 18 * 4 + 8 * 8
    assert n.bytes_written == 50 * 4
    assert n.kind == "movement"
    assert n.params == 0


def test_data_movement_chain_has_no_arithmetic():
    # Transpose [2,3,4] -> [4,3,2]; Reshape to [4,6] (shape: 2 int64); Concat with w[4,6]
    # -> [8,6]; Cast to float16; Flatten.
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[2, 1, 0]),
        helper.make_node("Reshape", ["t", "shape"], ["r"]),
        helper.make_node("Concat", ["r", "w"], ["c"], axis=0),
        helper.make_node("Cast", ["c"], ["h"], to=TensorProto.FLOAT16),
        helper.make_node("Flatten", ["h"], ["y"]),
    ]
    inits = {"shape": np.array([4, 6], np.int64), "w": weights(4, 6)}
    model = make_model(nodes, [("x", X, F)], [("y", None, TensorProto.FLOAT16)],
                       initializers=inits)
    a = onnx_energy.analyze(model)
    assert a.totals.complete
    assert a.totals.macs == 0 and a.totals.flops == 0
    by = {n.op_type: n for n in a.nodes}
    assert by["Transpose"].bytes_read == by["Transpose"].bytes_written == 96
    assert by["Reshape"].bytes_read == 96 + 16
    assert by["Concat"].bytes_read == 96 + 96 and by["Concat"].bytes_written == 192
    assert by["Concat"].params == 24  # w is a float weight
    assert by["Cast"].bytes_written == 48 * 2  # float16
    assert a.totals.bytes_read == 96 + 112 + 192 + 192 + 96
    assert all(n.kind == "movement" for n in a.nodes)


def test_shape_and_size_read_no_data_bytes_even_of_a_dynamic_tensor():
    # Shape of x[N,4] (N unbound) is a static [2]: resolved, 0 bytes read, 16 bytes written.
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Size", ["x"], ["n"])]
    m = make_model(nodes, [("x", ["N", 4], F)],
                   [("s", None, TensorProto.INT64), ("n", None, TensorProto.INT64)])
    by = {n.op_type: n for n in onnx_energy.analyze(m).nodes}
    assert by["Shape"].status == "ok" and by["Shape"].bytes_read == 0
    assert by["Shape"].bytes_written == 2 * 8
    assert by["Size"].bytes_read == 0 and by["Size"].bytes_written == 8
