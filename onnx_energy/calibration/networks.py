"""Reference networks: small models built in code, in the graph patterns exporters produce.

Single ops measured alone miss what happens inside a network (onnxruntime's fusions, layout
reorders once per block, per-node dispatch); these networks are measured whole, with
per-node profiling, so each node group's time in context becomes a record. Their graphs
follow what ``torch.onnx`` writes for torchvision and Hugging Face models (read from the
exports in /work/models):

- **ResNet** basic and bottleneck blocks: Conv (BatchNorm folded into its weights and bias)
  → Relu, Conv → Add(residual) → Relu, a strided 1x1 Conv on the shortcut, the stem
  Conv 7x7/2 → Relu → MaxPool 3x3/2, and the head GlobalAveragePool → Flatten → Gemm.
- **MobileNetV2** inverted residuals: 1x1 Conv → Clip(0, 6), depthwise 3x3 → Clip, 1x1
  Conv, Add when the shapes allow.
- **MobileNetV3** blocks: 1x1 → HardSwish, depthwise 5x5 → HardSwish, squeeze-excitation
  GlobalAveragePool → Conv → Relu → Conv → HardSigmoid → Mul, 1x1, Add; the head
  GlobalAveragePool → Flatten → Gemm → HardSwish → Gemm.
- **EfficientNet** MBConv: as MobileNetV2 with SiLU written as x·Sigmoid(x) (Sigmoid, Mul)
  and an SE block with SiLU and Sigmoid.
- **Transformer encoder** blocks as Hugging Face exports them: projections MatMul → Add
  (bias first), heads by Reshape (targets computed by Shape → Gather → Unsqueeze →
  Concat) → Transpose (0,2,1,3), Kᵀ by Transpose (0,2,3,1), MatMul Q·Kᵀ, Mul by the scale,
  Softmax, MatMul ·V, Transpose → Reshape, output projection, residual Add,
  LayerNormalization (opset 17), GELU as Div(√2) → Erf → Add(1) → Mul(x) → Mul(0.5).
  ``vit`` is pre-norm with a patch-embedding Conv and a class token; ``bert`` is post-norm
  with token embeddings (Gather), positions, and an additive attention mask.

`reference_networks()` is the default set (a few widths, resolutions and sequence lengths,
batch 1, each a few milliseconds per inference on one core); `random_networks()` varies
them (seeded) when a budget allows more. Every network has a stable name that says what it
is, and the same name always builds the same graph with the same weights.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper

OPSET = 17


@dataclass(frozen=True)
class Network:
    """A reference network: its stable name, kind and parameters, and a builder."""

    name: str
    kind: str
    params: dict[str, int] = field(default_factory=dict)

    def build(self) -> ModelProto:
        return KINDS[self.kind](self.name, **self.params)


class _Graph:
    """A graph under construction, with torch-like node and tensor names."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.inputs: list[Any] = []
        self._used: set[str] = set()

    def _unique(self, name: str) -> str:
        base, i = name, 1
        while name in self._used:
            name = f"{base}_{i}"
            i += 1
        self._used.add(name)
        return name

    def input(self, name: str, shape: Sequence[int], elem: int = TensorProto.FLOAT) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem, list(shape)))
        return name

    def weight(self, name: str, shape: Sequence[int], fan_in: int | None = None,
               positive: bool = False) -> str:
        fan = fan_in if fan_in is not None else (math.prod(shape[1:]) if len(shape) > 1 else 1)
        arr = self.rng.standard_normal(tuple(shape)) / math.sqrt(max(1, fan))
        if positive:
            arr = np.abs(arr) + 0.5
        name = self._unique(name)
        self.inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        return name

    def const(self, name: str, values: Any, dtype: Any = np.int64) -> str:
        arr = np.array(values, dtype=dtype)
        name = self._unique(name)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], name: str, n_out: int = 1,
           **attrs: Any) -> str:
        name = self._unique(name)
        outs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0]

    def model(self, output: str) -> ModelProto:
        graph = helper.make_graph(
            self.nodes, self.name, self.inputs,
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="onnx-energy")
        model.ir_version = 8
        return _with_output_shapes(model)

    # --- convolutional pieces (BatchNorm folded, as torch exports eval models)

    def conv(self, x: str, cin: int, cout: int, k: int, prefix: str, s: int = 1,
             group: int = 1) -> str:
        w = self.weight(f"{prefix}.weight", [cout, cin // group, k, k])
        b = self.weight(f"{prefix}.bias", [cout], fan_in=cin)
        attrs: dict[str, Any] = {"dilations": [1, 1], "group": group, "kernel_shape": [k, k],
                                 "pads": [k // 2] * 4, "strides": [s, s]}
        return self.op("Conv", [x, w, b], f"/{prefix}/Conv", **attrs)

    def act(self, x: str, kind: str, prefix: str) -> str:
        if kind == "relu":
            return self.op("Relu", [x], f"/{prefix}/Relu")
        if kind == "relu6":
            lo = self.const(f"/{prefix}/Constant_output_0", 0.0, np.float32)
            hi = self.const(f"/{prefix}/Constant_1_output_0", 6.0, np.float32)
            return self.op("Clip", [x, lo, hi], f"/{prefix}/Clip")
        if kind == "hardswish":
            return self.op("HardSwish", [x], f"/{prefix}/HardSwish")
        if kind == "hardsigmoid":
            return self.op("HardSigmoid", [x], f"/{prefix}/HardSigmoid", alpha=1 / 6,
                           beta=0.5)
        if kind == "silu":
            sig = self.op("Sigmoid", [x], f"/{prefix}/Sigmoid")
            return self.op("Mul", [x, sig], f"/{prefix}/Mul")
        if kind == "sigmoid":
            return self.op("Sigmoid", [x], f"/{prefix}/Sigmoid")
        raise ValueError(kind)

    def se(self, x: str, c: int, squeeze: int, prefix: str, inner: str, gate: str) -> str:
        g = self.op("GlobalAveragePool", [x], f"/{prefix}/avgpool/GlobalAveragePool")
        h = self.act(self.conv(g, c, squeeze, 1, f"{prefix}/fc1"), inner, f"{prefix}/act")
        s = self.act(self.conv(h, squeeze, c, 1, f"{prefix}/fc2"), gate, f"{prefix}/gate")
        return self.op("Mul", [s, x], f"/{prefix}/Mul")

    def head(self, x: str, c: int, classes: int, prefix: str = "fc",
             hidden: int | None = None) -> str:
        g = self.op("GlobalAveragePool", [x], "/avgpool/GlobalAveragePool")
        f = self.op("Flatten", [g], "/Flatten", axis=1)
        if hidden is not None:
            w = self.weight("classifier.0.weight", [hidden, c])
            b = self.weight("classifier.0.bias", [hidden], fan_in=c)
            f = self.op("Gemm", [f, w, b], "/classifier/classifier.0/Gemm", alpha=1.0,
                        beta=1.0, transB=1)
            f = self.act(f, "hardswish", "classifier/classifier.1")
            c = hidden
        w = self.weight(f"{prefix}.weight", [classes, c])
        b = self.weight(f"{prefix}.bias", [classes], fan_in=c)
        return self.op("Gemm", [f, w, b], f"/{prefix}/Gemm", alpha=1.0, beta=1.0, transB=1)


def _with_output_shapes(model: ModelProto) -> ModelProto:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    model.graph.output[0].CopyFrom(inferred.graph.output[0])
    return model


# --------------------------------------------------------------------------- CNNs


def _stem(g: _Graph, x: str, width: int) -> str:
    y = g.act(g.conv(x, 3, width, 7, "conv1", s=2), "relu", "relu")
    return g.op("MaxPool", [y], "/maxpool/MaxPool", ceil_mode=0, kernel_shape=[3, 3],
                pads=[1, 1, 1, 1], strides=[2, 2])


def resnet(name: str, *, width: int, res: int, depth: int = 1, bottleneck: int = 0,
           classes: int = 100) -> ModelProto:
    """Stem, then two stages of ``depth`` blocks (the second strided, with a projection
    shortcut), then the classifier head. ``bottleneck`` picks 1x1-3x3-1x1 blocks
    (expansion 4) instead of basic 3x3-3x3 ones."""
    g = _Graph(name)
    x = _stem(g, g.input("input", [1, 3, res, res]), width)
    c = width
    for stage, (mid, stride) in enumerate([(width, 1), (2 * width, 2)], start=1):
        for b in range(depth):
            p = f"layer{stage}/layer{stage}.{b}"
            s = stride if b == 0 else 1
            out_c = mid * 4 if bottleneck else mid
            if bottleneck:
                y = g.act(g.conv(x, c, mid, 1, f"{p}/conv1"), "relu", f"{p}/relu")
                y = g.act(g.conv(y, mid, mid, 3, f"{p}/conv2", s=s), "relu", f"{p}/relu_1")
                y = g.conv(y, mid, out_c, 1, f"{p}/conv3")
            else:
                y = g.act(g.conv(x, c, mid, 3, f"{p}/conv1", s=s), "relu", f"{p}/relu")
                y = g.conv(y, mid, out_c, 3, f"{p}/conv2")
            short = x if (s == 1 and c == out_c) else g.conv(
                x, c, out_c, 1, f"{p}/downsample/downsample.0", s=s)
            x = g.act(g.op("Add", [y, short], f"/{p}/Add"), "relu", f"{p}/relu_2")
            c = out_c
    return g.model(g.head(x, c, classes))


def mobilenet(name: str, *, width: int, res: int, depth: int = 2, version: int = 2,
              expand: int = 4, classes: int = 100) -> ModelProto:
    """Stem Conv 3x3/2, then ``depth`` inverted-residual blocks at each of two widths (the
    first of each strided): MobileNetV2 (``version`` 2: ReLU6, 3x3), V3 (3: HardSwish, 5x5,
    SE with HardSigmoid) or EfficientNet's MBConv (4: SiLU, 3x3, SE with Sigmoid)."""
    act = {2: "relu6", 3: "hardswish", 4: "silu"}[version]
    k = 5 if version == 3 else 3
    g = _Graph(name)
    x = g.act(g.conv(g.input("input", [1, 3, res, res]), 3, width, 3, "features/features.0/0",
                     s=2), act, "features/features.0/2")
    c = width
    i = 1
    for out_c in (width, 2 * width):
        for b in range(depth):
            p = f"features/features.{i}/block"
            s = 2 if b == 0 else 1
            hidden = c * expand
            y = g.act(g.conv(x, c, hidden, 1, f"{p}/0/0"), act, f"{p}/0/2")
            y = g.act(g.conv(y, hidden, hidden, k, f"{p}/1/0", s=s, group=hidden), act,
                      f"{p}/1/2")
            if version >= 3:
                y = g.se(y, hidden, max(8, hidden // 4), f"{p}/2",
                         "relu" if version == 3 else "silu",
                         "hardsigmoid" if version == 3 else "sigmoid")
            y = g.conv(y, hidden, out_c, 1, f"{p}/3/0")
            if s == 1 and c == out_c:
                y = g.op("Add", [x, y], f"/features/features.{i}/Add")
            x, c = y, out_c
            i += 1
    hidden_head = 4 * c if version == 3 else None
    return g.model(g.head(x, c, classes, prefix="classifier.3" if hidden_head else "fc",
                          hidden=hidden_head))


# ------------------------------------------------------------------------ transformers


def _heads_shape(g: _Graph, x: str, p: str, parts: Sequence[str | int]) -> str:
    """A Reshape target as Hugging Face exports compute it: Shape → Gather → Unsqueeze →
    Concat (ints are constant dims)."""
    pieces = []
    shape = g.op("Shape", [x], f"/{p}/Shape")
    for j, part in enumerate(parts):
        if isinstance(part, str):  # a dim of x, by index
            idx = g.const(f"/{p}/Constant_{j}_output_0", int(part))
            dim = g.op("Gather", [shape, idx], f"/{p}/Gather", axis=0)
            axes = g.const(f"onnx::Unsqueeze_{p}_{j}", [0])
            pieces.append(g.op("Unsqueeze", [dim, axes], f"/{p}/Unsqueeze"))
        else:
            pieces.append(g.const(f"/{p}/Constant_c{j}_output_0", [part]))
    return g.op("Concat", pieces, f"/{p}/Concat", axis=0)


def _linear(g: _Graph, x: str, din: int, dout: int, p: str) -> str:
    w = g.weight(f"onnx::MatMul_{p}", [din, dout], fan_in=din)
    b = g.weight(f"{p}.bias", [dout], fan_in=din)
    y = g.op("MatMul", [x, w], f"/{p}/MatMul")
    return g.op("Add", [b, y], f"/{p}/Add")


def _layernorm(g: _Graph, x: str, d: int, p: str) -> str:
    w = g.const(f"{p}.weight", np.ones(d), np.float32)
    b = g.const(f"{p}.bias", np.zeros(d), np.float32)
    return g.op("LayerNormalization", [x, w, b], f"/{p}/LayerNormalization", axis=-1,
                epsilon=1e-12)


def _gelu(g: _Graph, x: str, p: str) -> str:
    sqrt2 = g.const(f"/{p}/Constant_output_0", math.sqrt(2.0), np.float32)
    one = g.const(f"/{p}/Constant_1_output_0", 1.0, np.float32)
    half = g.const(f"/{p}/Constant_2_output_0", 0.5, np.float32)
    y = g.op("Div", [x, sqrt2], f"/{p}/Div")
    y = g.op("Erf", [y], f"/{p}/Erf")
    y = g.op("Add", [y, one], f"/{p}/Add")
    y = g.op("Mul", [x, y], f"/{p}/Mul")
    return g.op("Mul", [y, half], f"/{p}/Mul_1")


def _attention(g: _Graph, x: str, d: int, heads: int, p: str, mask: str | None) -> str:
    dh = d // heads
    q = _linear(g, x, d, d, f"{p}/q_proj")
    k = _linear(g, x, d, d, f"{p}/k_proj")
    v = _linear(g, x, d, d, f"{p}/v_proj")
    target = _heads_shape(g, x, f"{p}/heads", ["0", "1", heads, dh])
    q = g.op("Transpose", [g.op("Reshape", [q, target], f"/{p}/Reshape")],
             f"/{p}/Transpose", perm=[0, 2, 1, 3])
    k = g.op("Reshape", [k, target], f"/{p}/Reshape_1")
    v = g.op("Transpose", [g.op("Reshape", [v, target], f"/{p}/Reshape_2")],
             f"/{p}/Transpose_1", perm=[0, 2, 1, 3])
    kt = g.op("Transpose", [k], f"/{p}/Transpose_2", perm=[0, 2, 3, 1])
    scores = g.op("MatMul", [q, kt], f"/{p}/MatMul")
    scale = g.const(f"/{p}/Constant_8_output_0", 1 / math.sqrt(dh), np.float32)
    scores = g.op("Mul", [scores, scale], f"/{p}/Mul")
    if mask is not None:
        scores = g.op("Add", [scores, mask], f"/{p}/Add")
    probs = g.op("Softmax", [scores], f"/{p}/Softmax", axis=-1)
    ctx = g.op("MatMul", [probs, v], f"/{p}/MatMul_1")
    ctx = g.op("Transpose", [ctx], f"/{p}/Transpose_3", perm=[0, 2, 1, 3])
    merged = _heads_shape(g, x, f"{p}/merge", ["0", "1", d])
    ctx = g.op("Reshape", [ctx, merged], f"/{p}/Reshape_3")
    return _linear(g, ctx, d, d, f"{p}/o_proj")


def _encoder_block(g: _Graph, x: str, d: int, heads: int, mlp: int, p: str, pre_norm: bool,
                   mask: str | None) -> str:
    if pre_norm:  # ViT: x + attn(LN(x)), then x + mlp(LN(x))
        h = _attention(g, _layernorm(g, x, d, f"{p}/layernorm_before"), d, heads,
                       f"{p}/attention", mask)
        x = g.op("Add", [h, x], f"/{p}/Add")
        h = _linear(g, _layernorm(g, x, d, f"{p}/layernorm_after"), d, mlp, f"{p}/mlp/fc1")
        h = _linear(g, _gelu(g, h, f"{p}/mlp/activation_fn"), mlp, d, f"{p}/mlp/fc2")
        return g.op("Add", [h, x], f"/{p}/Add_1")
    # BERT: LN(x + attn(x)), then LN(x + mlp(x))
    h = _attention(g, x, d, heads, f"{p}/attention/self", mask)
    x = _layernorm(g, g.op("Add", [h, x], f"/{p}/attention/output/Add"), d,
                   f"{p}/attention/output/LayerNorm")
    h = _linear(g, x, d, mlp, f"{p}/intermediate/dense")
    h = _linear(g, _gelu(g, h, f"{p}/intermediate/intermediate_act_fn"), mlp, d,
                f"{p}/output/dense")
    return _layernorm(g, g.op("Add", [h, x], f"/{p}/output/Add"), d, f"{p}/output/LayerNorm")


def vit(name: str, *, dim: int, res: int, patch: int = 16, depth: int = 2,
        heads: int | None = None, mlp_ratio: int = 4) -> ModelProto:
    """Patch embedding (Conv patch x patch / patch), class token, positions, ``depth``
    pre-norm encoder blocks, final LayerNorm and the class token's classifier."""
    heads = heads or max(1, dim // 64)
    g = _Graph(name)
    x = g.input("pixel_values", [1, 3, res, res])
    n = (res // patch) ** 2
    w = g.weight("embeddings.patch_embeddings.projection.weight", [dim, 3, patch, patch])
    b = g.weight("embeddings.patch_embeddings.projection.bias", [dim], fan_in=3 * patch**2)
    x = g.op("Conv", [x, w, b], "/embeddings/patch_embeddings/projection/Conv",
             kernel_shape=[patch, patch], strides=[patch, patch], pads=[0, 0, 0, 0])
    x = g.op("Reshape", [x, g.const("/embeddings/Constant_output_0", [1, dim, n])],
             "/embeddings/patch_embeddings/Reshape")
    x = g.op("Transpose", [x], "/embeddings/patch_embeddings/Transpose", perm=[0, 2, 1])
    cls = g.weight("embeddings.cls_token", [1, 1, dim], fan_in=1)
    x = g.op("Concat", [cls, x], "/embeddings/Concat", axis=1)
    pos = g.weight("embeddings.position_embeddings", [1, n + 1, dim], fan_in=1)
    x = g.op("Add", [x, pos], "/embeddings/Add")
    for i in range(depth):
        x = _encoder_block(g, x, dim, heads, mlp_ratio * dim, f"encoder/layer.{i}", True,
                           None)
    x = _layernorm(g, x, dim, "layernorm")
    idx = g.const("/Constant_output_0", 0)
    x = g.op("Gather", [x, idx], "/Gather", axis=1)
    w = g.weight("classifier.weight", [100, dim])
    b = g.weight("classifier.bias", [100], fan_in=dim)
    return g.model(g.op("Gemm", [x, w, b], "/classifier/Gemm", alpha=1.0, beta=1.0,
                        transB=1))


def bert(name: str, *, dim: int, seq: int, depth: int = 2, heads: int | None = None,
         vocab: int = 1000, mlp_ratio: int = 4) -> ModelProto:
    """Token embeddings (Gather) plus positions, LayerNorm, ``depth`` post-norm encoder
    blocks with an additive attention mask (a zero mask: every token attends)."""
    heads = heads or max(1, dim // 64)
    g = _Graph(name)
    ids = g.input("input_ids", [1, seq], TensorProto.INT64)
    table = g.weight("embeddings.word_embeddings.weight", [vocab, dim], fan_in=1)
    x = g.op("Gather", [table, ids], "/embeddings/word_embeddings/Gather")
    pos = g.weight("embeddings.position_embeddings", [1, seq, dim], fan_in=1)
    x = _layernorm(g, g.op("Add", [x, pos], "/embeddings/Add"), dim, "embeddings/LayerNorm")
    mask = g.const("/Mul_output_0", np.zeros((1, 1, 1, seq)), np.float32)
    for i in range(depth):
        x = _encoder_block(g, x, dim, heads, mlp_ratio * dim, f"encoder/layer.{i}", False,
                           mask)
    return g.model(x)


KINDS: dict[str, Callable[..., ModelProto]] = {
    "resnet": resnet, "mobilenet": mobilenet, "vit": vit, "bert": bert,
}


def _resnet(width: int, res: int, depth: int = 1, bottleneck: int = 0) -> Network:
    kind = "bottleneck" if bottleneck else "basic"
    return Network(f"resnet-{kind}-w{width}-r{res}-d{depth}", "resnet",
                   {"width": width, "res": res, "depth": depth, "bottleneck": bottleneck})


def _mobilenet(version: int, width: int, res: int, depth: int = 2, expand: int = 4) -> Network:
    kind = {2: "mbv2", 3: "mbv3", 4: "effnet"}[version]
    return Network(f"{kind}-w{width}-r{res}-d{depth}-e{expand}", "mobilenet",
                   {"version": version, "width": width, "res": res, "depth": depth,
                    "expand": expand})


def _vit(dim: int, res: int, depth: int = 2, patch: int = 16) -> Network:
    return Network(f"vit-d{dim}-r{res}-p{patch}-l{depth}", "vit",
                   {"dim": dim, "res": res, "depth": depth, "patch": patch})


def _bert(dim: int, seq: int, depth: int = 2) -> Network:
    return Network(f"bert-d{dim}-s{seq}-l{depth}", "bert",
                   {"dim": dim, "seq": seq, "depth": depth})


def reference_networks() -> list[Network]:
    """The default set: residual, depthwise and attention blocks at a few sizes."""
    return [
        _resnet(16, 64), _resnet(32, 96), _resnet(64, 128),
        _resnet(16, 96, bottleneck=1), _resnet(32, 128, bottleneck=1),
        _mobilenet(2, 16, 96), _mobilenet(2, 32, 160),
        _mobilenet(3, 16, 96), _mobilenet(3, 24, 160),
        _mobilenet(4, 16, 128),
        _vit(64, 128, patch=16), _vit(192, 224, patch=32), _vit(128, 128, patch=8),
        _bert(128, 64), _bert(256, 128),
    ]


def random_networks(count: int, seed: int = 0) -> Iterator[Network]:
    """``count`` seeded variations of the reference kinds (widths, resolutions, sequence
    lengths, depths, expansion ratios), none equal to a reference network."""
    rng = np.random.default_rng([seed, 0x6E6574])
    taken = {n.name for n in reference_networks()}
    made = 0
    tries = 0
    while made < count and tries < 100 * max(1, count):
        tries += 1
        kind = int(rng.integers(0, 7))
        # Up to the sizes of the models users run (ResNet-50's 64-wide stem at 224, BERT-
        # and ViT-base's 768): their in-context groups are what predictions rest on.
        if kind <= 1:
            net = _resnet(int(rng.choice([8, 16, 24, 32, 48, 64, 96])),
                          int(rng.choice([48, 64, 96, 128, 160, 224])),
                          depth=int(rng.integers(1, 3)), bottleneck=kind)
        elif kind <= 4:
            net = _mobilenet(kind, int(rng.choice([8, 16, 24, 32, 40])),
                             int(rng.choice([64, 96, 128, 160, 192, 224])),
                             depth=int(rng.integers(1, 4)), expand=int(rng.choice([3, 4, 6])))
        elif kind == 5:
            patch = int(rng.choice([8, 16, 32]))
            dim = int(rng.choice([64, 96, 128, 192, 256, 384, 768]))
            net = _vit(dim, patch * int(rng.choice([4, 7, 8, 14])),
                       depth=1 if dim >= 384 else int(rng.integers(1, 4)), patch=patch)
        else:
            dim = int(rng.choice([64, 128, 192, 256, 384, 512, 768]))
            net = _bert(dim, int(rng.choice([16, 32, 64, 128, 256])),
                        depth=1 if dim >= 384 else int(rng.integers(1, 4)))
        if net.name in taken:
            continue
        taken.add(net.name)
        made += 1
        yield net
