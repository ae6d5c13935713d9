"""Op specs: the single-op configurations a calibration measures.

An `OpSpec` is one op with its attributes and input facts (shapes, dtypes, which inputs are
initializers and, for constants that need them, their values). Its ``family`` is the name
the fit keys on (`FAMILIES`); its ``key`` is the SHA-256 of its canonical JSON, so the same
configuration has the same key whether it was drawn at random or mined from a model.

Two sources:

- `random_specs`: configurations drawn log-uniformly in the ranges of `RANGES` (the seed
  paper's Table 1, Getzner et al., widened to modern shapes), seeded. Each family cycles
  through its variants (`VARIANTS`: 1x1, 3x3, strided, depthwise, attention-shaped ...) so
  that even a few specs per family cover them all. A draw over `MAX_MACS` or `MAX_BYTES`
  is redrawn (up to `TRIES` times, then halved until it fits), which keeps one inference
  under about 50 ms on one core of the development VM.
- `mined_specs`: every distinct node configuration of real models (`--from-model`), from the
  analysis pipeline's shapes; nodes onnxruntime folds into constants are left out.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .build import DEFAULT_OPSET, MIN_OPSET, spec_of_node

FAMILIES = ("conv", "conv_depthwise", "conv_transpose", "gemm", "pool", "global_pool", "norm",
            "softmax", "activation", "elementwise", "reduce", "resize", "movement")

#: Largest multiply-accumulates of a random spec (about 50 ms on one core at 40 GMAC/s).
#: Real models' heaviest layers are this large (ResNet-50's 3x3s 115 M, BERT-base's MLP at
#: sequence 128 302 M, ViT-B/16's 465 M, VGG-16's 1.85 G): a sweep capped lower predicts
#: them by extrapolation.
MAX_MACS = 2_000_000_000
#: Per-family caps below MAX_MACS: onnxruntime's depthwise kernels run at 0.4-3 GMAC/s
#: (5x5 and 7x7 ones at the low end), not 20-40.
FAMILY_MAX_MACS = {"conv_depthwise": 5_000_000}
#: Largest bytes touched (inputs, weights and outputs) of a random spec.
MAX_BYTES = 32 * 2**20
#: Per-family caps below MAX_BYTES: Softplus runs at about 20 ns an element, GroupNorm
#: (a function onnxruntime expands) at about 6.
FAMILY_MAX_BYTES = {"activation": 8 * 2**20, "norm": 16 * 2**20}
#: Redraws of a configuration over the caps before it is halved until it fits.
TRIES = 50

#: Specs per family in the default sweep (`random_specs` with no counts).
DEFAULT_COUNTS = {
    "conv": 72, "conv_depthwise": 30, "conv_transpose": 16, "gemm": 60, "pool": 24,
    "global_pool": 10, "norm": 28, "softmax": 14, "activation": 50, "elementwise": 55,
    "reduce": 15, "resize": 16, "movement": 60,
}

#: Sampling ranges per family: parameter -> (low, high), drawn log-uniformly as integers
#: (one table for the code and docs/calibration.md). Kernel sizes, strides, groups (2, 4,
#: ..., 64), patch sizes (2, 4, 8, 16) and head sizes (32, 64, 128) are the variants' own.
RANGES: dict[str, dict[str, tuple[int, int]]] = {
    "conv": {"batch": (1, 16), "size": (4, 224), "in_channels": (3, 1024),
             "out_channels": (8, 1024), "group_width": (2, 64)},
    "conv_seed": {"batch": (1, 256), "size": (4, 224), "kernel": (1, 11), "stride": (1, 5),
                  "padding": (0, 3), "in_channels": (1, 512), "out_channels": (1, 512)},
    "conv_depthwise": {"batch": (1, 16), "size": (4, 224), "channels": (8, 1024)},
    "conv_transpose": {"batch": (1, 8), "size": (4, 64), "in_channels": (4, 512),
                       "out_channels": (4, 512)},
    "gemm": {"rows": (1, 512), "in_features": (16, 4096), "out_features": (16, 4096),
             "batch": (1, 8), "seq": (1, 512), "heads": (1, 16), "attn_batch": (1, 4),
             "attn_seq": (8, 1024), "gemv_rows": (1, 8), "gemv_features": (2048, 16384)},
    "pool": {"batch": (1, 16), "size": (4, 224), "channels": (1, 1024), "kernel": (1, 11),
             "stride": (1, 5), "padding": (0, 3)},
    "global_pool": {"batch": (1, 16), "size": (1, 56), "channels": (8, 2048)},
    "norm": {"batch": (1, 16), "size": (4, 112), "channels": (8, 1024), "seq": (1, 1024),
             "features": (32, 4096), "group_channels": (1, 32)},
    "softmax": {"rows": (1, 64), "classes": (2, 50000), "attn_batch": (1, 4),
                "heads": (1, 16), "attn_seq": (8, 1024)},
    "activation": {"batch": (1, 16), "channels": (1, 1024), "size": (1, 224),
                   "seq": (1, 1024), "features": (16, 4096)},
    "elementwise": {"batch": (1, 16), "channels": (1, 1024), "size": (1, 224),
                    "seq": (1, 1024), "features": (16, 4096), "heads": (1, 16)},
    "reduce": {"batch": (1, 16), "channels": (1, 1024), "size": (1, 224), "seq": (1, 1024),
               "features": (16, 4096)},
    "resize": {"batch": (1, 8), "channels": (1, 512), "size": (4, 128)},
    "movement": {"batch": (1, 16), "channels": (1, 512), "size": (1, 224), "seq": (1, 1024),
                 "features": (16, 4096), "heads": (1, 16), "vocab": (100, 50000),
                 "embed": (32, 1024), "parts": (2, 4)},
}


@dataclass(frozen=True)
class TensorSpec:
    """One input of an op: shape, dtype, whether it is an initializer, and its values if
    they matter (flat, row-major)."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    initializer: bool = False
    value: tuple[Any, ...] | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype}
        if self.initializer:
            d["initializer"] = True
        if self.value is not None:
            d["value"] = list(self.value)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TensorSpec:
        value = d.get("value")
        return cls(tuple(d["shape"]), d["dtype"], bool(d.get("initializer")),
                   None if value is None else tuple(value))


@dataclass(frozen=True)
class OpSpec:
    """A single-op configuration. ``attrs`` are JSON values; ``inputs`` follow the op's
    input order (None for an omitted optional input)."""

    op_type: str
    family: str
    inputs: tuple[TensorSpec | None, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    domain: str = ""
    opset: int = DEFAULT_OPSET
    num_outputs: int = 1
    source: str = "random"
    #: Output facts where known (mined specs); recorded, not needed to build.
    outputs: tuple[Mapping[str, Any] | None, ...] = ()

    def canonical(self) -> dict[str, Any]:
        """What identifies the configuration (not its family, source or outputs)."""
        return {
            "op_type": self.op_type, "domain": self.domain, "opset": self.opset,
            "attrs": {k: self.attrs[k] for k in sorted(self.attrs)},
            "inputs": [None if t is None else t.to_json() for t in self.inputs],
            "num_outputs": self.num_outputs,
        }

    @property
    def key(self) -> str:
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """The JSON spec form (build.py's docstring), as written in records' ``spec``."""
        d = self.canonical()
        if self.num_outputs == 1:
            del d["num_outputs"]
        if self.outputs:
            d["outputs"] = [None if o is None else dict(o) for o in self.outputs]
        d.update(family=self.family, key=self.key, source=self.source)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, family: str | None = None,
                  source: str | None = None) -> OpSpec:
        inputs = tuple(None if t is None else TensorSpec.from_json(t) for t in d["inputs"])
        spec = cls(
            op_type=d["op_type"], family=family or d.get("family") or "", inputs=inputs,
            attrs=dict(d.get("attrs") or {}), domain=d.get("domain", ""),
            opset=int(d.get("opset") or DEFAULT_OPSET),
            num_outputs=int(d.get("num_outputs") or 1),
            source=source or d.get("source") or "random",
            outputs=tuple(d.get("outputs") or ()))
        if not spec.family:
            spec = _with_family(spec)
        return spec

    def label(self) -> str:
        """A short readable description: op and input shapes."""
        shapes = ", ".join("x".join(map(str, t.shape)) if t.shape else "scalar"
                           for t in self.inputs if t is not None and not t.initializer)
        return f"{self.op_type}({shapes})"


# ----------------------------------------------------------------------------- families

ACTIVATION_OPS = frozenset({
    "Relu", "Sigmoid", "Tanh", "Gelu", "Erf", "HardSwish", "HardSigmoid", "Clip", "LeakyRelu",
    "Elu", "Selu", "Celu", "Softplus", "Softsign", "PRelu", "Mish", "ThresholdedRelu",
    "Swish", "FastGelu", "QuickGelu", "BiasGelu"})
ELEMENTWISE_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Where", "Exp", "Log", "Neg", "Reciprocal",
    "Abs", "Max", "Min", "Sum", "Mean", "Floor", "Ceil", "Round", "Sign", "Cast", "Equal",
    "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "Mod",
    "Sin", "Cos", "IsNaN", "IsInf", "BitShift"})
NORM_OPS = frozenset({"BatchNormalization", "LayerNormalization", "InstanceNormalization",
                      "GroupNormalization", "RMSNormalization", "LpNormalization",
                      "SkipLayerNormalization", "SimplifiedLayerNormalization",
                      "SkipSimplifiedLayerNormalization", "MeanVarianceNormalization"})
REDUCE_OPS = frozenset({"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                        "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
                        "ReduceLogSumExp", "ArgMax", "ArgMin", "CumSum", "TopK"})
MOVEMENT_OPS = frozenset({"Concat", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
                          "Slice", "Gather", "GatherElements", "GatherND", "Split", "Pad",
                          "Expand", "Tile", "DepthToSpace", "SpaceToDepth", "ScatterND",
                          "ScatterElements", "Trilu", "Identity"})
_FAMILY_OF = {
    "ConvTranspose": "conv_transpose", "Gemm": "gemm", "MatMul": "gemm",
    "MaxPool": "pool", "AveragePool": "pool", "LpPool": "pool",
    "GlobalAveragePool": "global_pool", "GlobalMaxPool": "global_pool",
    "GlobalLpPool": "global_pool", "Softmax": "softmax", "LogSoftmax": "softmax",
    "Resize": "resize", "Upsample": "resize",
    **{op: "activation" for op in ACTIVATION_OPS},
    **{op: "elementwise" for op in ELEMENTWISE_OPS},
    **{op: "norm" for op in NORM_OPS},
    **{op: "reduce" for op in REDUCE_OPS},
    **{op: "movement" for op in MOVEMENT_OPS},
}


def family_of(op_type: str, attrs: Mapping[str, Any],
              input_shapes: Sequence[Sequence[Any] | None] = ()) -> str | None:
    """The fit family of an op (None for ops no family covers: shape arithmetic, control
    flow, quantized ops ...). A Conv whose groups equal its input channels is depthwise."""
    if op_type == "Conv":
        group = int(attrs.get("group", 1) or 1)
        x = input_shapes[0] if input_shapes else None
        channels = x[1] if x is not None and len(x) > 1 else None
        return "conv_depthwise" if group > 1 and group == channels else "conv"
    return _FAMILY_OF.get(op_type)


def _with_family(spec: OpSpec) -> OpSpec:
    fam = family_of(spec.op_type, spec.attrs,
                    [None if t is None else t.shape for t in spec.inputs]) or "other"
    return OpSpec(spec.op_type, fam, spec.inputs, spec.attrs, spec.domain, spec.opset,
                  spec.num_outputs, spec.source, spec.outputs)


# ----------------------------------------------------------------------------- sampling


class _Draw:
    """A random source for one family: log-uniform integers within the family's ranges."""

    def __init__(self, rng: np.random.Generator, family: str) -> None:
        self.rng = rng
        self.family = family
        self.ranges = RANGES[family]
        #: Return every range's low end (the fallback when draws keep exceeding the caps).
        self.minimal = False

    def draw(self, param: str, lo: int | None = None, hi: int | None = None) -> int:
        r_lo, r_hi = self.ranges[param]
        lo = r_lo if lo is None else max(r_lo, lo)
        hi = r_hi if hi is None else min(r_hi, hi)
        if hi <= lo or self.minimal:
            return lo
        if lo <= 0:  # log-uniform needs a positive floor: shift by one
            return self.int_range(lo + 1, hi + 1) - 1
        value = self.int_range(lo, hi)
        if param in ALIGNED and self.family != "conv_seed" and \
                self.rng.uniform() < ALIGNED_SHARE:
            value = _aligned(value, lo, hi)
        return value

    def int_range(self, lo: int, hi: int) -> int:
        v = math.exp(self.rng.uniform(math.log(lo), math.log(hi + 1)))
        return min(hi, max(lo, int(v)))

    def pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(0, len(options)))]


#: Widths real models use are mostly multiples of 8 (64, 96, 768 ...), and onnxruntime's
#: blocked (NCHWc) convolutions pad channels to a multiple of 8 or 16: an odd width wastes
#: up to half a kernel's work. Random widths are rounded to a multiple of 8 this often;
#: the rest stay as drawn, so the fit still sees misaligned ones.
ALIGNED = frozenset({"in_channels", "out_channels", "channels", "in_features",
                     "out_features", "features", "embed"})
ALIGNED_SHARE = 0.75


def _aligned(value: int, lo: int, hi: int) -> int:
    """``value`` rounded to the nearest multiple of 8 within [lo, hi] (else as it was)."""
    rounded = max(8, int(round(value / 8)) * 8)
    if rounded > hi:
        rounded -= 8
    return rounded if lo <= rounded <= hi else value


@dataclass
class _Draft:
    """A drawn configuration with its work, before caps are checked."""

    op_type: str
    inputs: list[TensorSpec | None]
    attrs: dict[str, Any] = field(default_factory=dict)
    macs: int = 0
    out_elements: int | None = None
    num_outputs: int = 1
    opset: int = DEFAULT_OPSET
    #: The variant's own cap on bytes, above the family's (large-weight GEMVs).
    max_bytes: int | None = None

    @property
    def bytes(self) -> int:
        ins = sum(t.numel for t in self.inputs if t is not None)
        biggest = max((t.numel for t in self.inputs if t is not None), default=0)
        out = biggest if self.out_elements is None else self.out_elements
        return 4 * (ins + out)


def _data(*shape: int, dtype: str = "float32") -> TensorSpec:
    return TensorSpec(tuple(int(d) for d in shape), dtype)


def _weight(*shape: int) -> TensorSpec:
    return TensorSpec(tuple(int(d) for d in shape), "float32", initializer=True)


def _const(values: Sequence[Any], dtype: str = "int64",
           shape: Sequence[int] | None = None) -> TensorSpec:
    vals = tuple(values)
    return TensorSpec(tuple(shape) if shape is not None else (len(vals),), dtype, True, vals)


def _conv_out(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv(d: _Draw, *, k: int, s: int = 1, p: int | None = None, dil: int = 1,
          cin: int | None = None, cout: int | None = None, group: int = 1,
          size: int | None = None, batch: int | None = None, bias: bool = True,
          family: str = "conv") -> _Draft:
    n = batch if batch is not None else d.draw("batch")
    h = size if size is not None else d.draw("size", lo=k)
    w = h if d.rng.random() < 0.8 else d.draw("size", lo=k)
    ci = cin if cin is not None else d.draw("in_channels")
    co = cout if cout is not None else d.draw("out_channels")
    pad = k // 2 * dil if p is None else p
    ho, wo = _conv_out(h, k, s, pad, dil), _conv_out(w, k, s, pad, dil)
    if ho < 1 or wo < 1:
        ho = wo = 0
    attrs: dict[str, Any] = {"kernel_shape": [k, k], "strides": [s, s],
                             "pads": [pad, pad, pad, pad]}
    if dil != 1:
        attrs["dilations"] = [dil, dil]
    if group != 1:
        attrs["group"] = group
    inputs: list[TensorSpec | None] = [_data(n, ci, h, w), _weight(co, ci // group, k, k)]
    if bias:
        inputs.append(_weight(co))
    outputs = n * co * ho * wo
    return _Draft("Conv", inputs, attrs, macs=outputs * (ci // group) * k * k,
                  out_elements=outputs)


def _conv_seed(d: _Draw) -> _Draft:
    """The seed paper's Table 1 ranges, as they were."""
    seed = _Draw(d.rng, "conv_seed")
    seed.minimal = d.minimal
    k = seed.draw("kernel")
    return _conv(seed, k=k, s=seed.draw("stride"), p=min(seed.draw("padding"), k // 2),
                 batch=seed.draw("batch"), size=seed.draw("size", lo=k),
                 cin=seed.draw("in_channels"), cout=seed.draw("out_channels"))


def _grouped(d: _Draw) -> _Draft:
    g = d.pick([2, 4, 8, 16, 32, 64])
    return _conv(d, k=3, s=d.pick([1, 1, 2]), group=g, cin=g * d.draw("group_width"),
                 cout=g * d.draw("group_width"))


def _patchify(d: _Draw) -> _Draft:
    k = d.pick([2, 4, 8, 16])
    return _conv(d, k=k, s=k, p=0, cin=d.pick([3, 3, d.draw("in_channels")]),
                 size=k * d.draw("size", hi=224 // k))


CONV_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "3x3": lambda d: _conv(d, k=3),
    "1x1": lambda d: _conv(d, k=1, p=0),
    "3x3 stride 2": lambda d: _conv(d, k=3, s=2),
    "5x5": lambda d: _conv(d, k=5),
    "7x7": lambda d: _conv(d, k=7),
    "grouped 3x3": _grouped,
    "1x1 stride 2": lambda d: _conv(d, k=1, s=2, p=0, bias=False),
    "stem 7x7 stride 2": lambda d: _conv(d, k=7, s=2, cin=3),
    "patchify": _patchify,
    "dilated 3x3": lambda d: _conv(d, k=3, dil=2),
    "seed table 1": _conv_seed,
}


def _depthwise(d: _Draw, k: int, s: int) -> _Draft:
    c = d.draw("channels")
    return _conv(d, k=k, s=s, cin=c, cout=c, group=c)


DEPTHWISE_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "3x3": lambda d: _depthwise(d, 3, 1),
    "3x3 stride 2": lambda d: _depthwise(d, 3, 2),
    "5x5": lambda d: _depthwise(d, 5, 1),
    "5x5 stride 2": lambda d: _depthwise(d, 5, 2),
    "7x7": lambda d: _depthwise(d, 7, 1),
}


def _deconv(d: _Draw, k: int, s: int, p: int, op: int = 0) -> _Draft:
    n, h = d.draw("batch"), d.draw("size")
    ci, co = d.draw("in_channels"), d.draw("out_channels")
    ho = (h - 1) * s - 2 * p + k + op
    attrs: dict[str, Any] = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p, p, p, p]}
    if op:
        attrs["output_padding"] = [op, op]
    return _Draft("ConvTranspose", [_data(n, ci, h, h), _weight(ci, co, k, k), _weight(co)],
                  attrs, macs=n * ci * h * h * co * k * k, out_elements=n * co * ho * ho)


DECONV_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "2x2 stride 2": lambda d: _deconv(d, 2, 2, 0),
    "4x4 stride 2": lambda d: _deconv(d, 4, 2, 1),
    "3x3 stride 2": lambda d: _deconv(d, 3, 2, 1, 1),
    "3x3": lambda d: _deconv(d, 3, 1, 1),
}


def _linear(d: _Draw) -> _Draft:
    m, k, n = d.draw("rows"), d.draw("in_features"), d.draw("out_features")
    return _Draft("Gemm", [_data(m, k), _weight(n, k), _weight(n)], {"transB": 1},
                  macs=m * n * k, out_elements=m * n)


#: Bytes a large-weight GEMV may touch: past the last-level cache (tens of MiB), where a
#: classifier such as VGG's 25088 x 4096 Linear (411 MB of weights) runs at DRAM bandwidth;
#: every other spec stays under `MAX_BYTES`.
GEMV_MAX_BYTES = 512 * 2**20


def _gemv(d: _Draw) -> _Draft:
    """A Linear whose weights exceed the caches: a few rows, wide features."""
    m = d.draw("gemv_rows")
    k, n = d.draw("gemv_features"), d.draw("gemv_features")
    return _Draft("Gemm", [_data(m, k), _weight(n, k), _weight(n)], {"transB": 1},
                  macs=m * n * k, out_elements=m * n, max_bytes=GEMV_MAX_BYTES)


def _matmul_weight(d: _Draw, rank: int) -> _Draft:
    k, n = d.draw("in_features"), d.draw("out_features")
    lead = [d.draw("rows")] if rank == 2 else [d.draw("batch"), d.draw("seq")]
    m = math.prod(lead)
    return _Draft("MatMul", [_data(*lead, k), _weight(k, n)], macs=m * n * k,
                  out_elements=m * n)


def _attention(d: _Draw, which: str) -> _Draft:
    b, h, s = d.draw("attn_batch"), d.draw("heads"), d.draw("attn_seq")
    dh = d.pick([32, 64, 64, 128])
    if which == "qk":
        return _Draft("MatMul", [_data(b, h, s, dh), _data(b, h, dh, s)],
                      macs=b * h * s * s * dh, out_elements=b * h * s * s)
    return _Draft("MatMul", [_data(b, h, s, s), _data(b, h, s, dh)],
                  macs=b * h * s * s * dh, out_elements=b * h * s * dh)


GEMM_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "Gemm (Linear)": _linear,
    "MatMul 3-D x weight": lambda d: _matmul_weight(d, 3),
    "attention Q.K^T": lambda d: _attention(d, "qk"),
    "MatMul 2-D x weight": lambda d: _matmul_weight(d, 2),
    "attention P.V": lambda d: _attention(d, "pv"),
    "Linear, large weights (GEMV)": _gemv,
}


def _pool(d: _Draw, op: str, k: int, s: int, p: int, **extra: Any) -> _Draft:
    n, c, h = d.draw("batch"), d.draw("channels"), d.draw("size", lo=k)
    ho = _conv_out(h, k, s, p)
    attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p, p, p, p], **extra}
    return _Draft(op, [_data(n, c, h, h)], attrs, out_elements=n * c * ho * ho)


def _pool_seed(d: _Draw) -> _Draft:
    k = d.draw("kernel")
    return _pool(d, "MaxPool", k, d.draw("stride"), min(d.draw("padding"), k // 2))


POOL_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "MaxPool 3x3 stride 2": lambda d: _pool(d, "MaxPool", 3, 2, 1),
    "AveragePool 2x2 stride 2": lambda d: _pool(d, "AveragePool", 2, 2, 0),
    "MaxPool 2x2 stride 2": lambda d: _pool(d, "MaxPool", 2, 2, 0),
    "AveragePool 3x3": lambda d: _pool(d, "AveragePool", 3, 1, 1, count_include_pad=0),
    "MaxPool 5x5": lambda d: _pool(d, "MaxPool", 5, 1, 2),
    "MaxPool seed table 1": _pool_seed,
}


def _global(d: _Draw, op: str) -> _Draft:
    n, c, h = d.draw("batch"), d.draw("channels"), d.draw("size")
    return _Draft(op, [_data(n, c, h, h)], out_elements=n * c)


GLOBAL_POOL_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "GlobalAveragePool": lambda d: _global(d, "GlobalAveragePool"),
    "GlobalMaxPool": lambda d: _global(d, "GlobalMaxPool"),
}


def _nchw(d: _Draw, *, size: str = "size") -> tuple[int, int, int, int]:
    return d.draw("batch"), d.draw("channels"), d.draw(size), d.draw(size)


def _bsd(d: _Draw) -> tuple[int, int, int]:
    return d.draw("batch"), d.draw("seq"), d.draw("features")


def _batchnorm(d: _Draw) -> _Draft:
    n, c, h, w = _nchw(d)
    inputs: list[TensorSpec | None] = [_data(n, c, h, w), *(_weight(c) for _ in range(4))]
    return _Draft("BatchNormalization", inputs,
                  {"epsilon": 1e-5})


def _layernorm(d: _Draw, channels_last_image: bool = False) -> _Draft:
    if channels_last_image:
        n, c, h, w = _nchw(d)
        x, dim = _data(n, h, w, c), c
    else:
        b, s, dim = d.draw("batch"), d.draw("seq"), d.draw("features")
        x = _data(b, s, dim)
    return _Draft("LayerNormalization", [x, _weight(dim), _weight(dim)],
                  {"axis": -1, "epsilon": 1e-5})


def _instancenorm(d: _Draw) -> _Draft:
    n, c, h, w = _nchw(d)
    return _Draft("InstanceNormalization", [_data(n, c, h, w), _weight(c), _weight(c)],
                  {"epsilon": 1e-5})


def _groupnorm(d: _Draw) -> _Draft:
    g = d.pick([8, 16, 32])
    n, _, h, w = _nchw(d)
    c = g * d.draw("group_channels")
    return _Draft("GroupNormalization", [_data(n, c, h, w), _weight(c), _weight(c)],
                  {"num_groups": g, "epsilon": 1e-5}, opset=MIN_OPSET["GroupNormalization"])


NORM_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "BatchNormalization": _batchnorm,
    "LayerNormalization [B,S,D]": _layernorm,
    "InstanceNormalization": _instancenorm,
    "LayerNormalization [N,H,W,C]": lambda d: _layernorm(d, True),
    "GroupNormalization": _groupnorm,
}


def _softmax(d: _Draw, attention: bool) -> _Draft:
    if attention:
        b, h, s = d.draw("attn_batch"), d.draw("heads"), d.draw("attn_seq")
        x = _data(b, h, s, s)
    else:
        x = _data(d.draw("rows"), d.draw("classes"))
    return _Draft("Softmax", [x], {"axis": -1})


SOFTMAX_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "attention [B,H,S,S]": lambda d: _softmax(d, True),
    "classifier [N,C]": lambda d: _softmax(d, False),
}


def _activation_shape(d: _Draw, index: int) -> TensorSpec:
    """NCHW (convolutional) and [B,S,D] (transformer) tensors, alternately."""
    if index % 2 == 0:
        return _data(*_nchw(d))
    return _data(*_bsd(d))


def _activation(op: str, **attrs: Any) -> Callable[[_Draw, int], _Draft]:
    def draw(d: _Draw, index: int) -> _Draft:
        x = _activation_shape(d, index)
        inputs: list[TensorSpec | None] = [x]
        if op == "Clip":  # ReLU6 as torch exports it: min and max as constant inputs
            inputs += [_const([0.0], "float32", ()), _const([6.0], "float32", ())]
        return _Draft(op, inputs, dict(attrs), opset=MIN_OPSET.get(op, DEFAULT_OPSET))
    return draw


ACTIVATION_VARIANTS: dict[str, Callable[[_Draw, int], _Draft]] = {
    "Relu": _activation("Relu"),
    "Sigmoid": _activation("Sigmoid"),
    "Gelu": _activation("Gelu"),
    "HardSwish": _activation("HardSwish"),
    "Clip (ReLU6)": _activation("Clip"),
    "Tanh": _activation("Tanh"),
    "Erf": _activation("Erf"),
    "HardSigmoid": _activation("HardSigmoid", alpha=1.0 / 6, beta=0.5),
    "LeakyRelu": _activation("LeakyRelu", alpha=0.01),
    "Softplus": _activation("Softplus"),
}


def _binary(op: str, how: str) -> Callable[[_Draw, int], _Draft]:
    """Element-wise ops as networks use them: ``same`` (both data, as a residual Add),
    ``channel`` ([N,C,H,W] with [N,C,1,1] data: SE scaling), ``row`` ([B,S,D] with a [D]
    weight: a bias), ``scalar`` (a constant scalar: attention scale, LayerNorm's epsilon),
    ``keepdim`` ([B,S,D] with [B,S,1] data: LayerNorm decompositions), ``mask``
    ([B,H,S,S] with a [B,1,1,S] mask)."""

    def draw(d: _Draw, index: int) -> _Draft:
        if how in ("channel",):
            n, c, h, w = _nchw(d)
            x, y = _data(n, c, h, w), _data(n, c, 1, 1)
        elif how == "mask":
            b, h, s = d.draw("batch", hi=4), d.draw("heads"), d.draw("seq", lo=8)
            x, y = _data(b, h, s, s), _data(b, 1, 1, s)
        elif how in ("row", "keepdim"):
            b, s, f = _bsd(d)
            x = _data(b, s, f)
            y = _weight(f) if how == "row" else _data(b, s, 1)
        else:
            x = _activation_shape(d, index)
            y = x if how == "same" else _const([_SCALARS.get(op, 2.0)], "float32", ())
        return _Draft(op, [x, y], out_elements=x.numel)
    return draw


_SCALARS = {"Div": 8.0, "Mul": 0.125, "Add": 1e-5, "Pow": 2.0, "Sub": 1.0}


def _unary(op: str) -> Callable[[_Draw, int], _Draft]:
    def draw(d: _Draw, index: int) -> _Draft:
        return _Draft(op, [_activation_shape(d, index)])
    return draw


def _where(d: _Draw, index: int) -> _Draft:
    """Where(mask, scores, -inf-like constant): attention masking."""
    b, h, s = d.draw("batch", hi=4), d.draw("heads"), d.draw("seq", lo=8)
    return _Draft("Where", [_data(b, 1, s, s, dtype="bool"), _data(b, h, s, s),
                            _const([-1e4], "float32", ())], out_elements=b * h * s * s)


ELEMENTWISE_VARIANTS: dict[str, Callable[[_Draw, int], _Draft]] = {
    "Add same shape": _binary("Add", "same"),
    "Add bias row": _binary("Add", "row"),
    "Mul same shape": _binary("Mul", "same"),
    "Mul by channel": _binary("Mul", "channel"),
    "Div by scalar": _binary("Div", "scalar"),
    "Sub keepdim": _binary("Sub", "keepdim"),
    "Pow 2": _binary("Pow", "scalar"),
    "Sqrt": _unary("Sqrt"),
    "Add mask": _binary("Add", "mask"),
    "Where mask": _where,
    "Mul by scalar": _binary("Mul", "scalar"),
    "Div keepdim": _binary("Div", "keepdim"),
    "Sub same shape": _binary("Sub", "same"),
    "Add by scalar": _binary("Add", "scalar"),
    "Exp": _unary("Exp"),
}


def _reduce(op: str, spatial: bool) -> Callable[[_Draw], _Draft]:
    def draw(d: _Draw) -> _Draft:
        if spatial:
            n, c, h, w = _nchw(d)
            x, axes, out = _data(n, c, h, w), [2, 3], n * c
        else:
            b, s, f = _bsd(d)
            x, axes, out = _data(b, s, f), [-1], b * s
        if op == "ReduceSum":  # axes became an input in opset 13
            return _Draft(op, [x, _const(axes)], {"keepdims": 1}, out_elements=out)
        return _Draft(op, [x], {"axes": axes, "keepdims": 1}, out_elements=out)
    return draw


REDUCE_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "ReduceMean last axis": _reduce("ReduceMean", False),
    "ReduceMean spatial": _reduce("ReduceMean", True),
    "ReduceSum last axis": _reduce("ReduceSum", False),
    "ReduceMax last axis": _reduce("ReduceMax", False),
    "ReduceSum spatial": _reduce("ReduceSum", True),
}


def _resize(mode: str, scale: float, **attrs: Any) -> Callable[[_Draw], _Draft]:
    def draw(d: _Draw) -> _Draft:
        n, c = d.draw("batch"), d.draw("channels")
        h = d.draw("size", lo=2 if scale < 1 else 1)
        out = n * c * int(h * scale) ** 2
        return _Draft("Resize", [_data(n, c, h, h), None,
                                 _const([1.0, 1.0, scale, scale], "float32")],
                      {"mode": mode, **attrs}, out_elements=out)
    return draw


RESIZE_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "nearest x2": _resize("nearest", 2.0, coordinate_transformation_mode="asymmetric",
                          nearest_mode="floor"),
    "linear x2": _resize("linear", 2.0, coordinate_transformation_mode="pytorch_half_pixel"),
    "linear x0.5": _resize("linear", 0.5, coordinate_transformation_mode="pytorch_half_pixel"),
    "nearest x4": _resize("nearest", 4.0, coordinate_transformation_mode="asymmetric",
                          nearest_mode="floor"),
}


def _concat(d: _Draw, tokens: bool) -> _Draft:
    k = d.draw("parts")
    if tokens:  # the class token before the patches: Concat([B,1,D] weight, [B,S,D]) axis 1
        b, s, f = _bsd(d)
        return _Draft("Concat", [_data(b, 1, f), _data(b, s, f)],
                      {"axis": 1}, out_elements=b * (s + 1) * f)
    n, _, h, w = _nchw(d)
    parts: list[TensorSpec | None] = [_data(n, d.draw("channels"), h, w) for _ in range(k)]
    return _Draft("Concat", parts, {"axis": 1},
                  out_elements=sum(p.numel for p in parts if p is not None))


def _transpose(d: _Draw, perm: list[int]) -> _Draft:
    if perm == [0, 2, 3, 1]:
        x = _data(*_nchw(d))
    else:
        b, s, h = d.draw("batch"), d.draw("seq"), d.draw("heads")
        x = _data(b, s, h, d.pick([32, 64, 64, 128]))
    return _Draft("Transpose", [x], {"perm": perm})


def _reshape_heads(d: _Draw) -> _Draft:
    b, s, h = d.draw("batch"), d.draw("seq"), d.draw("heads")
    dh = d.pick([32, 64, 64, 128])
    return _Draft("Reshape", [_data(b, s, h * dh), _const([b, s, h, dh])])


def _flatten(d: _Draw) -> _Draft:
    n, c, h, w = _nchw(d, size="size")
    return _Draft("Reshape", [_data(n, c, h, w), _const([n, c * h * w])])


def _slice(d: _Draw) -> _Draft:
    b, s, f = _bsd(d)
    f = max(f, 2)
    return _Draft("Slice", [_data(b, s, f), _const([0]), _const([f // 2]), _const([-1])],
                  out_elements=b * s * (f // 2))


def _gather(d: _Draw, embedding: bool) -> _Draft:
    if embedding:  # token embedding: a [V, D] table, [B, S] token ids
        v, f = d.draw("vocab"), d.draw("embed")
        b, s = d.draw("batch"), d.draw("seq")
        return _Draft("Gather", [_weight(v, f), _data(b, s, dtype="int64")], {"axis": 0},
                      out_elements=b * s * f)
    b, s, f = _bsd(d)  # the class token: x[:, 0]
    return _Draft("Gather", [_data(b, s, f), _const([0], shape=())], {"axis": 1},
                  out_elements=b * f)


def _split(d: _Draw) -> _Draft:
    b, s, f = _bsd(d)
    k = d.pick([2, 3])
    part = max(1, f // k)
    return _Draft("Split", [_data(b, s, part * k), _const([part] * k)], {"axis": -1},
                  num_outputs=k)


def _pad(d: _Draw) -> _Draft:
    n, c, h, w = _nchw(d)
    p = d.pick([1, 1, 2, 3])
    return _Draft("Pad", [_data(n, c, h, w), _const([0, 0, p, p, 0, 0, p, p])],
                  {"mode": "constant"}, out_elements=n * c * (h + 2 * p) * (w + 2 * p))


def _expand(d: _Draw) -> _Draft:
    b, s, f = _bsd(d)
    return _Draft("Expand", [_data(1, 1, f), _const([b, s, f])], out_elements=b * s * f)


MOVEMENT_VARIANTS: dict[str, Callable[[_Draw], _Draft]] = {
    "Transpose heads [0,2,1,3]": lambda d: _transpose(d, [0, 2, 1, 3]),
    "Reshape heads": _reshape_heads,
    "Concat channels": lambda d: _concat(d, False),
    "Slice last axis": _slice,
    "Gather embedding": lambda d: _gather(d, True),
    "Split last axis": _split,
    "Transpose NCHW->NHWC": lambda d: _transpose(d, [0, 2, 3, 1]),
    "Pad": _pad,
    "Expand": _expand,
    "Reshape flatten": _flatten,
    "Transpose K^T [0,1,3,2]": lambda d: _transpose(d, [0, 1, 3, 2]),
    "Gather token": lambda d: _gather(d, False),
    "Concat class token": lambda d: _concat(d, True),
}

#: Variants per family; `random_specs` cycles through them in this order.
VARIANTS: dict[str, Mapping[str, Callable[..., _Draft]]] = {
    "conv": CONV_VARIANTS, "conv_depthwise": DEPTHWISE_VARIANTS,
    "conv_transpose": DECONV_VARIANTS, "gemm": GEMM_VARIANTS, "pool": POOL_VARIANTS,
    "global_pool": GLOBAL_POOL_VARIANTS, "norm": NORM_VARIANTS, "softmax": SOFTMAX_VARIANTS,
    "activation": ACTIVATION_VARIANTS, "elementwise": ELEMENTWISE_VARIANTS,
    "reduce": REDUCE_VARIANTS, "resize": RESIZE_VARIANTS, "movement": MOVEMENT_VARIANTS,
}
#: Variants that take the spec's index (to alternate NCHW and [B,S,D] tensors).
_INDEXED = ("activation", "elementwise")


def _fits(draft: _Draft, family: str) -> bool:
    return (draft.macs <= FAMILY_MAX_MACS.get(family, MAX_MACS)
            and draft.bytes <= (draft.max_bytes or FAMILY_MAX_BYTES.get(family, MAX_BYTES))
            and all(d > 0 for t in draft.inputs if t is not None for d in t.shape
                    if not t.initializer)
            and (draft.out_elements is None or draft.out_elements > 0))


def _draw_one(family: str, variant: Callable[..., _Draft], d: _Draw, index: int) -> _Draft:
    def once() -> _Draft:
        return variant(d, index) if family in _INDEXED else variant(d)

    for _ in range(TRIES):
        draft = once()
        if _fits(draft, family):
            return draft
    d.minimal = True  # every range at its low end: fits by construction (tested)
    try:
        return once()
    finally:
        d.minimal = False


def _family_rng(seed: int, family: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(family.encode())])


def random_specs(counts: Mapping[str, int] | None = None, *, seed: int = 0,
                 families: Iterable[str] | None = None) -> list[OpSpec]:
    """Seeded random specs: ``counts[family]`` per family (default `DEFAULT_COUNTS`), each
    family cycling through its variants. The same seed gives the same specs, and a family's
    specs do not depend on which other families are drawn."""
    wanted = list(families) if families is not None else list(FAMILIES)
    unknown = [f for f in wanted if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown op families: {', '.join(unknown)}; "
                         f"choose from {', '.join(FAMILIES)}")
    counts = DEFAULT_COUNTS if counts is None else counts
    specs: list[OpSpec] = []
    seen: set[str] = set()
    for family in wanted:
        d = _Draw(_family_rng(seed, family), family)
        variants = list(VARIANTS[family].values())
        for i in range(counts.get(family, 0)):
            draft = _draw_one(family, variants[i % len(variants)], d, i)
            spec = OpSpec(draft.op_type, family, tuple(draft.inputs), draft.attrs,
                          opset=draft.opset, num_outputs=draft.num_outputs)
            if spec.key not in seen:
                seen.add(spec.key)
                specs.append(spec)
    return specs


def variant_names(family: str) -> list[str]:
    return list(VARIANTS[family])


# ----------------------------------------------------------------------------- mining


@dataclass
class Mined:
    """Distinct node configurations of some models, and what was left out."""

    specs: list[OpSpec]
    #: op type -> nodes left out because no family covers it
    skipped: Counter[str] = field(default_factory=Counter)
    #: nodes onnxruntime folds into constants (all inputs constant)
    folded: int = 0
    #: model path -> its nodes with a family
    nodes: dict[str, int] = field(default_factory=dict)


def mine(paths: Sequence[str | os.PathLike[str]], *, dims: Mapping[str, int] | None = None,
         batch_size: int | None = None) -> Mined:
    """Every distinct configuration (by key) of the models' nodes that a family covers."""
    from ..graph import bind_dims, load_model
    from ..passes.control_flow import prepare as prepare_control_flow
    from ..passes.pipeline import run_pipeline

    result = Mined([])
    seen: set[str] = set()
    for path in paths:
        loaded = load_model(path)
        prepare_control_flow(loaded)
        model_dims = {k: v for k, v in (dims or {}).items()
                      if k in loaded.symbolic_input_dims()}
        bind_dims(loaded, model_dims, batch_size)
        graph = run_pipeline(loaded)
        opset = loaded.opsets.get("", DEFAULT_OPSET)
        count = 0
        for spec in _node_specs(graph, opset, result):
            count += 1
            if spec.key not in seen:
                seen.add(spec.key)
                result.specs.append(spec)
        result.nodes[str(path)] = count
    return result


def mined_specs(paths: Sequence[str | os.PathLike[str]], *,
                dims: Mapping[str, int] | None = None,
                batch_size: int | None = None) -> list[OpSpec]:
    """The distinct specs of `mine`."""
    return mine(paths, dims=dims, batch_size=batch_size).specs


#: Ops whose shape-like input, when its value is unknown, equals their static output shape.
_TARGET_IS_OUTPUT = {"Reshape": 1, "Expand": 1}


def _constants(graph: Any, weights: set[str]) -> tuple[dict[str, np.ndarray], set[str]]:
    """Values and names of every tensor onnxruntime can compute before a run: weights,
    and the outputs of nodes computable from them and from static shapes (the shape
    arithmetic it constant-folds). Values are folded where the pipeline's fold rules can."""
    from ..passes.fold import fold_node

    values: dict[str, np.ndarray] = dict(graph.shaped.values)
    const = set(weights) | set(values)
    tensors = graph.shaped.tensors
    for node in graph.shaped.nodes:
        present = [t for t in node.inputs if t]
        if node.domain == "" and node.op_type in ("Shape", "Size"):
            src = tensors.get(node.inputs[0]) if node.inputs else None
            if src is not None and src.is_static:
                shape = np.array(src.shape, dtype=np.int64)
                start = int(node.attrs.get("start", 0))
                end = int(node.attrs.get("end", len(shape)))
                out = np.array(shape.prod()) if node.op_type == "Size" else shape[start:end]
                values.setdefault(node.outputs[0], out)
                const.add(node.outputs[0])
            continue
        if node.op_type != "Constant" and not (present and all(t in const for t in present)):
            continue
        const.update(t for t in node.outputs if t)
        if node.op_type == "Constant" or all(t in values for t in present):
            outs = fold_node(node, values)
            for name, val in zip(node.outputs, outs or (), strict=False):
                if name and name not in values:
                    values[name] = np.asarray(val)
    return values, const


def _node_specs(graph: Any, opset: int, result: Mined) -> Iterator[OpSpec]:
    weights = set(graph.model.weights) | {t.name for t in graph.model.proto.graph.initializer}
    values, const = _constants(graph, weights)
    tensors = graph.shaped.tensors
    for cost in graph.costs:
        node = cost.node
        ins = [tensors.get(t) if t else None for t in node.inputs]
        outs = [tensors.get(t) if t else None for t in node.outputs]
        present = [t for t in node.inputs if t]
        if node.op_type in ("Shape", "Size", "Constant") or (
                present and all(t in const for t in present)):
            result.folded += 1  # computable before the run: onnxruntime folds it
            continue
        fam = family_of(node.op_type, node.attrs,
                        [None if i is None else i.shape for i in ins])
        if fam is None or node.domain not in ("", "ai.onnx"):
            result.skipped[node.op_type] += 1
            continue
        if any(i is None or not i.is_static for i, t in zip(ins, node.inputs, strict=True)
               if t):
            result.skipped[f"{node.op_type} (shapes unknown)"] += 1
            continue
        node_values = values
        unknown = [t for t in present if t in const and t not in values and t not in weights]
        if unknown:
            slot = _TARGET_IS_OUTPUT.get(node.op_type)
            out = outs[0] if outs else None
            if (slot is None or unknown != [node.inputs[slot]] or out is None
                    or not out.is_static):
                result.skipped[f"{node.op_type} (constant input unknown)"] += 1
                continue
            node_values = {**values, unknown[0]: np.array(out.shape, dtype=np.int64)}
        spec = spec_of_node(node, ins, outs, initializers=const, values=node_values,
                            opset=opset)
        yield OpSpec.from_json(spec, family=fam, source="mined")


def ranges_markdown() -> str:
    """The sampling ranges and variants as a Markdown table (docs/calibration.md)."""
    lines = ["| family | variants (cycled in order) | ranges (log-uniform integers) |",
             "|---|---|---|"]
    for family in FAMILIES:
        ranges = dict(RANGES[family])
        text = ", ".join(f"{k} {lo}–{hi}" for k, (lo, hi) in ranges.items())
        if family == "conv":
            seed = ", ".join(f"{k} {lo}–{hi}" for k, (lo, hi) in RANGES["conv_seed"].items())
            text += f"; *seed table 1*: {seed}"
        lines.append(f"| `{family}` | {'; '.join(VARIANTS[family])} | {text} |")
    return "\n".join(lines)
