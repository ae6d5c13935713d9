"""The analysis table people read: it fits the width, leads with the summary and the
costliest nodes, hides zero-cost movement, marks lower bounds and assumed batches, labels
training columns with their phase, and can be extended with a metric."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model, run_cli, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.cli.options import output_width
from onnx_energy.render import analysis as render
from onnx_energy.render.table import Column, common_prefix, layout, middle, name, shape

F = TensorProto.FLOAT
BLOCKS = 53  # ResNet-50 has 53 Conv, 49 Relu, 16 Add and, exported, dozens of Identity


def resnet_sized():
    """A ResNet-50-sized chain with long, torch-export-style names: per block an Identity on
    the weight, a Conv, a Relu, and every third block a residual Add."""
    nodes, inits = [], {}
    h = "x"
    for i in range(BLOCKS):
        prefix = f"/backbone/encoder_stage_{i // 10}/residual_bottleneck_block_{i}/conv_{i}"
        inits[f"w{i}_raw"] = weights(8, 8, 1, 1, seed=i)
        nodes.append(helper.make_node("Identity", [f"w{i}_raw"], [f"w{i}"],
                                      name=f"Identity_{i}"))
        nodes.append(helper.make_node("Conv", [h, f"w{i}"], [f"c{i}"], name=f"{prefix}/Conv"))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"{prefix}/Relu"))
        h = f"r{i}"
        if i % 3 == 2:
            nodes.append(helper.make_node("Add", [h, f"r{i - 2}"], [f"a{i}"],
                                          name=f"{prefix}/Add"))
            h = f"a{i}"
    return make_model(nodes, [("x", ["batch", 8, 4, 4], F)], [(h, None, F)], initializers=inits)


@pytest.fixture(scope="module")
def resnet_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "resnet_sized.onnx"
    path.write_bytes(resnet_sized().SerializeToString())
    return str(path)


def lines_of(out: str, title: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = lines.index("", start)
    return lines[start:end]


def node_rows(out: str, title: str) -> list[str]:
    """The rows of a node table: what follows its header line."""
    section = lines_of(out, title)
    header = next(i for i, line in enumerate(section) if line.startswith("node  "))
    return section[header + 1:]


def test_a_resnet_sized_graph_fits_100_columns_and_starts_with_the_summary(capsys,
                                                                          resnet_path):
    code, out, _ = run_cli(capsys, resnet_path)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 100
    lines = out.splitlines()
    assert lines[2].startswith("batch     1, assumed: the inputs' leading dim 'batch' was unbound")
    summary = lines_of(out, "by op type")
    assert summary[2].split()[:2] == ["Conv", str(BLOCKS)]
    assert summary[2].split()[4] == "100.0%"  # every MAC is a Conv's
    assert summary[-1].split()[:2] == ["total", str(3 * BLOCKS + BLOCKS // 3)]
    top = lines_of(out, "top 20 nodes by MACs")
    assert f"{BLOCKS} zero-cost movement hidden" in top[0]
    assert top[1] == "node names below /backbone/"
    rows = node_rows(out, "top 20 nodes by MACs")
    assert len(rows) == 20
    assert all(" Conv " in r for r in rows)  # no Identity row crowds the costliest
    assert any("…" in r.split()[0] for r in rows)  # long names shortened in the middle
    assert all(r.split()[0].endswith("/Conv") for r in rows)  # ... keeping the leaf


def test_movement_nodes_all_nodes_and_sort(capsys, resnet_path):
    _, out, _ = run_cli(capsys, resnet_path, "--nodes", "all", "--show-movement")
    rows = node_rows(out, "all ")
    total_nodes = BLOCKS * 3 + BLOCKS // 3
    assert len(rows) == total_nodes
    assert rows[0].split()[1] == "Identity"  # graph order
    _, out, _ = run_cli(capsys, resnet_path, "--nodes", "all")
    assert len(node_rows(out, "all ")) == total_nodes - BLOCKS
    _, out, _ = run_cli(capsys, resnet_path, "--sort", "bytes", "--top", "3")
    rows = node_rows(out, "top 3 nodes by bytes")
    assert [r.split()[1] for r in rows] == ["Add", "Add", "Add"]  # 3 tensors of 512 B each
    _, out, _ = run_cli(capsys, resnet_path, "--nodes", "none")
    assert "nodes by" not in out and "by op type" in out


def test_a_narrow_width_drops_the_most_expendable_columns_and_says_so(capsys, resnet_path,
                                                                     monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    assert output_width() == 72
    _, out, _ = run_cli(capsys, resnet_path)
    assert max(len(line) for line in out.splitlines()) <= 72
    assert "(not shown at 72 columns: TOs fp32" in out
    monkeypatch.delenv("COLUMNS")
    assert output_width() == 100  # not a terminal


def test_lower_bounds_show_the_known_sum_the_gap_and_the_flags(capsys, tmp_path):
    # a[2,8] @ W is known (64 MACs); b[batch,seq] -> Relu is not.
    nodes = [helper.make_node("MatMul", ["a", "w"], ["h"], name="mm"),
             helper.make_node("Relu", ["b"], ["r"], name="relu")]
    model = make_model(nodes, [("a", [2, 8], F), ("b", ["batch", "seq"], F)],
                       [("h", None, F), ("r", None, F)], initializers={"w": weights(8, 4)})
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    code, out, _ = run_cli(capsys, str(path))
    assert code == 0
    assert out.splitlines()[3:5] == [
        "note      totals are lower bounds (≥ …): 1 of 2 nodes not counted; bind with: "
        "--batch-size N",
        "          --dim seq=N"]
    summary = lines_of(out, "by op type")
    total = summary[-1]
    assert total.split()[:5] == ["total", "2", "≥", "64", "100.0%"]
    relu = next(r for r in summary if r.startswith("Relu"))
    assert relu.split()[:4] == ["Relu", "1", "?", "?"]  # nothing known: never a 0
    assert "unresolved shapes, 1 node(s): relu (Relu)" in out


def test_training_columns_name_their_phase(capsys, tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1, name="fc")]
    model = make_model(nodes, [("x", [2, 4], F)], initializers={"w": weights(3, 4)})
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    _, out, _ = run_cli(capsys, str(path), "--phase", "training", "--loss", "mse")
    summary = lines_of(out, "by op type")
    assert summary[1] == "train = one training step: forward + backward + loss (mse)"
    assert summary[2].split() == ["op", "type", "nodes", "MACs", "%", "FLOPs", "%", "bytes",
                                  "%", "params", "TOs"]
    assert summary[3].split() == ["train", "train", "train", "fp32", "train"]
    # 24 forward MACs, dW only in the backward (x is data): 24 more.
    assert summary[4].split()[:3] == ["Gemm", "1", "48"]
    phases = lines_of(out, "by phase")
    assert [r.split()[:2] for r in phases[2:]] == [["forward", "24"], ["backward", "24"],
                                                   ["loss", "(mse)"], ["total", "48"]]


def test_cells_shorten_in_the_middle_and_shapes_at_dim_boundaries():
    assert middle("/model/encoder/layer.11/attention/MatMul", 20) == "/model/…ntion/MatMul"
    assert len(middle("x" * 50, 20)) == 20
    # Node names lose whole segments, never the leaf, and keep their layer indices.
    assert name("model/layers.0/mlp/gate_proj/MatMul", 32) == "…/layers.0/mlp/gate_proj/MatMul"
    assert name("layer.11/intermediate/dense/MatMul", 28) == "layer.11/…/dense/MatMul"
    assert name("features.1/features.1.0/mlp/mlp.0/MatMul", 32) == (
        "…/features.1.0/mlp/mlp.0/MatMul")  # features.1 repeats in features.1.0
    assert name("a_very_long_leaf_without_any_separator", 12) == "a_ve…parator"
    assert name("stem/BatchNormalization", 21) == "stem/Bat…ormalization"  # not just the leaf
    assert shape("1x12x128x128", 10) == "1x…x128"
    assert shape("1x12x128x128", 12) == "1x12x128x128"
    assert common_prefix(["/a/b/c", "/a/b/d/e"]) == "/a/b/"
    assert common_prefix(["/a/b", "/a/c"]) == "/a/"
    assert common_prefix(["/a/", "/a/b"]) == ""  # a prefix must leave a name
    assert common_prefix(["only"]) == ""


def test_layout_keeps_fixed_columns_and_shrinks_the_shrinkable():
    cols = [Column("name", lambda r: r[0], align="left", shrink=middle, min_width=6),
            Column("value", lambda r: r[1])]
    table = layout(cols, [("a-very-long-name", "1"), ("b", "22")], 14)
    assert table.lines == ["name     value", "a-…name      1", "b           22"]
    assert table.dropped == []


def test_a_module_can_add_a_metric_column(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(render, "METRICS", list(render.METRICS))
    render.add_metric(render.Metric("half", "half MACs",
                                    lambda _a, x, p: (x.macs or 0) / 2, share=True),
                      before="flops")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    model = make_model(nodes, [("x", [2, 8], F)], initializers={"w": weights(8, 4)})
    analysis = onnx_energy.analyze(model)
    text = render.render_table(analysis, render.TableOptions(sort="half"))
    summary = lines_of(text, "by op type")
    assert summary[1].split()[:7] == ["op", "type", "nodes", "MACs", "%", "half", "MACs"]
    assert summary[2].split()[:6] == ["MatMul", "1", "64", "100.0%", "32", "100.0%"]
    assert "top 1 node by half MACs" in text
    assert "half" in render.sort_keys()


def test_json_and_csv_ignore_the_table_options(capsys, resnet_path):
    _, full, _ = run_cli(capsys, resnet_path, "--format", "csv")
    _, top, _ = run_cli(capsys, resnet_path, "--format", "csv", "--top", "3", "--sort", "bytes")
    assert full == top and full.count("\n") == 1 + BLOCKS * 3 + BLOCKS // 3


def test_zero_cost_movement_op_types_fold_into_one_row(capsys, tmp_path):
    nodes = [helper.make_node("Identity", ["w0"], ["w"], name="id"),
             helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Reshape", ["m", "s"], ["y"], name="reshape")]
    model = make_model(nodes, [("x", [2, 8], F)],
                       initializers={"w0": weights(8, 4), "s": np.array([8], np.int64)})
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    _, out, _ = run_cli(capsys, str(path))
    summary = lines_of(out, "by op type")
    assert "(data movement: 2 op types, --show-movement)" in summary[0]
    assert [r.split()[0] for r in summary[2:]] == ["MatMul", "data", "total"]
    assert summary[3].split()[:3] == ["data", "movement", "2"]
    _, out, _ = run_cli(capsys, str(path), "--show-movement")
    assert [r.split()[0] for r in lines_of(out, "by op type")[2:]] == [
        "MatMul", "Identity", "Reshape", "total"]
