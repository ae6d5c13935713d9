"""One error prefix for every way the CLI refuses: click's usage errors, our errors, Ctrl-C
and bugs all print one ``onnx-energy: error: …`` line."""

from __future__ import annotations

import pytest

from onnx_energy.cli import main
from onnx_energy.errors import ModelLoadError


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert out == ""
    err = err.lstrip("\n")  # click ends the ^C line on Ctrl-C
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return code, err


@pytest.mark.parametrize(("args", "words"), [
    (("analyze",), ["Missing argument 'MODEL'", "(see 'onnx-energy analyze --help')"]),
    (("analyze", "m.onnx", "--top", "0"), ["--top", "0 is not in the range"]),
    (("analyze", "m.onnx", "--bogus"), ["No such option '--bogus'"]),
    (("bogus",), ["No such command 'bogus'", "(see 'onnx-energy --help')"]),
    (("measure", "m.onnx", "--sensor", "joulemeter"), ["--sensor", "joulemeter"]),
])
def test_usage_errors_share_the_prefix(capsys, args, words):
    code, err = run(capsys, *args)
    assert code == 2
    assert err.startswith("onnx-energy: error: ")
    for w in words:
        assert w in err


def test_interrupt_and_internal_errors_share_the_prefix(capsys, monkeypatch):
    import onnx_energy.cli.analyze as cmd

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cmd, "analyze", interrupted)
    assert run(capsys, "analyze", "m.onnx") == (130, "onnx-energy: error: interrupted\n")

    def bug(*_a, **_k):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cmd, "analyze", bug)
    code, err = run(capsys, "analyze", "m.onnx")
    assert code == 1
    assert err.startswith("onnx-energy: error: internal error: RuntimeError: boom second line")

    def refused(*_a, **_k):
        raise ModelLoadError("m.onnx: no such file")

    monkeypatch.setattr(cmd, "analyze", refused)
    assert run(capsys, "analyze", "m.onnx") == (2, "onnx-energy: error: m.onnx: no such file\n")
