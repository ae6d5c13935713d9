"""A longer hostile-input fuzz than the suite's (a benchmark of robustness, not a test).

Mutates the valid seed models of tests/fuzz_models.py (protobuf field mutations, nesting,
external-data locations, bit flips, truncation) with a seeded random generator, runs
``onnx-energy analyze`` in-process on each, and prints every case that broke the contract
(an exit code other than 0/2/3, a traceback or internal error, exit 2 without exactly one
stderr line, or a run past the time limit), with the file kept for replay, then a summary:
cases run, exit codes, slowest case.

    python bench/fuzz_long.py [--seconds 300] [--seed 1] [--limit 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_models import (  # noqa: E402
    Hang,
    mutate,
    options,
    prepare_folder,
    problem,
    random_chooser,
    run_cli,
    seed_models,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="total budget (default 300)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=float, default=10.0, help="seconds allowed per case")
    ap.add_argument("--keep", type=Path, default=None, help="folder for failing cases")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    ch = random_chooser(rng)
    seeds = seed_models()
    work = Path(tempfile.mkdtemp(prefix="onnx-energy-fuzz-"))
    folder = work / "models"
    prepare_folder(folder)
    keep = args.keep or work / "failures"
    codes: Counter[int] = Counter()
    failures = 0
    slowest = (0.0, "")
    n = 0
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        n += 1
        name, seed = ch.choice(seeds)
        data, log = mutate(seed, ch)
        argv = options(ch)
        path = folder / "case.onnx"
        path.write_bytes(data)
        try:
            outcome = run_cli(path, argv, args.limit)
            found = problem(outcome)
            codes[outcome.code] += 1
            if outcome.seconds > slowest[0]:
                slowest = (outcome.seconds, f"{name}: {'; '.join(log)} {' '.join(argv)}")
        except Hang as exc:
            found = str(exc)
            codes[-1] += 1
        if found:
            failures += 1
            keep.mkdir(parents=True, exist_ok=True)
            saved = keep / f"case{n:06d}.onnx"
            saved.write_bytes(data)
            print(f"FOUND #{n} seed={name} mutations={log} args={argv}\n  {found}\n"
                  f"  replay: onnx-energy analyze {saved} {' '.join(argv)}", flush=True)
    print(f"{n} cases in {args.seconds:.0f} s (seed {args.seed}); exit codes "
          f"{dict(sorted(codes.items()))} (-1 = hang); {failures} problem(s)")
    print(f"slowest: {slowest[0]:.2f} s ({slowest[1]})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
