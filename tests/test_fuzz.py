"""Property: whatever is done to a valid model, `onnx-energy analyze` exits 0, 2 or 3, prints
one stderr line when it refuses (exit 2), never a traceback or an internal error, and never
hangs. A fixed, derandomized budget here; bench/fuzz_long.py runs a longer one."""

from __future__ import annotations

import pytest
from fuzz_models import (
    hypothesis_chooser,
    mutate,
    options,
    prepare_folder,
    problem,
    run_cli,
    seed_models,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEEDS = seed_models()
#: Seconds one analysis may take before it counts as a hang.
LIMIT_S = 10.0


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz")
    prepare_folder(path)
    return path


@pytest.mark.parametrize("name", [name for name, _ in SEEDS])
def test_seed_models_analyse_cleanly(folder, name):
    seed = dict(SEEDS)[name]
    path = folder / f"seed-{name}.onnx"
    path.write_bytes(seed.SerializeToString())
    outcome = run_cli(path, ["--format", "json"], LIMIT_S)
    assert outcome.code == 0, outcome.err
    assert problem(outcome) is None


@settings(max_examples=150, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_models_fail_cleanly(folder, data):
    ch = hypothesis_chooser(data)
    name, seed = ch.choice(SEEDS)
    blob, log = mutate(seed, ch)
    args = options(ch)
    path = folder / "case.onnx"
    path.write_bytes(blob)
    outcome = run_cli(path, args, LIMIT_S)
    found = problem(outcome)
    assert found is None, f"seed {name}, mutations {log}, args {args}: {found}"
