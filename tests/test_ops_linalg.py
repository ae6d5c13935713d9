"""Gemm, MatMul and Einsum cost rules against hand-computed MACs and FLOPs."""

from __future__ import annotations

from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.graph import Node, TensorInfo
from onnx_energy.ops.registry import NodeFacts, lookup

F = TensorProto.FLOAT


def analyze_one(model, convention: str = "dot"):
    a = onnx_energy.analyze(model, convention=convention)
    assert a.totals.complete, [(u.node, u.reason) for u in a.unresolved]
    (node,) = a.nodes
    return node


def gemm_model(a_shape, b_shape, c_shape=None, **attrs):
    ins = ["a", "b"] + (["c"] if c_shape is not None else [])
    inits = {"b": weights(*b_shape)}
    if c_shape is not None:
        inits["c"] = weights(*c_shape)
    node = helper.make_node("Gemm", ins, ["y"], **attrs)
    return make_model([node], [("a", a_shape, F)], initializers=inits)


def test_gemm_trans_a_without_c():
    # A[6,4] with transA -> M=4, K=6; B[6,5] -> N=5. MACs = 4*5*6 = 120, no bias.
    model = gemm_model([6, 4], [6, 5], transA=1)
    n = analyze_one(model)
    assert n.outputs[0].shape == (4, 5)
    assert n.macs == 120
    assert n.flops == 240
    assert analyze_one(model, "seed").macs == 120


def test_gemm_trans_b_with_bias():
    # A[3,8], B[7,8] with transB -> M=3, K=8, N=7: 168 MACs, 21 bias adds.
    model = gemm_model([3, 8], [7, 8], [7], transB=1)
    n = analyze_one(model)
    assert n.macs == 168
    assert n.flops == 2 * 168 + 21
    assert n.params == 56 + 7
    assert analyze_one(model, "seed").macs == 168 + 21


def test_gemm_alpha_beta_scale_every_output():
    # As above, with alpha=0.5 (21 muls) and beta=2 (21 muls on C): FLOPs = 336 + 21 + 42.
    model = gemm_model([3, 8], [7, 8], [7], transB=1, alpha=0.5, beta=2.0)
    n = analyze_one(model)
    assert n.macs == 168  # dot convention: the scaling is not a dot product
    assert n.flops == 336 + 21 + 42
    # seed: MACs + bias adds, and FLOPs/2 for the scaling muls: 168 + 21 + 42/2.
    assert analyze_one(model, "seed").macs == 168 + 21 + 21


def test_gemm_beta_zero_ignores_c():
    # beta=0: C contributes nothing, so no bias adds. A[2,3] B[3,4]: 24 MACs.
    n = analyze_one(gemm_model([2, 3], [3, 4], [4], beta=0.0))
    assert n.macs == 24
    assert n.flops == 48


def test_gemm_trans_a_and_b():
    # A[5,2] transA -> M=2, K=5; B[3,5] transB -> N=3: 2*3*5 = 30 MACs.
    n = analyze_one(gemm_model([5, 2], [3, 5], transA=1, transB=1))
    assert n.outputs[0].shape == (2, 3)
    assert n.macs == 30


def matmul_model(a_shape, b_shape):
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    return make_model([node], [("a", a_shape, F), ("b", b_shape, F)])


def test_matmul_batched():
    # [2,3,4,5] @ [2,3,5,6] -> [2,3,4,6]: 144 outputs x K=5 = 720 MACs.
    n = analyze_one(matmul_model([2, 3, 4, 5], [2, 3, 5, 6]))
    assert n.outputs[0].shape == (2, 3, 4, 6)
    assert n.macs == 720
    assert n.flops == 1440  # no bias in MatMul
    assert n.params == 0  # both operands are activations


def test_matmul_broadcasts_batch_dims():
    # [2,1,4,5] @ [3,5,6] -> [2,3,4,6]: 144 outputs x 5 = 720 MACs (the broadcast batch counts).
    n = analyze_one(matmul_model([2, 1, 4, 5], [3, 5, 6]))
    assert n.outputs[0].shape == (2, 3, 4, 6)
    assert n.macs == 720
    # A 2-D weight against a batched activation: [8,4,5] @ [5,6] -> [8,4,6] = 192 x 5 = 960.
    n = analyze_one(matmul_model([8, 4, 5], [5, 6]))
    assert n.macs == 960


def test_matmul_with_1d_operands():
    # [5] @ [5,6] -> [6]: 6 x 5 = 30.
    n = analyze_one(matmul_model([5], [5, 6]))
    assert n.outputs[0].shape == (6,)
    assert n.macs == 30
    # [3,4,5] @ [5] -> [3,4]: 12 x 5 = 60.
    n = analyze_one(matmul_model([3, 4, 5], [5]))
    assert n.outputs[0].shape == (3, 4)
    assert n.macs == 60
    # [7] @ [7] -> scalar: one dot product of length 7.
    n = analyze_one(matmul_model([7], [7]))
    assert n.outputs[0].shape == ()
    assert n.macs == 7
    assert n.flops == 14


def test_matmul_seed_has_no_bias():
    # seed = dot-product MACs (+ bias adds, none for MatMul): [4,6] @ [6,3] = 72.
    assert analyze_one(matmul_model([4, 6], [6, 3]), "seed").macs == 72


def einsum_model(equation, *shapes):
    names = [f"x{i}" for i in range(len(shapes))]
    node = helper.make_node("Einsum", names, ["y"], equation=equation)
    return make_model([node], [(n, s, F) for n, s in zip(names, shapes, strict=True)],
                      opset=17)


def test_einsum_batched_matmul():
    # bij,bjk->bik with b=2, i=3, j=4, k=5: every (b,i,j,k) is one MAC = 120.
    n = analyze_one(einsum_model("bij,bjk->bik", [2, 3, 4], [2, 4, 5]))
    assert n.outputs[0].shape == (2, 3, 5)
    assert n.macs == 120
    assert n.flops == 240


def test_einsum_attention_scores():
    # bhqd,bhkd->bhqk (Q K^T): b=1, h=2, q=3, k=5, d=4: 1*2*3*5*4 = 120 MACs.
    n = analyze_one(einsum_model("bhqd,bhkd->bhqk", [1, 2, 3, 4], [1, 2, 5, 4]))
    assert n.outputs[0].shape == (1, 2, 3, 5)
    assert n.macs == 120


def test_einsum_with_ellipsis():
    # ...ij,...jk->...ik over batch [2,3], i=4, j=5, k=6: 2*3*4*5*6 = 720 MACs.
    n = analyze_one(einsum_model("...ij,...jk->...ik", [2, 3, 4, 5], [2, 3, 5, 6]))
    assert n.outputs[0].shape == (2, 3, 4, 6)
    assert n.macs == 720
    # The ellipsis broadcasts (size 1 against 3): 2*3*4*5*6 again.
    n = analyze_one(einsum_model("...ij,...jk->...ik", [2, 1, 4, 5], [2, 3, 5, 6]))
    assert n.outputs[0].shape == (2, 3, 4, 6)
    assert n.macs == 720


def test_einsum_implicit_output():
    # "ij,jk" (no arrow) is a plain matmul: [3,4] x [4,5] = 3*4*5 = 60 MACs.
    n = analyze_one(einsum_model("ij,jk", [3, 4], [4, 5]))
    assert n.outputs[0].shape == (3, 5)
    assert n.macs == 60


def test_einsum_single_operand_reduction():
    # ij->j sums over i: 12 inputs into 4 outputs = 8 adds, no MACs.
    n = analyze_one(einsum_model("ij->j", [3, 4]))
    assert n.macs == 0
    assert n.flops == 8


def test_einsum_ellipsis_of_different_ranks_aligns_right():
    # ONNX shape inference refuses ellipses of different ranks, so call the rule directly:
    # ...ij [3,4,5] with ...jk [2,3,5,6] broadcasts batch [3] against [2,3] from the right,
    # so the index space is 2*3*4*5*6 = 720 (aligning from the left would give 3*3*4*5*6).
    node = Node.from_proto(helper.make_node("Einsum", ["a", "b"], ["y"],
                                            equation="...ij,...jk->...ik"), 0)
    facts = NodeFacts(node=node,
                      inputs=(TensorInfo("a", (3, 4, 5), "float32"),
                              TensorInfo("b", (2, 3, 5, 6), "float32")),
                      outputs=(TensorInfo("y", (2, 3, 4, 6), "float32"),))
    assert lookup("", "Einsum").cost(facts).macs == 720
