"""Record store: schema, durability per window, interrupted and killed runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import onnx
import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

from onnx_energy.measure.measurement import MeasurementInterrupted, measure
from onnx_energy.measure.records import (
    REQUIRED_KEYS,
    RecordFileError,
    RecordWriter,
    read_records,
    record_schema,
)
from onnx_energy.measure.sensors import Sensor

F = TensorProto.FLOAT
REPO = Path(__file__).resolve().parents[1]


def small_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    return make_model(nodes, [("x", ["n", 4, 16, 16], F)], [("y", ["n", 8, 16, 16], F)],
                      {"w": weights(8, 4, 3, 3)})


def single_op() -> tuple[onnx.ModelProto, dict]:
    spec = {"op_type": "Relu", "domain": "", "attrs": {},
            "inputs": [{"shape": [2, 64], "dtype": "float32"}]}
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [2, 64], F)],
                       [("y", [2, 64], F)])
    return model, spec


class ConstantPower(Sensor):
    name = "rapl"

    def __init__(self, watts: float) -> None:
        self.watts = watts
        self.t0 = time.perf_counter()

    def read(self) -> float:
        return self.watts * (time.perf_counter() - self.t0)

    def describe(self) -> dict:
        return {"name": "rapl", "mode": "counter", "domains": ["package-0"], "estimate": False}


def test_schema_lists_the_required_keys() -> None:
    schema = record_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert tuple(schema["required"]) == REQUIRED_KEYS
    assert set(REQUIRED_KEYS) <= set(schema["properties"])
    assert schema["properties"]["schema"]["const"] == "onnx-energy/record/2"
    assert all("description" in v for v in schema["properties"].values())


V1_RECORD = {  # a window written by version 0.1.0 (schema record/1)
    "schema": "onnx-energy/record/1", "run_id": "ab" * 16, "window": 0,
    "timestamp": "2026-11-30T10:00:00.000000Z", "model": None,
    "spec": {"op_type": "Relu", "domain": "", "attrs": {},
             "inputs": [{"shape": [2, 64], "dtype": "float32"}]},
    "provider": "cpu", "threads": 1, "dims": {}, "batch_size": None,
    "inputs": [{"name": "x", "shape": [2, 64], "dtype": "float32"}], "seed": 0,
    "sensor": "rapl", "sensor_detail": {"name": "rapl", "mode": "counter",
                                        "domains": ["package-0"], "estimate": False},
    "estimate": False, "iterations": 1000, "window_s": 0.5, "runtime_s": 0.0005,
    "energy_j": 0.01, "energy_dynamic_j": 0.004, "power_w": 20.0, "idle_power_w": 12.0,
    "hardware": {"cpu_model": "x", "cpu_cores_logical": 2, "gpu_name": None,
                 "gpu_driver": None, "onnxruntime": "1.17.0"},
}


def test_version_1_records_still_load_as_version_2(tmp_path: Path) -> None:
    out = tmp_path / "old.jsonl"
    out.write_text(json.dumps(V1_RECORD) + "\n" + json.dumps(dict(V1_RECORD, spec=None)) + "\n")
    got = read_records(out)
    assert got.skipped == 0 and got.upgraded == 2
    op, model = got.records
    assert op["schema"] == "onnx-energy/record/2" and op["kind"] == "op"
    assert model["kind"] == "model"
    assert op["runner"] == {"name": "onnxruntime", "version": "1.17.0"}
    assert op["energy_j"] == 0.01 and op["spec"]["op_type"] == "Relu"
    jsonschema.Draft202012Validator(record_schema()).validate(op)


def test_external_record_needs_only_the_core_fields(tmp_path: Path) -> None:
    """A record measured elsewhere (no onnxruntime, no fingerprint) validates and loads."""
    ext = {"schema": "onnx-energy/record/2", "kind": "op",
           "runner": {"name": "pytorch", "version": "1.11.0"}, "sensor": "codecarbon",
           "runtime_s": 0.02, "energy_j": 1.5,
           "spec": {"op_type": "MaxPool", "domain": "", "attrs": {"kernel_shape": [2, 2]},
                    "inputs": [{"shape": [8, 16, 32, 32], "dtype": "float32"}]}}
    jsonschema.Draft202012Validator(record_schema()).validate(ext)
    out = tmp_path / "ext.jsonl"
    out.write_text(json.dumps(ext) + "\n" + json.dumps(dict(ext, kind="op", spec=None)) + "\n")
    got = read_records(out)
    assert got.records == [ext] and got.skipped == 1  # an op record without its spec is not


def test_records_of_a_model_and_of_a_single_op_spec_validate(tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    path = tmp_path / "small.onnx"
    onnx.save(small_model(), path)
    m = measure(path, dims={"n": 2}, sensor=ConstantPower(30.0), min_window=0.02, repeats=2,
                idle=0.02, out=out, seed=3)
    model, spec = single_op()
    measure(model, spec=spec, sensor="none", min_window=0.02, repeats=1, out=out)
    validator = jsonschema.Draft202012Validator(record_schema())
    got = read_records(out)
    assert got.skipped == 0 and len(got.records) == 3
    for rec in got.records:
        validator.validate(rec)
    first, second, op = got.records
    assert first["model"] == {"path": str(path), "sha256": m.model_sha256}
    assert len(m.model_sha256) == 64 and first["spec"] is None
    assert (first["window"], second["window"]) == (0, 1)
    assert first["run_id"] == second["run_id"] != op["run_id"]
    assert first["dims"] == {"n": 2} and first["seed"] == 3 and first["threads"] == 1
    assert first["inputs"] == [{"name": "x", "shape": [2, 4, 16, 16], "dtype": "float32"}]
    assert first["sensor"] == "rapl" and first["estimate"] is False
    assert first["power_w"] == pytest.approx(30.0, rel=1e-2)  # jitter-proof on loaded CI
    assert first["energy_j"] == pytest.approx(30.0 * first["window_s"] / first["iterations"],
                                              rel=0.05)
    assert first["runtime_s"] == first["window_s"] / first["iterations"]
    assert first["hardware"]["onnxruntime"] and "cpu_model" in first["hardware"]
    assert op["model"] is None and op["spec"] == spec
    assert (first["kind"], op["kind"]) == ("model", "op")
    assert first["runner"]["name"] == "onnxruntime"
    assert op["sensor"] == "none" and op["energy_j"] is None and op["power_w"] is None
    bad = dict(op, energy_j=-1.0)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)


def test_unwritable_record_file_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RecordFileError, match="cannot append"):
        RecordWriter(blocker / "records.jsonl")  # a file where a folder should be


def test_torn_line_is_skipped_and_next_writer_starts_fresh(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    good = {"schema": "onnx-energy/record/2", "kind": "code", "runner": {"name": "python"},
            "sensor": "none", "runtime_s": 1.0, "energy_j": None, "window": None}
    out.write_text(json.dumps(good) + "\n" + '{"schema": "onnx-ener')  # killed mid-write
    with RecordWriter(out) as w:
        w.append(dict(good, window=7))
    text = out.read_text()
    assert text.endswith("\n") and text.count("\n") == 3
    got = read_records(out)
    assert got.skipped == 1
    assert [r["window"] for r in got.records] == [None, 7]


def test_ctrl_c_keeps_the_written_windows(tmp_path: Path) -> None:
    """KeyboardInterrupt in the third window: two records stay, the error says so."""
    out = tmp_path / "r.jsonl"

    class InterruptOnThirdWindow(ConstantPower):
        reads = 0

        def read(self) -> float:
            self.reads += 1
            if self.reads == 5:  # first edge of window 3 (no idle baseline)
                raise KeyboardInterrupt
            return super().read()

    model, spec = single_op()
    with pytest.raises(MeasurementInterrupted) as err:
        measure(model, spec=spec, sensor=InterruptOnThirdWindow(10.0), min_window=0.01,
                repeats=5, idle=0, out=out)
    assert err.value.exit_code == 130 and err.value.windows == 2
    assert str(err.value) == f"interrupted after 2 complete window(s); they are in {out}"
    assert len(read_records(out).records) == 2


def _cli(model: Path, out: Path, repeats: int, window: float) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "onnx_energy", "measure", str(model), "--dim", "n=1",
         "--sensor", "none", "--min-window", str(window), "--repeats", str(repeats),
         "--warmup", "1", "--out", str(out), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )


def _wait_for_lines(proc: subprocess.Popen[str], out: Path, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists() and out.read_bytes().count(b"\n") >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"measure exited early: {proc.communicate()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail("no records appeared in time")


def test_sigkill_after_three_windows_leaves_three_complete_records(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(small_model(), model)
    out = tmp_path / "records.jsonl"
    proc = _cli(model, out, repeats=1000, window=0.4)
    _wait_for_lines(proc, out, 3, timeout=30)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b""  # nothing torn after the last complete record
    got = read_records(out)
    assert got.skipped == 0
    assert [r["window"] for r in got.records] == [0, 1, 2]
    assert all(r["iterations"] >= 1 and r["runtime_s"] > 0 for r in got.records)


def test_sigint_exits_130_with_one_line_and_keeps_records(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(small_model(), model)
    out = tmp_path / "records.jsonl"
    proc = _cli(model, out, repeats=1000, window=0.4)
    _wait_for_lines(proc, out, 2, timeout=30)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "interrupted after" in err and str(out) in err
    got = read_records(out)
    assert got.skipped == 0 and len(got.records) >= 2
