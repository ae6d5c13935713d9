"""Time and peak RSS of `onnx-energy analyze` on huge inputs (a benchmark, not a test).

1. A ~10 GB external-data model: a wide encoder whose weights live in a sparse file (no disk
   blocks are used; the weights are never read). Target: < 3 s, peak RSS < 300 MB.
2. A generated 100,000-node graph (small encoder layers, embedded weights). Target: < 10 s.

Each model also gets the bare-ONNX baseline: `import onnx` + `onnx.load` (without external
data) + ONNX shape inference with data propagation.

    python bench/huge_inputs.py [--repeat N] [--gb SIZE] [--nodes N]
"""

from __future__ import annotations

import argparse
import math
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from analyze_speed import GRAPHS, cli_command, enable_bytecode_cache, report

BASELINE = (
    "import sys, onnx; m = onnx.load(sys.argv[1], load_external_data=False); "
    "onnx.shape_inference.infer_shapes(m, check_type=False, strict_mode=False, data_prop=True)"
)
#: The wide encoder of the external-data model: about 0.8 GB of fp32 weights per layer.
WIDE = (4096, 32, 16384)
#: The small encoder of the 100k-node graph: 123 nodes per layer.
SMALL = (32, 2, 64)
NODES_PER_LAYER = 123


def build(kind: str, path: Path, layers: int, dims: tuple[int, int, int]) -> str:
    """Write a model from bench/_graphs.py in a child process; a line describing it."""
    done = subprocess.run([sys.executable, str(GRAPHS), kind, str(path), str(layers),
                           *map(str, dims)], check=True, capture_output=True, text=True)
    nodes, inits = done.stdout.split()
    size = path.stat().st_size
    data = path.with_name(path.name + ".data")
    extra = f", external data {data.stat().st_size / 1e9:.1f} GB (sparse)" if data.exists() else ""
    return f"{path.name}: {nodes} nodes, {inits} initializers, {size / 1e6:.1f} MB{extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best of)")
    ap.add_argument("--gb", type=float, default=10.0, help="external-data size in GB")
    ap.add_argument("--nodes", type=int, default=100_000, help="nodes of the big graph")
    ap.add_argument("--cli", help="command to time instead of the installed onnx-energy")
    ap.add_argument("--pyc", action="store_true",
                    help="let the children cache bytecode, as an installed package does")
    args = ap.parse_args()
    if args.pyc:
        enable_bytecode_cache()
    cli = shlex.split(args.cli) if args.cli else cli_command()
    print(f"CLI: {' '.join(cli)}   best of {args.repeat}", flush=True)
    d, heads, ff = WIDE
    layer_bytes = (4 * d * d + 2 * d * ff + 6 * d + ff) * 4
    ext_layers = max(1, math.ceil(args.gb * 1e9 / layer_bytes))
    tmp = Path(tempfile.mkdtemp(prefix="onnx-energy-huge-"))
    try:
        ext = tmp / "wide.onnx"
        print(build("external", ext, ext_layers, WIDE), flush=True)
        bind = ["--dim", "batch=1", "--dim", "seq=128"]
        report("baseline: import onnx + load + infer_shapes", [sys.executable, "-c", BASELINE,
               str(ext)], args.repeat)
        report("onnx-energy analyze (json)", [*cli, "analyze", str(ext), *bind,
               "--format", "json"], args.repeat)

        big = tmp / "big.onnx"
        print(build("encoder", big, max(1, args.nodes // NODES_PER_LAYER), SMALL), flush=True)
        report("baseline: import onnx + load + infer_shapes", [sys.executable, "-c", BASELINE,
               str(big)], args.repeat)
        report("onnx-energy analyze (json)", [*cli, "analyze", str(big), *bind,
               "--format", "json"], args.repeat)
        report("onnx-energy analyze (table --top 10)", [*cli, "analyze", str(big), *bind,
               "--top", "10"], args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
