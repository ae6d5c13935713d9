"""Convert the Getzner et al. (2023) layer-wise energy data set into onnx-energy records.

    python bench/getzner_records.py --data-dir DIR [--energy cpu|total] [--out records.jsonl]
                                    [--architectures-out arch.json]

DIR is a local copy of the public data set of "Accuracy is not the only Metric that matters:
Estimating the Energy Consumption of Deep Learning Models" (Getzner, Charpentier, Guennemann;
ICLR 2023 workshop), repository JohannesGetzner/dl-energy-estimator (MIT licence), laid out
with the repository's relative paths:

    DIR/estimator/data/{conv2d,maxpool2d,linear,relu,sigmoid,tanh,softmax}.csv
    DIR/data/architectures/02_architectures-raw.csv          (whole models, optional)

Facts this converter relies on (checked against the CSVs, see DIR/NOTES.md):

* one row of estimator/data/*.csv is one module configuration, averaged over its kept
  repetitions (rep_no is the mean repetition number);
* cpu_energy, gpu_energy, ram_energy and energy_consumed are kWh per forward pass
  (power * duration / forward_passes / 3.6e6) and energy_consumed = cpu + gpu + ram;
* duration is the whole measuring window in seconds (about 30 s, or one pass if longer) and
  forward_passes the number of passes run in it (a mean, so not always an integer);
* cpu_energy is Intel RAPL as read by codecarbon (tracking_mode "machine", both sockets);
  ram_energy is codecarbon's constant 3/8 W per GB model, gpu_energy an idle GPU's NVML power;
* the modules ran in PyTorch 1.11.0 on the CPU, in eval mode under torch.no_grad(), on
  torch.rand float32 inputs of the shapes used below.

Where the kept repetitions of a configuration ran different numbers of passes (common in the
activation files), the energies are the mean of the per-repetition per-pass energies while
duration and forward_passes are plain means, so runtime_s = duration / forward_passes does not
match energy_j (power_w comes out too high). sensor_detail["per_pass_vs_window"] measures this:
energy_consumed * forward_passes * 0.301 kg/kWh / emissions, which is 1 when they agree
(emissions is a window total, 0.301 the grid intensity codecarbon used). --exclude-skewed drops
rows where it is off by more than 5 %. iterations is the mean pass count rounded (the schema
wants an integer); the exact mean is sensor_detail["forward_passes_mean"].

The whole-model file holds one row per repetition with window totals; its energies are
divided by the forward passes named in project_name before averaging.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SCHEMA = "onnx-energy/record/2"
KWH_TO_J = 3.6e6
CPU_MODEL = "Intel(R) Xeon(R) Gold 5120 CPU @ 2.20GHz"
SOURCE = "Getzner et al. 2023"
RUNNER = {"name": "pytorch", "version": "1.11.0"}
LAYERS = ("conv2d", "maxpool2d", "linear", "relu", "sigmoid", "tanh", "softmax")
ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}
ENERGY_COLUMN = {"cpu": "cpu_energy", "total": "energy_consumed"}
ENERGY_DETAIL = {
    "cpu": "cpu_energy (RAPL)",
    "total": "energy_consumed (cpu_energy + gpu_energy + ram_energy)",
}
ARCH_FILE = Path("data") / "architectures" / "02_architectures-raw.csv"
GRID_KG_PER_KWH = 0.301  # the carbon intensity codecarbon applied to every row (Germany)
SKEW_LIMIT = 0.05


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (row id, row) for a CSV; the row id is the unnamed index column if there is one."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        for number, fields in enumerate(reader):
            if len(fields) != len(header):
                raise ValueError(
                    f"{path}: row {number + 1} has {len(fields)} fields, header has {len(header)}"
                )
            row = dict(zip(header, fields, strict=True))
            yield (int(row[""]) if "" in row else number), row


def f32(shape: list[int]) -> dict[str, object]:
    return {"shape": shape, "dtype": "float32"}


def as_int(value: str) -> int:
    number = float(value)
    if number != int(number):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(number)


def layer_spec(layer: str, row: dict[str, str]) -> dict[str, object]:
    """The ONNX operator equivalent to the PyTorch module the collector ran for this row."""
    b = as_int(row["batch_size"])
    if layer == "conv2d":
        h, k, s, p = (as_int(row[c]) for c in ("image_size", "kernel_size", "stride", "padding"))
        cin, cout = as_int(row["in_channels"]), as_int(row["out_channels"])
        return {
            "op_type": "Conv",
            "domain": "",
            "attrs": {"kernel_shape": [k, k], "strides": [s, s], "pads": [p, p, p, p]},
            "inputs": [f32([b, cin, h, h]), f32([cout, cin, k, k]), f32([cout])],
        }
    if layer == "maxpool2d":
        h, k, s, p = (as_int(row[c]) for c in ("image_size", "kernel_size", "stride", "padding"))
        c = as_int(row["in_channels"])
        return {
            "op_type": "MaxPool",
            "domain": "",
            "attrs": {"kernel_shape": [k, k], "strides": [s, s], "pads": [p, p, p, p]},
            "inputs": [f32([b, c, h, h])],
        }
    if layer == "linear":
        n_in, n_out = as_int(row["input_size"]), as_int(row["output_size"])
        return {
            "op_type": "Gemm",
            "domain": "",
            "attrs": {"transB": 1},
            "inputs": [f32([b, n_in]), f32([n_out, n_in]), f32([n_out])],
        }
    op_type = ACTIVATIONS[layer]
    attrs: dict[str, object] = {"axis": 1} if op_type == "Softmax" else {}
    return {
        "op_type": op_type,
        "domain": "",
        "attrs": attrs,
        "inputs": [f32([b, as_int(row["input_size"])])],
    }


def layer_records(data_dir: Path, layer: str, energy: str) -> Iterator[dict[str, object]]:
    path = data_dir / "estimator" / "data" / f"{layer}.csv"
    for row_id, row in read_rows(path):
        passes = float(row["forward_passes"])
        window = float(row["duration"])
        runtime = window / passes
        energy_j = float(row[ENERGY_COLUMN[energy]]) * KWH_TO_J
        emissions = float(row["emissions"])
        ratio = (
            float(row["energy_consumed"]) * passes * GRID_KG_PER_KWH / emissions
            if emissions > 0
            else math.nan
        )
        detail = {
            "mode": "machine",
            "energy": ENERGY_DETAIL[energy],
            "forward_passes_mean": passes,
            "rep_no_mean": float(row["rep_no"]),
            "per_pass_vs_window": ratio,
            "cpu_power_w": float(row["cpu_power"]),
        }
        yield {
            "schema": SCHEMA,
            "kind": "op",
            "run_id": f"getzner2023/{layer}/{row_id}",
            "window": 0,
            "timestamp": None,
            "runner": dict(RUNNER),
            "provider": "cpu",
            "threads": None,
            "spec": layer_spec(layer, row),
            "model": None,
            "sensor": "codecarbon",
            "sensor_detail": detail,
            "estimate": False,
            "iterations": max(1, round(passes)),
            "window_s": window,
            "runtime_s": runtime,
            "energy_j": energy_j,
            "energy_dynamic_j": None,
            "power_w": energy_j / runtime,
            "idle_power_w": None,
            "hardware": {
                "cpu_model": CPU_MODEL,
                "cpu_count": as_int(row["cpu_count"]),
                "source": SOURCE,
            },
        }


def project_fields(project_name: str) -> dict[str, str]:
    """Split codecarbon's project_name 'module:AlexNet,rep_no:1,...,forward_passes:53'."""
    fields = {}
    for part in project_name.split(","):
        key, _, value = part.partition(":")
        fields[key] = value
    for part in fields.get("freeText", "").split(";"):
        key, _, value = part.partition("=")
        if key:
            fields[key] = value
    return fields


def architecture_summary(data_dir: Path, energy: str) -> list[dict[str, object]]:
    groups: dict[tuple[str, int], dict[str, list]] = {}
    for _, row in read_rows(data_dir / ARCH_FILE):
        info = project_fields(row["project_name"])
        passes = float(info["forward_passes"])
        key = (info["architecture"], int(info["batch_size"]))
        group = groups.setdefault(key, {"energy": [], "runtime": [], "macs": [], "time": []})
        group["energy"].append(float(row[ENERGY_COLUMN[energy]]) * KWH_TO_J / passes)
        group["runtime"].append(float(row["duration"]) / passes)
        group["macs"].append(int(info["macs"]))
        group["time"].append(row["timestamp"])
    out = []
    for (arch, batch), group in sorted(groups.items()):
        e = np.asarray(group["energy"])
        t = np.asarray(group["runtime"])
        ddof = 1 if e.size > 1 else 0
        out.append(
            {
                "architecture": arch,
                "batch_size": batch,
                "image_size": 224,
                "energy_j": float(e.mean()),
                "energy_cv": float(e.std(ddof=ddof) / e.mean()),
                "runtime_s": float(t.mean()),
                "runtime_cv": float(t.std(ddof=ddof) / t.mean()),
                "repeats": int(e.size),
                "macs": group["macs"][0],
                "first_timestamp": min(group["time"]),
                "energy": ENERGY_DETAIL[energy],
                "source": SOURCE,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Convert the Getzner et al. (2023) energy CSVs into onnx-energy records "
        "(one JSON object per line) and summarise the whole-model runs."
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="local copy of the data set, with the repository's paths",
    )
    parser.add_argument(
        "--energy",
        choices=sorted(ENERGY_COLUMN),
        default="cpu",
        help="cpu: RAPL cpu_energy only (default); total: codecarbon's "
        "energy_consumed (cpu + gpu + ram)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("records.jsonl"),
        help="records file to write (default records.jsonl)",
    )
    parser.add_argument(
        "--architectures-out",
        type=Path,
        default=None,
        help="also write the whole-model means as a JSON list here",
    )
    parser.add_argument(
        "--exclude-skewed",
        action="store_true",
        help="leave out rows whose per-pass energy and runtime disagree by more "
        f"than {SKEW_LIMIT * 100:.0f}%% (repetitions with unequal pass counts)",
    )
    parser.add_argument(
        "--layers",
        nargs="+",
        choices=LAYERS,
        default=list(LAYERS),
        help="layer files to convert (default all; missing files are skipped)",
    )
    args = parser.parse_args(argv)

    counts = {}
    skipped = 0
    with args.out.open("w") as out:
        for layer in args.layers:
            if not (args.data_dir / "estimator" / "data" / f"{layer}.csv").exists():
                print(f"skipping {layer}: no CSV", file=sys.stderr)
                continue
            counts[layer] = 0
            for record in layer_records(args.data_dir, layer, args.energy):
                if not all(math.isfinite(record[k]) for k in ("energy_j", "runtime_s")):
                    raise ValueError(f"non-finite value in {record['run_id']}")
                ratio = record["sensor_detail"]["per_pass_vs_window"]
                if args.exclude_skewed and not abs(ratio - 1) <= SKEW_LIMIT:
                    skipped += 1
                    continue
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
                counts[layer] += 1
    print(
        f"{args.out}: {sum(counts.values())} records "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + (f"; {skipped} skewed rows left out" if args.exclude_skewed else ""),
        file=sys.stderr,
    )
    if args.architectures_out is not None:
        summary = architecture_summary(args.data_dir, args.energy)
        args.architectures_out.write_text(json.dumps(summary, indent=1) + "\n")
        print(
            f"{args.architectures_out}: {len(summary)} (architecture, batch) means", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
