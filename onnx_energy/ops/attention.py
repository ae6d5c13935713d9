"""Attention: ONNX Attention (opset 23+), RotaryEmbedding, LinearAttention, and the
com.microsoft attention family (Attention, MultiHeadAttention, GroupQueryAttention,
DecoderMaskedMultiHeadAttention, QAttention, RotaryEmbedding).

Scaled dot-product attention is counted densely, as the two batched products it is made of:

- scores ``Q Kᵀ``: ``B · N_q · S · T`` dot products of length ``head_size``;
- context ``P V``: ``B · N_q · S · v_head_size`` dot products of length ``T``;

with ``S`` the query length and ``T`` the total key length (past + new). Causal and sliding
window masks are not subtracted (a dense kernel computes the whole ``S × T`` block). Grouped
query attention shares K/V heads but every query head still does its own dot products, so
``N_q`` (not ``kv_num_heads``) drives the MACs; the sharing shows in the bytes.

Per score: one ``mul`` for the scale, one ``add`` for a mask or bias when one is given, the
softcap ``c·tanh(x/c)`` (div, root, mul) when set, and the softmax (compare for the running
max, sub, exp, add for the sum, div), as in ``normalization.softmax``.
"""

from __future__ import annotations

import math

from .base import Dim, Shape
from .helpers import MS, ShapeOut, add_dims, bops_cost, div_dims, dot_cost, mul_dims, same_as_input
from .registry import BasicOps, Cost, NodeFacts, ShapeUnknownError, register, shape_rule

B = BasicOps

SOFTMAX_PER_ELEMENT = B(sub=2, root=1, add=1, div=1)
SOFTCAP_PER_ELEMENT = B(div=1, root=1, mul=1)
#: x1·cos − x2·sin and x2·cos + x1·sin for one pair of rotated elements.
ROTARY_PER_PAIR = B(mul=4, add=1, sub=1)



def sdpa_cost(
    batch: int,
    q_heads: int,
    q_len: int,
    kv_len: int,
    head_size: int,
    v_head_size: int,
    *,
    masked: bool = False,
    softcap: bool = False,
    scaled: bool = True,
) -> Cost:
    """Scaled dot-product attention of ``q_heads`` heads, ``q_len`` queries, ``kv_len`` keys."""
    scores = batch * q_heads * q_len * kv_len
    qk = dot_cost(scores * head_size, scores, 0)
    context_outputs = batch * q_heads * q_len * v_head_size
    av = dot_cost(scores * v_head_size, context_outputs, 0)
    per_score = SOFTMAX_PER_ELEMENT + B(mul=int(scaled), add=int(masked))
    if softcap:
        per_score = per_score + SOFTCAP_PER_ELEMENT
    return qk + av + bops_cost(per_score * scores)


def rotary_cost(rotated_elements: int) -> Cost:
    """Rotary position embedding of ``rotated_elements`` elements (pairs rotate together)."""
    return bops_cost(ROTARY_PER_PAIR * (rotated_elements // 2))


def _divide(total: int, parts: int, what: str) -> int:
    if parts <= 0 or total % parts:
        raise ValueError(f"{what}: {total} is not divisible by {parts}")
    return total // parts



# ---------------------------------------------------------------------------- ONNX Attention


@register("Attention")
def onnx_attention(f: NodeFacts) -> Cost:
    """ONNX Attention (opset 23): Q/K/V as 4D (B, N, S, H) or 3D (B, S, N·H) tensors.

    Past key/value (B, N_kv, P, H) are concatenated in front of K/V, so T = P + L.
    """
    q, k, v = f.shape(0), f.shape(1), f.shape(2)
    if len(q) == 4:
        batch, q_heads, q_len, head_size = q
    else:
        q_heads = int(f.attr("q_num_heads", 0))
        batch, q_len = q[0], q[1]
        head_size = _divide(q[2], q_heads, "Q hidden size / q_num_heads")
    if len(k) == 4:
        kv_len = k[2]
        v_head_size = v[3]
    else:
        kv_heads = int(f.attr("kv_num_heads", 0))
        kv_len = k[1]
        v_head_size = _divide(v[2], kv_heads, "V hidden size / kv_num_heads")
    past = f.shape(4)[2] if f.has_input(4) else 0
    return sdpa_cost(
        batch, q_heads, q_len, past + kv_len, head_size, v_head_size,
        masked=f.has_input(3), softcap=float(f.attr("softcap", 0.0)) > 0,
    )


@register("RotaryEmbedding")
def onnx_rotary(f: NodeFacts) -> Cost:
    """ONNX RotaryEmbedding (opset 23): X as (B, N, S, H) or (B, S, N·H) with num_heads."""
    x = f.shape(0)
    if len(x) == 4:
        head_size = x[3]
    else:
        head_size = _divide(x[2], int(f.attr("num_heads", 0)), "hidden size / num_heads")
    rot = int(f.attr("rotary_embedding_dim", 0)) or head_size
    return rotary_cost(math.prod(x) // head_size * min(rot, head_size))


@register("LinearAttention")
def linear_attention(f: NodeFacts) -> Cost:
    """ONNX LinearAttention (opset 27): a recurrent state S (d_k × d_v) per K/V head and token.

    MACs per token: the rank-1 state update ``S += k ⊗ v`` (d_k·d_v per K/V head, each a
    multiply-accumulate into S), the delta rules' retrieval ``Sᵀk`` (d_k·d_v per K/V head)
    and the read-out ``qᵀS`` (d_k·d_v per query head). The gated rules also scale S by
    ``exp(g)`` (one mul per state element, one exp per decay element); the delta rules form
    ``β(v − Sᵀk)`` (d_v sub and mul per K/V head); the read-out is scaled (d_v mul per head).
    """
    q, k, v = f.shape(0), f.shape(1), f.shape(2)
    q_heads = int(f.attr("q_num_heads", 0))
    kv_heads = int(f.attr("kv_num_heads", 0))
    batch, steps = q[0], q[1]
    d_k = _divide(k[2], kv_heads, "key hidden size / kv_num_heads")
    d_v = _divide(v[2], kv_heads, "value hidden size / kv_num_heads")
    rule = str(f.attr("update_rule", "gated_delta"))
    delta = rule in ("delta", "gated_delta")
    gated = rule in ("gated", "gated_delta")
    tokens = batch * steps
    state = d_k * d_v
    # Update: each k⊗v product accumulates into S, so adds = macs (no separate outputs).
    update_macs = tokens * kv_heads * state
    update = Cost(macs=update_macs, flops=2 * update_macs, bops=B(add=update_macs, mul=update_macs))
    readout = dot_cost(tokens * q_heads * state, tokens * q_heads * d_v, 0)
    cost = update + readout + bops_cost(B(mul=tokens * q_heads * d_v))
    if delta:
        cost = cost + dot_cost(tokens * kv_heads * state, tokens * kv_heads * d_v, 0)
        cost = cost + bops_cost(B(sub=1, mul=1) * (tokens * kv_heads * d_v))
    if gated:
        decay = f.numel(4) if f.has_input(4) else tokens * kv_heads
        cost = cost + bops_cost(B(root=decay) + B(mul=tokens * kv_heads * state))
    return cost


# ------------------------------------------------------------------------- com.microsoft


def _qkv_hidden_sizes(f: NodeFacts, weights_cols: int) -> tuple[int, int, int]:
    sizes = f.attr("qkv_hidden_sizes")
    if sizes:
        qh, kh, vh = (int(s) for s in sizes)
        return qh, kh, vh
    third = _divide(weights_cols, 3, "Attention weights columns / 3")
    return third, third, third


@register("Attention", domain=MS)
def ms_attention(f: NodeFacts) -> Cost:
    """com.microsoft Attention: fused QKV projection plus attention, with an optional past.

    input (B, S, D_in) × weights (D_in, D_q + D_k + D_v) (+ bias) gives Q, K, V; past is
    (2, B, N, P, H). With ``past_present_share_buffer`` the past buffer has the maximum
    length and ``past_sequence_length`` (input 6) holds the real P; its value must be known.
    """
    x, w = f.shape(0), f.shape(1)
    batch, q_len, d_in = x
    qh, kh, vh = _qkv_hidden_sizes(f, w[1])
    heads = int(f.attr("num_heads", 0))
    head_size = _divide(qh, heads, "q hidden size / num_heads")
    v_head_size = _divide(vh, heads, "v hidden size / num_heads")
    tokens = batch * q_len
    proj_out = tokens * (qh + kh + vh)
    cost = dot_cost(proj_out * d_in, proj_out, proj_out if f.has_input(2) else 0)
    past = 0
    if f.has_input(4):
        past = f.shape(4)[3]
        if int(f.attr("past_present_share_buffer", 0)):
            known = f.scalar(6)
            if known is None:
                raise ShapeUnknownError("past_sequence_length value (shared KV buffer)")
            past = known
    if int(f.attr("do_rotary", 0)):
        rot = int(f.attr("rotary_embedding_dim", 0)) or head_size
        cost = cost + rotary_cost(tokens * heads * rot * 2)  # Q and K
    masked = f.has_input(3) or f.has_input(5)
    return cost + sdpa_cost(batch, heads, q_len, past + q_len, head_size, v_head_size,
                            masked=masked)


@register("QAttention", domain=MS)
def ms_qattention(f: NodeFacts) -> Cost:
    """Quantized com.microsoft Attention: an int8 QKV projection (dequantized per output:
    one mul by the combined scale) plus float attention with an optional past."""
    x, w = f.shape(0), f.shape(1)
    batch, q_len, d_in = x
    heads = int(f.attr("num_heads", 0))
    hidden = _divide(w[1], 3, "QAttention weights columns / 3")
    head_size = _divide(hidden, heads, "hidden size / num_heads")
    proj_out = batch * q_len * w[1]
    cost = dot_cost(proj_out * d_in, proj_out, proj_out if f.has_input(2) else 0)
    cost = cost + bops_cost(B(mul=proj_out))
    past = f.shape(8)[3] if f.has_input(8) else 0
    return cost + sdpa_cost(batch, heads, q_len, past + q_len, head_size, head_size,
                            masked=f.has_input(5))


def _mha_layout(f: NodeFacts, heads: int) -> tuple[int, int, int, int, int, bool, int]:
    """(batch, S, L, head_size, v_head_size, key_is_bnsh, bias_elements) of an MHA node."""
    q = f.shape(0)
    batch, q_len = q[0], q[1]
    if len(q) == 5:  # packed QKV (B, S, N, 3, H)
        head_size = v_head_size = q[4]
        return batch, q_len, q_len, head_size, v_head_size, False, math.prod(q)
    head_size = _divide(q[2], heads, "query hidden size / num_heads")
    bias_elements = math.prod(q)
    if not f.has_input(1):
        raise ValueError("MultiHeadAttention without key needs packed (B, S, N, 3, H) query")
    k = f.shape(1)
    if len(k) == 5:  # packed KV (B, L, N, 2, H)
        return batch, q_len, k[1], head_size, k[4], False, bias_elements + math.prod(k)
    if len(k) == 4:  # (B, N, L, H): already projected and laid out (cross attention cache)
        v_head_size = f.shape(2)[3] if f.has_input(2) else head_size
        return batch, q_len, k[2], head_size, v_head_size, True, bias_elements
    v = f.shape(2)
    v_head_size = _divide(v[2], heads, "value hidden size / num_heads")
    return (batch, q_len, k[1], head_size, v_head_size, False,
            bias_elements + math.prod(k) + math.prod(v))


def _past_length(f: NodeFacts, past_key: int, past_seq_input: int, share_buffer: bool) -> int:
    if not f.has_input(past_key):
        return 0
    known = f.scalar(past_seq_input) if f.has_input(past_seq_input) else None
    if known is not None:
        return known
    if share_buffer:
        raise ShapeUnknownError("past_sequence_length value (shared KV buffer)")
    return f.shape(past_key)[2]


@register("MultiHeadAttention", domain=MS)
def ms_multi_head_attention(f: NodeFacts) -> Cost:
    """com.microsoft MultiHeadAttention: Q/K/V already projected (3D, packed or BNSH key).

    The bias (D_q + D_k + D_v) is added to the 3D/packed inputs; past_key (B, N, P, H) is
    concatenated before a 3D key, so T = P + L (a BNSH key is the whole cache: T = L).
    ``past_sequence_length`` (input 8), when its value is known, gives P.
    """
    heads = int(f.attr("num_heads", 0))
    batch, q_len, kv_len, hs, vhs, bnsh, bias_elements = _mha_layout(f, heads)
    total = kv_len if bnsh else kv_len + _past_length(f, 6, 8, False)
    cost = sdpa_cost(batch, heads, q_len, total, hs, vhs, masked=f.has_input(4) or f.has_input(5))
    if f.has_input(3):
        cost = cost + bops_cost(B(add=bias_elements))
    return cost


@register("DecoderMaskedMultiHeadAttention", domain=MS)
def ms_decoder_masked_mha(f: NodeFacts) -> Cost:
    """com.microsoft DecoderMaskedMultiHeadAttention: one new token per step over a shared KV
    buffer. Self attention attends ``past_sequence_length + 1`` keys (input 7's value, or the
    past length when the buffer is not shared); a BNSH key (cross attention) is attended whole.
    """
    heads = int(f.attr("num_heads", 0))
    q = f.shape(0)
    batch, q_len = q[0], q[1]
    if f.has_input(1) and len(f.shape(1)) == 4:
        k = f.shape(1)
        hs = k[3]
        vhs = f.shape(2)[3] if f.has_input(2) else hs
        total = k[2]
        bias_elements = math.prod(q)
    else:
        if f.has_input(1):
            hs = _divide(q[2], heads, "query hidden size / num_heads")
            v = f.shape(2)
            vhs = _divide(v[2], heads, "value hidden size / num_heads")
            bias_elements = math.prod(q) + f.numel(1) + f.numel(2)
        else:  # packed QKV (B, 1, D + D + D)
            hs = vhs = _divide(q[2], 3 * heads, "packed QKV hidden size / 3·num_heads")
            bias_elements = math.prod(q)
        share = bool(int(f.attr("past_present_share_buffer", 0)))
        total = q_len + _past_length(f, 5, 7, share)
    masked = f.has_input(3) or f.has_input(4)
    cost = sdpa_cost(batch, heads, q_len, total, hs, vhs, masked=masked)
    if f.has_input(10):
        cost = cost + bops_cost(B(add=bias_elements))
    return cost


@register("GroupQueryAttention", domain=MS)
def ms_group_query_attention(f: NodeFacts) -> Cost:
    """com.microsoft GroupQueryAttention: N query heads share kv_num_heads K/V heads.

    query (B, S, N·H) (or packed (B, S, (N + 2·N_kv)·H) without key/value); past_key
    (B, N_kv, P, H). The total key length T is ``total_sequence_length`` (input 6) when its
    value is known, else P + S. ``do_rotary`` rotates Q and the new K in the kernel.
    """
    heads = int(f.attr("num_heads", 0))
    kv_heads = int(f.attr("kv_num_heads", 0))
    q = f.shape(0)
    batch, q_len = q[0], q[1]
    if f.has_input(1):
        head_size = _divide(q[2], heads, "query hidden size / num_heads")
    else:
        head_size = _divide(q[2], heads + 2 * kv_heads, "packed QKV size / (N + 2·N_kv)")
    total = f.scalar(6)
    if total is None:
        past = f.shape(3)[2] if f.has_input(3) else 0
        total = past + q_len
    cost = sdpa_cost(batch, heads, q_len, total, head_size, head_size,
                     masked=f.has_input(10),
                     softcap=float(f.attr("softcap", 0.0)) > 0)
    if int(f.attr("do_rotary", 0)):
        rot = 2 * f.shape(7)[1] if f.has_input(7) else head_size
        cost = cost + rotary_cost(batch * q_len * (heads + kv_heads) * min(rot, head_size))
    if int(f.attr("smooth_softmax", 0)) or f.has_input(11):
        # One extra term in each softmax denominator (exp of the sink and the add).
        rows = batch * heads * q_len
        cost = cost + bops_cost(B(root=rows, add=rows))
    return cost


@register("RotaryEmbedding", domain=MS)
def ms_rotary(f: NodeFacts) -> Cost:
    """com.microsoft RotaryEmbedding: input (B, S, N·H) or (B, N, S, H), rotary_embedding_dim."""
    x = f.shape(0)
    heads = int(f.attr("num_heads", 0))
    if len(x) == 4:
        head_size = x[3]
    elif heads:
        head_size = _divide(x[2], heads, "hidden size / num_heads")
    else:
        head_size = 2 * f.shape(2)[1]  # cos_cache (max_seq, H/2): full rotation
    rot = int(f.attr("rotary_embedding_dim", 0)) or head_size
    return rotary_cost(math.prod(x) // head_size * min(rot, head_size))


# ------------------------------------------------------------- output shapes (ONNX has none)


shape_rule("RotaryEmbedding", domain=MS)(same_as_input)


@shape_rule("Attention", "QAttention", "DecoderMaskedSelfAttention", domain=MS)
def _ms_attention(f: NodeFacts) -> list[ShapeOut | None]:
    """output (B, S, D_v) and present (2, B, N, P + S, H). QAttention's outputs are float (its
    input_scale's type, input 3), not its quantized input's."""
    x, w = f.dims(0), f.dims(1)
    if x is None or w is None:
        return [None]
    heads = int(f.attr("num_heads", 0))
    sizes = f.attr("qkv_hidden_sizes")
    qh, vh = (int(sizes[0]), int(sizes[2])) if sizes else (div_dims(w[1], 3),) * 2
    out: Shape = (x[0], x[1], vh)
    past_index = 8 if f.node.op_type == "QAttention" else 4
    past = f.dims(past_index) if f.given(past_index) else None
    if past is not None and int(f.attr("past_present_share_buffer", 0)):
        present: Shape | None = past
    else:
        p = past[3] if past is not None else 0
        present = (2, x[0], heads, add_dims(p, x[1]), div_dims(qh, heads))
    dtype = f.dtype(3) if f.node.op_type == "QAttention" else f.dtype(0)
    return [(out, dtype), (present, dtype)]


@shape_rule("MultiHeadAttention", domain=MS)
def _ms_multi_head_attention(f: NodeFacts) -> list[ShapeOut | None]:
    q = f.dims(0)
    if q is None:
        return [None]
    heads = int(f.attr("num_heads", 0))
    k = f.dims(1) if f.given(1) else None
    v = f.dims(2) if f.given(2) else None
    bnsh = False
    if len(q) == 5:
        hs = vhs = q[4]
        kv_len: Dim = q[1]
    elif k is not None and len(k) == 5:
        hs, vhs, kv_len = div_dims(q[2], heads), k[4], k[1]
    elif k is not None and len(k) == 4:
        hs, kv_len, bnsh = k[3], k[2], True
        vhs = v[3] if v is not None and len(v) == 4 else hs
    elif k is not None:
        hs, kv_len = div_dims(q[2], heads), k[1]
        vhs = div_dims(v[2], heads) if v is not None else hs
    else:
        return [None]
    total = kv_len
    if not bnsh and f.given(6) and f.dims(6) is not None:
        total = add_dims(f.dims(6)[2], kv_len)  # type: ignore[index]
    out: Shape = (q[0], q[1], mul_dims(heads, vhs))
    dtype = f.dtype(0)
    return [(out, dtype), ((q[0], heads, total, hs), dtype), ((q[0], heads, total, vhs), dtype),
            ((q[0], heads, q[1], total), dtype)]


@shape_rule("GroupQueryAttention", domain=MS)
def _ms_group_query_attention(f: NodeFacts) -> list[ShapeOut | None]:
    q = f.dims(0)
    if q is None:
        return [None]
    heads, kv_heads = int(f.attr("num_heads", 0)), int(f.attr("kv_num_heads", 0))
    hs = div_dims(q[2], heads) if f.given(1) else div_dims(q[2], heads + 2 * kv_heads)
    total = f.scalar(6)
    past = f.dims(3) if f.given(3) else None
    past_len: Dim = past[2] if past is not None else 0
    if total is not None and isinstance(past_len, int):
        present_len: Dim = max(past_len, total)
    else:
        present_len = add_dims(past_len, q[1])
    attended: Dim = total if total is not None else add_dims(past_len, q[1])
    dtype = f.dtype(0)
    present: Shape = (q[0], kv_heads, present_len, hs)
    return [((q[0], q[1], mul_dims(heads, hs)), dtype), (present, dtype), (present, dtype),
            ((q[0], heads, q[1], attended), dtype)]


@shape_rule("DecoderMaskedMultiHeadAttention", domain=MS)
def _ms_decoder_masked_mha(f: NodeFacts) -> list[ShapeOut | None]:
    q = f.dims(0)
    if q is None:
        return [None]
    heads = int(f.attr("num_heads", 0))
    dtype = f.dtype(0)
    k = f.dims(1) if f.given(1) else None
    v = f.dims(2) if f.given(2) else None
    if k is not None and len(k) == 4:  # cross attention: no present
        vhs = v[3] if v is not None and len(v) == 4 else k[3]
        return [((q[0], q[1], mul_dims(heads, vhs)), dtype)]
    if v is not None:
        v_hidden: Dim = v[2]
    else:
        v_hidden = div_dims(q[2], 3)
    hs = div_dims(v_hidden, heads)
    past = f.dims(5) if f.given(5) else None
    if past is not None and int(f.attr("past_present_share_buffer", 0)):
        present: Shape = past
    else:
        present = (q[0], heads, add_dims(past[2] if past is not None else 0, q[1]), hs)
    return [((q[0], q[1], v_hidden), dtype), (present, dtype), (present, dtype)]
