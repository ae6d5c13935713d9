"""Benchmark graphs built in code with onnx.helper (shared by the bench scripts).

`transformer_encoder` mimics a torch.onnx export of a stack of encoder layers with dynamic
``batch``/``seq`` axes: decomposed LayerNorm and GELU, and the torch-style shape subgraphs
(Shape -> Gather -> Div -> Cast -> Unsqueeze -> Concat -> Reshape) that split and merge the
attention heads. About 110 nodes per layer.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class _Builder:
    def __init__(self, rng: np.random.Generator | None) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self.rng = rng
        self._ids = itertools.count()

    def name(self, stem: str) -> str:
        return f"{stem}_{next(self._ids)}"

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs: object) -> list[str]:
        name = self.name(f"/{op}")
        outs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs

    def op(self, op: str, *inputs: str, **attrs: object) -> str:
        return self.node(op, list(inputs), **attrs)[0]

    def const(self, value: np.ndarray) -> str:
        """A torch-style Constant node."""
        return self.op("Constant", value=numpy_helper.from_array(np.asarray(value)))

    def weight(self, stem: str, *shape: int) -> str:
        name = self.name(stem)
        if self.rng is None:  # a header without data: the caller points it at external data
            t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape)
        else:
            data = (self.rng.standard_normal(shape) * 0.02).astype(np.float32)
            t = numpy_helper.from_array(data, name)
        self.inits.append(t)
        return name

    # ---------------------------------------------------------------- building blocks

    def layer_norm(self, x: str, d: int) -> str:
        mean = self.op("ReduceMean", x, axes=[-1])
        diff = self.op("Sub", x, mean)
        sq = self.op("Pow", diff, self.const(np.array(2.0, np.float32)))
        var = self.op("ReduceMean", sq, axes=[-1])
        std = self.op("Sqrt", self.op("Add", var, self.const(np.array(1e-5, np.float32))))
        norm = self.op("Div", diff, std)
        return self.op("Add", self.op("Mul", norm, self.weight("ln.gamma", d)),
                       self.weight("ln.beta", d))

    def linear(self, x: str, d_in: int, d_out: int) -> str:
        return self.op("Add", self.op("MatMul", x, self.weight("fc.w", d_in, d_out)),
                       self.weight("fc.b", d_out))

    def dim(self, shape: str, i: int) -> str:
        g = self.op("Gather", shape, self.const(np.array(i, np.int64)), axis=0)
        return self.op("Unsqueeze", g, self.const(np.array([0], np.int64)))

    def split_heads(self, x: str, heads: int) -> str:
        shape = self.op("Shape", x)
        b, s = self.dim(shape, 0), self.dim(shape, 1)
        d = self.op("Gather", shape, self.const(np.array(2, np.int64)), axis=0)
        hd = self.op("Cast", self.op("Div", d, self.const(np.array(heads, np.int64))),
                     to=TensorProto.INT64)
        hd = self.op("Unsqueeze", hd, self.const(np.array([0], np.int64)))
        target = self.op("Concat", b, s, self.const(np.array([heads], np.int64)), hd, axis=0)
        return self.op("Transpose", self.op("Reshape", x, target), perm=[0, 2, 1, 3])

    def merge_heads(self, x: str, d: int) -> str:
        t = self.op("Transpose", x, perm=[0, 2, 1, 3])
        shape = self.op("Shape", t)
        target = self.op("Concat", self.dim(shape, 0), self.dim(shape, 1),
                         self.const(np.array([d], np.int64)), axis=0)
        return self.op("Reshape", t, target)

    def gelu(self, x: str) -> str:
        erf = self.op("Erf", self.op("Div", x, self.const(np.array(math.sqrt(2), np.float32))))
        half = self.op("Mul", x, self.const(np.array(0.5, np.float32)))
        return self.op("Mul", half, self.op("Add", erf, self.const(np.array(1, np.float32))))

    def encoder_layer(self, x: str, d: int, heads: int, ff: int) -> str:
        h = self.layer_norm(x, d)
        q, k, v = (self.split_heads(self.linear(h, d, d), heads) for _ in range(3))
        kt = self.op("Transpose", k, perm=[0, 1, 3, 2])
        scale = self.const(np.array(math.sqrt(d // heads), np.float32))
        scores = self.op("Softmax", self.op("Div", self.op("MatMul", q, kt), scale), axis=-1)
        attn = self.merge_heads(self.op("MatMul", scores, v), d)
        x = self.op("Add", x, self.linear(attn, d, d))
        h = self.gelu(self.linear(self.layer_norm(x, d), d, ff))
        return self.op("Add", x, self.linear(h, ff, d))


def transformer_encoder(
    layers: int, d: int = 128, heads: int = 4, ff: int = 512, weights: bool = True
) -> onnx.ModelProto:
    """An encoder stack with input ``x[batch, seq, d]``; ``weights=False`` leaves the
    initializers as headers without data (for external-data models filled in by the caller)."""
    b = _Builder(np.random.default_rng(0) if weights else None)
    x = "x"
    for _ in range(layers):
        x = b.encoder_layer(x, d, heads, ff)
    graph = helper.make_graph(
        b.nodes, "encoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", d])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", "seq", d])],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model



def with_external_data(model: onnx.ModelProto, data_name: str) -> int:
    """Point every initializer of ``model`` at consecutive ranges of the file ``data_name``
    (beside the model); returns the file size the ranges need. Nothing is written here."""
    offset = 0
    for t in model.graph.initializer:
        t.ClearField("raw_data")
        length = math.prod(t.dims) * 4
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        for key, value in (("location", data_name), ("offset", str(offset)),
                           ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        offset += length
    return offset


def main(argv: list[str]) -> None:
    """``python _graphs.py encoder|external OUT.onnx LAYERS [D HEADS FF]``: write a model.

    ``external`` leaves the weights in OUT.onnx.data, a sparse file of the full size (no disk
    blocks). The bench scripts build models in a child so their own memory stays small.
    """
    kind, out, layers, *dims = argv
    d, heads, ff = (int(x) for x in dims) if dims else (128, 4, 512)
    if kind == "encoder":
        model = transformer_encoder(int(layers), d, heads, ff)
    elif kind == "external":
        model = transformer_encoder(int(layers), d, heads, ff, weights=False)
        data_name = out.rsplit("/", 1)[-1] + ".data"
        size = with_external_data(model, data_name)
        with open(out + ".data", "wb") as fh:
            fh.truncate(size)
    else:
        raise SystemExit(f"unknown graph {kind!r}")
    with open(out, "wb") as fh:
        fh.write(model.SerializeToString())
    print(len(model.graph.node), len(model.graph.initializer))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
