"""Static kernel grouping: onnxruntime's fusions, no-op removal, constant folding."""

from __future__ import annotations

import numpy as np
from conftest import make_model, weights
from onnx import TensorProto, helper

from onnx_energy.fusion import (
    ELIMINATED,
    FOLDED,
    NO_FUSION,
    FusionRules,
    Pattern,
    default_rules,
    group_nodes,
)
from onnx_energy.graph import load_model
from onnx_energy.passes.pipeline import run_pipeline

F = TensorProto.FLOAT
ORT = default_rules("onnxruntime", "cpu")


def groups_of(model, rules=ORT):
    graph = run_pipeline(load_model(model))
    names = [c.node.name for c in graph.costs]
    return {tuple(names[i] for i in g.members): (g.kernel, g.kind)
            for g in group_nodes(graph, rules)}


def conv_block(residual_use: bool = False):
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "x"], ["a"], name="add"),
             helper.make_node("Relu", ["a"], ["y"], name="relu")]
    outputs = [("y", None, F)]
    if residual_use:  # the conv output is also a graph output: it cannot be fused away
        outputs.append(("c", None, F))
    return make_model(nodes, [("x", [1, 8, 6, 6], F)], outputs,
                      {"w": weights(8, 8, 3, 3), "b": weights(8)})


def test_conv_add_relu_is_one_conv_kernel():
    assert groups_of(conv_block()) == {("conv", "add", "relu"): ("Conv", "kernel")}


def test_an_intermediate_used_outside_blocks_the_fusion():
    got = groups_of(conv_block(residual_use=True))
    assert got == {("conv",): ("Conv", "kernel"), ("add",): ("Add", "kernel"),
                   ("relu",): ("Relu", "kernel")}


def test_without_fusion_rules_every_node_is_a_kernel():
    got = groups_of(conv_block(), NO_FUSION)
    assert got == {("conv",): ("Conv", "kernel"), ("add",): ("Add", "kernel"),
                   ("relu",): ("Relu", "kernel")}


def test_gelu_decomposition_and_matmul_add_fuse():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "bias"], ["h"], name="bias"),
             helper.make_node("Div", ["h", "sqrt2"], ["d"], name="div"),
             helper.make_node("Erf", ["d"], ["e"], name="erf"),
             helper.make_node("Add", ["e", "one"], ["e1"], name="add1"),
             helper.make_node("Mul", ["h", "e1"], ["g"], name="mulx"),
             helper.make_node("Mul", ["g", "half"], ["y"], name="half")]
    model = make_model(nodes, [("x", [2, 16], F)], [("y", None, F)],
                       {"w": weights(16, 32), "bias": weights(32),
                        "sqrt2": np.array(1.4142135, np.float32),
                        "one": np.array(1.0, np.float32), "half": np.array(0.5, np.float32)})
    got = groups_of(model)
    assert got[("mm", "bias")] == ("Gemm", "kernel")
    assert got[("div", "erf", "add1", "mulx", "half")] == ("Gelu", "kernel")


def test_identity_is_removed_and_constant_subgraphs_fold():
    nodes = [helper.make_node("Identity", ["w"], ["w2"], name="id"),
             helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Reshape", ["x", "s"], ["r"], name="reshape"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm")]
    model = make_model(nodes, [("x", [2, 4], F)], [("y", None, F)], {"w": weights(4, 3)})
    got = groups_of(model)
    assert got[("id",)] == ("Identity", ELIMINATED)
    assert got[("shape",)] == ("Shape", FOLDED)
    assert got[("reshape",)] == ("Reshape", "kernel")
    assert got[("mm",)] == ("MatMul", "kernel")


def test_rules_round_trip_and_extend():
    rules = FusionRules("onnxruntime", "cpu", (Pattern(("Conv", "Relu"), "Conv"),))
    again = FusionRules.from_dict(rules.to_dict())
    assert again == rules
    more = again.with_patterns([Pattern(("Conv", "Relu"), "Conv", "observed"),
                                Pattern(("Gemm", "Relu"), "Gemm", "observed")])
    assert [p.ops for p in more.patterns] == [("Conv", "Relu"), ("Gemm", "Relu")]
    assert default_rules("pytorch", "cpu").patterns == ()
