"""The README's capture of the bundled example is what the command prints today."""

from __future__ import annotations

from pathlib import Path

import pytest

from onnx_energy.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_readme_shows_the_current_report_of_the_bundled_model(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("COLUMNS", raising=False)  # 100 columns: stdout is not a terminal
    assert main(["analyze", "onnx_energy/examples/small_cnn.onnx", "--batch-size", "1"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"```text\n{out}```" in readme, "regenerate the README capture"
