"""Real-model check: the variants users actually have, analysed and compared with references.

Run with the bench venv (onnxruntime's optimiser and quantizers, and optionally
onnxconverter-common, onnxsim, onnxslim; never project dependencies)::

    /work/benchvenv/bin/python bench/real_models.py /work/models \\
        --onnx-energy /work/venv10/bin/onnx-energy --cache /tmp/onnx-energy-variants

For every model (a folder's ``*.onnx``, with its ``MANIFEST.json`` when present, or single
paths; ``bench/build_corpus.py`` writes a second corpus with its manifest) it builds, into
the cache folder outside the repository, the variants that apply:

- ``ort-ext`` / ``ort-all``: saved by onnxruntime at ORT_ENABLE_EXTENDED (contrib fusions)
  and ORT_ENABLE_ALL (the com.microsoft.nchwc blocked kernels, channels padded);
- ``dyn-int8``: ``quantize_dynamic``; ``qdq`` / ``qop``: ``quantize_static`` (QDQ and
  QOperator formats, per-tensor, two random calibration samples; weights moved out of
  Constant nodes and shared biases un-shared first, which the quantizer needs);
  ``nbits4``: MatMulNBits 4-bit weights (transformers);
- ``fp16``: onnxconverter-common's float16 conversion; ``fp16-ort``:
  onnxruntime.transformers.float16 (transformers); ``onnxsim`` / ``onnxslim``;
- ``fused``: onnxruntime's transformer optimizer (bert, gpt2, vit, t5, whisper by name);
- ``external`` / ``no-weights``: tensors over 1 KiB in an external file (as torch.onnx and
  onnx.save write large models: shape constants stay in the graph), analysed with it and
  after deleting it (the costs must not change);
- on request (``--variants``): ``nbits4-qdq`` (block-wise int4 DequantizeLinear),
  ``nbits8``, ``nbits4-gather`` (4-bit embeddings too), ``qdq16`` (16-bit activations),
  ``qdq-ort-all`` and ``dyn-ort-ext`` (quantized, then saved by onnxruntime: QLinear and
  NHWC kernels), ``fused-fp16`` (optimum's O4).

A variant that onnxruntime itself cannot load (a converter's broken output) is skipped with
onnxruntime's reason, and analysed all the same (shown, not counted). ``--ort-reference``
gives models without a reference one from the shapes onnxruntime produces when it runs
them (Conv, Gemm, MatMul, their integer forms and RNNs by hand).

Each is analysed with ``onnx-energy analyze --format json`` and the manifest's bindings; the
script prints per variant: exit code, complete, unsupported ops, MACs, their ratio to the
reference (the manifest's ``reference_macs``, PyTorch FlopCounterMode FLOPs / 2, or
torchvision's GMACs) and to the original. Variants that fail to build are listed as skipped
with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

Builder = Callable[[Path, Path, dict], None]


def _session_save(level: str) -> Builder:
    def build(src: Path, dst: Path, info: dict) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        so.optimized_model_filepath = str(dst)
        so.log_severity_level = 3
        if any(src.parent.glob(f"{src.name}.data")) or any(src.parent.glob("*.onnx.data")):
            # weights beside the source: the saved model keeps its own weight file
            so.add_session_config_entry(
                "session.optimized_model_external_initializers_file_name", dst.name + ".data")
            so.add_session_config_entry(
                "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])

    return build


def _dynamic(src: Path, dst: Path, info: dict) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(_unshared_biases(src, dst)), str(dst), weight_type=QuantType.QInt8)


def _feeds(src: Path, info: dict) -> dict[str, np.ndarray]:
    """Inputs for onnxruntime: the shapes onnx-energy bound (``info["input_shapes"]``), else
    batch 1 and length 128; ids 1, masks 1, a sample rate 16000, floats random."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    bound = info.get("input_shapes") or {}
    seq = 128
    feeds = {}
    rng = np.random.default_rng(0)
    for i in sess.get_inputs():
        shape = bound.get(i.name) or [d if isinstance(d, int) else (1 if n == 0 else seq)
                                      for n, d in enumerate(i.shape)]
        shape = [d if isinstance(d, int) else 1 for d in shape]
        if "int" in i.type:
            value = 16000 if i.name == "sr" else 1
            feeds[i.name] = np.full(shape, value, np.int32 if "int32" in i.type else np.int64)
        elif "bool" in i.type:
            feeds[i.name] = np.ones(shape, bool)
        else:
            dtype = np.float16 if "float16" in i.type else np.float32
            feeds[i.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def _unshared_biases(src: Path, dst: Path) -> Path:
    """A copy of the model the static quantizer takes: weights in initializers, and no
    Conv/Gemm bias initializer shared. TorchScript dedups
    equal constants (the zero biases of a random-init torchvision model become one tensor),
    and the QOperator quantizer deletes a bias after quantizing it for its first consumer,
    then fails on the next (AttributeError: 'NoneType' object has no attribute 'data_type')."""
    model = onnx.load(str(src))
    changed = False
    # Weights held in Constant nodes (paddle2onnx, tf2onnx) become initializers: the
    # quantizer only quantizes initializers ("Expected conv2d_24.w_0 to be an initializer").
    weights = {n.input[i] for n in model.graph.node
               if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")
               for i in (1, 2) if i < len(n.input)}
    keep = []
    for node in model.graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"
                      and a.type == onnx.AttributeProto.TENSOR), None)
        if (node.op_type == "Constant" and node.domain in ("", "ai.onnx") and value is not None
                and node.output[0] in weights):
            t = onnx.TensorProto()
            t.CopyFrom(value)
            t.name = node.output[0]
            model.graph.initializer.append(t)
            changed = True
        else:
            keep.append(node)
    if changed:
        del model.graph.node[:]
        model.graph.node.extend(keep)
    inits = {t.name: t for t in model.graph.initializer}
    # TorchScript shares a deduplicated bias through Identity nodes: read through them.
    through = {n.output[0]: n.input[0] for n in model.graph.node
               if n.op_type == "Identity" and n.input and n.input[0] in inits}
    seen: set[str] = set()
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "ConvTranspose") and len(node.input) > 2:
            name = node.input[2]
            if name in through:
                name = through[name]
                node.input[2] = name
                changed = True
            if name in inits and name in seen:
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}__{node.name or len(seen)}"
                model.graph.initializer.append(copy)
                node.input[2] = copy.name
                changed = True
            seen.add(name)
    if not changed:
        return src
    out = dst.with_name(dst.stem + ".unshared.onnx")
    onnx.save(model, out)
    return out


def _static(fmt: str) -> Builder:
    def build(src: Path, dst: Path, info: dict) -> None:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        feeds = _feeds(src, info)

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.left = 2

            def get_next(self) -> dict | None:
                self.left -= 1
                return feeds if self.left >= 0 else None

        # Per-tensor weights: the configuration whose QOperator output onnxruntime loads for
        # every model here (quantize_static refuses weights held in Constant nodes).
        extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
        wide = fmt == "qdq16"  # 16-bit activations (com.microsoft Q/DQ where opset < 21)
        if wide:
            extra["UseQDQContribOps"] = True
        source = _unshared_biases(src, dst)
        quantize_static(str(source), str(dst), Reader(),
                        quant_format=QuantFormat.QOperator if fmt == "qop" else QuantFormat.QDQ,
                        activation_type=QuantType.QUInt16 if wide else QuantType.QInt8,
                        per_channel=False, extra_options=extra,
                        use_external_data_format=src.stat().st_size > 1_800_000_000)

    return build


def _nbits_builder(fmt: str, bits: int = 4, gather: bool = False) -> Builder:
    def build(src: Path, dst: Path, info: dict) -> None:
        from onnxruntime.quantization import QuantFormat
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        ops = ("MatMul", "Gather") if gather else ("MatMul",)
        q = MatMulNBitsQuantizer(onnx.load(str(src)), bits=bits, block_size=32,
                                 is_symmetric=True, op_types_to_quantize=ops,
                                 quant_format=QuantFormat.QDQ if fmt == "qdq"
                                 else QuantFormat.QOperator)
        q.process()
        q.model.save_model_to_file(str(dst), use_external_data_format=False)

    return build


_nbits = _nbits_builder("qop")


def _then(first: Builder, second: Builder) -> Builder:
    """``second`` applied to what ``first`` built (a quantized model saved by onnxruntime)."""
    def build(src: Path, dst: Path, info: dict) -> None:
        mid = dst.with_name(dst.stem + ".step1.onnx")
        if not mid.exists():
            first(src, mid, info)
        second(mid, dst, info)

    return build


def _fp16(src: Path, dst: Path, info: dict) -> None:
    from onnxconverter_common import float16

    onnx.save(float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), dst)


def _fp16_ort(src: Path, dst: Path, info: dict) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), dst)


def _onnxsim(src: Path, dst: Path, info: dict) -> None:
    import onnxsim

    model, ok = onnxsim.simplify(onnx.load(str(src)))
    if not ok:
        raise RuntimeError("onnxsim could not validate the result")
    onnx.save(model, dst)


def _onnxslim(src: Path, dst: Path, info: dict) -> None:
    import onnxslim

    onnx.save(onnxslim.slim(onnx.load(str(src))), dst)


def _fused(src: Path, dst: Path, info: dict) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    name = info["name"]
    kind = next((k for k in ("gpt2", "vit", "t5", "whisper", "llama") if k in name), "bert")
    kind = {"whisper": "bart", "llama": "gpt2"}.get(kind, kind)
    # 0, 0: the optimizer reads heads and hidden size from the graph (tiny models differ).
    heads, hidden = info.get("heads", 0), info.get("hidden", 0)
    opt = optimize_model(str(src), model_type=kind, num_heads=heads, hidden_size=hidden,
                         opt_level=1)
    opt.save_model_to_file(str(dst))


def _fused_fp16(src: Path, dst: Path, info: dict) -> None:
    """optimum's O4: the transformer optimizer's fusions, then float16 (keep float32 I/O)."""
    tmp = dst.with_name(dst.stem + ".step1.onnx")
    _fused(src, tmp, info)
    from onnxruntime.transformers.onnx_model import OnnxModel

    m = OnnxModel(onnx.load(str(tmp)))
    m.convert_float_to_float16(keep_io_types=True)
    m.save_model_to_file(str(dst))


def _external(src: Path, dst: Path, info: dict) -> None:
    onnx.save(onnx.load(str(src)), dst, save_as_external_data=True,
              all_tensors_to_one_file=True, location=dst.name + ".data", size_threshold=1024)


BUILDERS: dict[str, Builder] = {
    "ort-ext": _session_save("ORT_ENABLE_EXTENDED"), "ort-all": _session_save("ORT_ENABLE_ALL"),
    "dyn-int8": _dynamic, "qdq": _static("qdq"), "qop": _static("qop"), "nbits4": _nbits,
    "fp16": _fp16, "fp16-ort": _fp16_ort, "onnxsim": _onnxsim, "onnxslim": _onnxslim,
    "fused": _fused, "external": _external,
    # 4-bit as block-wise QDQ (DequantizeLinear with block_size, int4), 8-bit MatMulNBits,
    # 4-bit embeddings (GatherBlockQuantized), 16-bit activations, quantized then optimised.
    "nbits4-qdq": _nbits_builder("qdq"), "nbits8": _nbits_builder("qop", bits=8),
    "nbits4-gather": _nbits_builder("qop", gather=True), "qdq16": _static("qdq16"),
    "qdq-ort-all": _then(_static("qdq"), _session_save("ORT_ENABLE_ALL")),
    "dyn-ort-ext": _then(_dynamic, _session_save("ORT_ENABLE_EXTENDED")),
    "fused-fp16": _fused_fp16,
}
#: Variants built unless --variants says otherwise (the others on request).
DEFAULT_VARIANTS = ("ort-ext", "ort-all", "dyn-int8", "qdq", "qop", "nbits4", "fp16",
                    "fp16-ort", "onnxsim", "onnxslim", "fused", "external")
TRANSFORMERS = re.compile(r"bert|gpt2|vit|llama|t5|whisper")


def applies(variant: str, name: str) -> bool:
    if variant in ("fused", "fused-fp16"):
        return bool(re.search(r"bert|gpt2|vit|t5|whisper", name)) and "llama" not in name
    if variant in ("nbits4", "fp16-ort", "nbits4-qdq", "nbits8", "nbits4-gather"):
        return bool(TRANSFORMERS.search(name))
    return True


def ort_loads(path: Path) -> str:
    """'' if onnxruntime loads the file, else its reason (a converter can write a file that
    onnxruntime refuses: such a variant is skipped, not judged)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        return str(exc).splitlines()[0][:120]
    return ""


def ort_shape_macs(path: Path, info: dict) -> int | None:
    """An independent reference: onnxruntime runs the model with every top-level tensor as
    an output, and Conv/ConvTranspose/Gemm/MatMul MACs come from the shapes it produced
    (the dot convention by hand). None when the graph has control flow or other dot ops
    (their work is not in the top-level shapes), or onnxruntime cannot run it."""
    import onnxruntime as ort

    model = onnx.load(str(path), load_external_data=False)
    g = model.graph
    ops = {n.op_type for n in g.node}
    if ops & {"If", "Loop", "Scan", "Einsum"} or any(
            n.domain not in ("", "ai.onnx") for n in g.node):
        return None
    inits = {t.name: list(t.dims) for t in g.initializer}
    dot_ops = ("Conv", "ConvTranspose", "Gemm", "MatMul", "ConvInteger", "MatMulInteger",
               "QLinearConv", "QLinearMatMul", "LSTM", "GRU", "RNN")
    wanted = [o for n in g.node if n.op_type in dot_ops
              for o in [*n.input[:4], n.output[0]] if o and o not in inits]
    have = {o.name for o in g.output}
    for name in dict.fromkeys(wanted):
        if name not in have:
            g.output.append(onnx.helper.make_empty_tensor_value_info(name))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_model = Path(tmp) / "all_outputs.onnx"
        model_dir = path.parent
        onnx.save(model, tmp_model)
        for f in model_dir.iterdir():  # external data beside the model
            if f.suffix in (".data", ".bin") or f.name.endswith(".onnx.data"):
                (Path(tmp) / f.name).symlink_to(f)
        try:
            sess = ort.InferenceSession(str(tmp_model), providers=["CPUExecutionProvider"])
            names = [o.name for o in sess.get_outputs()]
            shapes = dict(zip(names, (v.shape for v in sess.run(None, _feeds(path, info))),
                              strict=True))
        except Exception:
            return None
    macs = 0
    for n in g.node:
        def shape(x: str) -> list[int]:
            return list(inits[x]) if x in inits else list(shapes[x])
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        if n.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            w = shape(n.input[3 if n.op_type == "QLinearConv" else 1])
            macs += int(np.prod(shape(n.output[0]))) * int(np.prod(w[1:]))
        elif n.op_type in ("MatMulInteger", "QLinearMatMul"):
            macs += int(np.prod(shape(n.output[0]))) * shape(n.input[0])[-1]
        elif n.op_type in ("LSTM", "GRU", "RNN"):
            # gates x hidden dot products of length input + hidden, per step and direction
            seq, batch, width = shape(n.input[0])
            if a.get("layout", 0):
                batch, seq = seq, batch
            dirs, rows, _ = shape(n.input[1])
            hidden = shape(n.input[2])[2]
            macs += dirs * rows * (width + hidden) * seq * batch
        elif n.op_type == "ConvTranspose":
            w = shape(n.input[1])
            macs += int(np.prod(shape(n.input[0]))) * int(np.prod(w[1:]))
        elif n.op_type == "Gemm":
            x = shape(n.input[0])
            k = x[0] if a.get("transA") else x[1]
            macs += int(np.prod(shape(n.output[0]))) * k
        elif n.op_type == "MatMul":
            x = shape(n.input[0])
            macs += int(np.prod(shape(n.output[0]))) * x[-1]
    return macs


def analyze(exe: list[str], path: Path, bind: list[str]) -> dict:
    t0 = time.monotonic()
    proc = subprocess.run([*exe, "analyze", str(path), *bind, "--format", "json"],
                          capture_output=True, text=True, timeout=900)
    out: dict = {"rc": proc.returncode, "seconds": time.monotonic() - t0}
    if proc.returncode == 0:
        d = json.loads(proc.stdout)
        out.update(macs=d["totals"]["macs"], complete=d["totals"]["complete"],
                   unsupported=d["unsupported"], unresolved=len(d["unresolved"]),
                   input_shapes={i["name"]: i["shape"] for i in d["inputs"]})
    else:
        out["error"] = (proc.stderr.strip().splitlines() or [""])[-1][:160]
    return out


def reference(info: dict) -> float | None:
    if info.get("reference_macs"):
        return info["reference_macs"]
    if info.get("flop_counter_flops"):
        return info["flop_counter_flops"] / 2
    if info.get("torchvision_gflops"):
        return info["torchvision_gflops"] * 1e9
    return None


def models(paths: list[str]) -> list[tuple[Path, dict]]:
    found: list[tuple[Path, dict]] = []
    for p in map(Path, paths):
        if p.is_dir():
            manifest = p / "MANIFEST.json"
            entries = json.loads(manifest.read_text()) if manifest.exists() else [
                {"name": f.stem, "file": f.name, "bind": ["--batch-size", "1"]}
                for f in sorted(p.glob("*.onnx"))]
            found += [(p / e["file"], e) for e in entries if (p / e["file"]).exists()]
        else:
            found.append((p, {"name": p.stem, "bind": ["--batch-size", "1"]}))
    return found


class Rows(list):
    """Result rows, printed as they come (a long run shows its progress)."""

    def append(self, row: tuple) -> None:
        super().append(row)
        print("  ".join(str(c) for c in row), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", help="model folders (with MANIFEST.json) or files")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                    "onnx-energy-variants"),
                    help="folder for the built variants (outside the repository)")
    ap.add_argument("--onnx-energy", default="onnx-energy",
                    help="the onnx-energy executable to run (e.g. a project venv's)")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help="comma-separated variants to build (default: "
                         f"{','.join(DEFAULT_VARIANTS)}; also: "
                         f"{','.join(v for v in BUILDERS if v not in DEFAULT_VARIANTS)})")
    ap.add_argument("--only", default="", help="regex of model names to include")
    ap.add_argument("--json", default="", help="also write every result to this JSON file")
    ap.add_argument("--ort-reference", action="store_true",
                    help="for models without a reference, run onnxruntime and count the "
                         "dot-product MACs from the shapes it produced")
    args = ap.parse_args()
    exe = [args.onnx_energy]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [v for v in args.variants.split(",") if v]
    rows, results = Rows(), []
    ok = total = 0
    for src, info in models(args.paths):
        name = info["name"]
        if args.only and not re.search(args.only, name):
            continue
        bind = list(info.get("bind", ["--batch-size", "1"]))
        base = analyze(exe, src, bind)
        info = {**info, "input_shapes": base.get("input_shapes")}
        ref = reference(info)
        if ref is None and args.ort_reference:
            ref = ort_shape_macs(src, info)
            info["reference_source"] = "onnxruntime shapes" if ref is not None else None
        variants = [("original", src, base)]
        for v in wanted if info.get("variants", True) else []:
            if not applies(v, name):
                continue
            dst = cache / f"{name}.{v}.onnx"
            try:
                if not dst.exists():
                    BUILDERS[v](src, dst, info)
            except Exception as exc:  # a quantizer or converter that cannot take this model
                rows.append((name, v, "skipped", f"{type(exc).__name__}: {exc}"[:100]))
                continue
            refused = ort_loads(dst)
            if refused:  # the converter wrote a file onnxruntime itself refuses: not judged,
                # but analysed all the same (shapes must survive a converter's type slips)
                r = analyze(exe, dst, bind)
                macs = r.get("macs")
                orig = (f"{macs / base['macs']:.4f}" if macs is not None and base.get("macs")
                        else "-")
                rows.append((name, v, "skipped", f"onnxruntime cannot load it: {refused[:60]}"
                             f" (analysed anyway: rc={r['rc']} complete={r.get('complete')} "
                             f"orig={orig})"))
                continue
            variants.append((v, dst, analyze(exe, dst, bind)))
            if v == "external" and not dst.with_name(dst.name + ".data").exists():
                rows.append((name, "no-weights", "skipped", "no tensor went to the data file "
                             "(the weights are Constant nodes)"))
            elif v == "external":
                hidden = dst.with_name(dst.name + ".data.hidden")
                shutil.move(dst.with_name(dst.name + ".data"), hidden)
                try:
                    variants.append(("no-weights", dst, analyze(exe, dst, bind)))
                finally:
                    shutil.move(hidden, dst.with_name(dst.name + ".data"))
        for v, _, r in variants:
            total += 1
            good = r["rc"] == 0 and r.get("complete") and not r.get("unsupported")
            ok += bool(good)
            macs = r.get("macs")
            vs_ref = f"{macs / ref:.4f}" if macs is not None and ref else "-"
            vs_orig = (f"{macs / base['macs']:.4f}" if macs is not None and base.get("macs")
                       else "-")
            detail = r.get("error") or (", ".join(f"{k}x{n}" for k, n in
                                                  r.get("unsupported", {}).items()) or
                                        (f"{r['unresolved']} unresolved" if r.get("unresolved")
                                         else ""))
            rows.append((name, v, f"rc={r['rc']} complete={r.get('complete')}",
                         f"MACs={macs} ref={vs_ref} orig={vs_orig} {detail}".rstrip()))
            r.pop("input_shapes", None)
            results.append({"model": name, "variant": v, "reference_macs": ref, **r})
    print(f"\n{ok}/{total} analysed completely with exit 0 and nothing unsupported")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if ok == total else 1


if __name__ == "__main__":
    sys.exit(main())
