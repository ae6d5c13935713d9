"""Binding symbolic dims: --dim NAME=VALUE, --batch-size N, and their one-line errors."""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_line_error, make_model, run_cli, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.cli import main
from onnx_energy.errors import BindingError

F = TensorProto.FLOAT


def seq_model(batch="batch"):
    # x[batch, seq, 8] @ w[8,4] -> [batch, seq, 4]: batch*seq*4 outputs x 8 MACs.
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    return make_model([node], [("x", [batch, "seq", 8], F)], initializers={"w": weights(8, 4)})


@pytest.fixture
def seq_path(tmp_path) -> str:
    path = tmp_path / "seq.onnx"
    path.write_bytes(seq_model().SerializeToString())
    return str(path)


@pytest.fixture
def fixed_path(tmp_path) -> str:
    path = tmp_path / "fixed.onnx"
    path.write_bytes(seq_model(batch=1).SerializeToString())
    return str(path)


def test_dim_binds_by_name(capsys, seq_path):
    code, out, err = run_cli(capsys, seq_path, "--dim", "seq=16", "--dim", "batch=3",
                             "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["bindings"] == {"seq": 16, "batch": 3}
    assert d["unbound_dims"] == []
    assert d["inputs"][0]["shape"] == [3, 16, 8]
    assert d["totals"]["macs"] == 3 * 16 * 4 * 8  # 1536
    assert d["totals"]["complete"] is True


def test_batch_size_binds_the_leading_dim(capsys, seq_path):
    code, out, _ = run_cli(capsys, seq_path, "--batch-size", "2", "--dim", "seq=5",
                           "--format", "json")
    assert code == 0
    d = json.loads(out)
    assert d["bindings"] == {"seq": 5, "batch": 2}
    assert d["totals"]["macs"] == 2 * 5 * 4 * 8  # 320


def test_partial_binding_lists_the_missing_dim(capsys, seq_path):
    # Only batch bound: seq stays symbolic, MatMul is unresolved (never counted as 0).
    code, out, _ = run_cli(capsys, seq_path, "--batch-size", "1", "--format", "json")
    assert code == 0
    d = json.loads(out)
    assert d["unbound_dims"] == ["seq"]
    assert d["totals"]["complete"] is False
    assert d["nodes"][0]["macs"] is None
    assert d["unresolved"][0]["dims"] == ["seq"]
    code, out, _ = run_cli(capsys, seq_path, "--batch-size", "1")
    assert "--dim seq=N" in out  # the table says how to bind it


def test_unknown_dim_name_lists_the_models_dims(capsys, seq_path):
    code, out, err = run_cli(capsys, seq_path, "--dim", "sequence=16")
    assert_one_line_error(code, out, err, "'sequence'", "batch, seq")


def test_unknown_dim_on_a_static_model(capsys, tmp_path):
    # A model with no symbolic dims says so: "none".
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [2, 3], F)])
    path = tmp_path / "static.onnx"
    path.write_bytes(model.SerializeToString())
    assert_one_line_error(*run_cli(capsys, str(path), "--dim", "n=1"), "'n'", "none")


def test_batch_size_rebatches_a_fixed_batch_export(capsys, fixed_path):
    # [4,2,8] @ [8,4] = 4*2*4*8 = 256 MACs: the graph allows re-batching.
    code, out, err = run_cli(capsys, fixed_path, "--batch-size", "4", "--dim", "seq=2",
                             "--format", "json")
    assert code == 0, err
    assert json.loads(out)["inputs"][0]["shape"] == [4, 2, 8]
    assert json.loads(out)["totals"]["macs"] == 256
    # The same batch: [1,2,8] @ [8,4] = 2*4*8 = 64 MACs.
    code, out, _ = run_cli(capsys, fixed_path, "--batch-size", "1", "--dim", "seq=2",
                           "--format", "json")
    assert code == 0
    assert json.loads(out)["totals"]["macs"] == 64


@pytest.mark.parametrize("arg", ["foo", "=3", "seq=abc", "seq=1.5", "seq="])
def test_bad_dim_syntax(capsys, seq_path, arg):
    assert_one_line_error(*run_cli(capsys, seq_path, "--dim", arg), "--dim")


@pytest.mark.parametrize("args", [
    ("--dim", "seq=-3"), ("--batch-size", "0"), ("--batch-size", "-2"),
])
def test_zero_or_negative_values(capsys, seq_path, args):
    # Named in the one-line error: the option and the refused value.
    assert_one_line_error(*run_cli(capsys, seq_path, *args), args[0], args[1].split("=")[-1])


def test_api_binding_errors():
    with pytest.raises(BindingError, match="not in the model"):
        onnx_energy.analyze(seq_model(), dims={"nope": 2})
    with pytest.raises(BindingError):
        onnx_energy.analyze(seq_model(), dims={"seq": -1})
    with pytest.raises(BindingError, match="disagree"):
        onnx_energy.analyze(seq_model(), dims={"batch": 3}, batch_size=2)
    a = onnx_energy.analyze(seq_model(), dims={"seq": 7}, batch_size=2)
    assert a.totals.macs == 2 * 7 * 4 * 8  # 448


def test_strict_fails_on_unbound_dims(capsys, seq_path):
    # seq left unbound: the MatMul is unresolved, which --strict turns into exit code 3.
    code = main(["analyze", seq_path, "--batch-size", "1", "--strict"])
    _, err = capsys.readouterr()
    assert code == 3
    assert "1 with unresolved shapes" in err and err.count("\n") >= 1
    assert main(["analyze", seq_path, "--batch-size", "1", "--dim", "seq=4", "--strict"]) == 0
