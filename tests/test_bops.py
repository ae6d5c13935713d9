"""Basic-operation pass: [add, sub, mul, div, root] per op against Li et al. eq. 2 and 3.

Also enumerates the whole op registry: every op must lower to basic operations in its
forward rule and have a backward rule (onnx_energy.passes.training).
"""

from __future__ import annotations

import pytest
from conftest import make_model, weights
from onnx import TensorProto, defs, helper

import onnx_energy
from onnx_energy.graph import Node, TensorInfo
from onnx_energy.ops.registry import (
    BasicOps,
    Cost,
    NodeFacts,
    ShapeUnknownError,
    all_rules,
)
from onnx_energy.passes.training import FAMILY_RULES, backward_family

F = TensorProto.FLOAT


def bops_list(b: BasicOps) -> list[int]:
    return [b.add, b.sub, b.mul, b.div, b.root]


# ------------------------------------------------------------------ paper, eq. 2 and 3


def fc_sigmoid(i: int = 4, o: int = 3, bias: bool = True, batch: int | str = 1, **attrs):
    ins = ["x", "w", "b"] if bias else ["x", "w"]
    inits = {"w": weights(o, i)} | ({"b": weights(o)} if bias else {})
    nodes = [helper.make_node("Gemm", ins, ["h"], transB=1, **attrs),
             helper.make_node("Sigmoid", ["h"], ["y"])]
    return make_model(nodes, [("x", [batch, i], F)], initializers=inits)


def test_eq2_fully_connected_sigmoid():
    # C_f = [(I+1)O, O, IO, O, O] with I=4, O=3.
    a = onnx_energy.analyze(fc_sigmoid())
    assert bops_list(a.totals.bops) == [15, 3, 12, 3, 3]
    assert bops_list(a.by_op_type["Gemm"].bops) == [12, 0, 12, 0, 0]  # O*I (mul + add)
    assert bops_list(a.by_op_type["Sigmoid"].bops) == [3, 3, 0, 3, 3]  # O*(sub+add+div+root)


def test_eq2_at_a_bound_batch_scales():
    a = onnx_energy.analyze(fc_sigmoid(batch="N"), batch_size=5)
    assert bops_list(a.totals.bops) == [75, 15, 60, 15, 15]


def test_gemm_without_bias_has_i_minus_1_adds_per_output():
    a = onnx_energy.analyze(fc_sigmoid(bias=False))
    assert bops_list(a.by_op_type["Gemm"].bops) == [3 * (4 - 1), 0, 12, 0, 0]


def test_gemm_alpha_and_beta_add_their_muls():
    # alpha != 1 scales each of the O outputs, beta != 1 scales C: 3 + 3 more muls.
    a = onnx_energy.analyze(fc_sigmoid(alpha=0.5, beta=2.0))
    assert bops_list(a.by_op_type["Gemm"].bops) == [12, 0, 12 + 3 + 3, 0, 0]
    b = onnx_energy.analyze(fc_sigmoid(beta=0.0))  # C ignored: no bias adds
    assert bops_list(b.by_op_type["Gemm"].bops) == [9, 0, 12, 0, 0]


def conv_gelu(c_in=3, c_out=8, k=3, m=5, approximate="tanh"):
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[k // 2] * 4),
             helper.make_node("Gelu", ["c"], ["y"], approximate=approximate)]
    inits = {"w": weights(c_out, c_in, k, k), "b": weights(c_out)}
    return make_model(nodes, [("x", [1, c_in, m, m], F)], initializers=inits, opset=20)


def test_eq3_convolution_gelu_tanh():
    c_in, c_out, k, m = 3, 8, 3, 5
    a = onnx_energy.analyze(conv_gelu(c_in, c_out, k, m))
    mm = m * m * c_out
    assert bops_list(a.totals.bops) == [
        mm * (1 + c_in * k * k), mm, mm * (2 + c_in * k * k), mm, mm]
    assert bops_list(a.totals.bops) == [5600, 200, 5800, 200, 200]


def test_gelu_erf_form():
    # 0.5*x*(1+erf(x/sqrt 2)): div, erf (root), add, 2 mul per element.
    a = onnx_energy.analyze(conv_gelu(approximate="none"))
    assert bops_list(a.by_op_type["Gelu"].bops) == [200, 0, 400, 200, 200]


@pytest.mark.parametrize(("attrs", "x_shape", "w_shape", "expect_out", "expect_macs"), [
    # groups=2: each output sees c_in/groups = 2 channels: 4 x 6x6 outputs x 2*3*3
    ({"group": 2, "pads": [1, 1, 1, 1]}, [1, 4, 6, 6], [4, 2, 3, 3], (1, 4, 6, 6), 144 * 18),
    # stride 2, rectangular 3x1 kernel, no pad: out 3x4 (from 7x7 -> (7-3)/2+1, (7-1)/2+1)
    ({"strides": [2, 2]}, [1, 2, 7, 7], [5, 2, 3, 1], (1, 5, 3, 4), 60 * 6),
    # dilation 2: effective kernel 5x5, 9x9 input -> 5x5; batch 3
    ({"dilations": [2, 2]}, [3, 1, 9, 9], [2, 1, 3, 3], (3, 2, 5, 5), 150 * 9),
])
def test_conv_generalises_eq3(attrs, x_shape, w_shape, expect_out, expect_macs):
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    inits = {"w": weights(*w_shape), "b": weights(w_shape[0])}
    a = onnx_energy.analyze(make_model([node], [("x", x_shape, F)], initializers=inits))
    (n,) = a.nodes
    assert n.outputs[0].shape == expect_out
    # With a bias, every output is K mul and K add (K-1 accumulations + the bias).
    assert bops_list(n.bops) == [expect_macs, 0, expect_macs, 0, 0]


# ---------------------------------------------------------------- other documented rules


def one_node(op, shape=(2, 3, 4), opset=17, inits=None, extra_inputs=(), **attrs):
    node = helper.make_node(op, ["x", *extra_inputs], ["y"], **attrs)
    model = make_model([node], [("x", list(shape), F)], initializers=inits, opset=opset)
    (n,) = onnx_energy.analyze(model).nodes
    assert n.status == "ok", n.reason
    return n


@pytest.mark.parametrize(("op", "per_element"), [
    ("Relu", [0, 1, 0, 0, 0]),          # a comparison runs in the adder: sub
    ("Tanh", [0, 0, 0, 0, 1]),          # a transcendental counts as one root
    ("Exp", [0, 0, 0, 0, 1]),
    ("Sigmoid", [1, 1, 0, 1, 1]),       # eq. 2
    ("Clip", [0, 2, 0, 0, 0]),          # two comparisons
    ("Softplus", [1, 0, 0, 0, 2]),      # log(1 + exp(x))
    ("Neg", [0, 1, 0, 0, 0]),
])
def test_unary_rules_per_element(op, per_element):
    n = one_node(op)
    assert bops_list(n.bops) == [24 * v for v in per_element]


def test_layer_norm_is_five_ops_per_element_plus_affine():
    # sum (add), x-mean (sub), square (mul), sum of squares (add), *rstd (mul) = 5 per element,
    # gamma (mul) and beta (add); per row: 2 div (mean, var), add (eps), root, div (1/sqrt).
    inits = {"g": weights(4), "b": weights(4)}
    n = one_node("LayerNormalization", extra_inputs=("g", "b"), inits=inits, axis=-1)
    elements, rows = 24, 6
    assert bops_list(n.bops) == [3 * elements + rows, elements, 3 * elements, 3 * rows, rows]


def test_softmax_per_element():
    # running max (sub), x - max (sub), exp (root), sum (add), normalise (div)
    n = one_node("Softmax", axis=-1)
    assert bops_list(n.bops) == [24, 48, 0, 24, 24]


def test_max_pool_counts_a_comparison_per_window_element():
    n = one_node("MaxPool", shape=(1, 2, 4, 4), kernel_shape=[2, 2], strides=[2, 2])
    assert bops_list(n.bops) == [0, 4 * 8, 0, 0, 0]


def test_average_pool_adds_and_one_div_per_output():
    n = one_node("AveragePool", shape=(1, 2, 4, 4), kernel_shape=[2, 2], strides=[2, 2])
    assert bops_list(n.bops) == [3 * 8, 0, 0, 8, 0]


def test_cumsum_is_l_minus_1_adds_per_line():
    import numpy as np
    n = one_node("CumSum", extra_inputs=("axis",), inits={"axis": np.array(2, np.int64)})
    assert bops_list(n.bops) == [6 * 3, 0, 0, 0, 0]  # 6 lines of 4: 3 adds each


def test_shrink_compares_twice_then_adds_the_bias():
    n = one_node("Shrink", lambd=0.5, bias=0.1)
    assert bops_list(n.bops) == [24, 48, 0, 0, 0]


def test_an_op_without_a_rule_is_unsupported_never_zero():
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="test.domain")
    model = make_model([node], [("x", [2, 2], F)], outputs=[("y", [2, 2], F)],
                       extra_opsets={"test.domain": 1})
    a = onnx_energy.analyze(model)
    assert a.unsupported == {"test.domain::NoSuchOp": 1}
    (n,) = a.nodes
    assert n.bops is None and n.to_dict()["bops"] is None and n.to_dict()["tos"] is None
    assert not a.totals.complete


# ------------------------------------------------------- the whole registry, enumerated

OPSET = defs.onnx_opset_version()
REGISTRY = sorted(all_rules().items())


def _synthetic_facts(domain: str, op: str, n_inputs: int) -> NodeFacts:
    """Rank-4 float inputs and output of one shape: enough for most rules to run."""
    ins = [f"x{i}" for i in range(n_inputs)]
    proto = helper.make_node(op, ins, ["y"], domain=domain or None)
    shape = (1, 2, 4, 4)
    return NodeFacts(
        node=Node.from_proto(proto, 0),
        inputs=tuple(TensorInfo(x, shape, "float32") for x in ins),
        outputs=(TensorInfo("y", shape, "float32"),),
        opset=OPSET,
    )


def _input_counts(domain: str, op: str) -> list[int]:
    try:
        schema = defs.get_schema(op, OPSET, domain)
    except Exception:
        return [1, 2, 3, 4, 5, 6]
    lo = max(schema.min_input, 1)
    return list(range(lo, min(schema.max_input, lo + 3) + 1))


def _run_rule(domain: str, op: str, rule) -> tuple[NodeFacts, Cost] | None:
    for n in _input_counts(domain, op):
        facts = _synthetic_facts(domain, op, n)
        try:
            return facts, rule.cost(facts)
        except (ShapeUnknownError, ValueError, IndexError, KeyError, TypeError,
                ZeroDivisionError, AttributeError):
            continue
    return None


@pytest.mark.parametrize(("key", "rule"), REGISTRY, ids=[f"{d or 'ai.onnx'}::{o}"
                                                         for (d, o), _ in REGISTRY])
def test_every_registered_op_lowers_to_basic_ops_and_has_a_backward_rule(key, rule):
    domain, op = key
    family = backward_family(rule)
    assert family is not None, (
        f"{op}: registry kind {rule.kind!r} has no backward rule; add it to "
        "its register(..., backward=FAMILY) or onnx_energy.passes.training.KIND_FAMILIES")
    assert family in FAMILY_RULES
    ran = _run_rule(domain, op, rule)
    if ran is None:
        pytest.skip(f"{op}: no synthetic sample fits its rule (covered by its own tests)")
    facts, cost = ran
    assert isinstance(cost.bops, BasicOps)
    if rule.kind == "movement":
        assert cost.bops.total == 0, f"{op} is a movement op but does arithmetic"
    if cost.flops > 0 or cost.macs > 0:
        assert cost.bops.total > 0, f"{op} has FLOPs but no basic operations in its rule"
    if cost.macs > 0:
        assert cost.bops.mul >= cost.macs, f"{op}: every MAC is a multiply"
    # The backward rule runs on the same facts and returns basic operations.
    ctx = NodeFacts(facts.node, facts.inputs, facts.outputs, forward=cost,
                    needs=tuple(True for _ in facts.inputs))
    try:
        bwd = FAMILY_RULES[family](ctx)
    except (ShapeUnknownError, ValueError, IndexError, KeyError, TypeError,
            ZeroDivisionError, AttributeError):
        return  # the synthetic shapes do not fit this family's rule
    assert isinstance(bwd, BasicOps)
    assert min(bops_list(bwd)) >= 0


def test_the_registry_enumeration_exercises_most_compute_ops():
    compute = [(k, r) for k, r in REGISTRY if r.kind == "compute"]
    ran = [k for k, r in compute if _run_rule(k[0], k[1], r) is not None]
    assert len(ran) >= 0.6 * len(compute), sorted(set(k for k, _ in compute) - set(ran))
