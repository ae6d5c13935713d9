"""ai.onnx.ml: every op of the domain (onnx's schemas) has a rule, and hand-counted checks of
tree ensembles (depth from the node attributes), linear models, SVMs and preprocessing."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.ops.registry import all_rules

F = TensorProto.FLOAT
I64 = TensorProto.INT64
ML = "ai.onnx.ml"


def test_every_ai_onnx_ml_op_has_a_rule_or_is_movement():
    ops = {s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain == ML}
    if not ops:
        pytest.skip("this onnx has no ai.onnx.ml schemas")
    rules = all_rules()
    assert not sorted(op for op in ops if (ML, op) not in rules)


def analyze(nodes, inputs, outputs, ml_opset=3, opset=17):
    m = make_model(nodes, inputs, outputs, opset=opset, extra_opsets={ML: ml_opset})
    return onnx_energy.analyze(m)


def op(a, name):
    return next(n for n in a.nodes if n.op_type == name)


def test_tree_ensemble_classifier_counts_depth_per_tree_then_zipmap():
    # Tree 0 is 2 levels deep (root -> node 1 -> leaves), tree 1 one level. 5 leaves with 10
    # class weights: 2 per leaf. Per sample: 3 compares, 2 trees x 2 adds, the label (1
    # compare for two classes) = 8; 3 samples. ZipMap's map output does not block the count.
    tree = helper.make_node(
        "TreeEnsembleClassifier", ["x"], ["label", "probs"], domain=ML,
        nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1], nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2],
        nodes_featureids=[0, 1, 0, 0, 0, 2, 0, 0], nodes_values=[0.5] * 8,
        nodes_modes=["BRANCH_LEQ", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF", "BRANCH_LT", "LEAF",
                     "LEAF"],
        nodes_truenodeids=[1, 3, 0, 0, 0, 1, 0, 0], nodes_falsenodeids=[2, 4, 0, 0, 0, 2, 0, 0],
        class_treeids=[0, 0, 0, 0, 0, 0, 1, 1, 1, 1], class_nodeids=[2, 2, 3, 3, 4, 4, 1, 1, 2, 2],
        class_ids=[0, 1] * 5, class_weights=[0.5] * 10, classlabels_int64s=[0, 1])
    zipmap = helper.make_node("ZipMap", ["probs"], ["out"], domain=ML, classlabels_int64s=[0, 1])
    seq_map = helper.make_sequence_type_proto(helper.make_map_type_proto(
        I64, helper.make_tensor_type_proto(F, [])))
    m = make_model([tree, zipmap], [("x", [3, 4], F)], [("label", None, I64)],
                   extra_opsets={ML: 3})
    m.graph.output.append(helper.make_value_info("out", seq_map))
    a = onnx_energy.analyze(m)
    assert a.totals.complete, (a.unresolved, a.unsupported)
    assert op(a, "TreeEnsembleClassifier").flops == 3 * 8
    assert op(a, "TreeEnsembleClassifier").macs == 0
    assert op(a, "ZipMap").flops == 0


def test_tree_ensemble_v5_reads_depth_from_tree_roots():
    # One tree: root -> (node 1 | leaf 0), node 1 -> (leaf 1 | leaf 2): depth 2, one weight per
    # leaf. Per sample 2 compares + 1 add; 5 samples.
    node = helper.make_node(
        "TreeEnsemble", ["x"], ["y"], domain=ML, tree_roots=[0],
        nodes_featureids=[0, 1], nodes_truenodeids=[1, 1], nodes_trueleafs=[0, 1],
        nodes_falsenodeids=[0, 2], nodes_falseleafs=[1, 1],
        nodes_modes=helper.make_tensor("m", TensorProto.UINT8, [2], [0, 0]),
        nodes_splits=helper.make_tensor("s", F, [2], [0.5, 0.5]),
        leaf_targetids=[0, 0, 0], leaf_weights=helper.make_tensor("w", F, [3], [1.0, 2.0, 3.0]),
        n_targets=1, aggregate_function=1, post_transform=0)
    a = analyze([node], [("x", [5, 2], F)], [("y", None, F)], ml_opset=5, opset=21)
    assert a.totals.complete, a.unresolved
    assert op(a, "TreeEnsemble").flops == 5 * 3


def test_linear_classifier_with_softmax():
    # (2, 3) × 3 classes: 6 dot products of 3 (18 MACs) + intercepts; softmax 5 per output;
    # the label: 2 compares per sample.
    node = helper.make_node("LinearClassifier", ["x"], ["label", "p"], domain=ML,
                            coefficients=[0.1] * 9, intercepts=[0.0] * 3,
                            classlabels_ints=[0, 1, 2], post_transform="SOFTMAX")
    a = analyze([node], [("x", [2, 3], F)], [("label", None, I64), ("p", None, F)])
    lc = op(a, "LinearClassifier")
    assert lc.macs == 18
    assert lc.flops == 2 * 18 + 6 + 6 * 5 + 2 * 2


def test_svm_classifier_rbf_kernel_and_vote():
    # 1 sample of 2 features, 3 support vectors: RBF per vector 2 sub, 3 mul, 1 add, exp (7);
    # one class pair: a 3-long weighted sum + rho (7) and its vote (1); the label (1).
    node = helper.make_node("SVMClassifier", ["x"], ["label", "p"], domain=ML,
                            kernel_type="RBF", kernel_params=[0.5, 0.0, 3.0],
                            support_vectors=[0.1] * 6, vectors_per_class=[1, 2],
                            coefficients=[1.0] * 3, rho=[0.1], classlabels_ints=[0, 1])
    a = analyze([node], [("x", [1, 2], F)], [("label", None, I64), ("p", None, F)])
    svm = op(a, "SVMClassifier")
    assert svm.status == "ok", svm.reason
    assert svm.flops == 21 + 8 + 1


def test_scaler_and_l2_normalizer():
    nodes = [helper.make_node("Scaler", ["x"], ["s"], domain=ML, offset=[1.0], scale=[2.0]),
             helper.make_node("Normalizer", ["s"], ["y"], domain=ML, norm="L2")]
    a = analyze(nodes, [("x", [2, 4], F)], [("y", None, F)])
    assert a.totals.complete, a.unresolved
    assert op(a, "Scaler").flops == 16
    # per row: 4 squares, 3 adds, 1 sqrt, 4 divs
    assert op(a, "Normalizer").flops == 2 * 12


def test_binarizer_imputer_and_array_feature_extractor_shapes_flow():
    nodes = [helper.make_node("Imputer", ["x"], ["i"], domain=ML, imputed_value_floats=[0.0],
                              replaced_value_float=float("nan")),
             helper.make_node("ArrayFeatureExtractor", ["i", "idx"], ["sel"], domain=ML),
             helper.make_node("Binarizer", ["sel"], ["y"], domain=ML, threshold=0.5)]
    m = make_model(nodes, [("x", [3, 5], F)], [("y", None, F)],
                   initializers={"idx": np.array([0, 2], np.int64)}, extra_opsets={ML: 3})
    a = onnx_energy.analyze(m)
    assert a.totals.complete, a.unresolved
    assert op(a, "Imputer").flops == 15
    assert op(a, "Binarizer").flops == 6  # (3, 2) selected
