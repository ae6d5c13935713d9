"""The whole default ONNX domain is covered: every op `onnx.defs` knows (all opsets,
deprecated included) has a cost rule or is registered as zero-compute data movement (listed
in docs/zero_compute_ops.md); plus hand-counted checks of the ops beyond the basics."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.ops.registry import NodeFacts, all_rules
from onnx_energy.passes.control_flow import CONTROL_FLOW_OPS

F = TensorProto.FLOAT
I64 = TensorProto.INT64
DOC = Path(__file__).resolve().parent.parent / "docs" / "zero_compute_ops.md"


def onnx_domain_ops() -> set[str]:
    return {s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain == ""}


def test_every_onnx_domain_op_has_a_rule_or_is_movement():
    rules = all_rules()
    missing = sorted(op for op in onnx_domain_ops() if ("", op) not in rules)
    assert not missing, f"ops with neither a cost rule nor a movement class: {missing}"


def test_control_flow_ops_are_costed_through_their_subgraphs():
    # Registered (ops/control_flow.py) and analysed through their bodies (passes/control_flow).
    assert {"If", "Loop", "Scan"} <= CONTROL_FLOW_OPS
    rules = all_rules()
    assert all(rules[("", op)].kind == "compute" for op in CONTROL_FLOW_OPS)


def documented_movement_ops() -> set[tuple[str, str]]:
    domain, out = "", set()
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):  # "## ONNX domain", "## com.microsoft domain", ...
            name = line[3:].split()[0]
            domain = "" if name == "ONNX" else name
        m = re.match(r"\| (\w+) \|", line)
        if m and m.group(1) != "Op":
            out.add((domain, m.group(1)))
    return out


def test_docs_list_exactly_the_zero_compute_ops():
    registered = {k for k, r in all_rules().items() if r.kind == "movement"}
    assert documented_movement_ops() == registered


def test_movement_rules_cost_nothing():
    for key, rule in all_rules().items():
        if rule.kind == "movement":
            cost = rule.cost(NodeFacts(node=None, inputs=(), outputs=()))  # type: ignore[arg-type]
            assert cost.macs == cost.flops == cost.bops.total == 0, key


# ------------------------------------------------------------------- hand-counted ops


def analyze_one(node, inputs, outputs=(), inits=None, opset=17):
    m = make_model([node], inputs, outputs, initializers=inits, opset=opset)
    a = onnx_energy.analyze(m)
    n = a.nodes[0]
    assert n.status == "ok", n.reason
    return n


def test_det_lu_elimination():
    # n = 4: MACs Σ (n−k−1)² = 9 + 4 + 1 = 14 per matrix, 2 matrices.
    n = analyze_one(helper.make_node("Det", ["x"], ["y"]), [("x", [2, 4, 4], F)])
    assert n.macs == 28
    # + 6 pivot compares, 6 divs, 3 diagonal muls per matrix
    assert n.flops == 2 * 28 + 2 * (6 + 6 + 3)


def test_lrn():
    n = analyze_one(helper.make_node("LRN", ["x"], ["y"], size=3),
                    [("x", [1, 4, 2, 2], F)])
    assert n.macs == 0 and n.flops == 16 * (3 + 3 + 2 + 1)


def test_top_k_heap_comparisons():
    # rows of 10, k = 4: 10 · ⌈log2 4⌉ = 20 compares per row, 3 rows.
    n = analyze_one(helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1),
                    [("x", [3, 10], F)], [("v", None, F), ("i", None, I64)],
                    inits={"k": np.array([4], np.int64)})
    assert n.bops.sub == 60 and n.macs == 0


def test_non_max_suppression_pairs():
    # 1 batch, 2 classes, 6 boxes, max 2 kept per class: pairs min(15, 2·6) = 12 per class;
    # per class 6 score compares + 6·⌈log2 6⌉ = 18 sort compares; 6 box areas.
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "max"], ["sel"])
    n = onnx_energy.analyze(make_model(
        [node], [("boxes", [1, 6, 4], F), ("scores", [1, 2, 6], F)],
        [("sel", None, I64)], initializers={"max": np.array([2], np.int64)})).nodes[0]
    iou_pair = 10 + 1 + 1 + 1
    assert n.flops == 2 * (6 + 18 + 12 * iou_pair) + 6 * 3
    assert n.macs == 0


def test_roi_align_samples():
    # 3 ROIs × 2 channels × 2×2 bins, sampling_ratio 2: 4 bilinear samples (4 mul, 3 add)
    # averaged (3 add, div) per output; per ROI 8 (box scale, bin sizes) + 16 sample
    # positions × (2 mul, 2 add, 6 sub, 4 mul).
    node = helper.make_node("RoiAlign", ["x", "rois", "idx"], ["y"], output_height=2,
                            output_width=2, sampling_ratio=2)
    n = analyze_one(node, [("x", [1, 2, 8, 8], F), ("rois", [3, 4], F), ("idx", [3], I64)])
    outputs = 3 * 2 * 2 * 2
    assert n.flops == outputs * (4 * 7 + 4) + 3 * (8 + 16 * 14)


def test_dft_radix2_butterflies():
    # 3 signals of length 8 (complex): 4·3 = 12 butterflies (4 mul, 3 add, 3 sub) each.
    node = helper.make_node("DFT", ["x", "", "axis"], ["y"])
    n = analyze_one(node, [("x", [3, 8, 2], F)], inits={"axis": np.array(1, np.int64)},
                    opset=20)
    assert n.macs == 0 and n.flops == 3 * 12 * 10


def test_stft_frames():
    # signal (1, 64, 1), frame_step 16, window of 16: (64 − 16)/16 + 1 = 4 frames; each a
    # 16-point FFT (8·4 = 32 butterflies) and 16 window muls.
    node = helper.make_node("STFT", ["x", "step", "w"], ["y"])
    n = analyze_one(node, [("x", [1, 64, 1], F)],
                    inits={"step": np.array(16, np.int64), "w": weights(16)})
    assert n.flops == 4 * (32 * 10 + 16)


def test_mean_variance_normalization_and_cumprod():
    n = analyze_one(helper.make_node("MeanVarianceNormalization", ["x"], ["y"]),
                    [("x", [2, 3, 4, 4], F)])
    # rows = 3 channels; per element 5 ops, per row 5 ops
    assert n.flops == 96 * 5 + 3 * 5
    n = analyze_one(helper.make_node("CumProd", ["x", "ax"], ["y"]), [("x", [5, 3], F)],
                    inits={"ax": np.array(0, np.int64)}, opset=26)
    assert n.bops.mul == 15


def test_swiglu_and_causal_conv_with_state():
    n = analyze_one(helper.make_node("SwiGLU", ["a", "b"], ["y"]),
                    [("a", [2, 8], F), ("b", [2, 8], F)], opset=28)
    assert n.flops == 16 * 6
    # depthwise causal conv: (1, 4, 6) with k = 3: 24 outputs × 3 = 72 MACs, + bias, + SiLU
    node = helper.make_node("CausalConvWithState", ["x", "w", "b"], ["y", "state"],
                            activation="silu")
    n = analyze_one(node, [("x", [1, 4, 6], F)], [("y", None, F), ("state", None, F)],
                    inits={"w": weights(4, 1, 3), "b": weights(4)}, opset=27)
    assert n.macs == 72
    assert n.flops == 2 * 72 + 24 + 24 * 5


def test_linear_attention_recurrence():
    # B=1, T=3, 2 heads, d_k = d_v = 4, linear rule: per token and head the k⊗v update
    # (16 MACs) and the qᵀS read-out (16 MACs): 3·2·32 = 192.
    node = helper.make_node("LinearAttention", ["q", "k", "v"], ["y", "state"],
                            q_num_heads=2, kv_num_heads=2, update_rule="linear")
    n = analyze_one(node, [("q", [1, 3, 8], F), ("k", [1, 3, 8], F), ("v", [1, 3, 8], F)],
                    [("y", None, F), ("state", None, F)], opset=27)
    assert n.macs == 192


def test_grid_sample_bilinear():
    # (1, 2, 4, 4) sampled at a (1, 3, 5, 2) grid: 15 locations, 30 outputs; per output 4 taps
    # (4 mul, 3 add), per location unnormalize (8) + weights (6 sub, 4 mul).
    node = helper.make_node("GridSample", ["x", "g"], ["y"])
    n = analyze_one(node, [("x", [1, 2, 4, 4], F), ("g", [1, 3, 5, 2], F)], opset=20)
    assert n.flops == 30 * 7 + 15 * (8 + 10)


def test_deform_conv_and_affine_grid():
    # DeformConv (1, 2, 5, 5) ⊛ (3, 2, 3, 3): 27 outputs × 18 = 486 MACs, like Conv.
    node = helper.make_node("DeformConv", ["x", "w", "off"], ["y"], kernel_shape=[3, 3])
    n = analyze_one(node, [("x", [1, 2, 5, 5], F), ("off", [1, 18, 3, 3], F)],
                    inits={"w": weights(3, 2, 3, 3)}, opset=19)
    assert n.macs == 486
    # AffineGrid (2, 2, 3) over size (2, 1, 3, 4): 24 points × 2 coords, dot length 2.
    node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"])
    n = analyze_one(node, [("theta", [2, 2, 3], F)],
                    inits={"size": np.array([2, 1, 3, 4], np.int64)}, opset=20)
    assert n.macs == 2 * 12 * 2 * 2


def test_losses():
    node = helper.make_node("SoftmaxCrossEntropyLoss", ["s", "t"], ["loss"])
    n = analyze_one(node, [("s", [4, 5], F), ("t", [4], I64)])
    # log-softmax: 20 · 5 + 4 roots; NLL mean: 4 sub, 3 add, 1 div
    assert n.flops == 20 * 5 + 4 + 4 + 3 + 1


def test_scatter_reductions_are_compute():
    node = helper.make_node("ScatterND", ["x", "i", "u"], ["y"], reduction="add")
    n = analyze_one(node, [("x", [8, 4], F), ("u", [3, 4], F)],
                    inits={"i": np.array([[0], [2], [5]], np.int64)}, opset=18)
    assert n.bops.add == 12
    node = helper.make_node("ScatterElements", ["x", "i", "u"], ["y"])
    n = analyze_one(node, [("x", [8, 4], F), ("u", [1, 4], F)],
                    inits={"i": np.zeros((1, 4), np.int64)})
    assert n.flops == 0


@pytest.mark.parametrize(("op", "per"), [("HannWindow", 5), ("BlackmanWindow", 10)])
def test_windows(op, per):
    n = analyze_one(helper.make_node(op, ["size"], ["w"]), [],
                    inits={"size": np.array(16, np.int64)})
    assert n.flops == 16 * per


def test_random_generators():
    n = analyze_one(helper.make_node("RandomNormal", [], ["y"], shape=[3, 4]), [])
    assert n.flops == 12 * 8 and n.bops.root == 36
    n = analyze_one(helper.make_node("RandomUniformLike", ["x"], ["y"]), [("x", [5], F)])
    assert n.flops == 10


def test_det_of_a_1x1_matrix_costs_nothing():
    """Degenerate sizes never make a count negative."""
    n = analyze_one(helper.make_node("Det", ["x"], ["y"]), [("x", [1, 1], F)])
    assert n.macs == 0 and n.flops == 0
    assert math.isfinite(n.flops)


def test_group_normalization_gets_a_shape_onnx_cannot_infer():
    # GroupNormalization is a function op without an inference function: its (2, 4, 3, 3)
    # output comes from the contrib-shapes rule so the Relu after it is counted.
    nodes = [helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2),
             helper.make_node("Relu", ["y"], ["z"])]
    m = make_model(nodes, [("x", [2, 4, 3, 3], F)],
                   initializers={"s": weights(4), "b": weights(4)}, opset=21)
    a = onnx_energy.analyze(m)
    assert a.totals.complete
    # per element: 2 add, sub, 2 mul + gamma mul + beta add = 7; per group row (4): 5
    assert a.by_op_type["GroupNormalization"].flops == 72 * 7 + 4 * 5
    assert a.by_op_type["Relu"].flops == 72
