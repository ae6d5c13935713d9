"""Measurement one can trust at a glance: noise warnings, --target-cv, what per-node
coverage means, missing weights, and the CSV output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import TensorProto, helper, numpy_helper

from onnx_energy.cli import main
from onnx_energy.errors import MissingWeightsError
from onnx_energy.measure.measurement import (
    Attempt,
    Measurement,
    coverage,
    measure,
    measure_until,
    quality_warnings,
)
from onnx_energy.measure.protocol import Window
from onnx_energy.render.measurement import render_csv, render_table

F = TensorProto.FLOAT


def window(runtime_s: float, iterations: int = 100) -> Window:
    return Window(0, iterations, runtime_s * iterations, runtime_s, None, None, None, "")


def fake_runs(cvs: list[float]):
    """A run function whose n-th attempt has windows spread to give about ``cvs[n]``."""
    calls: list[float] = []

    def run(window_s: float, run_id: str) -> Attempt:
        spread = cvs[len(calls)]
        calls.append(window_s)
        return Attempt(window_s, run_id, [window(1 - spread), window(1 + spread)], [])

    return run, calls


def test_target_cv_doubles_the_windows_until_it_is_met() -> None:
    run, calls = fake_runs([0.2, 0.05, 0.01, 0.0])
    attempts = measure_until(run, 1.0, 0.02, 30.0)
    assert calls == [1.0, 2.0, 4.0]
    assert attempts[-1].runtime_cv is not None and attempts[-1].runtime_cv <= 0.02
    assert len({a.run_id for a in attempts}) == 3  # each attempt is a run of its own


def test_target_cv_stops_at_the_window_cap() -> None:
    run, calls = fake_runs([0.2, 0.2, 0.2, 0.2])
    attempts = measure_until(run, 1.0, 0.02, 3.0)
    assert calls == [1.0, 2.0, 3.0]
    assert attempts[-1].runtime_cv is not None and attempts[-1].runtime_cv > 0.02


def test_without_a_target_one_attempt() -> None:
    run, calls = fake_runs([0.2])
    assert len(measure_until(run, 2.0, None, 30.0)) == 1 and calls == [2.0]


def test_noise_and_short_windows_are_warned_about() -> None:
    quiet = quality_warnings(0.01, [200, 210], 0.01, 2.0, None, None, 30.0)
    assert quiet == []
    noisy = quality_warnings(0.073, [200, 210], 0.01, 2.0, None, None, 30.0)
    assert noisy == ["runtime CV 7.30% across windows is above 5%: lengthen the windows with "
                     "--target-cv 0.02 (or --min-window), and measure on a quiet machine"]
    # A 0.8 s model in 2 s windows: 2-3 inferences each; 10 need about 9.6 s.
    short = quality_warnings(0.01, [3, 2, 3], 0.8, 2.0, None, None, 30.0)
    assert short == ["3 of 3 windows ran fewer than 10 inferences (fewest: 2): one slow run "
                     "sways them; --min-window 10 or more gives 10"]
    missed = quality_warnings(0.03, [50, 50], 0.01, 8.0, 0.02, False, 8.0)
    assert missed == ["target CV 2.00% not met: 3.00% with windows of 8 s, the --max-window "
                      "cap (8 s)"]


def test_coverage_explains_kernels_above_and_below_the_runtime() -> None:
    # A small CNN: 245% of a 100 µs runtime over 20 kernels: 7.25 µs of profiler per kernel.
    fraction, overhead, note = coverage(245e-6, 100e-6, 20)
    assert fraction == pytest.approx(2.45)
    assert overhead == pytest.approx(7.25e-6)
    assert note == ("kernels sum to 245% of the runtime: the profiler adds about 7.25 µs to "
                    "each of the 20 kernels per inference, which weighs most on tiny kernels; "
                    "node times are overstated, their order and rough shares hold")
    fraction, overhead, note = coverage(0.062, 0.1, 300)  # ViT-B/16 on a GPU: 62%
    assert fraction == pytest.approx(0.62) and overhead is None
    assert note is not None and note.startswith("kernels sum to 62% of the runtime: the rest "
                                                "is time outside kernels")
    assert coverage(0.1, 0.1, 5)[2] == "kernels sum to 100% of the runtime"
    assert coverage(None, 0.1, 0) == (None, None, None)


def result(**extra) -> Measurement:
    fields = dict(model="m.onnx", model_sha256="ab" * 32, spec=None, provider="cpu", threads=1,
                  dims={}, batch_size=1, inputs=[], seed=0, sensor="none",
                  sensor_detail={"name": "none", "mode": None, "domains": []},
                  estimate=False, runtime_s=0.01, runtime_cv=0.073, energy_j=None,
                  energy_dynamic_j=None, energy_cv=None, power_w=None, idle_power_w=None,
                  windows=2, windows_failed=0, iterations=[200, 210],
                  energy_note="not measured: no sensor (--sensor none)", min_window_s=2.0,
                  max_window_s=30.0)
    fields.update(extra)
    return Measurement(**fields)


def test_the_table_shows_warnings_and_the_target() -> None:
    m = result(warnings=["runtime CV 7.30% across windows is above 5%: x"], target_cv=0.02,
               target_cv_met=False, attempts=[Attempt(2.0, "a", [], [])] * 3)
    text = render_table(m)
    assert "warning   runtime CV 7.30% across windows is above 5%: x\n" in text
    assert "target    CV 2.00%: NOT met after 3 attempt(s) (windows up to 30 s)\n" in text
    assert "windows of 2 s, CV 7.30%" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_csv_is_one_summary_row() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(result(dims={"seq": 8})))))
    assert len(rows) == 1
    row = rows[0]
    assert row["runtime_s"] == "0.01" and row["energy_j"] == "" and row["sensor"] == "none"
    assert row["dims"] == "seq=8" and row["windows"] == "2" and row["min_window_s"] == "2.0"


def relu_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    return make_model(nodes, [("x", [1, 64], F)], [("y", [1, 64], F)])


def test_measure_csv_and_target_cv_through_the_cli(tmp_path: Path, capsys) -> None:
    path = tmp_path / "relu.onnx"
    onnx.save(relu_model(), path)
    code = main(["measure", str(path), "--min-window", "0.01", "--repeats", "2", "-q",
                 "--target-cv", "0.9", "--max-window", "0.02", "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 0
    d = json.loads(out)
    assert d["target_cv"] == 0.9 and d["target_cv_met"] is True  # 90% is met at once
    assert d["max_window_s"] == 0.02 and d["min_window_s"] == 0.01
    assert [a["min_window_s"] for a in d["attempts"]] == [0.01]
    assert d["attempts"][0]["run_id"] == d["run_id"]
    assert isinstance(d["warnings"], list)
    code = main(["measure", str(path), "--min-window", "0.01", "--repeats", "2", "-q",
                 "--format", "csv", "--per-node"])
    out, _ = capsys.readouterr()
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and {"name", "time_s", "share", "runtime_s"} <= set(rows[0])
    assert any(r["name"] == "relu" for r in rows)


def test_target_cv_needs_two_windows(tmp_path: Path) -> None:
    path = tmp_path / "relu.onnx"
    onnx.save(relu_model(), path)
    with pytest.raises(Exception, match="--target-cv needs --repeats 2"):
        measure(str(path), repeats=1, target_cv=0.02, min_window=0.01)


def test_per_node_reports_its_coverage(tmp_path: Path) -> None:
    path = tmp_path / "relu.onnx"
    onnx.save(relu_model(), path)
    m = measure(str(path), sensor="none", min_window=0.05, repeats=2, per_node=True, idle=0)
    assert m.nodes_time_s is not None and m.runtime_s is not None
    rec = m.reconciliation
    assert rec is not None
    # coverage is the profiler's raw kernel sum; the rows are reconciled to T - s
    assert m.nodes_coverage == pytest.approx(rec.kernel_time_s / m.runtime_s)
    assert m.nodes_time_s == pytest.approx(max(0.0, m.runtime_s - rec.session_overhead_s))
    assert m.nodes_kernels == 1
    assert m.nodes_coverage_note is not None and m.nodes_coverage_note.startswith(
        "kernels sum to ")
    assert "coverage  kernels sum to " in render_table(m)
    d = m.to_dict()
    assert {"nodes_coverage", "nodes_overhead_per_kernel_s", "nodes_kernels",
            "nodes_coverage_note"} <= set(d)


def test_missing_weights_say_measuring_needs_them(tmp_path: Path, capsys) -> None:
    w = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", F, [1, 64])],
                              [helper.make_tensor_value_info("y", F, [1, 64])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, location="m.data", size_threshold=0)
    (tmp_path / "m.data").unlink()
    assert main(["analyze", str(path), "--format", "json"]) == 0  # no weights needed
    assert json.loads(capsys.readouterr().out)["totals"]["macs"] == 4096
    code = main(["measure", str(path), "-q", "--min-window", "0.01"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err == ("onnx-energy: error: measuring runs the model, so it needs its weights: the "
                   "external data file m.data next to m.onnx is missing or incomplete "
                   "(initializer 'w'); `onnx-energy analyze` reads no weights and works "
                   "without it\n")
    (tmp_path / "m.data").write_bytes(b"\0" * 100)  # truncated: 16384 bytes are needed
    with pytest.raises(MissingWeightsError, match="missing or incomplete"):
        measure(str(path), min_window=0.01)
