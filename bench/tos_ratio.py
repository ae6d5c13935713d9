"""FP16/FP32 (and BF16/FP32) transistor-operation ratios on the bundled CNN and a transformer.

    python bench/tos_ratio.py [--layers 4] [--seq 128] [--d-model 256]

The transformer is built here with onnx.helper: pre-LN encoder layers with fused
LayerNormalization, Q/K/V/output MatMuls, scaled softmax attention and a GELU(tanh) MLP.
Both models are FP32 graphs; the ratio says how many fewer transistor operations the same
basic operations cost at half precision (Li et al.'s TOs model, docs/basic_ops.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import onnx_energy  # noqa: E402
from onnx_energy.examples import EXAMPLE_PATH  # noqa: E402


def transformer(layers: int = 4, seq: int = 128, d: int = 256, heads: int = 4,
                ff: int = 1024) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    dh = d // heads

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def weight(name: str, *shape: int) -> str:
        return const(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    def op(kind: str, ins: list[str], out: str, **attrs: object) -> str:
        nodes.append(helper.make_node(kind, ins, [out], name=out, **attrs))
        return out

    split = const("split_shape", np.array([-1, seq, heads, dh], np.int64))
    merge = const("merge_shape", np.array([-1, seq, d], np.int64))
    scale = const("scale", np.array(dh ** -0.5, np.float32))
    x = "tokens"
    for i in range(layers):
        p = f"l{i}"
        ln = op("LayerNormalization", [x, weight(f"{p}.g1", d), weight(f"{p}.b1", d)],
                f"{p}/ln1", axis=-1)
        heads_of = {}
        for w in ("q", "k", "v"):
            proj = op("Add", [op("MatMul", [ln, weight(f"{p}.w{w}", d, d)], f"{p}/{w}"),
                              weight(f"{p}.b{w}", d)], f"{p}/{w}b")
            heads_of[w] = op("Transpose", [op("Reshape", [proj, split], f"{p}/{w}r")],
                             f"{p}/{w}t", perm=[0, 2, 1, 3])
        kt = op("Transpose", [heads_of["k"]], f"{p}/kT", perm=[0, 1, 3, 2])
        scores = op("Mul", [op("MatMul", [heads_of["q"], kt], f"{p}/qk"), scale], f"{p}/s")
        attn = op("MatMul", [op("Softmax", [scores], f"{p}/p", axis=-1), heads_of["v"]],
                  f"{p}/pv")
        merged = op("Reshape", [op("Transpose", [attn], f"{p}/pvt", perm=[0, 2, 1, 3]), merge],
                    f"{p}/o")
        out = op("Add", [op("MatMul", [merged, weight(f"{p}.wo", d, d)], f"{p}/proj"),
                         weight(f"{p}.bo", d)], f"{p}/projb")
        h = op("Add", [x, out], f"{p}/res1")
        ln2 = op("LayerNormalization", [h, weight(f"{p}.g2", d), weight(f"{p}.b2", d)],
                 f"{p}/ln2", axis=-1)
        up = op("Add", [op("MatMul", [ln2, weight(f"{p}.w1", d, ff)], f"{p}/up"),
                        weight(f"{p}.c1", ff)], f"{p}/upb")
        act = op("Gelu", [up], f"{p}/gelu", approximate="tanh")
        down = op("Add", [op("MatMul", [act, weight(f"{p}.w2", ff, d)], f"{p}/down"),
                          weight(f"{p}.c2", d)], f"{p}/downb")
        x = op("Add", [h, down], f"{p}/res2")
    graph = helper.make_graph(
        nodes, "transformer",
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", seq, d])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", seq, d])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    return model


def ratios(model: object, phase: str) -> tuple[int, int, int]:
    a = onnx_energy.analyze(model, batch_size=1, phase=phase, precision="bf16")
    if not a.totals.complete:
        raise SystemExit(f"analysis incomplete: {a.unsupported} {a.unresolved[:3]}")
    tos = a.totals.lowered.tos_total
    return tos["fp32"], tos["fp16"], tos["bf16"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--d-model", type=int, default=256)
    args = ap.parse_args(argv)
    models = [("small_cnn.onnx (bundled)", EXAMPLE_PATH),
              (f"transformer {args.layers}x(d={args.d_model}, seq={args.seq})",
               transformer(args.layers, args.seq, args.d_model))]
    print(f"{'model':44} {'phase':9} {'TOs fp32':>12} {'TOs fp16':>12} "
          f"{'fp16/fp32':>9} {'bf16/fp32':>9}")
    ok = True
    for label, model in models:
        for phase in ("inference", "training"):
            fp32, fp16, bf16 = ratios(model, phase)
            ok &= fp16 < fp32
            print(f"{label:44} {phase:9} {fp32:12.4g} {fp16:12.4g} "
                  f"{fp16 / fp32:9.4f} {bf16 / fp32:9.4f}")
    if not ok:
        print("FP16 TOs are not below FP32 TOs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
