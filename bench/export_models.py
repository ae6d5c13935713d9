"""Export a corpus of real ONNX models (random weights) for onnx-energy benchmarks.

Every model is built in code with random weights (``torch.manual_seed(0)`` before each
build, ``weights=None`` for torchvision, a config object for transformers; nothing is
downloaded), put in eval mode and exported at opset 17 with the classic TorchScript exporter
(``torch.onnx.export(..., dynamo=False)``).  If that path fails (export, onnxruntime load or
run), the dynamo exporter (``dynamo=True``) is tried and the one that worked is recorded.

Symbolic dims: ``batch`` (the leading dim of every input) and, for text models, ``sequence``.
Models are traced at batch 2 (sequence 64) and checked in onnxruntime (CPUExecutionProvider)
at batch 1 / sequence 128, the reference binding, and again at batch 2 / sequence 32 so that a
shape baked in by the tracer is caught.

For each model the manifest records reference counts at batch 1 / sequence 128:
``torch.utils.flop_counter.FlopCounterMode`` total FLOPs and its per-op ``Global`` breakdown
(a multiply-add counts as 2 FLOPs, so MACs ~ FLOPs / 2 for matmul/conv dominated models), the
parameter count ``sum(p.numel() for p in model.parameters())`` and, for torchvision, the
published GFLOPS ``get_model_weights(name).DEFAULT.meta["_ops"]``.

Writes ``<out>/<name>.onnx`` (weights inside the file) and ``<out>/MANIFEST.json``.  Models
whose file and manifest entry already exist are skipped unless ``--force``.

Run with the benchmark venv (torch, torchvision, transformers, onnx, onnxruntime, onnxscript),
not the project venv::

    /work/benchvenv/bin/python bench/export_models.py --out /work/models [--only NAME ...]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

OPSET = 17
SEED = 0
TRACE_BATCH, TRACE_SEQ = 2, 64  # shapes the exporter sees
REF_BATCH, REF_SEQ = 1, 128  # reference binding: flop counts and the onnxruntime run
ALT_BATCH, ALT_SEQ = 2, 32  # second onnxruntime run, to check the dims really are symbolic
MAX_WARNINGS = 8

# ----------------------------------------------------------------------------- model specs


@dataclass
class Spec:
    """How to build, feed and export one model."""

    name: str
    source: str  # "torchvision" | "transformers"
    build: Callable[[], nn.Module]  # the exported module (a wrapper for transformers)
    inputs: list[tuple[str, str]]  # (input name, kind): kind in image/ids/mask/features
    outputs: dict[str, dict[int, str]]  # output name -> dynamic axes
    vocab: int = 0  # for random input_ids
    model_class: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> bool:
        return any(kind in ("ids", "mask") for _, kind in self.inputs)


TORCHVISION = [
    "alexnet", "vgg11", "vgg13", "vgg16", "resnet18", "resnet50", "mobilenet_v2",
    "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "densenet121",
    "squeezenet1_1", "shufflenet_v2_x1_0", "regnet_y_400mf", "mnasnet1_0", "googlenet",
    "convnext_tiny", "vit_b_16", "swin_t", "resnext50_32x4d",
]  # fmt: skip


def _torchvision_spec(name: str) -> Spec:
    def build() -> nn.Module:
        import torchvision.models as tvm

        kwargs: dict[str, Any] = {"weights": None}
        if name == "googlenet":
            kwargs.update(aux_logits=False, init_weights=True)
        return tvm.get_model(name, **kwargs)

    return Spec(
        name=name, source="torchvision", build=build, inputs=[("input", "image")],
        outputs={"output": {0: "batch"}}, model_class=f"torchvision.models.{name}",
    )  # fmt: skip


class _TextWrapper(nn.Module):
    """Calls a transformers model with (input_ids[, attention_mask]) and returns tensors."""

    def __init__(self, model: nn.Module, outputs: list[str], with_mask: bool = True):
        super().__init__()
        self.model = model
        self.output_keys = outputs
        self.with_mask = with_mask

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        kwargs = {"input_ids": input_ids}
        if self.with_mask:
            kwargs["attention_mask"] = attention_mask
        out = self.model(**kwargs)
        return tuple(out[k] for k in self.output_keys)


class _TensorWrapper(nn.Module):
    """Calls a transformers model with one float tensor keyword and returns tensors."""

    def __init__(self, model: nn.Module, arg: str, outputs: list[str]):
        super().__init__()
        self.model = model
        self.arg = arg
        self.output_keys = outputs

    def forward(self, x: torch.Tensor):
        out = self.model(**{self.arg: x})
        return tuple(out[k] for k in self.output_keys)


def _hf_config(cls_name: str, **kwargs: Any):
    import transformers

    # Eager attention: explicit MatMul/Softmax in the graph, the same with either exporter.
    return getattr(transformers, cls_name)(attn_implementation="eager", **kwargs)


def _transformers_specs() -> list[Spec]:
    import transformers as tf

    bs = {0: "batch", 1: "sequence"}
    text_in = [("input_ids", "ids"), ("attention_mask", "mask")]

    def text(cls, cfg_fn, outs):
        def build() -> nn.Module:
            return _TextWrapper(getattr(tf, cls)(cfg_fn()), outs)

        return build

    def tensor(cls, cfg_fn, arg, outs, part=None):
        def build() -> nn.Module:
            model = getattr(tf, cls)(cfg_fn())
            if part:
                model = getattr(model, part)()
            return _TensorWrapper(model, arg, outs)

        return build

    def whisper_tiny():
        return _hf_config(
            "WhisperConfig", d_model=384, encoder_layers=4, decoder_layers=4,
            encoder_attention_heads=6, decoder_attention_heads=6, encoder_ffn_dim=1536,
            decoder_ffn_dim=1536, num_mel_bins=80, max_source_positions=1500,
        )  # fmt: skip

    def llama_tiny():
        return _hf_config(
            "LlamaConfig", hidden_size=512, intermediate_size=1376, num_hidden_layers=4,
            num_attention_heads=8, num_key_value_heads=2, vocab_size=32000, use_cache=False,
        )  # fmt: skip

    return [
        Spec("bert_base", "transformers",
             text("BertModel", lambda: _hf_config("BertConfig"),
                  ["last_hidden_state", "pooler_output"]),
             text_in, {"last_hidden_state": bs, "pooler_output": {0: "batch"}},
             vocab=30522, model_class="BertModel(BertConfig())"),
        Spec("distilbert", "transformers",
             text("DistilBertModel", lambda: _hf_config("DistilBertConfig"),
                  ["last_hidden_state"]),
             text_in, {"last_hidden_state": bs},
             vocab=30522, model_class="DistilBertModel(DistilBertConfig())"),
        Spec("gpt2", "transformers",
             text("GPT2LMHeadModel", lambda: _hf_config("GPT2Config", use_cache=False),
                  ["logits"]),
             text_in, {"logits": bs},
             vocab=50257, model_class="GPT2LMHeadModel(GPT2Config(use_cache=False))"),
        Spec("llama_tiny_gqa", "transformers",
             text("LlamaForCausalLM", llama_tiny, ["logits"]),
             text_in, {"logits": bs}, vocab=32000,
             model_class="LlamaForCausalLM(LlamaConfig(hidden_size=512, intermediate_size=1376,"
                         " num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,"
                         " vocab_size=32000, use_cache=False))"),
        Spec("vit_base_hf", "transformers",
             tensor("ViTModel", lambda: _hf_config("ViTConfig"), "pixel_values",
                    ["last_hidden_state", "pooler_output"]),
             [("pixel_values", "image")],
             {"last_hidden_state": {0: "batch"}, "pooler_output": {0: "batch"}},
             model_class="ViTModel(ViTConfig())"),
        Spec("whisper_tiny_encoder", "transformers",
             tensor("WhisperModel", whisper_tiny, "input_features", ["last_hidden_state"],
                    part="get_encoder"),
             [("input_features", "features")], {"last_hidden_state": {0: "batch"}},
             model_class="WhisperModel(WhisperConfig(tiny sizes)).get_encoder()"),
        Spec("t5_small_encoder", "transformers",
             text("T5EncoderModel", lambda: _hf_config("T5Config"), ["last_hidden_state"]),
             text_in, {"last_hidden_state": bs},
             vocab=32128, model_class="T5EncoderModel(T5Config())"),
    ]  # fmt: skip


def all_specs() -> list[Spec]:
    return [_torchvision_spec(n) for n in TORCHVISION] + _transformers_specs()


# ----------------------------------------------------------------------------- inputs


def make_inputs(spec: Spec, batch: int, seq: int, pad: bool = False) -> list[torch.Tensor]:
    """Seeded inputs; with ``pad`` the last quarter of row 1 of an attention mask is 0.

    Tracing with padding matters: transformers may skip building the mask when it is all
    ones, and the TorchScript tracer would bake that branch in.
    """
    gen = torch.Generator().manual_seed(SEED)
    out = []
    for _, kind in spec.inputs:
        if kind == "image":
            out.append(torch.randn(batch, 3, 224, 224, generator=gen))
        elif kind == "features":
            out.append(torch.randn(batch, 80, 3000, generator=gen))
        elif kind == "ids":
            out.append(torch.randint(0, spec.vocab, (batch, seq), generator=gen))
        elif kind == "mask":
            mask = torch.ones(batch, seq, dtype=torch.int64)
            if pad and batch > 1:
                mask[1, seq - seq // 4 :] = 0
            out.append(mask)
        else:
            raise ValueError(kind)
    return out


def input_axes(spec: Spec) -> dict[str, dict[int, str]]:
    return {
        name: ({0: "batch", 1: "sequence"} if kind in ("ids", "mask") else {0: "batch"})
        for name, kind in spec.inputs
    }


def bind_flags(spec: Spec) -> list[str]:
    flags = ["--batch-size", str(REF_BATCH)]
    if spec.text:
        flags += ["--dim", f"sequence={REF_SEQ}"]
    return flags


# ----------------------------------------------------------------------------- export


def _rename_dims(model: onnx.ModelProto, spec: Spec) -> None:
    """Give the dynamo exporter's symbolic dims (s0, s1, ...) the names batch / sequence."""
    wanted = {**input_axes(spec), **spec.outputs}
    mapping: dict[str, str] = {}
    for vi in list(model.graph.input) + list(model.graph.output):
        for axis, name in wanted.get(vi.name, {}).items():
            dims = vi.type.tensor_type.shape.dim
            if axis < len(dims) and dims[axis].HasField("dim_param"):
                mapping.setdefault(dims[axis].dim_param, name)
    mapping = {k: v for k, v in mapping.items() if k != v}
    if not mapping:
        return
    vis = list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info)
    for vi in vis:
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in mapping:
                d.dim_param = mapping[d.dim_param]


def export(spec: Spec, model: nn.Module, path: Path, exporter: str) -> list[str]:
    """Export ``model`` to ``path``; returns the distinct warning messages seen."""
    args = tuple(make_inputs(spec, TRACE_BATCH, TRACE_SEQ, pad=True))
    names = [n for n, _ in spec.inputs]
    axes = {**input_axes(spec), **spec.outputs}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if exporter == "torchscript":
            torch.onnx.export(
                model, args, str(path), dynamo=False, opset_version=OPSET,
                input_names=names, output_names=list(spec.outputs), dynamic_axes=axes,
                do_constant_folding=True,
            )  # fmt: skip
        else:
            from torch.export import Dim

            dyn = {n: {a: Dim.DYNAMIC for a in ax} for n, ax in input_axes(spec).items()}
            dyn_args = tuple(dyn[n] for n in names)
            prog = torch.onnx.export(
                model, args, dynamo=True, opset_version=OPSET, input_names=names,
                output_names=list(spec.outputs), dynamic_shapes=dyn_args, external_data=False,
            )  # fmt: skip
            proto = prog.model_proto  # type: ignore[union-attr]
            _rename_dims(proto, spec)
            onnx.save(proto, str(path))  # weights inline; would need external data > 2 GB
    seen: list[str] = []
    for w in caught:
        msg = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0][:300]}"
        if msg not in seen:
            seen.append(msg)
    return seen


# ----------------------------------------------------------------------------- checks


def flop_count(model: nn.Module, inputs: list[torch.Tensor]) -> tuple[int, dict[str, int]]:
    """FlopCounterMode total and its ``Global`` per-op dict.

    SDPA is forced onto the math backend: the CPU flash kernel is not in FlopCounterMode's
    table, so attention would silently count 0 (it decomposes into counted bmm's instead).
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]), counter:
        model(*inputs)
    by_op = counter.get_flop_counts().get("Global", {})
    return int(counter.get_total_flops()), {str(k): int(v) for k, v in by_op.items()}


def onnx_inputs(model: onnx.ModelProto) -> list[dict[str, Any]]:
    inits = {i.name for i in model.graph.initializer}
    out = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_param if d.HasField("dim_param") else int(d.dim_value)
                 for d in tt.shape.dim]  # fmt: skip
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name
        out.append({"name": vi.name, "shape": shape, "dtype": dtype})
    return out


def ort_run(
    path: Path, spec: Spec, batch: int, seq: int, pad: bool = False
) -> tuple[dict[str, list[int]], list[np.ndarray]]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = os.cpu_count() or 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feeds = {
        n: t.numpy()
        for (n, _), t in zip(spec.inputs, make_inputs(spec, batch, seq, pad), strict=True)
    }
    feeds = {k: v for k, v in feeds.items() if k in {i.name for i in sess.get_inputs()}}
    outs = sess.run(None, feeds)
    names = [o.name for o in sess.get_outputs()]
    return {n: list(o.shape) for n, o in zip(names, outs, strict=True)}, outs


def _opset(model: onnx.ModelProto) -> int | None:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return None


def _op_types(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


# ----------------------------------------------------------------------------- driver


def _torchvision_meta(name: str) -> tuple[float | None, int | None]:
    import torchvision.models as tvm

    try:
        meta = tvm.get_model_weights(name).DEFAULT.meta
    except Exception:  # no published weights for this model
        return None, None
    return meta.get("_ops"), meta.get("num_params")


def _torch_outputs(model: nn.Module, inputs: list[torch.Tensor]) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(*inputs)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def _max_diff(got: list[np.ndarray], want: list[np.ndarray]) -> float | None:
    if len(got) != len(want):
        return None
    return float(
        max(np.max(np.abs(a.astype(np.float64) - b)) for a, b in zip(got, want, strict=True))
    )


def _try_exporter(spec: Spec, model: nn.Module, path: Path, exporter: str) -> dict[str, Any]:
    """Export with one exporter and check it in onnxruntime; raises on any failure."""
    if path.exists():
        path.unlink()
    t0 = time.perf_counter()
    warns = export(spec, model, path, exporter)
    export_s = time.perf_counter() - t0
    if any(p != path for p in path.parent.glob(path.name + "*")):
        raise RuntimeError("exporter wrote external data next to the model")
    shapes, outs = ort_run(path, spec, REF_BATCH, REF_SEQ)
    alt_shapes, alt_outs = ort_run(path, spec, ALT_BATCH, ALT_SEQ, pad=True)
    return {"export_seconds": round(export_s, 1), "warnings": warns[:MAX_WARNINGS],
            "ort_output_shapes": shapes, "ort_alt_output_shapes": alt_shapes,
            "_ort_outputs": outs, "_ort_alt_outputs": alt_outs}  # fmt: skip


def process(spec: Spec, out_dir: Path) -> dict[str, Any]:
    path = out_dir / f"{spec.name}.onnx"
    entry: dict[str, Any] = {
        "name": spec.name, "file": path.name, "source": spec.source, "exporter": None,
        "opset": None, "inputs": [], "bind": bind_flags(spec), "flop_counter_flops": None,
        "flop_counter_by_op": None, "params": None, "torchvision_gflops": None,
        "ort_runs": False, "error": None, "model_class": spec.model_class,
    }  # fmt: skip
    if spec.source == "transformers":
        entry["attn_implementation"] = "eager"
    t_start = time.perf_counter()
    torch.manual_seed(SEED)
    model = spec.build().eval()
    inner = getattr(model, "model", model)
    entry["params"] = int(sum(p.numel() for p in inner.parameters()))
    if spec.source == "torchvision":
        entry["torchvision_gflops"], entry["torchvision_num_params"] = _torchvision_meta(spec.name)
    ref_inputs = make_inputs(spec, REF_BATCH, REF_SEQ)
    try:
        entry["flop_counter_flops"], entry["flop_counter_by_op"] = flop_count(model, ref_inputs)
    except Exception as exc:
        entry["flop_counter_error"] = f"{type(exc).__name__}: {exc}"[:500]
    ref_out = _torch_outputs(model, ref_inputs)
    alt_out = _torch_outputs(model, make_inputs(spec, ALT_BATCH, ALT_SEQ, pad=True))

    failures: list[str] = []
    result = None
    for exporter in ("torchscript", "dynamo"):
        try:
            with torch.no_grad():
                result = _try_exporter(spec, model, path, exporter)
            entry["exporter"] = exporter
            break
        except Exception as exc:  # record and try the other exporter
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            failures.append(f"{exporter}: {tb[:800]}")
            print(f"  {spec.name}: {exporter} failed: {tb[:300]}", flush=True)
            gc.collect()
    if failures:
        entry["exporter_failures"] = failures
    if result is None:
        entry["error"] = " | ".join(failures)
        if path.exists():
            path.unlink()
    else:
        outs, alt_outs = result.pop("_ort_outputs"), result.pop("_ort_alt_outputs")
        entry.update(result)
        entry["ort_runs"] = True
        entry["max_abs_diff_vs_torch"] = _max_diff(outs, ref_out)
        entry["max_abs_diff_vs_torch_alt"] = _max_diff(alt_outs, alt_out)
        proto = onnx.load(str(path), load_external_data=False)
        entry["opset"] = _opset(proto)
        entry["inputs"] = onnx_inputs(proto)
        entry["onnx_op_types"] = _op_types(proto)
        entry["file_bytes"] = path.stat().st_size
    entry["total_seconds"] = round(time.perf_counter() - t_start, 1)
    del model, inner
    gc.collect()
    return entry


def _write_manifest(path: Path, entries: dict[str, dict[str, Any]], order: list[str]) -> None:
    ordered = [entries[n] for n in order if n in entries]
    ordered += [e for n, e in entries.items() if n not in order]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(ordered, indent=1) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    specs = all_specs()
    names = [s.name for s in specs]
    ap = argparse.ArgumentParser(
        description="Export torchvision and transformers models (random weights) to ONNX and "
        "write MANIFEST.json with reference FLOP/parameter counts.",
        epilog="models: " + ", ".join(names),
    )
    ap.add_argument("--out", type=Path, required=True, help="output folder, e.g. /work/models")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="export only these models")
    ap.add_argument("--force", action="store_true", help="re-export models that already exist")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            ap.error(f"unknown model(s): {', '.join(unknown)}; see --list")
        specs = [s for s in specs if s.name in args.only]

    torch.set_num_threads(os.cpu_count() or 1)
    # The inference fast path of nn.MultiheadAttention (vit_b_16) calls
    # aten::_native_multi_head_attention, which the TorchScript exporter cannot export
    # and FlopCounterMode does not count.
    torch.backends.mha.set_fastpath_enabled(False)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "MANIFEST.json"
    entries: dict[str, dict[str, Any]] = {}
    if manifest_path.exists():
        entries = {e["name"]: e for e in json.loads(manifest_path.read_text())}

    t0 = time.perf_counter()
    for spec in specs:
        old = entries.get(spec.name)
        if (not args.force and old and old.get("error") is None
                and (args.out / old["file"]).exists()):  # fmt: skip
            print(f"skip {spec.name} (exists; --force to redo)", flush=True)
            continue
        print(f"export {spec.name} ...", flush=True)
        try:
            entry = process(spec, args.out)
        except Exception as exc:  # a model that cannot even be built
            entry = {"name": spec.name, "file": f"{spec.name}.onnx", "source": spec.source,
                     "exporter": None, "ort_runs": False,
                     "error": f"{type(exc).__name__}: {exc}"[:800]}  # fmt: skip
        entries[spec.name] = entry
        _write_manifest(manifest_path, entries, names)
        status = (
            "FAILED: " + entry["error"][:200]
            if entry["error"]
            else (
                f"ok ({entry['exporter']}, {entry.get('file_bytes', 0) / 2**20:.1f} MiB, "
                f"{entry.get('total_seconds')} s)"
            )
        )
        print(f"  {spec.name}: {status}", flush=True)
    print(f"done in {time.perf_counter() - t0:.0f} s; manifest: {manifest_path}")
    return 1 if any(entries[s.name].get("error") for s in specs) else 0


if __name__ == "__main__":
    sys.exit(main())
