"""Sweep onnx's own node test cases (built in code by onnx.backend.test.case.node) through
`analyze`: every case must analyse without a traceback; prints how many nodes were costed,
unresolved (data-dependent shapes, sequences) or unsupported (non-default domains).

    python bench/onnx_node_cases.py [--verbose]

Collecting the cases runs onnx's numpy reference for each (about 10 s), which is why this is
a bench script and not part of the test suite.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import Counter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="list every non-ok node")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from onnx.backend.test.case.node import collect_testcases

    import onnx_energy
    from onnx_energy.errors import OnnxEnergyError

    t0 = time.perf_counter()
    cases = [c for c in collect_testcases(None) if not c.name.endswith("_expanded")]
    t1 = time.perf_counter()
    status: Counter[str] = Counter()
    refused, crashed, not_ok = [], [], []
    for case in cases:
        try:
            a = onnx_energy.analyze(case.model)
        except OnnxEnergyError as exc:
            refused.append((case.name, str(exc)))
            continue
        except Exception as exc:  # a traceback: the failure this sweep exists to find
            crashed.append((case.name, f"{type(exc).__name__}: {exc}"))
            continue
        for n in a.nodes:
            status[n.status] += 1
            if n.status != "ok":
                not_ok.append((case.name, n.op_type, n.status, n.reason))
    t2 = time.perf_counter()
    print(f"{len(cases)} node test cases (collected in {t1 - t0:.1f} s, analysed in "
          f"{t2 - t1:.1f} s)")
    print("nodes: " + ", ".join(f"{k} {v}" for k, v in sorted(status.items())))
    print(f"refused (exit 2): {len(refused)}; tracebacks: {len(crashed)}")
    unsupported = sorted({op for _, op, st, _ in not_ok if st == "unsupported"})
    print(f"unsupported ops: {', '.join(unsupported) or 'none'}")
    if args.verbose:
        for row in (*refused, *not_ok):
            print("  ", *row)
    for name, err in crashed:
        print(f"TRACEBACK {name}: {err}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
