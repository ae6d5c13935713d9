"""NVML sensor with a stand-in for pynvml; the real path runs only where a GPU is present."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator

import pytest

from onnx_energy.measure.sensors import (
    NvmlSensor,
    SensorReadError,
    SensorUnavailable,
    _nvml_index,
    _PowerIntegrator,
    open_sensor,
)


class NVMLError(Exception):
    pass


class FakeNvml:
    """The slice of pynvml the sensor uses, with scripted answers."""

    NVMLError = NVMLError

    def __init__(self, counter: Iterator[int] | None = None, power_mw: float = 0.0,
                 init_fails: bool = False) -> None:
        self.counter = counter
        self.power_mw = power_mw
        self.init_fails = init_fails
        self.power_calls = 0
        self.handles: list[tuple[str, object]] = []
        self.shutdown = 0

    def nvmlInit(self) -> None:
        if self.init_fails:
            raise NVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.shutdown += 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> object:
        self.handles.append(("index", i))
        return ("gpu", i)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> object:
        self.handles.append(("uuid", uuid))
        return ("gpu", uuid)

    def nvmlDeviceGetName(self, handle: object) -> bytes:
        return b"Tesla V100-SXM2-16GB"

    def nvmlSystemGetDriverVersion(self) -> str:
        return "535.104.05"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        if self.counter is None:
            raise NVMLError("Not Supported")
        value = next(self.counter)
        if isinstance(value, Exception):
            raise value
        return value

    def nvmlDeviceGetPowerUsage(self, handle: object) -> float:
        self.power_calls += 1
        return self.power_mw


def test_energy_counter_in_millijoules() -> None:
    fake = FakeNvml(counter=iter([5_000_000, 5_000_000, 5_012_345, 5_112_345]))
    sensor = NvmlSensor(0, module=fake)
    assert sensor.mode == "counter"
    assert sensor.read() == 0.0
    assert sensor.read() == 12.345
    assert sensor.read() == 112.345
    assert sensor.describe() == {"name": "nvml", "mode": "counter",
                                 "domains": ["Tesla V100-SXM2-16GB"], "estimate": False}
    assert sensor.driver == "535.104.05"
    sensor.close()
    assert fake.shutdown == 1


def test_counter_failure_and_backwards_counter_are_read_errors() -> None:
    fake = FakeNvml(counter=iter([1_000, NVMLError("GPU is lost"), 500]))
    sensor = NvmlSensor(0, module=fake)
    with pytest.raises(SensorReadError, match="GPU is lost"):
        sensor.read()
    with pytest.raises(SensorReadError, match="backwards"):
        sensor.read()


def test_sampling_fallback_integrates_power_exactly() -> None:
    """No counter (pre-Volta): trapezoids over power samples, at the clock's times."""
    times = iter([0.0, 2.0, 3.0])
    fake = FakeNvml(counter=None, power_mw=150_000)
    # a huge interval: the thread never samples, so only reads add samples
    sensor = NvmlSensor(0, module=fake, sample_interval=3600, clock=lambda: next(times))
    try:
        assert sensor.mode == "sampling"
        assert sensor.read() == 300.0  # 150 W for 2 s
        fake.power_mw = 50_000
        assert sensor.read() == 400.0  # + (150 + 50) / 2 W for 1 s
        assert sensor.describe()["mode"] == "sampling"
    finally:
        sensor.close()


def test_sampling_thread_runs_and_integrates_constant_power() -> None:
    seen: list[float] = []

    def clock() -> float:
        t = time.perf_counter()
        seen.append(t)
        return t

    fake = FakeNvml(counter=None, power_mw=100_000)
    sensor = NvmlSensor(0, module=fake, sample_interval=0.001, clock=clock)
    try:
        time.sleep(0.05)
        joules = sensor.read()
    finally:
        sensor.close()
    assert fake.power_calls > 5  # the thread sampled between the edges
    assert joules == pytest.approx(100.0 * (max(seen) - min(seen)), rel=1e-9)


def test_integrator_ignores_out_of_order_samples() -> None:
    integ = _PowerIntegrator()
    integ.add(1.0, 10.0)
    integ.add(3.0, 30.0)  # +40 J
    integ.add(2.0, 99.0)  # late sample from another thread: ignored
    assert integ.add(4.0, 30.0) == 70.0


def test_unavailable_without_library_or_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SensorUnavailable, match="cannot initialise NVML.*Driver Not Loaded"):
        NvmlSensor(0, module=FakeNvml(init_fails=True))
    if importlib.util.find_spec("pynvml") is None:
        with pytest.raises(SensorUnavailable, match=r"onnx-energy\[cuda\]"):
            NvmlSensor(0)
    # auto for a CUDA run: nvml first, then rapl, then none with both reasons
    sensor, notes = open_sensor("auto", provider="cuda", rapl_root="/nonexistent/powercap",
                                nvml_module=FakeNvml(init_fails=True))
    assert sensor.name == "none"
    assert len(notes) == 2 and notes[0].startswith("nvml:") and notes[1].startswith("rapl:")
    sensor, notes = open_sensor("auto", provider="cuda", nvml_module=FakeNvml(iter([0, 1000])))
    assert sensor.name == "nvml" and notes == []


def test_cuda_visible_devices_maps_to_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert _nvml_index(0) == ("index", 3)
    assert _nvml_index(1) == ("index", 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f2a")
    assert _nvml_index(0) == ("uuid", "GPU-8f2a")
    fake = FakeNvml(counter=iter([0]))
    NvmlSensor(0, module=fake).close()
    assert fake.handles == [("uuid", "GPU-8f2a")]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert _nvml_index(2) == ("index", 2)


def _real_gpu() -> bool:
    if importlib.util.find_spec("pynvml") is None:
        return False
    import pynvml

    try:
        pynvml.nvmlInit()
        ok = pynvml.nvmlDeviceGetCount() > 0
        pynvml.nvmlShutdown()
        return ok
    except Exception:
        return False


@pytest.mark.skipif(not _real_gpu(), reason="needs nvidia-ml-py and an NVIDIA GPU")
def test_real_gpu_counter_and_sampling_agree_at_idle() -> None:
    counter = NvmlSensor(0)
    sampler = NvmlSensor(0, force_sampling=True, sample_interval=0.01)
    try:
        c0, s0 = counter.read(), sampler.read()
        time.sleep(2.0)
        c1, s1 = counter.read(), sampler.read()
    finally:
        counter.close()
        sampler.close()
    assert c1 - c0 > 0 and s1 - s0 > 0
    assert (s1 - s0) == pytest.approx(c1 - c0, rel=0.25)
