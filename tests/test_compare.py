"""`onnx-energy compare`: figures per model, deltas against the first, the EPR ranking."""

from __future__ import annotations

import json

import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

from onnx_energy.cli import main

F = TensorProto.FLOAT
PJ = 1e-12


def matmul_file(tmp_path, name: str, k: int):
    """x[1,k] @ w[k,4]: 4k MACs, 4k mul + 4(k-1) add; k*4 + 16k + 16 bytes moved."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    m = make_model(nodes, [("x", [1, k], F)], [("y", None, F)], {"w": weights(k, 4)})
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(m.SerializeToString())
    return str(path)


def energy(k: int) -> float:
    return (4 * (k - 1) * 0.9 + 4 * k * 3.7 + (4 * k + 16 * k + 16) * 1.25) * PJ


def compare(capsys, *args):
    code = main(["compare", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_figures_deltas_and_the_energy_precision_ratio(capsys, tmp_path):
    small, big = matmul_file(tmp_path, "small", 8), matmul_file(tmp_path, "big", 32)
    code, out, err = compare(capsys, big, small, "--error", "big=0.10", "--error",
                             f"{small}=30%", "--alpha", "2", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    big_row, small_row = d["models"]
    assert big_row["macs"] == 128 and small_row["macs"] == 32
    assert small_row["energy_j"] == pytest.approx(energy(8))
    assert small_row["runtime_s"] is None  # the theoretical profile predicts no time
    assert small_row["vs_first"]["macs"] == {"delta": -96, "ratio": pytest.approx(-0.75)}
    assert small_row["vs_first"]["energy_j"]["ratio"] == pytest.approx(
        energy(8) / energy(32) - 1)
    # M = Error^α · EPI with α = 2: big 0.01 · E(32), small 0.09 · E(8)
    assert big_row["epr"] == pytest.approx(0.01 * energy(32))
    assert small_row["epr"] == pytest.approx(0.09 * energy(8))
    expected = ["big", "small"] if 0.01 * energy(32) < 0.09 * energy(8) else ["small", "big"]
    assert d["ranking"] == expected and d["alpha"] == 2
    # with α = 0 only energy counts: the small model wins
    code, out, _ = compare(capsys, big, small, "--error", "big=0.1", "--error", "small=0.3",
                           "--alpha", "0", "--format", "json")
    assert json.loads(out)["ranking"] == ["small", "big"]


def test_table_and_markdown(capsys, tmp_path):
    a, b = matmul_file(tmp_path, "a", 8), matmul_file(tmp_path, "b", 16)
    code, out, _ = compare(capsys, a, b, "--error", "a=0.2", "--carbon-intensity", "100")
    assert code == 0
    assert "deltas against a" in out and "+100.0%" in out  # MACs doubled
    assert "Energy-Precision Ratio M = Error^α · EPI" in out
    assert "latency: not predicted by this profile" in out
    assert "CO2-eq" in out
    code, out, _ = compare(capsys, a, b, "--format", "markdown")
    table = [x for x in out.splitlines() if x.startswith("|")]
    assert table[0].startswith("| model | MACs | TOs | params | peak mem | energy | latency")
    assert set(table[1]) <= set("|-:")
    assert len({x.count("|") for x in table}) == 1


@pytest.mark.parametrize("args, words", [
    (["--error", "nosuch=0.1"], ["no model named 'nosuch'"]),
    (["--error", "a=1.5"], ["between 0 and 1"]),
    (["--error", "a"], ["NAME=ERROR"]),
    (["--alpha", "-1"], ["--alpha"]),
])
def test_bad_options_exit_2(capsys, tmp_path, args, words):
    a = matmul_file(tmp_path, "a", 8)
    code, out, err = compare(capsys, a, *args)
    assert code == 2 and out == "" and "Traceback" not in err
    for w in words:
        assert w in err
