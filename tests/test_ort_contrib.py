"""Every onnxruntime contrib op has a rule (schemas enumerated from the installed onnxruntime),
and hand-counted checks of the ops real graphs showed missing: QAttention's float output,
RelativePositionBias (T5), QEmbedLayerNormalization, GatedRelativePositionBias, packed
attention, MoE, the blocked com.microsoft.nchwc kernels and the channels-last NHWC twins."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.ops.registry import all_rules

F = TensorProto.FLOAT
U8 = TensorProto.UINT8
I32 = TensorProto.INT32
MS = "com.microsoft"
NCHWC = "com.microsoft.nchwc"
NHWC = "com.ms.internal.nhwc"


def ort_schemas() -> dict[str, set[str]]:
    schema = pytest.importorskip("onnxruntime.capi.onnxruntime_pybind11_state")
    if not hasattr(schema, "get_all_operator_schema"):
        pytest.skip("this onnxruntime does not list its operator schemas")
    out: dict[str, set[str]] = {}
    for s in schema.get_all_operator_schema():
        out.setdefault("" if s.domain == "ai.onnx" else s.domain, set()).add(s.name)
    return out


@pytest.mark.parametrize("domain", ["com.microsoft", NCHWC, NHWC, ""])
def test_every_onnxruntime_schema_has_a_rule_or_is_movement(domain):
    ops = ort_schemas().get(domain)
    if not ops:
        pytest.skip(f"the installed onnxruntime has no {domain or 'ai.onnx'} schemas")
    rules = all_rules()
    missing = sorted(op for op in ops if (domain, op) not in rules)
    assert not missing, f"{domain or 'ai.onnx'} ops without a rule: {missing}"


def op(a, key: str):
    return next(n for n in a.nodes if f"{n.domain}::{n.op_type}".lstrip(":") == key)


def test_qattention_output_is_float_so_what_follows_is_counted():
    # (1, 4, 8) uint8 × int8 (8, 24), 2 heads of 4: projection 4·24·8 = 768 MACs, scores and
    # context 2·(2·4·4·4) = 256; the MatMul after it reads a float (1, 4, 8): 4·2·8 = 64.
    nodes = [helper.make_node("QAttention", ["x", "w", "b", "sx", "sw", "", "zx", "zw"], ["y"],
                              domain=MS, num_heads=2),
             helper.make_node("MatMul", ["y", "w2"], ["z"])]
    m = make_model(nodes, [("x", [1, 4, 8], U8)], [("z", None, F)], initializers={
        "w": np.ones((8, 24), np.int8), "b": weights(24), "sx": np.array(0.1, np.float32),
        "sw": np.array(0.1, np.float32), "zx": np.array(128, np.uint8),
        "zw": np.array(0, np.int8), "w2": weights(8, 2)}, extra_opsets={MS: 1})
    a = onnx_energy.analyze(m)
    assert a.totals.complete, a.unresolved
    assert op(a, "com.microsoft::QAttention").outputs[0].dtype == "float32"
    assert op(a, "com.microsoft::QAttention").macs == 768 + 256
    assert op(a, "MatMul").macs == 64


def test_t5_relative_position_bias_takes_its_shape_from_the_lengths():
    # (1, 2, 5, 5) bias: 25 pairs × 10 bucket ops; the Add after it: 50 elements.
    nodes = [helper.make_node("RelativePositionBias", ["table", "q", "k"], ["bias"], domain=MS,
                              max_distance=16, is_bidirectional=1),
             helper.make_node("Add", ["scores", "bias"], ["y"])]
    m = make_model(nodes, [("scores", [1, 2, 5, 5], F)], initializers={
        "table": weights(32, 2), "q": np.array(5, np.int64), "k": np.array(5, np.int64)},
        extra_opsets={MS: 1})
    a = onnx_energy.analyze(m)
    assert a.totals.complete, a.unresolved
    assert op(a, "com.microsoft::RelativePositionBias").flops == 250
    assert op(a, "Add").flops == 50


def test_qembed_layer_normalization():
    # ids (2, 3), D = 4: 24 outputs; 3 tables dequantized per gathered value and gamma, beta
    # once: (72 + 8)·2 = 160; 2 adds per output (48); LayerNorm 7 per element (168) and 5 per
    # row (30); the mask sum over 6 ids.
    names = ["ids", "seg", "wq", "pq", "sq", "gq", "bq", "mask", "ws", "ps", "ss", "gs", "bs",
             "wz", "pz", "sz", "gz", "bz"]
    s = np.array(0.1, np.float32)
    z = np.array(0, np.uint8)
    inits = {"wq": np.ones((10, 4), np.uint8), "pq": np.ones((16, 4), np.uint8),
             "sq": np.ones((2, 4), np.uint8), "gq": np.ones(4, np.uint8),
             "bq": np.ones(4, np.uint8), **{k: s for k in ("ws", "ps", "ss", "gs", "bs")},
             **{k: z for k in ("wz", "pz", "sz", "gz", "bz")}}
    n = helper.make_node("QEmbedLayerNormalization", names, ["y", "mi"], domain=MS)
    m = make_model([n], [("ids", [2, 3], I32), ("seg", [2, 3], I32), ("mask", [2, 3], I32)],
                   [("y", None, F), ("mi", None, I32)], initializers=inits, extra_opsets={MS: 1})
    a = onnx_energy.analyze(m)
    q = op(a, "com.microsoft::QEmbedLayerNormalization")
    assert q.status == "ok", q.reason
    assert q.outputs[0].shape == (2, 3, 4) and q.outputs[0].dtype == "float32"
    assert q.flops == 160 + 48 + 168 + 30 + 6


def test_gated_relative_position_bias():
    # B=1, S=3, 2 heads of 4, gate width D=8: query + bias (24 adds); gate linear over 6 rows:
    # 192 MACs + 48 bias adds (432 FLOPs); halves summed (36 adds); 2 sigmoids per row (48);
    # the gate formula (4 per row, 24); the product with rel_pos (18).
    n = helper.make_node("GatedRelativePositionBias", ["q", "qb", "rel", "w", "b", "eco"],
                         ["y"], domain=MS, num_heads=2)
    m = make_model([n], [("q", [1, 3, 8], F), ("rel", [1, 2, 3, 3], F)], initializers={
        "qb": weights(8), "w": weights(4, 8), "b": weights(8), "eco": weights(1, 2, 1, 1)},
        extra_opsets={MS: 1})
    a = onnx_energy.analyze(m)
    g = op(a, "com.microsoft::GatedRelativePositionBias")
    assert g.status == "ok", g.reason
    assert g.outputs[0].shape == (1, 2, 3, 3)
    assert g.macs == 192
    assert g.flops == 24 + 432 + 36 + 48 + 24 + 18


def test_packed_attention_counts_the_padded_batch():
    # 5 real tokens × weights (8, 24): 960 MACs; token_offset (2, 3): scores and context over
    # 2 sequences of 3, 2 heads of 4: 2·(2·2·3·3·4) = 288.
    n = helper.make_node("PackedAttention", ["x", "w", "b", "off", "cum"], ["y"], domain=MS,
                         num_heads=2)
    m = make_model([n], [("x", [5, 8], F), ("off", [2, 3], I32), ("cum", [3], I32)],
                   initializers={"w": weights(8, 24), "b": weights(24)}, extra_opsets={MS: 1})
    a = onnx_energy.analyze(m)
    p = op(a, "com.microsoft::PackedAttention")
    assert p.status == "ok", p.reason
    assert p.macs == 960 + 288


def test_moe_counts_the_k_selected_experts_per_token():
    # 6 tokens of D=4, 3 experts of I=8, top-2, ReLU: fc1 and fc2 12 rows × 32 = 384 MACs each
    # (1536 FLOPs); ReLU 96; per token softmax over 3 (15), top-2 heap (6), combine (12).
    n = helper.make_node("MoE", ["x", "r", "fc1", "", "fc2"], ["y"], domain=MS, k=2,
                         activation_type="relu")
    m = make_model([n], [("x", [2, 3, 4], F), ("r", [6, 3], F)],
                   initializers={"fc1": weights(3, 4, 8), "fc2": weights(3, 8, 4)},
                   extra_opsets={MS: 1})
    a = onnx_energy.analyze(m)
    e = op(a, "com.microsoft::MoE")
    assert e.status == "ok", e.reason
    assert e.macs == 768
    assert e.flops == 1536 + 96 + 6 * 33


def test_nchwc_kernels_cost_the_padded_channels():
    # x (1, 12, 6, 6) reordered to 16 channels (the Conv's weight (16, 16, 3, 3) shows it);
    # Conv: 16·36 outputs × 144 = 82944 MACs; MaxPool 2×2: 16·9 outputs × 4 compares; the
    # output reordered to its 10 real channels: the Relu after it sees 90 elements.
    # x2 (1, 12, 4, 4) reordered without a Conv: the AVX2 block pads 12 to 16; its global
    # average pool: 16 channels × (15 adds + 1 div).
    nodes = [
        helper.make_node("ReorderInput", ["x"], ["xc"], domain=NCHWC),
        helper.make_node("Conv", ["xc", "w", "b"], ["yc"], domain=NCHWC, kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], activation="Relu"),
        helper.make_node("MaxPool", ["yc"], ["pc"], domain=NCHWC, kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("ReorderOutput", ["pc"], ["p"], domain=NCHWC, channels=10),
        helper.make_node("Relu", ["p"], ["r"]),
        helper.make_node("ReorderInput", ["x2"], ["x2c"], domain=NCHWC),
        helper.make_node("GlobalAveragePool", ["x2c"], ["g"], domain=NCHWC),
    ]
    m = make_model(nodes, [("x", [1, 12, 6, 6], F), ("x2", [1, 12, 4, 4], F)],
                   [("r", None, F), ("g", None, F)],
                   initializers={"w": weights(16, 16, 3, 3), "b": weights(16)},
                   extra_opsets={NCHWC: 1})
    a = onnx_energy.analyze(m)
    assert a.totals.complete, a.unresolved
    conv = op(a, f"{NCHWC}::Conv")
    assert conv.outputs[0].shape == (1, 16, 6, 6)
    assert conv.macs == 82944
    assert conv.flops == 2 * 82944 + 576 + 576  # bias adds, the fused Relu
    assert op(a, f"{NCHWC}::MaxPool").flops == 144 * 4
    assert op(a, "Relu").flops == 90
    assert op(a, f"{NCHWC}::GlobalAveragePool").flops == 16 * 16
    assert op(a, f"{NCHWC}::ReorderOutput").flops == 0


def test_nhwc_conv_is_its_onnx_twin_on_channels_last_tensors():
    # (1, 6, 6, 4) ⊛ (8, 4, 3, 3), pad 1: output (1, 6, 6, 8), 288 × 36 = 10368 MACs.
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], domain=NHWC, kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["y"], ["r"])]
    m = make_model(nodes, [("x", [1, 6, 6, 4], F)], initializers={"w": weights(8, 4, 3, 3)},
                   extra_opsets={NHWC: 1})
    a = onnx_energy.analyze(m)
    assert a.totals.complete, a.unresolved
    c = op(a, f"{NHWC}::Conv")
    assert c.outputs[0].shape == (1, 6, 6, 8)
    assert c.macs == 10368
    assert op(a, "Relu").flops == 288
