"""Speed and peak memory of the whole `onnx-energy analyze` process (a benchmark, not a test).

Builds a ~6,000-node transformer-encoder-like graph (torch-style shape subgraphs, embedded
weights) in a temp dir, then times the CLI in a fresh process (best of N) and reads that
process's peak RSS; also times any model paths given as arguments. For comparison it prints
a bare `import onnx` + `onnx.load` + ONNX shape inference (data propagation on) baseline on
the same graph.

    python bench/analyze_speed.py [MODEL.onnx ...] [--repeat N] [--layers L] [--cli CMD]
                                  [--against CMD]

``--against`` times a second CLI (another checkout, e.g. the tree before a refactor) in the
same run, alternating the two so machine noise falls on both, and prints the ratio.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRAPHS = Path(__file__).resolve().with_name("_graphs.py")
BASELINE = (
    "import sys, onnx; m = onnx.load(sys.argv[1]); "
    "onnx.shape_inference.infer_shapes(m, check_type=False, strict_mode=False, data_prop=True)"
)


def cli_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m onnx_energy``.

    The script is run directly (not through a pyenv/asdf shim, which adds its own startup).
    """
    script = Path(sys.executable).with_name("onnx-energy")
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "onnx_energy"]


def enable_bytecode_cache() -> None:
    """Children write and reuse .pyc files under a temp dir (the checkout stays clean)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "onnx-energy-pyc")


def run_once(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MiB) of one fresh process; output discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    rss_mib = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return elapsed, usage.ru_utime + usage.ru_stime, rss_mib


def best_of(cmd: list[str], repeat: int) -> tuple[float, float, float]:
    """Fastest wall time, least CPU time and the largest peak RSS over ``repeat`` runs."""
    runs = [run_once(cmd) for _ in range(repeat)]
    return (min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs))


def report(label: str, cmd: list[str], repeat: int) -> None:
    """One line: wall time (best), CPU time (user+sys, best; steadier on a busy machine)
    and peak RSS."""
    seconds, cpu, rss = best_of(cmd, repeat)
    print(f"{label:<44} {seconds:7.3f} s wall  {cpu:7.3f} s cpu   peak RSS {rss:7.1f} MiB",
          flush=True)


def compare(label: str, cmds: list[list[str]], args: list[str], repeat: int) -> None:
    """Best-of-``repeat`` of each CLI in ``cmds`` on ``args``, runs interleaved; the ratio of
    the first to the second."""
    runs: list[list[tuple[float, float, float]]] = [[] for _ in cmds]
    for _ in range(repeat):
        for i, cmd in enumerate(cmds):
            runs[i].append(run_once([*cmd, *args]))
    best = [(min(r[0] for r in rs), min(r[1] for r in rs), max(r[2] for r in rs))
            for rs in runs]
    for tag, (seconds, cpu, rss) in zip(("this", "against"), best, strict=False):
        print(f"{label + ' [' + tag + ']':<44} {seconds:7.3f} s wall  {cpu:7.3f} s cpu   "
              f"peak RSS {rss:7.1f} MiB", flush=True)
    if len(best) == 2:
        print(f"{'':<44} ratio this/against: {best[0][0] / best[1][0]:.3f} wall, "
              f"{best[0][1] / best[1][1]:.3f} cpu", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, help="extra .onnx files to time")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement (best of)")
    ap.add_argument("--layers", type=int, default=50, help="encoder layers (~123 nodes each)")
    ap.add_argument("--cli", help="command to time instead of the installed onnx-energy, "
                    "e.g. 'python -m onnx_energy' with PYTHONPATH set to another checkout")
    ap.add_argument("--against", help="a second CLI command to time in the same run, "
                    "interleaved, e.g. 'env PYTHONPATH=/path/to/old/checkout python -m "
                    "onnx_energy'")
    ap.add_argument("--pyc", action="store_true",
                    help="let the children cache bytecode (in a temp dir), as an installed "
                         "package does, even where PYTHONDONTWRITEBYTECODE is set")
    args = ap.parse_args()
    cli = shlex.split(args.cli) if args.cli else cli_command()
    print(f"CLI: {' '.join(cli)}   best of {args.repeat}", flush=True)
    if args.pyc:
        enable_bytecode_cache()
    elif os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set, so every run compiles onnx_energy from "
              "source (~0.1 s); --pyc measures with bytecode, as installed", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="onnx-energy-bench-"))
    try:
        # Built in a child: this process stays small, so the children's peak RSS (which
        # starts from the parent's at fork) is their own.
        path = tmp / "encoder.onnx"
        counts = subprocess.run([sys.executable, str(GRAPHS), "encoder", str(path),
                                 str(args.layers)], check=True, capture_output=True, text=True)
        nodes, inits = counts.stdout.split()
        size_mb = path.stat().st_size / 1e6
        print(f"encoder: {nodes} nodes, {inits} initializers, {size_mb:.1f} MB", flush=True)
        report("python startup (-c pass)", [sys.executable, "-c", "pass"], args.repeat)
        report("baseline: import onnx + load + infer_shapes", [sys.executable, "-c", BASELINE,
               str(path)], args.repeat)
        clis = [cli] + ([shlex.split(args.against)] if args.against else [])
        bind = ["--dim", "batch=1", "--dim", "seq=128"]
        compare("onnx-energy analyze encoder (json)", clis,
                ["analyze", str(path), *bind, "--format", "json"], args.repeat)
        compare("onnx-energy analyze encoder (table)", clis, ["analyze", str(path), *bind],
                args.repeat)
        for extra in args.models:
            compare(f"onnx-energy analyze {extra.name} (json)", clis,
                    ["analyze", str(extra), "--format", "json"], args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
