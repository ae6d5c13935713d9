"""Bad input through the CLI: exactly one line on stderr, exit code 2, never a traceback.
Ops without a cost rule are listed under `unsupported` in every format; --strict exits 3."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import assert_one_line_error, make_model, run_cli, weights
from onnx import TensorProto, helper

F = TensorProto.FLOAT


def small_model() -> onnx.ModelProto:
    # x[1,3,8,8] -Conv(4,3,3x3)-> [1,4,6,6] -Relu-
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    return make_model(nodes, [("x", [1, 3, 8, 8], F)], initializers={"w": weights(4, 3, 3, 3)})


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_missing_file(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, str(tmp_path / "nope.onnx")), "no such file")


def test_directory(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, str(tmp_path)), "directory")


def test_empty_file(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, write(tmp_path / "e.onnx", b"")), "empty")


@pytest.mark.parametrize("data", [
    b"this is plain text, not an ONNX model\n",
    b"ir_version: 8\ngraph { node { op_type: 'Relu' } }\n",  # ONNX text format, not protobuf
    np.random.default_rng(0).bytes(4096),
    np.random.default_rng(1).bytes(17),
    b"\x08",  # a field tag with its value cut off
], ids=["text", "onnx-text-format", "random-4k", "random-17", "one-byte"])
def test_not_onnx(capsys, tmp_path, data):
    assert_one_line_error(*run_cli(capsys, write(tmp_path / "bad.onnx", data)), "bad.onnx")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_protobuf(capsys, tmp_path, keep):
    data = small_model().SerializeToString()
    cut = write(tmp_path / "cut.onnx", data[: int(len(data) * keep)])
    assert_one_line_error(*run_cli(capsys, cut), "cut.onnx")


def test_dangling_input(capsys, tmp_path):
    # Relu reads "ghost", which no node, input or initializer defines.
    model = make_model([helper.make_node("Relu", ["ghost"], ["y"])], [("x", [2], F)])
    path = write(tmp_path / "dangling.onnx", model.SerializeToString())
    assert_one_line_error(*run_cli(capsys, path), "ghost")


def test_cycle(capsys, tmp_path):
    # a = x + b, b = Relu(a): each node waits for the other.
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="add"),
             helper.make_node("Relu", ["a"], ["b"], name="relu")]
    model = make_model(nodes, [("x", [2], F)], [("b", [2], F)])
    path = write(tmp_path / "cycle.onnx", model.SerializeToString())
    assert_one_line_error(*run_cli(capsys, path), "cycle")


def external_model(location: str) -> onnx.ModelProto:
    """The small model with its Conv weight stored externally at ``location`` (never read)."""
    model = small_model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(108 * 4))):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    return model


def test_external_data_absent_is_fine(capsys, tmp_path):
    # The weight file does not exist: analysis never reads weights, so it still works.
    path = write(tmp_path / "ext.onnx", external_model("weights.bin").SerializeToString())
    code, out, err = run_cli(capsys, path, "--format", "json")
    assert code == 0, err
    # Conv [1,4,6,6] = 144 outputs x 27 = 3888 MACs; the weight header gives 108 params.
    assert json.loads(out)["totals"]["macs"] == 3888
    assert json.loads(out)["totals"]["params"] == 108


@pytest.mark.parametrize("location", ["../x.bin", "sub/../../x.bin", "/etc/passwd"])
def test_external_data_escaping_the_folder(capsys, tmp_path, location):
    folder = tmp_path / "model"
    folder.mkdir()
    path = write(folder / "m.onnx", external_model(location).SerializeToString())
    assert_one_line_error(*run_cli(capsys, path), "refused")


def test_external_data_symlink_to_outside(capsys, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"\0" * 432)
    os.symlink(tmp_path / "outside.bin", folder / "w.bin")
    path = write(folder / "m.onnx", external_model("w.bin").SerializeToString())
    assert_one_line_error(*run_cli(capsys, path), "refused")


def test_real_process_prints_one_line(tmp_path):
    # The console path end to end: `python -m onnx_energy` on a non-ONNX file.
    bad = write(tmp_path / "bad.onnx", b"not a model at all")
    proc = subprocess.run([sys.executable, "-m", "onnx_energy", "analyze", bad],
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("onnx-energy: error:")


# ------------------------------------------------------------------------- unsupported ops


def custom_op_model() -> onnx.ModelProto:
    # Relu [1,4] then two nodes of a custom-domain op: no cost rule.
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Frobnicate", ["r"], ["f"], domain="com.example", name="frob1"),
             helper.make_node("Frobnicate", ["f"], ["y"], domain="com.example", name="frob2")]
    return make_model(nodes, [("x", [1, 4], F)], [("y", [1, 4], F)],
                      extra_opsets={"com.example": 1})


@pytest.fixture
def custom_path(tmp_path) -> str:
    return write(tmp_path / "custom.onnx", custom_op_model().SerializeToString())


def test_unsupported_listed_in_table(capsys, custom_path):
    code, out, err = run_cli(capsys, custom_path)
    assert code == 0
    assert "\n  no cost rule: com.example::Frobnicate x2\n" in out
    assert "note      totals are lower bounds (≥ …): 2 of 3 nodes not counted\n" in out


def test_unsupported_listed_in_json(capsys, custom_path):
    code, out, err = run_cli(capsys, custom_path, "--format", "json")
    assert code == 0
    d = json.loads(out)
    assert d["unsupported"] == {"com.example::Frobnicate": 2}
    assert d["totals"]["complete"] is False
    assert d["totals"]["flops"] == 4  # only the Relu: 4 comparisons
    frob = [n for n in d["nodes"] if n["op_type"] == "Frobnicate"]
    assert [n["status"] for n in frob] == ["unsupported", "unsupported"]
    assert all(n["macs"] is None and n["flops"] is None for n in frob)  # never counted as 0
    assert "com.example::Frobnicate x2" in err  # also named on stderr


def test_unsupported_listed_in_csv(capsys, custom_path):
    code, out, err = run_cli(capsys, custom_path, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["status"] for r in rows] == ["ok", "unsupported", "unsupported"]
    assert rows[1]["domain"] == "com.example" and rows[1]["macs"] == ""
    assert "com.example::Frobnicate x2" in err


def test_strict_exits_3(capsys, custom_path):
    code, out, err = run_cli(capsys, custom_path, "--strict")
    assert code == 3
    assert "Traceback" not in err and err.count("\n") == 1
    assert "2 node(s) without a cost rule" in err
    # Without unsupported ops --strict changes nothing.
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [1, 4], F)])
    ok = write(Path(custom_path).with_name("ok.onnx"), model.SerializeToString())
    assert run_cli(capsys, ok, "--strict")[0] == 0


def test_a_tensor_file_is_not_a_model(capsys, tmp_path):
    # A serialized TensorProto (e.g. a weights .pb) parses as protobuf but has no graph.
    tensor = onnx.numpy_helper.from_array(weights(64, 64), "w")
    path = write(tmp_path / "weights.onnx", tensor.SerializeToString())
    assert_one_line_error(*run_cli(capsys, path), "weights.onnx")


def test_opset_newer_than_onnx_supports(capsys, tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [2], F)], opset=999)
    path = write(tmp_path / "future.onnx", model.SerializeToString())
    assert_one_line_error(*run_cli(capsys, path), "opset 999")


@pytest.mark.parametrize("dim", [-5, 2**50])
def test_absurd_input_dim(capsys, tmp_path, dim):
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [dim, 3], F)])
    path = write(tmp_path / "absurd.onnx", model.SerializeToString())
    assert_one_line_error(*run_cli(capsys, path), str(dim))


def test_external_data_in_a_constant_attribute_escaping(capsys, tmp_path):
    # The escape hides in a Constant node's tensor attribute, not in an initializer.
    value = onnx.numpy_helper.from_array(weights(4), "k")
    value.ClearField("raw_data")
    value.data_location = TensorProto.EXTERNAL
    entry = value.external_data.add()
    entry.key, entry.value = "location", "../../secret.bin"
    nodes = [helper.make_node("Constant", [], ["k"], value=value),
             helper.make_node("Add", ["x", "k"], ["y"])]
    model = make_model(nodes, [("x", [4], F)])
    path = write(tmp_path / "const.onnx", model.SerializeToString())
    assert_one_line_error(*run_cli(capsys, path), "refused", "Constant")
