"""Models and options whose analysis JSON is checked in (tests/data/snapshots).

The snapshots were written by the code before the architecture refactor: a change that
moves code around must leave every byte of them as it is. Regenerate (only when an output
change is intended, and say so in the commit) with ``python tests/snapshot_models.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fuzz_models import seed_models  # noqa: E402

from onnx_energy.examples import build_small_cnn  # noqa: E402

SNAPSHOTS = HERE / "data" / "snapshots"
F = TensorProto.FLOAT
MS = "com.microsoft"


def _w(*shape: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * 0.1).astype(np.float32)


def _model(nodes: list, inputs: list, outputs: list, inits: dict[str, np.ndarray],
           extra: dict[str, int] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "snapshot", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    opsets = [helper.make_opsetid("", 17)]
    opsets += [helper.make_opsetid(d, v) for d, v in (extra or {}).items()]
    m = helper.make_model(graph, opset_imports=opsets)
    m.ir_version = 8
    return m


def transformer_block() -> onnx.ModelProto:
    """Attention (com.microsoft), LayerNormalization, a Gelu MLP and a residual Add."""
    d, heads, ff = 32, 4, 64
    nodes = [
        helper.make_node("LayerNormalization", ["x", "g1", "b1"], ["ln1"], axis=-1),
        helper.make_node("Attention", ["ln1", "wqkv", "bqkv"], ["att"], domain=MS,
                         num_heads=heads),
        helper.make_node("Add", ["x", "att"], ["r1"]),
        helper.make_node("LayerNormalization", ["r1", "g2", "b2"], ["ln2"], axis=-1),
        helper.make_node("MatMul", ["ln2", "w1"], ["h1"]),
        helper.make_node("Add", ["h1", "c1"], ["h2"]),
        helper.make_node("Gelu", ["h2"], ["h3"], domain=MS),
        helper.make_node("MatMul", ["h3", "w2"], ["h4"]),
        helper.make_node("Add", ["r1", "h4"], ["y"]),
        helper.make_node("ReduceMean", ["y"], ["pooled"], axes=[1], keepdims=0),
        helper.make_node("Softmax", ["pooled"], ["p"], axis=-1),
    ]
    inits = {"g1": np.ones(d, np.float32), "b1": np.zeros(d, np.float32),
             "g2": np.ones(d, np.float32), "b2": np.zeros(d, np.float32),
             "wqkv": _w(d, 3 * d), "bqkv": _w(3 * d), "w1": _w(d, ff), "c1": _w(ff),
             "w2": _w(ff, d)}
    return _model(nodes, [helper.make_tensor_value_info("x", F, ["batch", "seq", d])],
                  [helper.make_tensor_value_info("p", F, None)], inits, {MS: 1})


def quantized_conv() -> onnx.ModelProto:
    """QuantizeLinear -> QLinearConv -> DequantizeLinear -> Relu."""
    u8 = lambda v: np.array(v, np.uint8)  # noqa: E731
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["qx"]),
        helper.make_node("QLinearConv", ["qx", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"],
                         ["qy"], pads=[1, 1, 1, 1]),
        helper.make_node("DequantizeLinear", ["qy", "sy", "zy"], ["dy"]),
        helper.make_node("Relu", ["dy"], ["y"]),
    ]
    inits = {"sx": np.array(0.1, np.float32), "zx": u8(128),
             "w": np.random.default_rng(0).integers(0, 255, (8, 4, 3, 3)).astype(np.uint8),
             "sw": np.array(0.05, np.float32), "zw": u8(128),
             "sy": np.array(0.2, np.float32), "zy": u8(128),
             "b": np.zeros(8, np.int32)}
    return _model(nodes, [helper.make_tensor_value_info("x", F, [1, 4, 16, 16])],
                  [helper.make_tensor_value_info("y", F, None)], inits)


def cases() -> dict[str, tuple[Callable[[], onnx.ModelProto], dict[str, Any]]]:
    """Snapshot name -> (model builder, analyze() keyword options)."""
    seeds = dict(seed_models())
    out: dict[str, tuple[Callable[[], onnx.ModelProto], dict[str, Any]]] = {
        "small_cnn-b1": (build_small_cnn, {"batch_size": 1}),
        "small_cnn-unbound": (build_small_cnn, {"default_batch": None}),
        "small_cnn-defaulted": (build_small_cnn, {}),
        "small_cnn-training": (build_small_cnn, {
            "batch_size": 2, "convention": "seed", "phase": "training", "loss": "mse",
            "precision": "bf16"}),
        "transformer-block": (transformer_block, {"dims": {"batch": 2, "seq": 16}}),
        "transformer-block-native": (transformer_block, {
            "dims": {"batch": 1, "seq": 8}, "precision": "native"}),
        "quantized-conv": (quantized_conv, {}),
        "loop-trips": (lambda: seeds["loop"], {"loop_trips": 3}),
    }
    seed_dims = {"if": {"N": 3}, "loop": {}, "scan": {"T": 5}, "function": {"N": 3},
                 "shape-chain": {"B": 2}, "external": {"N": 4}}
    for name, dims in seed_dims.items():
        out[f"seed-{name}"] = (lambda n=name: seeds[n], {"dims": dims})
    out["seed-if-else"] = (lambda: seeds["if"], {"batch_size": 2, "branch": "else"})
    return out


def snapshot_json(name: str) -> str:
    """The analysis JSON of one case, as `onnx-energy analyze --format json` prints it."""
    from onnx_energy.analysis import analyze
    from onnx_energy.render.analysis import render_json

    build, options = cases()[name]
    return render_json(analyze(build(), **options))


def bundled_cli_json() -> str:
    """`onnx-energy analyze` of the bundled model with --batch-size 1 --format json, run from
    the repository root (the path is part of the output)."""
    import contextlib
    import io
    import os

    from onnx_energy.cli import main

    buf = io.StringIO()
    cwd = os.getcwd()
    try:
        os.chdir(HERE.parent)
        with contextlib.redirect_stdout(buf):
            main(["analyze", "onnx_energy/examples/small_cnn.onnx", "--batch-size", "1",
                  "--format", "json"])
    finally:
        os.chdir(cwd)
    return buf.getvalue()


if __name__ == "__main__":
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    for case in cases():
        (SNAPSHOTS / f"{case}.json").write_text(snapshot_json(case) + "\n", encoding="utf-8")
        print("wrote", case)
    (SNAPSHOTS / "bundled-cli.json").write_text(bundled_cli_json(), encoding="utf-8")
    print("wrote bundled-cli")
