"""Whole-model runtime of held-out real models, predicted from a calibration (a benchmark).

The calibration issue's runtime check: on a 2-core machine, ``calibrate run --provider cpu
--threads 1 --budget 10m`` with no other options, then ``analyze --profile`` predicts the
whole-model runtime of real models it never saw, against ``measure --threads 1``.

    python bench/calibration_runtime.py --models /work/models [--profile P.json | --budget 10m]
        [--only resnet18 bert_base ...] [--per-node] [--passes 2] [--out results.json]

``--models`` is a folder with a MANIFEST.json as ``bench/export_models.py`` writes it (each
entry's ``bind`` flags give batch 1 / sequence 128). Without ``--profile`` a calibration is
run first (into ``--workdir``). Prints per model the measured and predicted runtime and the
error, then MAPE and how many are within ±10%; with ``--per-node`` also where the error
comes from: per op type, measured time (onnxruntime's profiler, each group charged to the
op type of its main node) against predicted time.

Where the profile recorded the speed probe (`onnx_energy.measure.probe`), the probe is
timed before every measurement, and each model's error is also shown at the calibration's
speed (the measurement divided by probe now / probe then): how much of the error is the
machine's drift between calibrating and measuring rather than the profile's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import onnx_energy  # noqa: E402
from onnx_energy.measure.measurement import measure  # noqa: E402
from onnx_energy.measure.probe import speed_probe  # noqa: E402
from onnx_energy.profile import load_profile  # noqa: E402


def bindings(entry: dict) -> tuple[dict[str, int], int | None]:
    """--dim/--batch-size flags of a manifest entry as analyze()/measure() arguments."""
    flags = list(entry.get("bind") or [])
    dims: dict[str, int] = {}
    batch = None
    for flag, value in zip(flags[::2], flags[1::2], strict=False):
        if flag == "--batch-size":
            batch = int(value)
        elif flag == "--dim":
            name, _, v = value.partition("=")
            dims[name] = int(v)
    return dims, batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, required=True, help="folder with MANIFEST.json")
    ap.add_argument("--profile", type=Path, help="an existing profile (skip calibration)")
    ap.add_argument("--budget", default="10m", help="calibration budget [10m]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path("calibration-bench"))
    ap.add_argument("--only", nargs="*", help="model names from the manifest")
    ap.add_argument("--min-window", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--per-node", action="store_true", help="attribute the error by op type")
    ap.add_argument("--passes", type=int, default=1,
                    help="measure every model this many times, in turn, and keep the fastest "
                         "(a shared VM has slow phases of minutes) [1]")
    ap.add_argument("--out", type=Path, help="write the per-model figures as JSON")
    args = ap.parse_args()
    manifest = json.loads((args.models / "MANIFEST.json").read_text())
    entries = [e for e in manifest if not e.get("error")
               and (not args.only or e["name"] in args.only)]
    profile_path = args.profile
    if profile_path is None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        profile_path = args.workdir / "profile.json"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "onnx_energy", "calibrate", "run", "--provider",
                        "cpu", "--threads", str(args.threads), "--budget", args.budget,
                        "--out", str(profile_path)], check=True)
        print(f"calibration: {time.perf_counter() - t0:.0f} s -> {profile_path}", flush=True)
    profile = load_profile(profile_path)
    calibrated = profile.speed_probe_s

    def probe() -> float | None:
        return speed_probe("cpu", args.threads) if calibrated is not None else None

    rows = []
    earlier: dict[str, tuple[float, float | None]] = {}
    for n in range(1, args.passes):  # the extra passes first: only their runtimes are kept
        for e in entries:
            dims, batch = bindings(e)
            probed = probe()
            got = measure(args.models / e["file"], dims=dims, batch_size=batch,
                          threads=args.threads, sensor="none", min_window=args.min_window,
                          repeats=args.repeats, idle=0)
            assert got.runtime_s is not None
            if got.runtime_s < earlier.get(e["name"], (math.inf, None))[0]:
                earlier[e["name"]] = (got.runtime_s, probed)
            print(f"pass {n}: {e['name']:24s} {got.runtime_s * 1e3:9.3f} ms", flush=True)
    for e in entries:
        path = args.models / e["file"]
        dims, batch = bindings(e)
        probed = probe()
        m = measure(path, dims=dims, batch_size=batch, threads=args.threads, sensor="none",
                    min_window=args.min_window, repeats=args.repeats, idle=0,
                    per_node=args.per_node)
        if e["name"] in earlier and earlier[e["name"]][0] < (m.runtime_s or math.inf):
            m = dataclasses.replace(m, runtime_s=earlier[e["name"]][0])
            probed = earlier[e["name"]][1]
        a = onnx_energy.analyze(path, dims=dims, batch_size=batch, profile=profile)
        assert a.prediction is not None and m.runtime_s is not None
        predicted = a.prediction.totals.runtime_s
        err = (predicted - m.runtime_s) / m.runtime_s
        lo, hi = a.prediction.totals.runtime_s_interval
        row = {"model": e["name"], "measured_s": m.runtime_s, "measured_cv": m.runtime_cv,
               "predicted_s": predicted, "interval_s": [lo, hi], "error": err,
               "in_interval": lo <= m.runtime_s <= hi,
               "fallback_kernels": a.prediction.totals.fallback_kernels,
               "extrapolated_kernels": a.prediction.totals.extrapolated_kernels}
        drift = ""
        if probed is not None and calibrated:
            row["speed_ratio"] = probed / calibrated
            row["error_at_calibrated_speed"] = (err + 1) * row["speed_ratio"] - 1
            drift = (f"  (probe ×{row['speed_ratio']:.2f}: "
                     f"{row['error_at_calibrated_speed'] * 100:+6.1f}% at calibrated speed)")
        print(f"{e['name']:24s} measured {m.runtime_s * 1e3:9.3f} ms (CV {m.runtime_cv or 0:.1%}) "
              f"predicted {predicted * 1e3:9.3f} ms  error {err * 100:+6.1f}%{drift}",
              flush=True)
        if args.per_node and m.nodes is not None:
            row["by_op"] = attribution(a, m)
            for op, (meas, pred) in sorted(row["by_op"].items(), key=lambda kv: -kv[1][0])[:6]:
                print(f"    {op:28s} measured {meas * 1e3:8.3f} ms  predicted {pred * 1e3:8.3f} ms")
        rows.append(row)
    errors = [abs(r["error"]) for r in rows]
    within = sum(1 for x in errors if x <= 0.10)
    print(f"\nMAPE {statistics.fmean(errors) * 100:.1f}% over {len(rows)} models; "
          f"{within}/{len(rows)} within ±10%; "
          f"{sum(r['in_interval'] for r in rows)}/{len(rows)} inside their interval")
    adjusted = [abs(r["error_at_calibrated_speed"]) for r in rows
                if "error_at_calibrated_speed" in r]
    if adjusted:
        ratios = [r["speed_ratio"] for r in rows if "speed_ratio" in r]
        print(f"at the calibration's speed (speed probe ×{min(ratios):.2f}..×{max(ratios):.2f}"
              f", median ×{statistics.median(ratios):.2f}): MAPE "
              f"{statistics.fmean(adjusted) * 100:.1f}%; "
              f"{sum(1 for x in adjusted if x <= 0.10)}/{len(adjusted)} within ±10%")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


def attribution(a: onnx_energy.Analysis, m: object) -> dict[str, tuple[float, float]]:
    """Per op type: measured group time (charged to the group's main node's op type, the
    node that carries the prediction) and predicted time."""
    assert a.prediction is not None
    op_of = {n.name: n.op_type for n in a.nodes}
    anchor_of: dict[str, str] = {}
    for n, p in zip(a.nodes, a.prediction.nodes, strict=True):
        if p.runtime_s:
            anchor_of[n.name] = n.op_type
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in m.nodes or []:  # type: ignore[attr-defined]
        names = list(row.nodes)
        op = next((anchor_of[x] for x in names if x in anchor_of),
                  op_of.get(names[0], row.op_type) if names else row.op_type)
        out[op][0] += row.time_s
    for n, p in zip(a.nodes, a.prediction.nodes, strict=True):
        if p.runtime_s:
            out[n.op_type][1] += p.runtime_s
    return {k: (v[0], v[1]) for k, v in out.items()}


if __name__ == "__main__":
    main()
