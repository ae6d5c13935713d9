"""Ops that belong to the runtime rather than the model's arithmetic: generation loops
(BeamSearch, GreedySearch, Sampling, WhisperBeamSearch), compiled execution-provider
containers (EPContext, Snpe), state replays and commits, token hashing and n-gram checks.

Generation loops run their decoder subgraph once per generated token until a run-time stop
(max_length, end-of-sequence, beam pruning), and compiled containers hold a binary the graph
does not describe: both are reported unresolved with that reason, never counted as zero.
"""

from __future__ import annotations

import math

from .helpers import MS, bops_cost
from .registry import BasicOps, Cost, NodeFacts, ShapeUnknownError, register, register_movement

B = BasicOps


@register("BeamSearch", "GreedySearch", "Sampling", "WhisperBeamSearch", domain=MS)
def generation_loop(f: NodeFacts) -> Cost:
    raise ShapeUnknownError(f"{f.node.op_type}: its decoder subgraph runs once per generated "
                            "token, a count known only at run time")


@register("EPContext", "Snpe", domain=MS)
def compiled_container(f: NodeFacts) -> Cost:
    raise ShapeUnknownError(f"{f.node.op_type}: a compiled execution-provider graph; its work "
                            "is not described by the ONNX graph")


# Echo, state copies and the speculative-decoding commit: data movement.
register_movement("SampleOp", "ConvStateReplay", "GatedDeltaNetStateReplay",
                  "SpeculativePrefixCommit", "Tokenizer", domain=MS)


@register("IsAllFinite", domain=MS)
def is_all_finite(f: NodeFacts) -> Cost:
    """One compare per input element (two when both NaN and Inf are tested)."""
    per = 1 if int(f.attr("isnan_only", 0)) or int(f.attr("isinf_only", 0)) else 2
    return bops_cost(B(sub=per * sum(f.numel(i) for i in range(len(f.node.inputs))
                                     if f.given(i))))


@register("MurmurHash3", domain=MS)
def murmur_hash3(f: NodeFacts) -> Cost:
    """MurmurHash3_x86_32 of one 32-bit key: 2 mul for the key, h·5 + n (mul, add), the final
    mix (2 mul) and the length add; rotations and xors are logic."""
    return bops_cost(B(mul=5, add=2) * f.out_numel(0))


@register("NGramHashMapping", "VarlenNGramHashMapping", domain=MS)
def ngram_hash_mapping(f: NodeFacts) -> Cost:
    """Per output hash id of an n-gram order n: n products with the multipliers and the modulo
    by the head's vocabulary (div, mul, sub); orders 2 … max_ngram_size share the columns."""
    out = f.out_shape(0)
    n_max = int(f.attr("max_ngram_size", 2))
    mean_order = (2 + n_max) / 2
    ids = math.prod(out)
    return bops_cost(B(mul=math.ceil(ids * mean_order) + ids, div=ids, sub=ids))


@register("NGramRepeatBlock", domain=MS)
def ngram_repeat_block(f: NodeFacts) -> Cost:
    """input_ids (B, L): each of the L − n + 1 earlier n-grams is compared with the last n − 1
    tokens (n − 1 compares), per batch row; the banned scores are set (movement)."""
    batch, length = f.shape(0)
    n = int(f.attr("ngram_size", 1))
    return bops_cost(B(sub=batch * max(length - n + 1, 0) * max(n - 1, 0)))


@register("BifurcationDetector", domain=MS)
def bifurcation_detector(f: NodeFacts) -> Cost:
    """Compare each predicted token with the source (one compare each), then search the last
    n-gram in the source tokens (at most src_len·max_ngram_size compares)."""
    src = f.numel(0)
    pred = f.numel(3) if f.has_input(3) else 0
    return bops_cost(B(sub=pred + src * int(f.attr("max_ngram_size", 3))))
