"""`onnx-energy analyze` output: table (--top), JSON keys, CSV rows, conventions, and the
Python API's to_dict() being the CLI JSON."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.cli import main

F = TensorProto.FLOAT


def cnn_model():
    # x[1,3,8,8] -Conv(4,3,3x3,pad1,bias)-> [1,4,8,8] -Relu- MaxPool2 -> [1,4,4,4]
    # -Flatten-> [1,64] -Gemm(10, bias)-> [1,10]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc"),
    ]
    inits = {"w": weights(4, 3, 3, 3), "b": weights(4), "fw": weights(10, 64), "fb": weights(10)}
    return make_model(nodes, [("x", [1, 3, 8, 8], F)], initializers=inits)


# Hand counts for cnn_model:
# Conv: 256 outputs (4*8*8) x 27 = 6912 MACs, 256 bias adds -> FLOPs 2*6912 + 256 = 14080
# Relu: 256 comparisons; MaxPool: 64 outputs x 4 = 256; Flatten: 0
# Gemm: 10 x 64 = 640 MACs, 10 bias adds -> FLOPs 1290
CONV_MACS, GEMM_MACS = 6912, 640
TOTAL_FLOPS = 14080 + 256 + 256 + 0 + 1290
PARAMS = 108 + 4 + 640 + 10


@pytest.fixture
def model_path(tmp_path) -> str:
    path = tmp_path / "cnn.onnx"
    path.write_bytes(cnn_model().SerializeToString())
    return str(path)


def run_cli(capsys, *args: str) -> str:
    code = main(["analyze", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def table_section(out: str, title: str) -> list[str]:
    """The rows of the table whose title starts with ``title``, header lines excluded."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title)) + 1
    while not lines[start].startswith(("op type", "node ")):
        start += 1
    end = lines.index("", start)
    return lines[start + 1:end]


def test_table_summary_then_costliest_nodes_with_readable_prefixes(capsys, model_path):
    out = run_cli(capsys, model_path)
    summary = table_section(out, "by op type")
    assert [r.split()[0] for r in summary] == ["Conv", "Gemm", "Relu", "MaxPool", "Flatten",
                                               "total"]  # costliest first, by MACs
    # Conv: 1 node, 6912 of 7552 MACs (91.5%), 14080 of 15882 FLOPs (88.7%).
    assert summary[0].split()[1:6] == ["1", "6.912", "k", "91.5%", "14.08"]
    assert "88.7%" in summary[0]
    assert summary[-1].split()[:4] == ["total", "5", "7.552", "k"]
    assert out.index("by op type") < out.index("top 4 nodes by MACs")
    rows = table_section(out, "top 4 nodes by MACs")
    # Flatten moves data only: hidden from the node list unless --show-movement.
    assert [r.split()[0] for r in rows] == ["conv", "fc", "relu", "pool"]
    assert "1x4x8x8" in rows[0] and "6.912 k" in rows[0]
    assert "1 zero-cost movement hidden (--show-movement)" in out
    assert "lower bounds" not in out


@pytest.mark.parametrize("top", [1, 2, 3])
def test_top_shows_the_n_costliest_nodes(capsys, model_path, top):
    out = run_cli(capsys, model_path, "--top", str(top))
    rows = table_section(out, f"top {top} node")
    assert len(rows) == top
    # By MACs then FLOPs: conv (6912), fc (640), then relu/pool tie on 256 FLOPs.
    assert [r.split()[0] for r in rows][:2] == ["conv", "fc"][:top]


def test_json_has_the_issue_keys(capsys, model_path):
    d = json.loads(run_cli(capsys, model_path, "--format", "json"))
    assert {"model", "convention", "inputs", "nodes", "by_op_type", "totals", "unsupported",
            "unresolved"} <= set(d)
    assert d["convention"] == "dot"
    assert d["inputs"] == [{"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32"}]
    node = d["nodes"][0]
    assert {"name", "op_type", "domain", "inputs", "outputs", "macs", "flops", "params",
            "bytes_read", "bytes_written"} <= set(node)
    assert node["inputs"][1] == {"name": "w", "shape": [4, 3, 3, 3], "dtype": "float32"}
    assert node["outputs"] == [{"name": "c", "shape": [1, 4, 8, 8], "dtype": "float32"}]
    assert node["bytes_read"] == 4 * (192 + 108 + 4)  # x, w, b floats
    assert node["bytes_written"] == 4 * 256
    assert {"count", "macs", "flops", "params"} <= set(d["by_op_type"]["Conv"])
    assert d["by_op_type"]["Conv"]["macs"] == CONV_MACS
    assert d["by_op_type"]["Gemm"]["params"] == 650
    assert {"macs", "flops", "params", "bytes_read", "bytes_written"} <= set(d["totals"])
    assert d["totals"]["macs"] == CONV_MACS + GEMM_MACS
    assert d["totals"]["flops"] == TOTAL_FLOPS
    assert d["totals"]["params"] == PARAMS
    assert d["unsupported"] == {} and d["unresolved"] == []


def test_csv_has_one_numeric_row_per_node(capsys, model_path):
    out = run_cli(capsys, model_path, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == ["conv", "relu", "pool", "flatten", "fc"]
    numeric = ("macs", "flops", "params", "bytes_read", "bytes_written")
    values = {r["name"]: {k: int(r[k]) for k in numeric} for r in rows}
    assert values["conv"]["macs"] == CONV_MACS
    assert values["fc"]["flops"] == 1290
    assert sum(v["flops"] for v in values.values()) == TOTAL_FLOPS
    assert sum(v["params"] for v in values.values()) == PARAMS
    assert values["flatten"] == {"macs": 0, "flops": 0, "params": 0,
                                 "bytes_read": 256, "bytes_written": 256}  # 64 floats
    assert all(r["status"] == "ok" for r in rows)
    assert rows[0]["output_shape"] == "1x4x8x8"


def test_seed_convention_from_the_cli(capsys, model_path):
    d = json.loads(run_cli(capsys, model_path, "--format", "json", "--convention", "seed"))
    assert d["convention"] == "seed"
    by = {k: v["macs"] for k, v in d["by_op_type"].items()}
    # Conv/Gemm: MACs + bias adds; others FLOPs/2 (MaxPool 4*64/2, Relu 256/2).
    assert by == {"Conv": 6912 + 256, "Relu": 128, "MaxPool": 128, "Flatten": 0,
                  "Gemm": 640 + 10}
    assert d["totals"]["flops"] == TOTAL_FLOPS  # FLOPs do not depend on the convention


def test_api_to_dict_is_the_cli_json(capsys, model_path):
    for convention in ("dot", "seed"):
        cli_json = json.loads(run_cli(capsys, model_path, "--format", "json",
                                      "--convention", convention))
        assert onnx_energy.analyze(model_path, convention=convention).to_dict() == cli_json
        # From a ModelProto: the same data; only the label differs (no path to show).
        from_proto = onnx_energy.analyze(cnn_model(), convention=convention).to_dict()
        assert from_proto.pop("model") == "test"  # the graph name
        cli_json.pop("model")
        assert from_proto == cli_json
