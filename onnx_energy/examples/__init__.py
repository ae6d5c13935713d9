"""A small CNN built with onnx.helper: the bundled example model.

``python -m onnx_energy.examples`` regenerates ``small_cnn.onnx`` beside this file; a test
checks the shipped file is what this code builds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

EXAMPLE_PATH = Path(__file__).with_name("small_cnn.onnx")


def build_small_cnn(
    batch: int | str = "batch", size: int = 32, classes: int = 10
) -> onnx.ModelProto:
    """Conv-BN-ReLU-MaxPool x2, a residual 3x3 block, global pooling, Gemm, Softmax.

    The leading input dim is symbolic (``batch``) unless an int is given.
    """
    rng = np.random.default_rng(0)
    inits: list[TensorProto] = []

    def weight(name: str, *shape: int) -> str:
        inits.append(numpy_helper.from_array(
            (rng.standard_normal(shape) * 0.1).astype(np.float32), name))
        return name

    nodes = []

    def conv_bn_relu(x: str, name: str, c_in: int, c_out: int, k: int) -> str:
        nodes.append(helper.make_node(
            "Conv", [x, weight(f"{name}.w", c_out, c_in, k, k), weight(f"{name}.b", c_out)],
            [f"{name}.conv"], name=f"{name}/Conv", pads=[k // 2] * 4))
        bn = [weight(f"{name}.{p}", c_out) for p in ("gamma", "beta", "mean")]
        inits.append(numpy_helper.from_array(np.ones(c_out, np.float32), f"{name}.var"))
        nodes.append(helper.make_node(
            "BatchNormalization", [f"{name}.conv", *bn, f"{name}.var"], [f"{name}.bn"],
            name=f"{name}/BatchNormalization"))
        nodes.append(helper.make_node("Relu", [f"{name}.bn"], [f"{name}.relu"],
                                      name=f"{name}/Relu"))
        return f"{name}.relu"

    x = conv_bn_relu("input", "stem", 3, 16, 3)
    nodes.append(helper.make_node("MaxPool", [x], ["pool1"], name="pool1/MaxPool",
                                  kernel_shape=[2, 2], strides=[2, 2]))
    x = conv_bn_relu("pool1", "block1", 16, 32, 3)
    nodes.append(helper.make_node("MaxPool", [x], ["pool2"], name="pool2/MaxPool",
                                  kernel_shape=[2, 2], strides=[2, 2]))
    y = conv_bn_relu("pool2", "block2", 32, 32, 3)
    nodes.append(helper.make_node("Add", ["pool2", y], ["residual"], name="block2/Add"))
    nodes.append(helper.make_node("GlobalAveragePool", ["residual"], ["gap"],
                                  name="head/GlobalAveragePool"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="head/Flatten"))
    nodes.append(helper.make_node(
        "Gemm", ["flat", weight("fc.w", classes, 32), weight("fc.b", classes)], ["logits"],
        name="head/Gemm", transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="head/Softmax",
                                  axis=1))
    graph = helper.make_graph(
        nodes, "small_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="onnx-energy examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_example(path: Path = EXAMPLE_PATH) -> Path:
    onnx.save(build_small_cnn(), path)
    return path
