"""Whole-model energy from single-layer records measured elsewhere (a benchmark, not a test).

The setting of the calibration issue's energy check: `calibrate fit` gets only single-layer
records (Conv, MaxPool, Linear, ReLU, Sigmoid, Tanh, Softmax with random configurations,
measured with codecarbon/RAPL on another machine and converted to the record schema), and
`analyze --profile --batch-size B` predicts the measured whole-model energy of AlexNet and
VGG11/13/16 at batch sizes 1-256.

The records and the measured architectures come from Getzner et al. (2023), converted with
``bench/getzner_records.py`` (their data set is MIT-licensed and not shipped here); the
models are torchvision exports with a symbolic batch (``bench/export_models.py``).

    python bench/energy_getzner.py --records records-cpu.jsonl --architectures arch-cpu.json
        --models /work/models [--forms] [--profile-out P.json]

Prints per architecture the MAPE, the mean signed error and the worst error, the overall
MAPE, the fit time, and with ``--forms`` the same with every candidate form forced in turn
(the seed paper's baseline is ``linear-macs``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import onnx_energy  # noqa: E402
from onnx_energy.calibration.fit import fit_profile  # noqa: E402
from onnx_energy.profile import Profile  # noqa: E402

FORMS = ("linear-macs", "linear-work", "linear-nonneg", "loglinear-work", "poly2-work",
         "loglinear-all", "poly2-all-lasso", "poly3-all-lasso", "poly2-aug-lasso")


def evaluate(profile: Profile, runs: list[dict], models: Path) -> dict[str, list[float]]:
    """Signed relative errors of predicted whole-model energy, per architecture."""
    errors: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        result = onnx_energy.analyze(models / f"{run['architecture']}.onnx",
                                     batch_size=run["batch_size"], profile=profile)
        predicted = result.prediction.totals.energy_j
        errors[run["architecture"]].append((predicted - run["energy_j"]) / run["energy_j"])
    return errors


def summary(errors: dict[str, list[float]]) -> str:
    every = [abs(e) for v in errors.values() for e in v]
    parts = [f"overall MAPE {statistics.fmean(every) * 100:5.2f}%"]
    for arch, v in sorted(errors.items()):
        mape = statistics.fmean(abs(e) for e in v) * 100
        parts.append(f"{arch} {mape:5.1f}% (bias {statistics.fmean(v) * 100:+5.1f}%, "
                     f"worst {max(abs(e) for e in v) * 100:5.1f}%, n={len(v)})")
    return "\n  ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=Path, required=True, help="single-layer records (JSONL)")
    ap.add_argument("--architectures", type=Path, required=True,
                    help="measured whole models: JSON list of {architecture, batch_size, "
                         "energy_j}")
    ap.add_argument("--models", type=Path, required=True,
                    help="folder with alexnet.onnx, vgg11.onnx, vgg13.onnx, vgg16.onnx")
    ap.add_argument("--forms", action="store_true",
                    help="also force every candidate form in turn")
    ap.add_argument("--profile-out", type=Path, help="write the fitted profile here")
    args = ap.parse_args()
    runs = json.loads(args.architectures.read_text())
    t0 = time.perf_counter()
    profile = fit_profile([args.records])
    fit_s = time.perf_counter() - t0
    if args.profile_out:
        profile.save(args.profile_out)
    n = sum(km.n_rows for km in profile.models.values() if km.level == "kernel")
    print(f"fit: {fit_s:.1f} s on {n} rows; maps: " + ", ".join(
        f"{k}={km.energy.candidate if km.energy else '-'}"
        for k, km in profile.models.items() if km.level != "family"))
    print("  " + summary(evaluate(profile, runs, args.models)))
    if args.forms:
        for form in FORMS:
            forced = fit_profile([args.records], only=[form])
            print(f"{form}:\n  " + summary(evaluate(forced, runs, args.models)), flush=True)


if __name__ == "__main__":
    main()
