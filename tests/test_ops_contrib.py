"""com.microsoft contrib and fused ops: their shapes (contrib_shapes) and hand-counted MACs,
ONNX Attention/RotaryEmbedding, and decoder-only transformers with a KV cache analysed with
--dim bindings for batch, sequence and past length."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.cli import main

F = TensorProto.FLOAT
I32 = TensorProto.INT32
I64 = TensorProto.INT64
MS = "com.microsoft"
MS_OPSET = {MS: 1}


def ms(op: str, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, domain=MS, **attrs)


def node(a, op_key: str):
    return next(n for n in a.nodes if (n.op_type if n.domain == "" else f"{n.domain}::{n.op_type}")
                == op_key)


def i64(*v: int) -> np.ndarray:
    return np.array(v, np.int64)


# ------------------------------------------------------------------------------ attention


def test_ms_attention_counts_projection_qk_av_and_past():
    # x (2, 4, 8) · w (8, 24): 2·4·24 outputs × 8 = 1536 MACs; 2 heads, H = 4, past P = 3,
    # T = 7: QKᵀ 2·2·4·7·4 = 448, AV 448. The downstream MatMul sees the inferred (2, 4, 8).
    nodes = [ms("Attention", ["x", "w", "b", "", "past"], ["y", "present"], num_heads=2),
             helper.make_node("MatMul", ["y", "w2"], ["z"])]
    m = make_model(nodes, [("x", ["B", 4, 8], F), ("past", [2, "B", 2, 3, 4], F)],
                   [("z", None, F), ("present", None, F)],
                   initializers={"w": weights(8, 24), "b": weights(24), "w2": weights(8, 5)},
                   extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m, dims={"B": 2})
    att = node(a, "com.microsoft::Attention")
    assert att.status == "ok"
    assert att.macs == 1536 + 448 + 448
    assert att.outputs[1].shape == (2, 2, 2, 7, 4)
    assert node(a, "MatMul").macs == 2 * 4 * 5 * 8
    assert a.totals.complete


def test_ms_attention_shared_buffer_uses_past_sequence_length_value():
    # Past buffer holds 16 positions, past_sequence_length = 5: T = 5 + 1.
    nodes = [ms("Attention", ["x", "w", "", "", "past", "", "psl"], ["y", "present"],
                num_heads=2, past_present_share_buffer=1, unidirectional=1)]
    m = make_model(nodes, [("x", [1, 1, 8], F), ("past", [2, 1, 2, 16, 4], F)],
                   initializers={"w": weights(8, 24), "psl": np.array(5, np.int32)},
                   extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    att = node(a, "com.microsoft::Attention")
    assert att.macs == 1 * 24 * 8 + 2 * (1 * 2 * 1 * 6 * 4)


def test_multi_head_attention_with_past_key_value():
    # q/k/v (1, 3, 8), N = 2, H = 4; past (1, 2, 5, 4): T = 8. QKᵀ = AV = 1·2·3·8·4 = 192.
    nodes = [ms("MultiHeadAttention", ["q", "k", "v", "", "", "", "pk", "pv"],
                ["y", "present_k", "present_v"], num_heads=2)]
    m = make_model(nodes, [("q", [1, 3, 8], F), ("k", [1, 3, 8], F), ("v", [1, 3, 8], F),
                           ("pk", [1, 2, 5, 4], F), ("pv", [1, 2, 5, 4], F)],
                   [("y", None, F), ("present_k", None, F), ("present_v", None, F)],
                   extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    mha = node(a, "com.microsoft::MultiHeadAttention")
    assert mha.macs == 2 * 192
    assert [o.shape for o in mha.outputs] == [(1, 3, 8), (1, 2, 8, 4), (1, 2, 8, 4)]


def test_multi_head_attention_cross_attention_bnsh_key():
    # Cross attention over a pre-projected (1, 2, 10, 4) key/value: T = 10, no past added.
    nodes = [ms("MultiHeadAttention", ["q", "k", "v"], ["y"], num_heads=2)]
    m = make_model(nodes, [("q", [1, 3, 8], F), ("k", [1, 2, 10, 4], F),
                           ("v", [1, 2, 10, 4], F)], extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    assert node(a, "com.microsoft::MultiHeadAttention").macs == 2 * (1 * 2 * 3 * 10 * 4)


def test_decoder_masked_mha_attends_past_sequence_length_plus_one():
    # One token, shared buffer of 32, past_sequence_length 9: T = 10. N = 4, H = 2.
    nodes = [ms("DecoderMaskedMultiHeadAttention",
                ["q", "k", "v", "", "", "pk", "pv", "psl"], ["y", "pko", "pvo"],
                num_heads=4, past_present_share_buffer=1)]
    m = make_model(nodes, [("q", [3, 1, 8], F), ("k", [3, 1, 8], F), ("v", [3, 1, 8], F),
                           ("pk", [3, 4, 32, 2], F), ("pv", [3, 4, 32, 2], F)],
                   [("y", None, F)], initializers={"psl": np.array(9, np.int32)},
                   extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    assert node(a, "com.microsoft::DecoderMaskedMultiHeadAttention").macs == 2 * (3 * 4 * 10 * 2)


def gqa_node(**attrs):
    return ms("GroupQueryAttention", ["q", "k", "v", "pk", "pv", "seqlens", "total"],
              ["y", "pko", "pvo"], num_heads=4, kv_num_heads=2, **attrs)


def test_group_query_attention_shares_kv_heads_and_reads_total_length():
    # N = 4 query heads over 2 K/V heads, H = 8; S = 3, past 6, total_sequence_length 9.
    # MACs use the query heads: 2 · (2·4·3·9·8) = 3456.
    m = make_model([gqa_node()],
                   [("q", [2, 3, 32], F), ("k", [2, 3, 16], F), ("v", [2, 3, 16], F),
                    ("pk", [2, 2, 6, 8], F), ("pv", [2, 2, 6, 8], F),
                    ("seqlens", [2], I32)],
                   [("y", None, F), ("pko", None, F)],
                   initializers={"total": np.array(9, np.int32)}, extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    gqa = node(a, "com.microsoft::GroupQueryAttention")
    assert gqa.status == "ok"
    assert gqa.macs == 2 * (2 * 4 * 3 * 9 * 8)
    assert gqa.outputs[0].shape == (2, 3, 32)
    assert gqa.outputs[1].shape == (2, 2, 9, 8)


def test_group_query_attention_without_total_value_uses_past_plus_new():
    m = make_model([gqa_node()],
                   [("q", [1, 1, 32], F), ("k", [1, 1, 16], F), ("v", [1, 1, 16], F),
                    ("pk", [1, 2, 6, 8], F), ("pv", [1, 2, 6, 8], F),
                    ("seqlens", [1], I32), ("total", [], I32)],
                   [("y", None, F)], extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    assert node(a, "com.microsoft::GroupQueryAttention").macs == 2 * (1 * 4 * 1 * 7 * 8)


def test_onnx_attention_opset_23_with_gqa_and_past():
    # Q (1, 4, 3, 8), K/V (1, 2, 3, 8), past (1, 2, 5, 8): T = 8; 2·(1·4·3·8·8) = 1536.
    n = helper.make_node("Attention", ["Q", "K", "V", "", "pk", "pv"], ["Y", "pko", "pvo"])
    m = make_model([n], [("Q", [1, 4, 3, 8], F), ("K", [1, 2, 3, 8], F), ("V", [1, 2, 3, 8], F),
                         ("pk", [1, 2, 5, 8], F), ("pv", [1, 2, 5, 8], F)],
                   [("Y", None, F)], opset=23)
    a = onnx_energy.analyze(m)
    att = node(a, "Attention")
    assert att.status == "ok"
    assert att.macs == 1536
    # per score: scale (mul) and softmax (2 sub, exp, add, div); 96 scores
    scores = 1 * 4 * 3 * 8
    assert att.bops.root == scores and att.bops.div == scores


def test_onnx_attention_3d_inputs_use_head_attributes():
    n = helper.make_node("Attention", ["Q", "K", "V"], ["Y"], q_num_heads=4, kv_num_heads=2)
    m = make_model([n], [("Q", [2, 5, 32], F), ("K", [2, 7, 16], F), ("V", [2, 7, 16], F)],
                   [("Y", None, F)], opset=23)
    a = onnx_energy.analyze(m)
    assert node(a, "Attention").macs == 2 * (2 * 4 * 5 * 7 * 8)


def test_rotary_embeddings():
    # ONNX: X (1, 2, 3, 8) fully rotated: 48 elements = 24 pairs × (4 mul, add, sub).
    n = helper.make_node("RotaryEmbedding", ["X", "cos", "sin", "pos"], ["Y"])
    m = make_model([n], [("X", [1, 2, 3, 8], F), ("pos", [1, 3], I64)],
                   initializers={"cos": weights(16, 4), "sin": weights(16, 4)}, opset=23)
    a = onnx_energy.analyze(m)
    r = node(a, "RotaryEmbedding")
    assert r.macs == 0 and r.flops == 24 * 6 and r.bops.mul == 96
    # com.microsoft: input (1, 3, 16), 2 heads of 8, rotary_embedding_dim 4: 24 pairs... 12.
    n = ms("RotaryEmbedding", ["X", "pos", "cos", "sin"], ["Y"], num_heads=2,
           rotary_embedding_dim=4)
    m = make_model([n], [("X", [1, 3, 16], F), ("pos", [1, 3], I64)],
                   initializers={"cos": weights(16, 2), "sin": weights(16, 2)},
                   extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    r = node(a, "com.microsoft::RotaryEmbedding")
    assert r.status == "ok" and r.flops == 12 * 6 and r.outputs[0].shape == (1, 3, 16)


# --------------------------------------------------------------------- norms and gelus


def test_skip_layer_norms_and_gelus_propagate_shapes():
    # x (2, 3, 8): SkipLayerNorm (with beta and bias) -> FastGelu(bias) -> BiasGelu
    # -> QuickGelu -> SkipSimplifiedLayerNorm -> MatMul (8 -> 4) = 2·3·4·8 = 192 MACs.
    nodes = [
        ms("SkipLayerNormalization", ["x", "s", "g", "b", "bias"], ["h", "", "", "sum"]),
        ms("FastGelu", ["h", "bias"], ["g1"]),
        ms("BiasGelu", ["g1", "bias"], ["g2"]),
        ms("QuickGelu", ["g2"], ["g3"], alpha=1.702),
        ms("SkipSimplifiedLayerNormalization", ["g3", "sum", "g"], ["n"]),
        helper.make_node("MatMul", ["n", "w"], ["y"]),
    ]
    inits = {"g": weights(8), "b": weights(8), "bias": weights(8), "w": weights(8, 4)}
    m = make_model(nodes, [("x", [2, 3, 8], F), ("s", [2, 3, 8], F)], initializers=inits,
                   extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    assert a.totals.complete
    assert a.totals.macs == 192
    n, rows = 48, 6
    sln = node(a, "com.microsoft::SkipLayerNormalization")
    # 2 residual adds + (add 2, sub 1, mul 2, gamma mul, beta add) per element; per row
    # div 3, add 1, root 1.
    assert sln.bops.add == n * 2 + n * 3 + rows
    assert sln.bops.mul == n * 3
    assert node(a, "com.microsoft::FastGelu").flops == n * 7  # tanh gelu (6) + bias add
    assert node(a, "com.microsoft::QuickGelu").flops == n * 6
    ssln = node(a, "com.microsoft::SkipSimplifiedLayerNormalization")
    assert ssln.flops == n * 1 + n * 4 + rows * 4


def test_simplified_layer_norm_in_onnx_domain():
    # ORT puts SimplifiedLayerNormalization in the ONNX domain; onnx.defs does not know it.
    nodes = [helper.make_node("SimplifiedLayerNormalization", ["x", "g"], ["h"], axis=-1),
             helper.make_node("MatMul", ["h", "w"], ["y"])]
    m = make_model(nodes, [("x", [4, 16], F)],
                   initializers={"g": weights(16), "w": weights(16, 2)})
    a = onnx_energy.analyze(m)
    assert a.totals.complete
    assert a.totals.macs == 4 * 2 * 16
    assert node(a, "SimplifiedLayerNormalization").flops == 64 * 4 + 4 * 4


def test_fused_conv_and_fused_matmul():
    # FusedConv: (1,3,8,8) ⊛ (4,3,3,3) pad 1 + bias + Relu: 256 outputs × 27 = 6912 MACs.
    # FusedMatMul transB, alpha 0.5: (2, 6, 5) · (2, 7, 5)ᵀ -> (2, 6, 7): 84 × 5 = 420 MACs.
    nodes = [ms("FusedConv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3],
                activation="Relu"),
             ms("FusedMatMul", ["a", "bt"], ["y"], transB=1, alpha=0.5)]
    m = make_model(nodes, [("x", [1, 3, 8, 8], F), ("a", [2, 6, 5], F), ("bt", [2, 7, 5], F)],
                   [("c", None, F), ("y", None, F)],
                   initializers={"w": weights(4, 3, 3, 3), "b": weights(4)},
                   extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    fc = node(a, "com.microsoft::FusedConv")
    assert fc.outputs[0].shape == (1, 4, 8, 8)
    assert fc.macs == 6912
    assert fc.flops == 2 * 6912 + 256 + 256  # bias adds + one Relu compare per output
    fm = node(a, "com.microsoft::FusedMatMul")
    assert fm.outputs[0].shape == (2, 6, 7)
    assert fm.macs == 420 and fm.flops == 840 + 84


def test_fused_matmul_batch_transposes():
    # transBatchA + transA: A (5, 2, 6) -> (2, 6, 5) -> (2, 5, 6); K = 5... A[0] = 5.
    from onnx_energy.ops.contrib import fused_matmul_k

    assert fused_matmul_k((5, 2, 6), trans_a=True, trans_batch_a=True) == 5
    assert fused_matmul_k((2, 6, 5), trans_a=True, trans_batch_a=False) == 6
    assert fused_matmul_k((2, 6, 5), trans_a=False, trans_batch_a=True) == 5


def test_bias_add_and_gelu():
    nodes = [ms("BiasAdd", ["x", "b", "s"], ["y"]), ms("Gelu", ["y"], ["z"])]
    m = make_model(nodes, [("x", [2, 4, 8], F), ("s", [2, 4, 8], F)],
                   initializers={"b": weights(8)}, extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    assert node(a, "com.microsoft::BiasAdd").flops == 64 * 2
    assert node(a, "com.microsoft::Gelu").flops == 64 * 5
    assert a.totals.complete


def test_contrib_op_without_shape_rule_gets_shapes_from_onnxruntime():
    # RestorePadding has no shape rule here; ORT's symbolic inference gives its (2, 5, 8)
    # output so the MatMul after it is counted: 2·5·3 outputs × 8 = 240 MACs.
    nodes = [ms("RestorePadding", ["x", "offsets"], ["xp"]),
             helper.make_node("MatMul", ["xp", "w"], ["y"])]
    m = make_model(nodes, [("x", [7, 8], F), ("offsets", [2, 5], I32)],
                   initializers={"w": weights(8, 3)}, extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    assert node(a, "MatMul").macs == 240
    assert node(a, "com.microsoft::RestorePadding").flops == 0  # a scatter back
    assert a.totals.complete


def test_gather_block_quantized_unpacks_4_bit_rows():
    # data (50, 16) uint8 holds 50 rows of 32 4-bit values; ids (2, 3) -> (2, 3, 32),
    # dequantized ((q − zp)·scale: sub, mul) per element; then MatMul 6·4 × 32 = 768 MACs.
    nodes = [ms("GatherBlockQuantized", ["data", "ids", "scales"], ["e"], bits=4,
                block_size=32, quantize_axis=1),
             helper.make_node("MatMul", ["e", "w"], ["y"])]
    m = make_model(nodes, [("ids", [2, 3], I64)],
                   initializers={"data": np.zeros((50, 16), np.uint8),
                                 "scales": weights(50, 1), "w": weights(32, 4)},
                   extra_opsets=MS_OPSET)
    a = onnx_energy.analyze(m)
    g = node(a, "com.microsoft::GatherBlockQuantized")
    assert g.outputs[0].shape == (2, 3, 32)
    assert g.flops == 2 * 6 * 32
    assert node(a, "MatMul").macs == 768


# ----------------------------------------------------- decoder-only transformer, KV cache

D, N, KV, H, V = 32, 4, 2, 8, 50


def decoder_gqa_model():
    """One decoder layer as onnxruntime-genai exports it: SimplifiedLayerNorm, q/k/v MatMuls,
    GroupQueryAttention over a KV cache (total length computed from the shapes), o_proj,
    SkipSimplifiedLayerNorm, a 4-bit MatMulNBits MLP and the LM head."""
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["x"]),
        helper.make_node("SimplifiedLayerNormalization", ["x", "g1"], ["xn"], axis=-1),
        helper.make_node("MatMul", ["xn", "wq"], ["q"]),
        helper.make_node("MatMul", ["xn", "wk"], ["k"]),
        helper.make_node("MatMul", ["xn", "wv"], ["v"]),
        helper.make_node("Shape", ["past_key"], ["pk_shape"]),
        helper.make_node("Gather", ["pk_shape", "two"], ["past_len"], axis=0),
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        helper.make_node("Gather", ["ids_shape", "one"], ["seq_len"], axis=0),
        helper.make_node("Gather", ["ids_shape", "zero_v"], ["batch_v"], axis=0),
        helper.make_node("Add", ["past_len", "seq_len"], ["total64"]),
        helper.make_node("Cast", ["total64"], ["total"], to=I32),
        helper.make_node("Sub", ["total64", "one"], ["last"]),
        helper.make_node("Expand", ["last", "batch_v"], ["seqlens64"]),
        helper.make_node("Cast", ["seqlens64"], ["seqlens_k"], to=I32),
        ms("GroupQueryAttention", ["q", "k", "v", "past_key", "past_value", "seqlens_k", "total"],
           ["attn", "present_key", "present_value"], num_heads=N, kv_num_heads=KV),
        helper.make_node("MatMul", ["attn", "wo"], ["o"]),
        ms("SkipSimplifiedLayerNormalization", ["o", "x", "g2"], ["h", "", "", "resid"]),
        ms("MatMulNBits", ["h", "up_q", "up_s"], ["up"], K=D, N=2 * D, bits=4, block_size=32),
        ms("QuickGelu", ["up"], ["act"], alpha=1.702),
        ms("MatMulNBits", ["act", "down_q", "down_s"], ["down"], K=2 * D, N=D, bits=4,
           block_size=32),
        helper.make_node("Add", ["down", "resid"], ["out"]),
        helper.make_node("MatMul", ["out", "lm"], ["logits"]),
    ]
    inits = {
        "emb": weights(V, D), "g1": weights(D), "g2": weights(D),
        "wq": weights(D, N * H), "wk": weights(D, KV * H), "wv": weights(D, KV * H),
        "wo": weights(N * H, D), "lm": weights(D, V),
        "up_q": np.zeros((2 * D, 1, 16), np.uint8), "up_s": weights(2 * D),
        "down_q": np.zeros((D, 2, 16), np.uint8), "down_s": weights(2 * D),
        "two": np.array(2, np.int64), "one": np.array(1, np.int64), "zero_v": i64(0),
    }
    inputs = [("input_ids", ["batch", "seq"], I64),
              ("past_key", ["batch", KV, "past", H], F),
              ("past_value", ["batch", KV, "past", H], F)]
    outputs = [("logits", None, F), ("present_key", None, F), ("present_value", None, F)]
    return make_model(nodes, inputs, outputs, initializers=inits, extra_opsets=MS_OPSET)


def attention_macs(batch: int, seq: int, past: int) -> int:
    """QKᵀ and AV of N query heads over the past + new keys."""
    return 2 * batch * N * seq * (past + seq) * H


@pytest.mark.parametrize(("batch", "seq", "past"), [(2, 5, 7), (1, 1, 63), (3, 16, 1)])
def test_decoder_with_kv_cache_attention_matches_hand_formula(batch, seq, past):
    a = onnx_energy.analyze(decoder_gqa_model(), dims={"batch": batch, "seq": seq, "past": past})
    assert a.totals.complete, [(u.op_type, u.reason) for u in a.unresolved]
    assert a.by_op_type["com.microsoft::GroupQueryAttention"].macs == attention_macs(
        batch, seq, past)
    tokens = batch * seq
    assert a.by_op_type["com.microsoft::MatMulNBits"].macs == tokens * 2 * D * D * 2
    proj = tokens * D * (N * H + 2 * KV * H) + tokens * N * H * D + tokens * D * V
    assert a.by_op_type["MatMul"].macs == proj
    gqa = node(a, "com.microsoft::GroupQueryAttention")
    assert gqa.outputs[1].shape == (batch, KV, past + seq, H)


def decoder_matmul_model():
    """Plain attention: MatMuls, Reshape/Transpose to heads, Concat of the past K/V."""
    heads, hs, dm = 2, 8, 16

    def to_heads(src: str, dst: str) -> list:
        return [helper.make_node("Reshape", [src, "heads_shape"], [dst + "_r"]),
                helper.make_node("Transpose", [dst + "_r"], [dst], perm=[0, 2, 1, 3])]

    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q0"]),
        helper.make_node("MatMul", ["x", "wk"], ["k0"]),
        helper.make_node("MatMul", ["x", "wv"], ["v0"]),
        *to_heads("q0", "q"), *to_heads("k0", "k"), *to_heads("v0", "v"),
        helper.make_node("Concat", ["past_k", "k"], ["present_k"], axis=2),
        helper.make_node("Concat", ["past_v", "v"], ["present_v"], axis=2),
        helper.make_node("Transpose", ["present_k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"], name="qk"),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "present_v"], ["ctx"], name="av"),
    ]
    inits = {"wq": weights(dm, dm), "wk": weights(dm, dm), "wv": weights(dm, dm),
             "heads_shape": i64(0, 0, heads, hs), "scale": np.array(0.25, np.float32)}
    inputs = [("x", ["batch", "seq", dm], F),
              ("past_k", ["batch", heads, "past", hs], F),
              ("past_v", ["batch", heads, "past", hs], F)]
    outputs = [("ctx", None, F), ("present_k", None, F), ("present_v", None, F)]
    return make_model(nodes, inputs, outputs, initializers=inits), heads, hs


def test_plain_matmul_attention_with_concat_past_via_cli(capsys, tmp_path):
    model, heads, hs = decoder_matmul_model()
    path = tmp_path / "decoder.onnx"
    path.write_bytes(model.SerializeToString())
    batch, seq, past = 2, 3, 9
    code = main(["analyze", str(path), "--dim", f"batch={batch}", "--dim", f"seq={seq}",
                 "--dim", f"past={past}", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    d = json.loads(out)
    by_name = {n["name"]: n for n in d["nodes"]}
    one_product = batch * heads * seq * (past + seq) * hs
    assert by_name["qk"]["macs"] == one_product
    assert by_name["av"]["macs"] == one_product
    assert d["totals"]["complete"]


def test_empty_kv_cache_binds_past_to_zero():
    # Prefill: past=0 is a real binding (an empty cache); attention spans only the new tokens.
    model, heads, hs = decoder_matmul_model()
    a = onnx_energy.analyze(model, dims={"batch": 1, "seq": 5, "past": 0})
    by_name = {n.name: n for n in a.nodes}
    assert by_name["qk"].macs == 1 * heads * 5 * 5 * hs
    assert a.totals.complete


def test_gqa_decoder_via_cli_dims(capsys, tmp_path):
    path = tmp_path / "gqa.onnx"
    path.write_bytes(decoder_gqa_model().SerializeToString())
    code = main(["analyze", str(path), "--dim", "batch=1", "--dim", "seq=1", "--dim",
                 "past=127", "--format", "json"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0
    assert d["by_op_type"]["com.microsoft::GroupQueryAttention"]["macs"] == attention_macs(
        1, 1, 127)
    assert d["unsupported"] == {}


U8, I8 = TensorProto.UINT8, TensorProto.INT8
MORE = [
    # name, node, inputs, hand MACs, output 0 shape
    ("packed QKV MHA: 2·(1·2·3·3·4)",
     ms("MultiHeadAttention", ["q"], ["y"], num_heads=2), [("q", [1, 3, 2, 3, 4], F)],
     144, (1, 3, 8)),
    ("packed KV MHA, L = 5: 2·(1·2·3·5·4)",
     ms("MultiHeadAttention", ["q", "kv"], ["y"], num_heads=2),
     [("q", [1, 3, 8], F), ("kv", [1, 5, 2, 2, 4], F)], 240, (1, 3, 8)),
    ("packed DMMHA, past 6 + 1: 2·(1·2·1·7·4)",
     ms("DecoderMaskedMultiHeadAttention", ["q", "", "", "", "", "pk", "pv"],
        ["y", "pko", "pvo"], num_heads=2),
     [("q", [1, 1, 24], F), ("pk", [1, 2, 6, 4], F), ("pv", [1, 2, 6, 4], F)], 112, (1, 1, 8)),
    ("QAttention: projection 3·24·8 + 2·(2·3·3·4)",
     ms("QAttention", ["x", "w", "b", "xs", "ws"], ["y"], num_heads=2),
     [("x", [1, 3, 8], U8), ("w", [8, 24], I8), ("b", [24], F), ("xs", [], F), ("ws", [], F)],
     720, (1, 3, 8)),
    ("QGemm transB: 3·5·8",
     ms("QGemm", ["a", "as", "az", "b", "bs", "bz"], ["y"], transB=1),
     [("a", [3, 8], U8), ("as", [], F), ("az", [], U8), ("b", [5, 8], I8), ("bs", [], F),
      ("bz", [], I8)], 120, (3, 5)),
    ("GemmFastGelu: 6·5·8",
     ms("GemmFastGelu", ["a", "b"], ["y"]), [("a", [2, 3, 8], F), ("b", [8, 5], F)],
     240, (2, 3, 5)),
    ("DynamicQuantizeLSTM: 4·4·(3+4)·5·2",
     ms("DynamicQuantizeLSTM", ["x", "w", "r", "", "", "", "", "", "ws", "wz", "rs", "rz"],
        ["y"], hidden_size=4),
     [("x", [5, 2, 3], F), ("w", [1, 3, 16], I8), ("r", [1, 4, 16], I8), ("ws", [1], F),
      ("wz", [1], I8), ("rs", [1], F), ("rz", [1], I8)], 1120, (5, 1, 2, 4)),
    ("QLinearAveragePool 2×2/2: no MACs",
     ms("QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], kernel_shape=[2, 2],
        strides=[2, 2]),
     [("x", [1, 2, 4, 4], U8), ("xs", [], F), ("xz", [], U8), ("ys", [], F), ("yz", [], U8)],
     0, (1, 2, 2, 2)),
]


@pytest.mark.parametrize(("label", "op", "inputs", "macs", "shape"), MORE,
                         ids=[m[0].split(":")[0] for m in MORE])
def test_more_contrib_ops(label, op, inputs, macs, shape):
    m = make_model([op], inputs, [(op.output[0], None, F)], extra_opsets=MS_OPSET)
    n = onnx_energy.analyze(m).nodes[-1]
    assert n.status == "ok", n.reason
    assert n.macs == macs
    assert n.outputs[0].shape == shape
