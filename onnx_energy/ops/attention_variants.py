"""The rest of onnxruntime's attention family: packed (padding removed), paged, block-sparse,
Longformer, decoder, QOrdered int8 and selected-index attention; T5's relative position bias
and its gated (WavLM) variant; rotary variants; linear-attention and state-space recurrences.

Scores and context are counted with `attention.sdpa_cost` (dense ``S × T`` blocks, softmax
per score). Where the attended length is a run-time value the count takes the bound the
shapes give, and the rule says which:

- packed ops (PackedAttention, PackedMultiHeadAttention) attend within each sequence; the
  per-sequence lengths are values, so every query attends the padded length ``S`` of
  ``token_offset (B, S)``: ``B·N·S·S`` scores (an upper bound);
- PagedAttention attends at most the block table's capacity, ``max_blocks · block_size``;
- SparseAttention computes the non-zero blocks of its layout only: the dense count scaled by
  ``max_nnz_blocks / blocks²`` from the index tensors' shapes (their values are never read);
- selected-index attention attends the ``selected_indices`` row width (+ the local window).
"""

from __future__ import annotations

import math

from .attention import linear_attention, ms_attention, rotary_cost, sdpa_cost
from .base import Shape
from .helpers import MS, ShapeOut, bops_cost, div_dims, dot_cost, mul_dims, same_as_input
from .registry import BasicOps, Cost, NodeFacts, ShapeUnknownError, register, shape_rule

B = BasicOps
SIGMOID = B(sub=1, add=1, div=1, root=1)
#: requantizing an int32 accumulator: mul by the scale, round, 2 saturating compares
REQUANT = B(mul=1, sub=3)
#: T5's bucket of one (query, key) pair: relative position (sub), the bidirectional split
#: (compare, add), |·| (sub), exact-or-log compare (sub), the log bucket
#: log(rel/max_exact)/log(max_distance/max_exact)·(buckets − max_exact) + max_exact
#: (root, div, mul, add) and its clamp (sub).
T5_BUCKET = B(sub=5, add=2, root=1, div=1, mul=1)


def _divide(total: int, parts: int, what: str) -> int:
    if parts <= 0 or total % parts:
        raise ValueError(f"{what}: {total} is not divisible by {parts}")
    return total // parts


def _projection(tokens: int, d_in: int, d_out: int, bias: bool) -> Cost:
    outputs = tokens * d_out
    return dot_cost(outputs * d_in, outputs, outputs if bias else 0)


# --------------------------------------------------------------------- packed and paged


@register("PackedAttention", domain=MS)
def packed_attention(f: NodeFacts) -> Cost:
    """input (T, D_in) of real tokens × weights (D_in, D_q + D_k + D_v) (+ bias), then
    attention over the padded (B, S) of token_offset (see the module docstring)."""
    x, w = f.shape(0), f.shape(1)
    tokens, d_in = x
    sizes = f.attr("qkv_hidden_sizes")
    qh, _, vh = (int(s) for s in sizes) if sizes else (w[1] // 3,) * 3
    heads = int(f.attr("num_heads", 0))
    batch, seq = f.shape(3)
    cost = _projection(tokens, d_in, w[1], f.has_input(2))
    return cost + sdpa_cost(batch, heads, seq, seq, _divide(qh, heads, "q hidden / num_heads"),
                            _divide(vh, heads, "v hidden / num_heads"), masked=f.has_input(5))


@register("PackedMultiHeadAttention", domain=MS)
def packed_multi_head_attention(f: NodeFacts) -> Cost:
    """query (T, D) (or packed (T, N, 3, H)), key/value (T, D): the bias add, then attention
    over the padded (B, S) of token_offset (input 4)."""
    q = f.shape(0)
    heads = int(f.attr("num_heads", 0))
    if len(q) == 4:
        hs = vhs = q[3]
    else:
        hs = _divide(q[1], heads, "query hidden / num_heads")
        vhs = _divide(f.shape(2)[1], heads, "value hidden / num_heads") if f.has_input(2) else hs
    batch, seq = f.shape(4)
    cost = sdpa_cost(batch, heads, seq, seq, hs, vhs, masked=f.has_input(6))
    if f.has_input(3):
        cost = cost + bops_cost(B(add=f.numel(3) * q[0]))
    return cost


@register("PagedAttention", domain=MS)
def paged_attention(f: NodeFacts) -> Cost:
    """query (T, N·H) (packed QKV without key), a block KV cache (blocks, block_size, ...),
    block_table (B, max_blocks): every query attends the table's capacity at most."""
    q = f.shape(0)
    heads, kv_heads = int(f.attr("num_heads", 0)), int(f.attr("kv_num_heads", 0))
    tokens = q[0]
    hs = (_divide(q[1], heads, "query hidden / num_heads") if f.given(1)
          else _divide(q[1], heads + 2 * kv_heads, "packed QKV / (N + 2·N_kv)"))
    vhs = int(f.attr("v_head_size", 0)) or hs
    capacity = f.shape(7)[1] * f.shape(3)[1]
    cost = sdpa_cost(1, heads, tokens, capacity, hs, vhs,
                     softcap=float(f.attr("softcap", 0.0)) > 0)
    if int(f.attr("do_rotary", 0)):
        cost = cost + rotary_cost(tokens * (heads + kv_heads) * hs)
    return cost


# ----------------------------------------------------------------------------- sparse


@register("SparseAttention", domain=MS)
def sparse_attention(f: NodeFacts) -> Cost:
    """query (B, S, N·H) (or packed QKV), past_key (B, N_kv, M, H), block_row_indices
    (layouts, R + 1), block_col_indices (layouts, nnz): dense scores over T =
    total_sequence_length (its value; else M) scaled by nnz / R²."""
    q = f.shape(0)
    heads, kv_heads = int(f.attr("num_heads", 0)), int(f.attr("kv_num_heads", 0))
    batch, seq = q[0], q[1]
    hs = (_divide(q[2], heads, "query hidden / num_heads") if f.given(1)
          else _divide(q[2], heads + 2 * kv_heads, "packed QKV / (N + 2·N_kv)"))
    total = f.scalar(7)
    if total is None:
        total = f.shape(3)[2]
    rows = f.shape(5)[-1] - 1
    nnz = f.shape(6)[-1]
    density = min(1.0, nnz / (rows * rows)) if rows > 0 else 1.0
    scores = math.ceil(total * density)
    cost = sdpa_cost(batch, heads, seq, scores, hs, hs)
    if int(f.attr("do_rotary", 0)):
        cost = cost + rotary_cost(batch * seq * (heads + kv_heads) * hs)
    return cost


@register("DynamicSparseAttention", "SparsePagedAttention", domain=MS)
def selected_attention(f: NodeFacts) -> Cost:
    """Attention over the externally selected keys: each query attends the width of its
    ``selected_indices`` row, plus ``local_window_size`` keys in local_plus_selected mode."""
    q = f.shape(0)
    heads, kv_heads = int(f.attr("num_heads", 0)), int(f.attr("kv_num_heads", 0))
    selected = f.shape(7 if f.node.op_type == "DynamicSparseAttention" else 9)[-1]
    if str(f.attr("attention_mode", "selected_only")) != "selected_only":
        selected += max(int(f.attr("local_window_size", 0)), 0)
    queries = math.prod(q[:-1])
    hs = _divide(q[-1], heads, "query hidden / num_heads") if f.given(1) else _divide(
        q[-1], heads + 2 * kv_heads, "packed QKV / (N + 2·N_kv)")
    cost = sdpa_cost(1, heads, queries, selected, hs, hs,
                     softcap=float(f.attr("softcap", 0.0)) > 0)
    if int(f.attr("do_rotary", 0)):
        cost = cost + rotary_cost(queries * (heads + kv_heads) * hs)
    return cost


@register("SparseAttentionIndexer", "PackedSparseAttentionIndexer", domain=MS)
def sparse_attention_indexer(f: NodeFacts) -> Cost:
    """The candidate scoring of a selector runs over the cached tokens of each request, whose
    counts are run-time values (past lengths and state buffers): left unresolved."""
    raise ShapeUnknownError(f"{f.node.op_type}: its scoring work depends on run-time "
                            "cache lengths")


@register("PackedSparseAttentionIndexerMerge", domain=MS)
def indexer_merge(f: NodeFacts) -> Cost:
    """A stable union of index lists: one compare per output entry against the seen set."""
    return bops_cost(B(sub=f.out_numel(0)))


# ---------------------------------------------------------------- decoder and longformer


register("DecoderMaskedSelfAttention", domain=MS)(ms_attention)


@register("DecoderAttention", domain=MS)
def decoder_attention(f: NodeFacts) -> Cost:
    """query (S, B, D), key (T, B, D): Q = query·q_weight, K|V = key·kv_weight (+ bias), then
    attention over T keys plus the cache length (key_cache (B, N, L, H)) when a cache is
    given; static_kv and use_past are run-time flags, so the projections are all counted."""
    q, k = f.shape(0), f.shape(1)
    seq, batch, d = q
    heads = int(f.attr("num_heads", 0))
    hs = _divide(d, heads, "hidden / num_heads")
    total = k[0] + (f.shape(6)[2] if f.has_input(6) else 0)
    cost = _projection(seq * batch, d, f.shape(2)[1], True)
    cost = cost + _projection(k[0] * batch, k[2], f.shape(3)[1], True)
    return cost + sdpa_cost(batch, heads, seq, total, hs, hs, masked=f.has_input(5))


@register("LongformerAttention", domain=MS)
def longformer_attention(f: NodeFacts) -> Cost:
    """input (B, S, D): local and global QKV projections (weight and global_weight, D × 3D,
    + biases), each token attending its 2W + 1 neighbours. The global tokens' extra rows are
    not counted: their number is a run-time value (the ``global`` flags)."""
    x = f.shape(0)
    batch, seq, d = x
    heads = int(f.attr("num_heads", 0))
    window = int(f.attr("window", 0))
    w = f.shape(1)
    hs = _divide(w[1] // 3, heads, "hidden / num_heads")
    cost = _projection(batch * seq, d, w[1], True) + _projection(batch * seq, d,
                                                                 f.shape(4)[1], True)
    return cost + sdpa_cost(batch, heads, seq, min(2 * window + 1, seq), hs, hs, masked=True)


@register("QOrderedAttention", domain=MS)
def qordered_attention(f: NodeFacts) -> Cost:
    """int8 input (B, S, D) × Q/K/V weights (inputs 5-7, D × D_x) + biases, each output
    requantized; then attention (scores and context requantized too)."""
    batch, seq, d = f.shape(0)
    heads = int(f.attr("num_heads", 0))
    tokens = batch * seq
    cost = Cost()
    widths = []
    for i in (5, 6, 7):
        width = f.shape(i)[-1]
        widths.append(width)
        cost = cost + _projection(tokens, d, width, True) + bops_cost(REQUANT * (tokens * width))
    hs = _divide(widths[0], heads, "q hidden / num_heads")
    vhs = _divide(widths[2], heads, "v hidden / num_heads")
    att = sdpa_cost(batch, heads, seq, seq, hs, vhs, masked=f.has_input(17))
    return cost + att + bops_cost(REQUANT * (batch * heads * seq * (seq + vhs)))


@register("QOrderedLongformerAttention", domain=MS)
def qordered_longformer(f: NodeFacts) -> Cost:
    """The int8 Longformer: projections by weight (input 2) and global_weight (input 8), local
    attention over 2W + 1 neighbours, requantized outputs (global rows as in Longformer)."""
    batch, seq, d = f.shape(0)
    heads = int(f.attr("num_heads", 0))
    window = int(f.attr("window", 0))
    w = f.shape(2)
    hs = _divide(w[1] // 3, heads, "hidden / num_heads")
    tokens = batch * seq
    cost = _projection(tokens, d, w[1], True) + _projection(tokens, d, f.shape(8)[1], True)
    cost = cost + bops_cost(REQUANT * (tokens * (w[1] + f.shape(8)[1])))
    return cost + sdpa_cost(batch, heads, seq, min(2 * window + 1, seq), hs, hs, masked=True)


# -------------------------------------------------------------------- position biases


@register("RelativePositionBias", domain=MS)
def relative_position_bias(f: NodeFacts) -> Cost:
    """T5: bias_table (buckets, N), query_length and key_length (values): the bucket of each
    (query, key) pair (`T5_BUCKET`), shared by the heads; the table gather is movement."""
    _, _, q_len, k_len = f.out_shape(0)
    return bops_cost(T5_BUCKET * (q_len * k_len))


@register("GatedRelativePositionBias", domain=MS)
def gated_relative_position_bias(f: NodeFacts) -> Cost:
    """WavLM: query (B, S, N·H) + query_bias; per head the gate linear (H → D, + bias), the
    sum of D/2 halves, two sigmoids, gate_u·(gate_r·eco_a − 1) + 2 (2 mul, sub, add), then
    the gate times rel_pos (B, N, S, S) per output."""
    out = f.out_shape(0)
    batch, heads, seq, _ = out
    q = f.shape(0)
    hidden = q[-1]
    rows = math.prod(q[:-1])
    head_size = _divide(hidden, heads, "hidden / num_heads")
    d = f.shape(3)[-1]
    gate_rows = batch * heads * seq
    cost = bops_cost(B(add=rows * hidden))
    cost = cost + dot_cost(gate_rows * d * head_size, gate_rows * d, gate_rows * d)
    cost = cost + bops_cost(B(add=gate_rows * max(d - 2, 0)) + SIGMOID * (2 * gate_rows)
                            + B(mul=2, sub=1, add=1) * gate_rows + B(mul=math.prod(out)))
    return cost


# ------------------------------------------------------------------------ rotary variants


@register("MRotaryEmbedding", domain=MS)
def m_rotary_embedding(f: NodeFacts) -> Cost:
    """Multimodal RoPE: input (…, N·H) with the cache gathered per section (movement), then the
    rotation of rotary_embedding_dim elements per head."""
    x = f.shape(0)
    heads = int(f.attr("num_heads", 0))
    head_size = x[-1] if len(x) == 4 else _divide(x[-1], heads, "hidden / num_heads")
    rot = int(f.attr("rotary_embedding_dim", 0)) or head_size
    return rotary_cost(math.prod(x) // head_size * min(rot, head_size))


@register("GemmaRotaryEmbedding", domain=MS)
def gemma_rotary_embedding(f: NodeFacts) -> Cost:
    """cos and sin of emb (2 root per element), then q·cos + q_rot·sin and the same for k
    (2 mul, add per element of q and k)."""
    return bops_cost(B(root=2 * f.numel(0)) + B(mul=2, add=1) * (f.numel(1) + f.numel(3)))


# ------------------------------------------------------------ linear attention, state space


register("LinearAttention", domain=MS)(linear_attention)


@register("LinearAttentionGate", domain=MS)
def linear_attention_gate(f: NodeFacts) -> Cost:
    """decay = scale·softplus(a + dt_bias) (add, softplus: add, 2 root, mul) per element of a;
    beta = sigmoid(b) when b is given."""
    cost = bops_cost(B(add=2, root=2, mul=1) * f.numel(0))
    if f.has_input(3):
        cost = cost + bops_cost(SIGMOID * f.numel(3))
    return cost


@register("GatedDeltaNet", domain=MS)
def gated_delta_net(f: NodeFacts) -> Cost:
    """Token-major query (T, H_q, D_k), key (T, H_k, D_k), value (T, H_v, D_v): per token and
    value head a D_k × D_v state is decayed (mul), read by the key (Sᵀk, MACs), corrected by
    β(v − Sᵀk) (D_v sub and mul), updated by k ⊗ δ (MACs) and read out by the query (qᵀS,
    MACs, then the scale). qk_l2_norm normalises q and k per head (mul, add per element,
    root and div per head)."""
    q = f.shape(0)
    tokens, dk = q[0], q[-1]
    v = f.shape(2) if f.has_input(2) else q
    hv, dv = v[1], v[-1]
    rows = tokens * hv
    state = dk * dv
    retrieval = dot_cost(rows * state, rows * dv, 0)
    readout = dot_cost(rows * state, rows * dv, 0)
    update = Cost(macs=rows * state, flops=2 * rows * state,
                  bops=B(add=rows * state, mul=rows * state))
    cost = retrieval + readout + update + bops_cost(
        B(mul=rows * state) + B(sub=1, mul=2) * (rows * dv))
    if int(f.attr("qk_l2_norm", 0)):
        heads_qk = q[1] + (f.shape(1)[1] if f.has_input(1) else q[1])
        cost = cost + bops_cost(B(mul=2, add=1) * (tokens * heads_qk * dk)
                                + B(root=1, div=1) * (tokens * heads_qk))
    return cost


@register("Mamba2Verify", domain=MS)
def mamba2_verify(f: NodeFacts) -> Cost:
    """projection (R, 2·d_i + 2·G·N + heads), d_i = heads·head_dim: per token the causal conv
    over the xBC channels (kernel of conv_weight's last axis, + bias, SiLU), the selective
    scan per head (decay: head_dim·N mul; B·x and C·h: 2·head_dim·N MACs), the D skip
    (mul, add per d_i) and the gated RMSNorm of d_i (RMSNorm, SiLU gate, product)."""
    rows = f.shape(0)[0]
    heads = int(f.attr("heads", 0))
    head_dim = int(f.attr("head_dim", 0))
    n_state = int(f.attr("d_state", 0))
    groups = int(f.attr("n_groups", 1))
    d_i = heads * head_dim
    channels = d_i + 2 * groups * n_state
    k = f.shape(3)[-1]
    conv = dot_cost(rows * channels * k, rows * channels, rows * channels)
    ssm = 2 * rows * heads * head_dim * n_state
    scan = Cost(macs=ssm, flops=2 * ssm, bops=B(add=ssm, mul=ssm))
    per_token = (B(mul=heads * head_dim * n_state) + (SIGMOID + B(mul=1)) * channels
                 + B(mul=1, add=1) * d_i + B(mul=3, add=1) * d_i + B(div=2, add=1, root=1)
                 + (SIGMOID + B(mul=2)) * d_i)
    return conv + scan + bops_cost(per_token * rows)


# ------------------------------------------------------------- output shapes (ONNX has none)


shape_rule("MRotaryEmbedding", domain=MS)(same_as_input)
shape_rule("QOrderedLongformerAttention", domain=MS)(same_as_input)


@shape_rule("GemmaRotaryEmbedding", domain=MS)
def _gemma_rotary(f: NodeFacts) -> list[ShapeOut | None]:
    return [(f.dims(1), f.dtype(1)), (f.dims(3), f.dtype(3))]


@shape_rule("RelativePositionBias", domain=MS)
def _relative_position_bias(f: NodeFacts) -> list[ShapeOut | None]:
    table = f.dims(0)
    q_len, k_len = f.scalar(1), f.scalar(2)
    if table is None or q_len is None or k_len is None:
        return [None]
    return [((1, table[1], q_len, k_len), f.dtype(0))]


@shape_rule("GatedRelativePositionBias", domain=MS)
def _gated_relative_position_bias(f: NodeFacts) -> list[ShapeOut | None]:
    q, rel = f.dims(0), f.dims(2)
    if q is None or rel is None:
        return [None]
    heads = int(f.attr("num_heads", 0))
    batch = q[0] if not f.given(6) else (f.dims(6) or (None,))[0]
    return [((batch, heads, rel[-2], rel[-1]), f.dtype(0))]


@shape_rule("QOrderedAttention", domain=MS)
def _qordered_attention(f: NodeFacts) -> list[ShapeOut | None]:
    x, v = f.dims(0), f.dims(7)
    return [(None if x is None or v is None else (x[0], x[1], v[-1]), f.dtype(0))]


@shape_rule("DecoderAttention", domain=MS)
def _decoder_attention(f: NodeFacts) -> list[ShapeOut | None]:
    q, k = f.dims(0), f.dims(1)
    if q is None or k is None:
        return [None]
    heads = int(f.attr("num_heads", 0))
    cache = f.dims(6) if f.given(6) else None
    total = k[0] if cache is None or not isinstance(cache[2], int) or not isinstance(
        k[0], int) else k[0] + cache[2]
    present: Shape = (q[1], heads, total, div_dims(q[2], heads))
    return [(q, f.dtype(0)), (present, f.dtype(0)), (present, f.dtype(0))]


@shape_rule("LinearAttention", domain=MS)
def _ms_linear_attention(f: NodeFacts) -> list[ShapeOut | None]:
    q, k, v = f.dims(0), f.dims(1), f.dims(2)
    if q is None or k is None or v is None:
        return [None]
    qh, kvh = int(f.attr("q_num_heads", 0)), int(f.attr("kv_num_heads", 0))
    dv = div_dims(v[2], kvh)
    state: Shape = (q[0], kvh, div_dims(k[2], kvh), dv)
    return [((q[0], q[1], mul_dims(qh, dv)), f.dtype(0)), (state, f.dtype(0))]


@shape_rule("LinearAttentionGate", domain=MS)
def _linear_attention_gate(f: NodeFacts) -> list[ShapeOut | None]:
    return [(f.dims(0), "float32"), (f.dims(3) if f.given(3) else None, f.dtype(3))]

