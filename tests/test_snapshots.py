"""The analysis JSON of fixed models is byte-identical to the checked-in snapshots.

A refactor must not change a single byte of it; an intended output change regenerates the
snapshots (``python tests/snapshot_models.py``) in the same commit, saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from snapshot_models import SNAPSHOTS, cases, snapshot_json

from onnx_energy.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(cases()))
def test_analysis_json_matches_snapshot(name: str) -> None:
    expected = (SNAPSHOTS / f"{name}.json").read_text(encoding="utf-8")
    assert snapshot_json(name) + "\n" == expected


def test_bundled_model_cli_json_matches_snapshot(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    code = main(["analyze", "onnx_energy/examples/small_cnn.onnx", "--batch-size", "1",
                 "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert out == (SNAPSHOTS / "bundled-cli.json").read_text(encoding="utf-8")
