"""Real-model check: the variants users actually have, analysed and compared with references.

Run with the bench venv (onnxruntime's optimiser and quantizers, and optionally
onnxconverter-common, onnxsim, onnxslim; never project dependencies)::

    /work/benchvenv/bin/python bench/real_models.py /work/models \\
        --onnx-energy /work/venv10/bin/onnx-energy --cache /tmp/onnx-energy-variants

For every model (a folder's ``*.onnx``, with its ``MANIFEST.json`` when present, or single
paths) it builds, into the cache folder outside the repository, the variants that apply:

- ``ort-ext`` / ``ort-all``: saved by onnxruntime at ORT_ENABLE_EXTENDED (contrib fusions)
  and ORT_ENABLE_ALL (the com.microsoft.nchwc blocked kernels, channels padded);
- ``dyn-int8``: ``quantize_dynamic``; ``qdq`` / ``qop``: ``quantize_static`` (QDQ and
  QOperator formats, two random calibration samples); ``nbits4``: MatMulNBits 4-bit weights;
- ``fp16``: onnxconverter-common's float16 conversion; ``onnxsim`` / ``onnxslim``;
- ``fused``: onnxruntime's transformer optimizer (bert, gpt2, vit models by name);
- ``external`` / ``no-weights``: all tensors in an external file, analysed with it and after
  deleting it (the costs must not change).

Each is analysed with ``onnx-energy analyze --format json`` and the manifest's bindings; the
script prints per variant: exit code, complete, unsupported ops, MACs, their ratio to the
reference (PyTorch FlopCounterMode FLOPs / 2, or torchvision's GMACs) and to the original.
Variants that fail to build are listed as skipped with the reason.
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
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])

    return build


def _dynamic(src: Path, dst: Path, info: dict) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


def _feeds(src: Path, info: dict) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    seq = 128
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else (1 if n == 0 else seq) for n, d in
                 enumerate(i.shape)]
        if "int" in i.type:
            feeds[i.name] = np.ones(shape, np.int64)
        else:
            feeds[i.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return feeds


def _static(fmt: str) -> Builder:
    def build(src: Path, dst: Path, info: dict) -> None:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

        feeds = _feeds(src, info)

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.left = 2

            def get_next(self) -> dict | None:
                self.left -= 1
                return feeds if self.left >= 0 else None

        quantize_static(str(src), str(dst), Reader(),
                        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator)

    return build


def _nbits(src: Path, dst: Path, info: dict) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    q = MatMulNBitsQuantizer(onnx.load(str(src)), block_size=32, is_symmetric=True)
    q.process()
    q.model.save_model_to_file(str(dst), use_external_data_format=False)


def _fp16(src: Path, dst: Path, info: dict) -> None:
    from onnxconverter_common import float16

    onnx.save(float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), dst)


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
    kind = "gpt2" if "gpt2" in name else "vit" if "vit" in name else "bert"
    heads, hidden = (12, 768)
    opt = optimize_model(str(src), model_type=kind, num_heads=heads, hidden_size=hidden,
                         opt_level=1)
    opt.save_model_to_file(str(dst))


def _external(src: Path, dst: Path, info: dict) -> None:
    onnx.save(onnx.load(str(src)), dst, save_as_external_data=True,
              all_tensors_to_one_file=True, location=dst.name + ".data", size_threshold=0)


BUILDERS: dict[str, Builder] = {
    "ort-ext": _session_save("ORT_ENABLE_EXTENDED"), "ort-all": _session_save("ORT_ENABLE_ALL"),
    "dyn-int8": _dynamic, "qdq": _static("qdq"), "qop": _static("qop"), "nbits4": _nbits,
    "fp16": _fp16, "onnxsim": _onnxsim, "onnxslim": _onnxslim, "fused": _fused,
    "external": _external,
}
TRANSFORMERS = re.compile(r"bert|gpt2|vit|llama|t5|whisper")


def applies(variant: str, name: str) -> bool:
    if variant == "fused":
        return bool(re.search(r"bert|gpt2|vit", name)) and "llama" not in name
    if variant == "nbits4":
        return bool(TRANSFORMERS.search(name))
    return True


def analyze(exe: list[str], path: Path, bind: list[str]) -> dict:
    t0 = time.monotonic()
    proc = subprocess.run([*exe, "analyze", str(path), *bind, "--format", "json"],
                          capture_output=True, text=True, timeout=900)
    out: dict = {"rc": proc.returncode, "seconds": time.monotonic() - t0}
    if proc.returncode == 0:
        d = json.loads(proc.stdout)
        out.update(macs=d["totals"]["macs"], complete=d["totals"]["complete"],
                   unsupported=d["unsupported"], unresolved=len(d["unresolved"]))
    else:
        out["error"] = (proc.stderr.strip().splitlines() or [""])[-1][:160]
    return out


def reference(info: dict) -> float | None:
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", help="model folders (with MANIFEST.json) or files")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                    "onnx-energy-variants"),
                    help="folder for the built variants (outside the repository)")
    ap.add_argument("--onnx-energy", default="onnx-energy",
                    help="the onnx-energy executable to run (e.g. a project venv's)")
    ap.add_argument("--variants", default=",".join(BUILDERS),
                    help="comma-separated variants to build (default: all)")
    ap.add_argument("--only", default="", help="regex of model names to include")
    ap.add_argument("--json", default="", help="also write every result to this JSON file")
    args = ap.parse_args()
    exe = [args.onnx_energy]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [v for v in args.variants.split(",") if v]
    rows, results = [], []
    ok = total = 0
    for src, info in models(args.paths):
        name = info["name"]
        if args.only and not re.search(args.only, name):
            continue
        bind = list(info.get("bind", ["--batch-size", "1"]))
        ref = reference(info)
        base = analyze(exe, src, bind)
        variants = [("original", src, base)]
        for v in wanted:
            if not applies(v, name):
                continue
            dst = cache / f"{name}.{v}.onnx"
            try:
                if not dst.exists():
                    BUILDERS[v](src, dst, info)
            except Exception as exc:  # a quantizer or converter that cannot take this model
                rows.append((name, v, "skipped", f"{type(exc).__name__}: {exc}"[:100]))
                continue
            variants.append((v, dst, analyze(exe, dst, bind)))
            if v == "external":
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
            results.append({"model": name, "variant": v, "reference_macs": ref, **r})
    for row in rows:
        print("  ".join(str(c) for c in row))
    print(f"\n{ok}/{total} analysed completely with exit 0 and nothing unsupported")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if ok == total else 1


if __name__ == "__main__":
    sys.exit(main())
