"""RAPL reader against directory trees shaped like /sys/class/powercap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from onnx_energy.measure import sensors
from onnx_energy.measure.sensors import (
    NoSensor,
    RaplSensor,
    SensorReadError,
    SensorUnavailable,
    open_sensor,
)

MAX_PKG = 262_143_328_850  # a real package max_energy_range_uj
MAX_DRAM = 65_712_999_613


def zone(root: Path, entry: str, name: str, energy: int, max_range: int) -> Path:
    path = root / entry
    path.mkdir()
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    return path


def set_energy(path: Path, energy: int) -> None:
    (path / "energy_uj").write_text(f"{energy}\n")


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """Two packages (each with core/uncore subzones), a dram subzone, psys and mmio twins."""
    root = tmp_path / "powercap"
    root.mkdir()
    (root / "intel-rapl").mkdir()  # the control-type folder: not a zone
    z = {
        "root": root,
        "pkg0": zone(root, "intel-rapl:0", "package-0", MAX_PKG - 1_000, MAX_PKG),
        "core0": zone(root, "intel-rapl:0:0", "core", 5_000, MAX_PKG),
        "dram0": zone(root, "intel-rapl:0:1", "dram", 40_000_000, MAX_DRAM),
        "pkg1": zone(root, "intel-rapl:1", "package-1", 7_000_000, MAX_PKG),
        "core1": zone(root, "intel-rapl:1:0", "core", 9_000, MAX_PKG),
        "psys": zone(root, "intel-rapl:2", "psys", 1_000_000, MAX_PKG),
        "mmio": zone(root, "intel-rapl-mmio:0", "package-0", 3_000, MAX_PKG),
    }
    return z


def test_counts_every_package_and_dram_only(tree: dict[str, Path]) -> None:
    sensor = RaplSensor(tree["root"])
    assert sensor.domains == ["package-0", "dram-0", "package-1"]
    assert sensor.read() == 0.0
    # core, psys and the mmio twin change wildly: none of them may be added
    for key in ("core0", "core1", "psys", "mmio"):
        set_energy(tree[key], 123_456_789)
    set_energy(tree["pkg0"], MAX_PKG - 500)  # +500 µJ
    set_energy(tree["dram0"], 40_250_000)  # +250_000 µJ
    set_energy(tree["pkg1"], 9_000_000)  # +2_000_000 µJ
    assert sensor.read() == 2.2505
    assert sensor.describe() == {"name": "rapl", "mode": "counter",
                                 "domains": ["package-0", "dram-0", "package-1"],
                                 "estimate": False}


def test_wraparound_inside_a_window(tree: dict[str, Path]) -> None:
    set_energy(tree["dram0"], MAX_DRAM - 2_000)
    sensor = RaplSensor(tree["root"])
    start = sensor.read()
    # package-0 wraps: from MAX-1000 through MAX back to 1500 -> 1000 + 1500 µJ
    set_energy(tree["pkg0"], 1_500)
    # dram wraps too, with its own range: MAX_DRAM - 2_000 -> 3_000
    set_energy(tree["dram0"], 3_000)
    set_energy(tree["pkg1"], 7_400_000)  # +400_000 µJ, no wrap
    end = sensor.read()
    expected_uj = (1_500 + MAX_PKG - (MAX_PKG - 1_000)) + (3_000 + MAX_DRAM - (MAX_DRAM - 2_000)) \
        + 400_000
    assert expected_uj == 407_500
    assert start == 0.0
    assert end == 0.4075
    # a second window after the wrap counts normally again
    set_energy(tree["pkg0"], 2_000)
    assert sensor.read() == (expected_uj + 500) / 1e6
    assert sensor.read() == (expected_uj + 500) / 1e6  # no change, no energy


def test_unreadable_energy_file_is_a_clear_refusal(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tree["pkg1"] / "energy_uj"
    target.chmod(0)
    if os.geteuid() == 0:  # root reads mode-000 files; make the kernel's answer explicit
        real = sensors._read_int

        def deny(path: Path) -> int:
            if Path(path) == target:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(sensors, "_read_int", deny)
    with pytest.raises(SensorUnavailable) as err:
        RaplSensor(tree["root"])
    msg = str(err.value)
    assert str(target) in msg
    assert "not readable (permission denied)" in msg
    assert "root" in msg and "chmod" in msg
    # auto falls back to no sensor and says why; runtime-only measurement still works
    sensor, notes = open_sensor("auto", provider="cpu", rapl_root=tree["root"])
    assert isinstance(sensor, NoSensor)
    assert notes == [msg]


def test_missing_tree_and_no_package(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match="not found"):
        RaplSensor(tmp_path / "absent")
    root = tmp_path / "empty"
    root.mkdir()
    zone(root, "intel-rapl:0:0", "core", 1, MAX_PKG)
    with pytest.raises(SensorUnavailable, match="no intel-rapl package zone"):
        RaplSensor(root)


def test_read_failure_mid_run_is_a_read_error(tree: dict[str, Path]) -> None:
    sensor = RaplSensor(tree["root"])
    (tree["dram0"] / "energy_uj").unlink()
    with pytest.raises(SensorReadError, match="dram|intel-rapl:0:1"):
        sensor.read()


def test_explicit_choice_raises_and_auto_prefers_rapl(tree: dict[str, Path],
                                                     tmp_path: Path) -> None:
    sensor, notes = open_sensor("auto", provider="cpu", rapl_root=tree["root"])
    assert isinstance(sensor, RaplSensor) and notes == []
    with pytest.raises(SensorUnavailable, match="not found"):
        open_sensor("rapl", rapl_root=tmp_path / "nothing")
    with pytest.raises(SensorUnavailable, match="unknown sensor"):
        open_sensor("joulemeter")
