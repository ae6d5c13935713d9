"""Features of a node group: the named numbers the fitted maps read, for fitting and prediction.

A *group* is what one kernel of the runtime executes: a single node, or several nodes the
runtime fuses (Conv + Add + Relu, MatMul + Add, the ops of a GELU). Its features come from the
project's own passes (the same `run_pipeline` as ``analyze``): MACs, FLOPs, basic and
transistor operations, parameters, the bytes that enter and leave the group, the op's shape
parameters, and (in the fit) their logs. Fitting and prediction call the same
`group_features`, so a record and a node to predict are described alike.

This module imports no scikit-learn and no onnxruntime (prediction stays numpy-only).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from .graph import TensorInfo
from .passes.results import NodeCost
from .passes.transistors import Lowered

#: Kernel (op) type -> family. Ops not listed take their family from their kind: movement
#: ops are ``movement``, the rest ``other`` (served by the generic fallback unless records
#: of them exist).
FAMILY_OF: dict[str, str] = {
    **dict.fromkeys(("Conv", "FusedConv", "NhwcConv", "NhwcFusedConv", "ConvInteger",
                     "QLinearConv"), "conv"),
    "ConvTranspose": "conv_transpose",
    **dict.fromkeys(("Gemm", "MatMul", "FusedMatMul", "FusedGemm", "TransposeMatMul",
                     "FusedMatMulActivation", "MatMulInteger", "QLinearMatMul", "MatMulNBits",
                     "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "MatMulInteger16",
                     "QGemm", "GemmFastGelu", "Einsum"), "gemm"),
    **dict.fromkeys(("MaxPool", "AveragePool", "LpPool", "QLinearAveragePool"), "pool"),
    **dict.fromkeys(("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
                     "QLinearGlobalAveragePool"), "global_pool"),
    **dict.fromkeys(("BatchNormalization", "LayerNormalization", "SkipLayerNormalization",
                     "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization",
                     "InstanceNormalization", "GroupNormalization", "GroupNorm",
                     "SkipGroupNorm", "RMSNormalization", "LpNormalization",
                     "MeanVarianceNormalization", "EmbedLayerNormalization"), "norm"),
    **dict.fromkeys(("Softmax", "LogSoftmax", "BiasSoftmax", "QLinearSoftmax"), "softmax"),
    **dict.fromkeys(("Relu", "Sigmoid", "Tanh", "Gelu", "FastGelu", "BiasGelu", "QuickGelu",
                     "Erf", "HardSwish", "HardSigmoid", "Clip", "LeakyRelu", "Elu", "Selu",
                     "Celu", "Softplus", "Softsign", "Mish", "PRelu", "ThresholdedRelu",
                     "Swish", "ScaledSiLU", "Shrink", "QLinearSigmoid", "QLinearLeakyRelu"),
                  "activation"),
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs",
                     "Reciprocal", "Where", "Equal", "Less", "Greater", "LessOrEqual",
                     "GreaterOrEqual", "Not", "And", "Or", "Xor", "Max", "Min", "Sum", "Mean",
                     "Floor", "Ceil", "Round", "Sign", "Mod", "Sin", "Cos", "IsNaN", "IsInf",
                     "BiasAdd", "QLinearAdd", "QLinearMul", "CumSum", "QuantizeLinear",
                     "DequantizeLinear", "DynamicQuantizeLinear"), "elementwise"),
    **dict.fromkeys(("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                     "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
                     "ReduceLogSumExp", "ArgMax", "ArgMin", "QLinearReduceMean"), "reduce"),
    **dict.fromkeys(("Resize", "Upsample"), "resize"),
    **dict.fromkeys(("Attention", "MultiHeadAttention", "GroupQueryAttention", "QAttention",
                     "DecoderMaskedMultiHeadAttention", "RotaryEmbedding"), "attention"),
    **dict.fromkeys(("LSTM", "GRU", "RNN", "DynamicQuantizeLSTM"), "rnn"),
    # onnxruntime runs these as views of their input (no copy): pooled with the copies of
    # the movement family they made its map a near-constant, and a Cast of 1.9 MB, which
    # has no map of its own, was priced at 3 µs against 0.37 ms measured
    **dict.fromkeys(("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"), "view"),
}

#: A matrix product with at most this many rows per product (m) is a matrix-vector product
#: in effect (``gemm_gemv``): it streams its weights once and is bound by memory bandwidth,
#: not by MACs (a classifier at batch 1, a decoder step), unlike a GEMM of the same shapes.
GEMV_ROWS = 8

#: Features every group has.
GENERIC = ("flops", "macs", "bytes", "bytes_in", "bytes_out", "params", "elems_in",
           "elems_out", "nodes", "isolated", "lead")
#: Features that grow in proportion to ``lead`` (the batch; see `_lead`): per-sample maps
#: read them divided by it (`profile.per_sample`).
PER_SAMPLE = frozenset({"flops", "macs", "macs_narrow", "macs_unblocked", "bytes_act",
                        "bytes_isolated", "bytes_out", "bytes_uncached", "elems_in",
                        "elems_out", "tos_fp32", "gemm_n", "channels", "rows"})
#: Output channels one pass of a CPU convolution kernel computes at once: MLAS's x86 NCHWc
#: kernels hold up to four 8-wide filter blocks in registers (AVX2). A convolution with
#: fewer output channels per group reuses each input load for fewer FMAs and runs at a
#: fraction of the MAC rate (measured here: 17-19 GMAC/s at 8 output channels against 42-48
#: at 64 and more, at the same MAC counts).
CONV_TILE = 32
#: Channel block of onnxruntime's NCHWc layout on x86 (8 floats with AVX2; 16 with AVX-512,
#: where a width that is a multiple of 8 only is counted blocked here). Convolutions whose
#: channels do not fit it stay in NCHW and run as im2col + SGEMM, 10-25% slower per MAC.
NCHWC_BLOCK = 8

#: Shape parameters of the group's main node, by family.
SHAPE_FEATURES: dict[str, tuple[str, ...]] = {
    "conv": ("batch", "c_in", "c_out", "groups", "kernel", "stride", "hw_in", "hw_out",
             "gemm_k", "gemm_n"),
    "conv_depthwise": ("batch", "c_in", "c_out", "kernel", "stride", "hw_in", "hw_out"),
    "conv_transpose": ("batch", "c_in", "c_out", "groups", "kernel", "stride", "hw_in",
                       "hw_out"),
    "gemm": ("m", "n", "k", "batch"),
    "gemm_gemv": ("m", "n", "k", "batch"),
    "pool": ("channels", "kernel", "stride", "hw_in", "hw_out"),
    "global_pool": ("channels", "hw_in"),
    "norm": ("rows", "row_len"),
    "softmax": ("rows", "row_len"),
    "reduce": ("rows", "row_len"),
}


@dataclass(frozen=True)
class GroupFeatures:
    """What a group is, for the fitted maps: its kernel op type (the most specific model
    key), its family, and its named features."""

    kernel: str
    family: str
    values: Mapping[str, float]

    @property
    def key(self) -> str:
        """The most specific model key: the kernel op type, refined by the family where the
        family refines the op type's own: ``Conv (depthwise)`` and ``MatMul (gemv)`` run
        other kernels, at a small fraction of the MACs per second of a dense convolution or
        GEMM, and a map shared with those would miss both."""
        own = FAMILY_OF.get(self.kernel)
        if own is None or own == self.family:
            return self.kernel
        return f"{self.kernel} ({self.family.removeprefix(own + '_')})"

    def keys(self) -> tuple[str, ...]:
        """Model keys from the most specific to the least: the kernel (`key`), the family,
        and ``generic`` (the fallback)."""
        return tuple(dict.fromkeys((self.key, self.family, "generic")))


def family_of(kernel: str, kind: str = "compute", depthwise: bool = False) -> str:
    """The family of a kernel op type (``conv_depthwise`` for a depthwise convolution)."""
    family = FAMILY_OF.get(kernel)
    if family is None:
        return "movement" if kind == "movement" else "other"
    if family == "conv" and depthwise:
        return "conv_depthwise"
    return family


def group_features(members: Sequence[NodeCost], lowered: Sequence[Lowered | None],
                   kernel: str, *, isolated: bool = False,
                   consumers: Mapping[str, int] | None = None,
                   cache_bytes: float | None = None,
                   weights: Collection[str] = ()) -> GroupFeatures:
    """Features of the group formed by ``members`` (topological order) run as ``kernel``.

    Bytes count only the tensors that enter or leave the group (what a fused kernel moves):
    inputs not produced inside it, and outputs not consumed inside it. ``consumers`` maps a
    tensor name to its number of consumers in the whole graph, when known, so that an
    output also read outside the group counts as leaving it. ``isolated`` marks a single op
    measured alone (a calibration spec) rather than inside a network. With the CPU's
    last-level ``cache_bytes`` known, ``bytes_uncached`` is what the group moves beyond it:
    past the cache the cost per byte jumps (a large GEMV streams its weights from DRAM at a
    third of the bandwidth a cache-resident one gets), which a linear map cannot bend to.
    ``weights`` names the graph's initializers: ``bytes_act`` is the traffic without them
    (what grows with the batch).
    """
    produced = {o for m in members for o in m.node.outputs if o}
    used_inside: dict[str, int] = {}
    for m in members:
        for x in m.node.inputs:
            if x in produced:
                used_inside[x] = used_inside.get(x, 0) + 1
    ins: dict[str, TensorInfo] = {}
    outs: dict[str, TensorInfo] = {}
    for m in members:
        for t in m.inputs:
            if t.name not in produced:
                ins.setdefault(t.name, t)
        for t in m.outputs:
            inside = used_inside.get(t.name, 0)
            total = consumers.get(t.name, inside) if consumers is not None else inside
            if inside == 0 or total > inside:
                outs.setdefault(t.name, t)
    anchor = _anchor(members, kernel)
    depthwise = _depthwise(anchor)
    family = family_of(kernel, anchor.kind or "compute", depthwise)
    flops = sum(m.cost.flops for m in members if m.cost is not None)
    macs = sum(m.cost.macs for m in members if m.cost is not None)
    values: dict[str, float] = {
        "flops": float(flops),
        "macs": float(macs),
        "bytes_in": float(sum(_nbytes(t) for t in ins.values())),
        "bytes_out": float(sum(_nbytes(t) for t in outs.values())),
        "params": float(sum(m.params for m in members)),
        "elems_in": float(max((_numel(t) for t in ins.values()), default=0)),
        "elems_out": float(sum(_numel(t) for t in outs.values())),
        "nodes": float(len(members)),
        "isolated": 1.0 if isolated else 0.0,
    }
    values["bytes"] = values["bytes_in"] + values["bytes_out"]
    values["bytes_act"] = values["bytes"] - float(
        sum(_nbytes(t) for name, t in ins.items() if name in weights))
    values["bytes_isolated"] = values["bytes_act"] if isolated else 0.0
    if cache_bytes and not isolated and values["bytes"] <= cache_bytes:
        # Inside a network a kernel's weights were last read one inference ago, with the
        # whole model's traffic since: they come from L3 or DRAM, where a lone op timed in
        # a loop finds them hot in the cache (MobileNetV3's classifier GEMVs: 16 GB/s in
        # the network, 32 GB/s alone). Beyond the cache both stream (bytes_uncached).
        values["bytes_cold"] = values["bytes"] - values["bytes_act"]
    if cache_bytes:
        values["bytes_uncached"] = max(0.0, values["bytes"] - float(cache_bytes))
    tos = [low.tos.get("fp32") for low in lowered if low is not None and low.tos]
    values["tos_fp32"] = float(sum(t for t in tos if t is not None))
    values.update(_shape_params(family, anchor))
    if family == "conv" and values.get("c_out", 0) > 0:
        values["macs_narrow"] = _narrow_macs(macs, values["c_out"] / values["groups"])
        values["macs_unblocked"] = 0.0 if _blocked(values) else float(macs)
    if family == "gemm" and 0 < values.get("m", GEMV_ROWS + 1) <= GEMV_ROWS:
        family = "gemm_gemv"
    values["lead"] = float(_lead(family, anchor, weights))
    return GroupFeatures(kernel=kernel, family=family, values=values)


def _anchor(members: Sequence[NodeCost], kernel: str) -> NodeCost:
    """The member whose shapes describe the group: the one of the kernel's own op type, else
    the first member of the kernel's family, else the member with the most FLOPs."""
    for m in members:
        if m.node.op_type == kernel:
            return m
    family = FAMILY_OF.get(kernel)
    for m in members:
        if family is not None and FAMILY_OF.get(m.node.op_type) == family:
            return m
    return max(members, key=lambda m: (m.cost.flops if m.cost is not None else -1))


def _depthwise(m: NodeCost) -> bool:
    if FAMILY_OF.get(m.node.op_type) != "conv":
        return False
    groups = int(m.node.attrs.get("group", 1) or 1)
    x = m.inputs[0] if m.inputs else None
    c_in = x.shape[1] if x is not None and x.shape is not None and len(x.shape) > 1 else None
    return groups > 1 and isinstance(c_in, int) and groups == c_in


def _lead(family: str, m: NodeCost, weights: Collection[str]) -> int:
    """What the group's cost is proportional to, where it is: the batch (the leading dim
    of the main node's first input that is not a weight: a Gather's indices, not its
    table); 1 for matrix products, whose rows share one read of the weights (a GEMV
    streams the same weights for 1 row as for 8), and where it is unknown."""
    if family in ("gemm", "gemm_gemv"):
        return 1
    data = next((t for t in m.inputs if t.name not in weights), None)
    if data is None or not data.is_static or len(data.static_shape) < 2:
        return 1
    return max(int(data.static_shape[0]), 1)


def _narrow_macs(macs: float, outputs_per_group: float) -> float:
    """The MACs a convolution's unfilled kernel tile wastes: ``macs`` × (tile / filled - 1),
    zero when a group has `CONV_TILE` output channels or more."""
    filled = min(max(outputs_per_group, 1.0), CONV_TILE)
    return macs * (CONV_TILE / filled - 1.0)


def _blocked(conv: Mapping[str, float]) -> bool:
    """Whether onnxruntime's NCHWc transformer takes this (non-depthwise) convolution: input
    channels per group a multiple of the block, or fewer than a block for an ungrouped one
    (it reads NCHW input directly); grouped ones also need whole blocks of outputs."""
    groups = max(conv["groups"], 1.0)
    c_in, c_out = conv["c_in"] / groups, conv["c_out"]
    if groups == 1:
        return c_in < NCHWC_BLOCK or c_in % NCHWC_BLOCK == 0
    return (c_in % NCHWC_BLOCK == 0 and c_out % NCHWC_BLOCK == 0
            and (c_out / groups) % NCHWC_BLOCK == 0)


def _shape_params(family: str, m: NodeCost) -> dict[str, float]:
    return {k: float(v) for k, v in _shape_ints(family, m).items()}


def _shape_ints(family: str, m: NodeCost) -> dict[str, int]:
    shapes = [t.static_shape if t.is_static else None for t in m.inputs]
    out = m.outputs[0].static_shape if m.outputs and m.outputs[0].is_static else None
    x = shapes[0] if shapes else None
    attrs = m.node.attrs
    try:
        if family in ("conv", "conv_depthwise", "conv_transpose") and x and out:
            w = shapes[1] if len(shapes) > 1 else None
            kernel = math.prod(w[2:]) if w else math.prod(attrs.get("kernel_shape", [1]))
            strides = attrs.get("strides") or [1]
            c_out = out[1] if len(out) > 1 else 0
            groups = int(attrs.get("group", 1) or 1)
            # As an im2col GEMM: M = c_out, K = c_in/groups * kernel, N = batch * hw_out.
            return {"batch": x[0], "c_in": x[1], "c_out": c_out, "groups": groups,
                    "kernel": kernel, "stride": max(int(s) for s in strides),
                    "hw_in": math.prod(x[2:]), "hw_out": math.prod(out[2:]),
                    "gemm_k": x[1] // max(groups, 1) * kernel,
                    "gemm_n": x[0] * math.prod(out[2:])}
        if family == "gemm" and len(shapes) > 1 and shapes[0] and shapes[1] and out:
            a, b = shapes[0], shapes[1]
            if m.node.op_type in ("Gemm", "FusedGemm", "QGemm") and len(a) == 2 and len(b) == 2:
                k = a[0] if attrs.get("transA", 0) else a[1]
                return {"m": out[0], "n": out[1], "k": k, "batch": 1}
            k = a[-1] if len(a) > 1 else a[0]
            if len(b) == 2:
                # one weight matrix for every leading index of A: a single GEMM of all of
                # A's rows (a ViT's (197, 1, 768) tokens are 197 rows, not 197 GEMVs)
                return {"m": math.prod(out[:-1]) if len(out) > 1 else 1, "n": out[-1],
                        "k": k, "batch": 1}
            rows = out[-2] if len(out) > 1 else 1
            return {"m": rows, "n": out[-1], "k": k,
                    "batch": math.prod(out[:-2]) if len(out) > 2 else 1}
        if family == "pool" and x and out:
            kernel = math.prod(attrs.get("kernel_shape", [1]))
            strides = attrs.get("strides") or [1]
            return {"channels": math.prod(x[:2]), "kernel": kernel,
                    "stride": max(int(s) for s in strides), "hw_in": math.prod(x[2:]),
                    "hw_out": math.prod(out[2:])}
        if family == "global_pool" and x:
            return {"channels": math.prod(x[:2]), "hw_in": math.prod(x[2:])}
        if family in ("norm", "softmax", "reduce") and x:
            if m.node.op_type == "BatchNormalization" and len(x) > 1:
                return {"rows": x[1], "row_len": math.prod(x) // max(x[1], 1)}
            n = math.prod(x)
            row_len = _reduced_length(m, x)
            return {"rows": n // row_len if row_len else 0, "row_len": row_len}
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return {}
    return {}


def _reduced_length(m: NodeCost, x: tuple[int, ...]) -> int:
    """Elements per reduced row: along ``axis`` (or ``axes``), the last axis by default."""
    attrs = m.node.attrs
    rank = len(x)
    axes = attrs.get("axes")
    if axes is None:
        axis = int(attrs.get("axis", -1))
        if m.node.op_type in ("LayerNormalization", "SkipLayerNormalization",
                              "SimplifiedLayerNormalization"):
            return math.prod(x[axis % rank:])
        axes = [axis]
    return math.prod(x[int(a) % rank] for a in axes)


def _nbytes(t: TensorInfo) -> int:
    return t.nbytes if t.is_static else 0


def _numel(t: TensorInfo) -> int:
    return t.numel if t.is_static else 0
