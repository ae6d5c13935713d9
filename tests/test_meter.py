"""EnergyMeter and @measure_energy: joules from a (fake sysfs) RAPL tree, honest without a
sensor, and records of kind code that validate against the schema."""

from __future__ import annotations

import functools
import json
import platform
from pathlib import Path

import jsonschema
import pytest
from test_sensors_rapl import MAX_DRAM, MAX_PKG, set_energy, zone

import onnx_energy
from onnx_energy.measure import meter as meter_module
from onnx_energy.measure.records import read_records, record_schema
from onnx_energy.measure.sensors import RaplSensor, Sensor, open_sensor


@pytest.fixture
def rapl(tmp_path: Path) -> dict[str, Path]:
    """One package with a core subzone and a dram zone, like /sys/class/powercap."""
    root = tmp_path / "powercap"
    root.mkdir()
    return {
        "root": root,
        "pkg": zone(root, "intel-rapl:0", "package-0", 10_000_000, MAX_PKG),
        "core": zone(root, "intel-rapl:0:0", "core", 5_000, MAX_PKG),
        "dram": zone(root, "intel-rapl:0:1", "dram", MAX_DRAM - 500_000, MAX_DRAM),
    }


def clock(*times: float):
    """A clock returning ``times`` in order: start reads it twice, stop twice."""
    it = iter(times)
    return lambda: next(it)


def consume(rapl: dict[str, Path], package_uj: int, dram_uj: int) -> None:
    """Advance the counters as if the metered code consumed that energy (dram wraps)."""
    pkg = int((rapl["pkg"] / "energy_uj").read_text())
    dram = int((rapl["dram"] / "energy_uj").read_text())
    set_energy(rapl["pkg"], pkg + package_uj)
    set_energy(rapl["dram"], (dram + dram_uj) % MAX_DRAM)
    set_energy(rapl["core"], 999_999_999)  # inside the package: never added


def validate(path: Path) -> list[dict]:
    records = read_records(path).records
    validator = jsonschema.Draft202012Validator(record_schema())
    for r in records:
        validator.validate(r)
    return records


def test_the_meter_reads_joules_seconds_and_watts_from_rapl(rapl, tmp_path):
    out = tmp_path / "records.jsonl"
    with onnx_energy.EnergyMeter("train step", sensor=RaplSensor(rapl["root"]), out=out,
                                 clock=clock(0.0, 0.0, 2.0, 2.0)) as m:
        consume(rapl, package_uj=3_000_000, dram_uj=1_000_000)  # the dram counter wraps
    r = m.reading
    assert r is not None
    assert (r.joules, r.seconds, r.watts) == (4.0, 2.0, 2.0)
    assert (m.joules, m.seconds, m.watts) == (4.0, 2.0, 2.0)
    assert r.sensor == "rapl" and r.sensor_detail["domains"] == ["package-0", "dram-0"]
    assert r.estimate is False and r.note is None
    [record] = validate(out)
    assert record["schema"] == "onnx-energy/record/2" and record["kind"] == "code"
    assert record["label"] == "train step"
    assert record["runner"] == {"name": "python", "version": platform.python_version()}
    assert (record["energy_j"], record["runtime_s"], record["power_w"]) == (4.0, 2.0, 2.0)
    assert record["sensor"] == "rapl" and record["iterations"] == 1


def test_auto_picks_rapl_and_a_meter_can_run_again(rapl, monkeypatch):
    monkeypatch.setattr(meter_module, "open_sensor",
                        functools.partial(open_sensor, rapl_root=rapl["root"]))
    m = onnx_energy.EnergyMeter(clock=clock(0.0, 0.0, 1.0, 1.0, 5.0, 5.0, 9.0, 9.0))
    m.start()
    consume(rapl, 500_000, 0)
    first = m.stop()
    m.start()
    consume(rapl, 2_000_000, 0)
    second = m.stop()
    assert (first.sensor, first.joules, first.seconds) == ("rapl", 0.5, 1.0)
    assert (second.joules, second.seconds, second.watts) == (2.0, 4.0, 0.5)
    assert m.readings == 2
    with pytest.raises(RuntimeError, match="not started"):
        m.stop()


def test_no_sensor_no_joules_and_the_reason(tmp_path):
    out = tmp_path / "records.jsonl"
    with onnx_energy.EnergyMeter("infer", sensor="none", out=out,
                                 clock=clock(0.0, 0.0, 0.25, 0.25)) as m:
        pass
    r = m.reading
    assert r is not None
    assert r.seconds == 0.25 and r.joules is None and r.watts is None
    assert r.sensor == "none" and r.note == "no energy: no sensor (--sensor none)"
    [record] = validate(out)
    assert record["energy_j"] is None and record["power_w"] is None
    assert record["runtime_s"] == 0.25 and record["sensor"] == "none"


def test_a_failed_reading_is_no_joules_never_a_guess(rapl):
    with onnx_energy.EnergyMeter(sensor=RaplSensor(rapl["root"])) as m:
        (rapl["dram"] / "energy_uj").unlink()
    assert m.reading is not None and m.reading.joules is None
    assert m.reading.note is not None and "the sensor reading failed" in m.reading.note


def test_an_estimating_sensor_is_labelled():
    class Modelled(Sensor):
        name = "codecarbon"
        estimate = True

        def read(self) -> float:
            return 1.0

    with onnx_energy.EnergyMeter(sensor=Modelled()) as m:
        pass
    assert m.reading is not None and m.reading.estimate and m.reading.joules == 0.0
    assert m.reading.note is not None and m.reading.note.startswith("ESTIMATE")


def test_the_decorator_meters_every_call(rapl, tmp_path):
    out = tmp_path / "records.jsonl"
    seen = []

    @onnx_energy.measure_energy(sensor=RaplSensor(rapl["root"]), out=out, on_reading=seen.append)
    def step(n: int, fail: bool = False) -> int:
        consume(rapl, n * 1_000_000, 0)
        if fail:
            raise ValueError("bad step")
        return n * 10

    assert step.last is None
    assert step(2) == 20 and step.last is not None and step.last.joules == 2.0
    assert step(1) == 10 and step.last.joules == 1.0
    with pytest.raises(ValueError, match="bad step"):
        step(3, fail=True)  # still metered, then the error passes through
    assert [r.joules for r in seen] == [2.0, 1.0, 3.0]
    records = validate(out)
    assert [r["window"] for r in records] == [0, 1, 2]
    assert len({r["run_id"] for r in records}) == 1
    assert {r["label"] for r in records} == {"test_the_decorator_meters_every_call.<locals>.step"}
    assert step.__name__ == "step"


def test_the_bare_decorator_and_lazy_exports():
    @onnx_energy.measure_energy(sensor="none")
    def f() -> str:
        return "ok"

    @onnx_energy.measure_energy
    def g() -> str:
        return "ok"

    assert f() == "ok" and f.last is not None and f.last.joules is None
    assert g() == "ok" and g.last is not None and g.last.seconds >= 0
    assert "EnergyMeter" in dir(onnx_energy) and "measure_energy" in onnx_energy.__all__
    assert json.loads(json.dumps(f.last.to_dict()))["label"].endswith("f")
