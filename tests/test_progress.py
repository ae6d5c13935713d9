"""The progress line: silent off a terminal when asked, delayed, cleared."""

from __future__ import annotations

import io

import pytest

from onnx_energy.cli.options import ProgressLine


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tty_only_progress_stays_silent_in_pipes(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    line = ProgressLine("analyzing", tty_only=True)
    line("loading")
    line.clear()
    assert err.getvalue() == ""


def test_progress_rewrites_one_line_on_a_terminal_and_clears_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = FakeTTY()
    monkeypatch.setattr("sys.stderr", err)
    line = ProgressLine("analyzing", tty_only=True)
    line("loading")
    line("costing 10 nodes")
    line.clear()
    assert err.getvalue() == ("\r\033[Kanalyzing: loading\r\033[Kanalyzing: costing 10 nodes"
                              "\r\033[K")


def test_progress_waits_before_speaking(monkeypatch: pytest.MonkeyPatch) -> None:
    err = FakeTTY()
    monkeypatch.setattr("sys.stderr", err)
    line = ProgressLine("analyzing", after_s=3600)
    line("loading")
    line.clear()
    assert err.getvalue() == ""


def test_measure_style_progress_writes_a_line_per_step_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    line = ProgressLine("measuring")
    line("window 1/5")
    line("window 2/5")
    line.clear()
    assert err.getvalue() == "measuring: window 1/5\nmeasuring: window 2/5\n"
