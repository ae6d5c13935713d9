"""`onnx-energy scale`: ranges, the power-law fit, the curve of a model, the plot."""

from __future__ import annotations

import json
import math

import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

from onnx_energy.cli import main
from onnx_energy.errors import ComparisonError
from onnx_energy.scale import fit_power_law, parse_range

F = TensorProto.FLOAT


def matmul_file(tmp_path):
    """x[n,16] @ w[16,16] then Softmax: MACs = 256 n."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Softmax", ["h"], ["y"], name="sm")]
    m = make_model(nodes, [("x", ["n", 16], F)], [("y", None, F)], {"w": weights(16, 16)})
    path = tmp_path / "mm.onnx"
    path.write_bytes(m.SerializeToString())
    return str(path)


@pytest.mark.parametrize("text, values", [
    ("seq=64:256:64", (64, 128, 192, 256)), ("batch=1:16:*2", (1, 2, 4, 8, 16)),
    ("n=3,5,9", (3, 5, 9)), ("n=0:2", (0, 1, 2)),
])
def test_ranges(text, values):
    r = parse_range(text)
    assert r.values == values and r.name == text.split("=")[0]


@pytest.mark.parametrize("text", ["seq", "seq=8:4", "seq=4:4", "seq=1:8:*1", "seq=a,b",
                                  "seq=0:1000000"])
def test_bad_ranges(text):
    with pytest.raises(ComparisonError):
        parse_range(text)


def test_power_law_recovers_exponent_and_coefficient():
    xs = [1, 2, 4, 8, 16]
    f = fit_power_law(xs, [3.0 * x ** 1.5 for x in xs])
    assert f.exponent == pytest.approx(1.5) and f.coefficient == pytest.approx(3.0)
    assert f.r2 == pytest.approx(1.0)
    noisy = fit_power_law(xs, [3.0 * x ** 1.5 * (1.3 if i % 2 else 0.8)
                               for i, x in enumerate(xs)])
    assert noisy.r2 < 0.99
    assert fit_power_law([0, 1, 2], [None, 5.0, 10.0]).points == 2  # x = 0 and None skipped
    assert fit_power_law([1, 2], [None, 1.0]) is None


def test_curve_of_a_model_and_its_fits(capsys, tmp_path):
    code = main(["scale", matmul_file(tmp_path), "--dim", "n=1:64:*4", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    curve = json.loads(out)["models"][0]
    assert curve["values"] == [1, 4, 16, 64]
    assert curve["metrics"]["macs"] == [256.0 * n for n in (1, 4, 16, 64)]
    assert curve["fits"]["macs"]["exponent"] == pytest.approx(1.0)
    assert curve["fits"]["macs"]["r2"] == pytest.approx(1.0)
    # energy: compute and bytes both linear in n, plus the n-independent weight read
    assert 0.8 < curve["fits"]["energy_j"]["exponent"] <= 1.0
    assert curve["fits"]["runtime_s"] is None  # the theoretical profile predicts no time
    code = main(["scale", matmul_file(tmp_path), "--dim", "n=1:64:*4"])
    out, _ = capsys.readouterr()
    assert "MACs     k = 1.000  R² = 1.0000" in out
    assert "runtime  —  (not predicted by this profile)" in out


def test_bad_scale_input(capsys, tmp_path):
    m = matmul_file(tmp_path)
    for args, words in ((["--dim", "seq=1:8"], ["'seq' is not in the model"]),
                        (["--dim", "n=1:8", "--dim", "m=1:4"], ["one design factor"]),
                        (["--dim", "n=4"], ["needs a range"])):
        code = main(["scale", m, *args])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and err.count("\n") == 1, err
        for w in words:
            assert w in err


def test_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code = main(["scale", matmul_file(tmp_path), "--dim", "n=1:64:*2", "--plot",
                 str(tmp_path / "plots")])
    capsys.readouterr()
    png = tmp_path / "plots" / "scale-n.png"
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_isfinite_guard():
    assert fit_power_law([1, 2, 3], [1.0, math.inf, 3.0]).points == 2
