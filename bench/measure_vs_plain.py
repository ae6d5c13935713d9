"""`onnx-energy measure` against a plain onnxruntime timing loop, in the same process.

    python bench/measure_vs_plain.py [MODEL.onnx] [--threads 1] [--min-window 2] [--repeats 5]

Without MODEL a ResNet-18-style network (basic blocks, 224x224, random weights) is built in
code. Each round runs the plain loop, `measure()`, and the plain loop again (to bracket drift
of a shared machine); the script prints each round's numbers and the median ratio.
Acceptance: within 10%. The load average is printed: other processes on the machine make
both numbers drift, and only a quiet machine gives a clean comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onnx_energy.measure.measurement import measure  # noqa: E402


def resnet_style(width: int = 64, blocks: tuple[int, ...] = (2, 2, 2, 2), size: int = 224,
                 classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    """A ResNet-18-like model: stem conv+pool, basic residual blocks, GAP, FC."""
    rng = np.random.default_rng(seed)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    count = [0]

    def fresh(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}{count[0]}"

    def conv(x: str, cin: int, cout: int, k: int, stride: int, relu: bool) -> str:
        w, b, y = fresh("w"), fresh("b"), fresh("conv")
        std = (2.0 / (cin * k * k)) ** 0.5
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((cout, cin, k, k)) * std).astype(np.float32), w))
        inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), b))
        p = k // 2
        nodes.append(helper.make_node("Conv", [x, w, b], [y], name=y, kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[p, p, p, p]))
        if not relu:
            return y
        r = fresh("relu")
        nodes.append(helper.make_node("Relu", [y], [r], name=r))
        return r

    x = conv("input", 3, width, 7, 2, True)
    pooled = fresh("pool")
    nodes.append(helper.make_node("MaxPool", [x], [pooled], name=pooled, kernel_shape=[3, 3],
                                  strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = pooled, width
    for stage, n in enumerate(blocks):
        cout = width * 2**stage
        for i in range(n):
            stride = 2 if (i == 0 and stage > 0) else 1
            h = conv(x, cin, cout, 3, stride, True)
            h = conv(h, cout, cout, 3, 1, False)
            short = x if (stride == 1 and cin == cout) else conv(x, cin, cout, 1, stride, False)
            s, r = fresh("add"), fresh("relu")
            nodes.append(helper.make_node("Add", [h, short], [s], name=s))
            nodes.append(helper.make_node("Relu", [s], [r], name=r))
            x, cin = r, cout
    g, f = fresh("gap"), fresh("flat")
    nodes.append(helper.make_node("GlobalAveragePool", [x], [g], name=g))
    nodes.append(helper.make_node("Flatten", [g], [f], name=f))
    inits.append(numpy_helper.from_array(
        (rng.standard_normal((classes, cin)) * 0.01).astype(np.float32), "fc_w"))
    inits.append(numpy_helper.from_array(np.zeros(classes, np.float32), "fc_b"))
    nodes.append(helper.make_node("Gemm", [f, "fc_w", "fc_b"], ["logits"], name="fc", transB=1))
    graph = helper.make_graph(
        nodes, "resnet_style",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def plain_loop(path: str, threads: int, seconds: float, repeats: int, batch: int) -> list[float]:
    """The simplest honest timing: one session, fixed inputs, N runs timed as a block."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else batch for d in i.shape]
        feeds[i.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(3):
        sess.run(None, feeds)
    t0 = time.perf_counter()
    sess.run(None, feeds)
    per = time.perf_counter() - t0
    n = max(1, int(seconds / per))
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            sess.run(None, feeds)
        out.append((time.perf_counter() - t0) / n)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-window", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2,
                    help="plain/measure pairs, interleaved to bracket drift of a shared machine")
    ap.add_argument("--batch-size", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model
        if path is None:
            path = str(Path(tmp) / "resnet_style.onnx")
            onnx.save(resnet_style(), path)
        batch = args.batch_size
        plains: list[float] = []
        measured: list[float] = []
        ratios: list[float] = []
        m = None
        for _ in range(args.rounds):
            before = plain_loop(path, args.threads, args.min_window, args.repeats, batch)
            m = measure(path, threads=args.threads, min_window=args.min_window,
                        repeats=args.repeats, batch_size=batch if _symbolic(path) else None,
                        sensor="auto")
            after = plain_loop(path, args.threads, args.min_window, args.repeats, batch)
            plain = statistics.median(before + after)
            plains.append(plain)
            measured.append(m.runtime_s)
            ratios.append(m.runtime_s / plain)
    assert m is not None
    ratio = statistics.median(ratios)
    print(f"model           {args.model or 'ResNet-18-style (built in code)'}")
    print(f"threads         {args.threads}; load average {_load()}")
    for i, (p, q, r) in enumerate(zip(plains, measured, ratios, strict=True)):
        print(f"round {i + 1}         plain {p * 1e3:.3f} ms, measure {q * 1e3:.3f} ms "
              f"per inference, ratio {r:.3f}")
    print(f"ratio (median)  {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.10 else 'OUTSIDE'} 10%)")
    print(f"sensor          {m.sensor}; energy {m.energy_j}")
    return 0 if abs(ratio - 1) <= 0.10 else 1


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _symbolic(path: str) -> bool:
    model = onnx.load(path, load_external_data=False)
    return any(d.dim_param or not d.HasField("dim_value")
               for vi in model.graph.input[:1] for d in vi.type.tensor_type.shape.dim[:1])


if __name__ == "__main__":
    sys.exit(main())
