"""Energy sensors behind one small interface: a cumulative counter in joules, or a refusal.

A sensor is opened once, then `read()` returns the joules consumed since it was opened
(monotonic; counter wraparound handled inside). The protocol reads it at the edges of each
measurement window and takes differences. A sensor that cannot be opened raises
`SensorUnavailable` with a message saying why; a read that fails mid-run raises
`SensorReadError`, and the protocol drops that window.

Backends:

- ``rapl``: the Linux powercap tree (``/sys/class/powercap/intel-rapl:*``, also used by
  AMD CPUs): every ``package-N`` zone plus every ``dram`` zone. Core/uncore subzones are
  inside their package and ``psys`` contains the packages, so they are not added.
- ``nvml``: nvidia-ml-py's total-energy counter (Volta and later), else a power-sampling
  thread integrated over time (trapezoids).
- ``codecarbon``: optional; its CPU and GPU energy. When codecarbon has no real sensor it
  models CPU power from the TDP ("constant" or "cpu_load" mode): such readings are flagged
  ``estimate=True`` and must never be reported as measurements.
- ``none``: no energy; ``read()`` returns None.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SensorUnavailable

SENSOR_CHOICES = ("auto", "rapl", "nvml", "codecarbon", "none")
POWERCAP_ROOT = "/sys/class/powercap"

_RAPL_ZONE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")


class SensorReadError(Exception):
    """A reading failed during a run; the window that needed it is dropped."""


class Sensor(ABC):
    """A cumulative energy counter."""

    name: str = ""
    #: True when the numbers are modelled (e.g. from a TDP), not measured.
    estimate: bool = False

    @abstractmethod
    def read(self) -> float | None:
        """Joules consumed since the sensor was opened; None for the `none` sensor."""

    def describe(self) -> dict[str, Any]:
        """What the sensor reads, for records: name, mode, domains, estimate."""
        return {"name": self.name, "mode": None, "domains": [], "estimate": self.estimate}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, library handles)."""

    def __enter__(self) -> Sensor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NoSensor(Sensor):
    """No energy sensor: runtime is still measured, energy is null."""

    name = "none"

    def read(self) -> None:
        return None


# ------------------------------------------------------------------------------------ RAPL


@dataclass
class _RaplZone:
    path: Path
    label: str
    max_range_uj: int
    last_uj: int


def _read_int(path: Path) -> int:
    with open(path, encoding="ascii") as fh:
        return int(fh.read().strip())


def _permission_message(path: Path) -> str:
    return (
        f"rapl: {path} exists but is not readable (permission denied); since Linux 5.10 the "
        "RAPL counters are readable by root only: run as root, or grant read access, e.g. "
        "`sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` "
        "(resets at reboot)"
    )


class RaplSensor(Sensor):
    """Linux powercap RAPL: sum of every package zone and every dram zone.

    The counters (``energy_uj``) wrap at ``max_energy_range_uj``; a reading smaller than the
    previous one adds that range once. A window longer than one full wrap period (minutes at
    full load) cannot be detected, which is why the protocol reads at every window edge.
    Energies are accumulated as integer microjoules.
    """

    name = "rapl"

    def __init__(self, root: str | os.PathLike[str] = POWERCAP_ROOT) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise SensorUnavailable(
                f"rapl: {self.root} not found (no powercap/RAPL interface, e.g. a virtual "
                "machine or a non-Linux system)"
            )
        zones = self._discover()
        if not zones:
            raise SensorUnavailable(
                f"rapl: no intel-rapl package zone under {self.root} (no RAPL support in this "
                "kernel or CPU)"
            )
        self._zones: list[_RaplZone] = []
        for path, label in zones:
            try:
                max_range = _read_int(path / "max_energy_range_uj")
                first = _read_int(path / "energy_uj")
            except PermissionError as exc:
                raise SensorUnavailable(_permission_message(Path(exc.filename or path))) from None
            except (OSError, ValueError) as exc:
                raise SensorUnavailable(f"rapl: cannot read {path}: {exc}") from None
            if max_range <= 0:
                raise SensorUnavailable(f"rapl: {path}/max_energy_range_uj is {max_range}")
            self._zones.append(_RaplZone(path, label, max_range, first))
        self._total_uj = 0
        self._lock = threading.Lock()

    def _discover(self) -> list[tuple[Path, str]]:
        found: list[tuple[tuple[int, int], Path, str]] = []
        try:
            entries = sorted(os.listdir(self.root))
        except PermissionError:
            raise SensorUnavailable(_permission_message(self.root)) from None
        for entry in entries:
            m = _RAPL_ZONE.match(entry)
            if not m:
                continue
            path = self.root / entry
            try:
                label = (path / "name").read_text(encoding="ascii").strip()
            except PermissionError:
                raise SensorUnavailable(_permission_message(path / "name")) from None
            except OSError:
                continue
            top = m.group(2) is None
            if (top and label.startswith("package")) or label == "dram":
                key = (int(m.group(1)), -1 if top else int(m.group(2)))
                found.append((key, path, label if top else f"{label}-{m.group(1)}"))
        found.sort(key=lambda item: item[0])
        return [(path, label) for _, path, label in found]

    @property
    def domains(self) -> list[str]:
        return [z.label for z in self._zones]

    def read(self) -> float:
        with self._lock:
            raws: list[int] = []
            for zone in self._zones:
                try:
                    raws.append(_read_int(zone.path / "energy_uj"))
                except (OSError, ValueError) as exc:
                    raise SensorReadError(
                        f"rapl: cannot read {zone.path}/energy_uj: {exc}") from None
            for zone, raw in zip(self._zones, raws, strict=True):
                delta = raw - zone.last_uj
                if delta < 0:  # the counter wrapped once
                    delta += zone.max_range_uj
                zone.last_uj = raw
                self._total_uj += delta
            return self._total_uj / 1e6

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "mode": "counter", "domains": self.domains,
                "estimate": False}


# ------------------------------------------------------------------------------------ NVML


class _PowerIntegrator:
    """Trapezoidal integral of power samples (watts at seconds) into joules."""

    def __init__(self) -> None:
        self.joules = 0.0
        self._last: tuple[float, float] | None = None

    def add(self, t: float, watts: float) -> float:
        if self._last is not None:
            t0, w0 = self._last
            if t > t0:
                self.joules += 0.5 * (w0 + watts) * (t - t0)
        if self._last is None or t >= self._last[0]:
            self._last = (t, watts)
        return self.joules


def _import_pynvml() -> Any:
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        raise SensorUnavailable(
            "nvml: nvidia-ml-py is not installed (pip install 'onnx-energy[cuda]')"
        ) from None


def _nvml_index(cuda_device: int) -> tuple[str, int | str]:
    """How CUDA device N is addressed in NVML, honouring CUDA_VISIBLE_DEVICES."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        items = [v.strip() for v in visible.split(",") if v.strip()]
        if cuda_device < len(items):
            item = items[cuda_device]
            if item.isdigit():
                return "index", int(item)
            return "uuid", item
    return "index", cuda_device


class NvmlSensor(Sensor):
    """NVIDIA GPU energy: total-energy counter (mJ), else power sampling in a thread."""

    name = "nvml"

    def __init__(
        self,
        device: int = 0,
        module: Any = None,
        sample_interval: float = 0.005,
        clock: Callable[[], float] = time.perf_counter,
        force_sampling: bool = False,
    ) -> None:
        nv = module if module is not None else _import_pynvml()
        self._nv = nv
        self._clock = clock
        self._interval = sample_interval
        try:
            nv.nvmlInit()
        except Exception as exc:
            raise SensorUnavailable(
                f"nvml: cannot initialise NVML ({exc}); is an NVIDIA driver installed?"
            ) from None
        self._inited = True
        kind, ref = _nvml_index(device)
        try:
            if kind == "uuid":
                self._handle = nv.nvmlDeviceGetHandleByUUID(ref)
            else:
                self._handle = nv.nvmlDeviceGetHandleByIndex(ref)
        except Exception as exc:
            self.close()
            raise SensorUnavailable(f"nvml: no GPU {ref} ({exc})") from None
        self.gpu_name = _text(_try(nv.nvmlDeviceGetName, self._handle))
        self.driver = _text(_try(nv.nvmlSystemGetDriverVersion))
        self._lock = threading.Lock()
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._counter0: int | None = None
        if not force_sampling:
            try:
                self._counter0 = int(nv.nvmlDeviceGetTotalEnergyConsumption(self._handle))
                self.mode = "counter"
            except Exception:
                self._counter0 = None
        if self._counter0 is None:
            self.mode = "sampling"
            self._integrator = _PowerIntegrator()
            try:
                self._sample()
            except Exception as exc:
                self.close()
                raise SensorUnavailable(
                    f"nvml: GPU {ref} has neither an energy counter nor power readings ({exc})"
                ) from None
            self._thread = threading.Thread(target=self._loop, name="nvml-power", daemon=True)
            self._thread.start()

    def _sample(self) -> float:
        milliwatts = self._nv.nvmlDeviceGetPowerUsage(self._handle)
        now = self._clock()
        with self._lock:
            return self._integrator.add(now, milliwatts / 1000.0)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._sample()
            except Exception as exc:  # reported at the next read
                with self._lock:
                    self._error = str(exc)

    def read(self) -> float:
        if self._counter0 is not None:
            try:
                now = int(self._nv.nvmlDeviceGetTotalEnergyConsumption(self._handle))
            except Exception as exc:
                raise SensorReadError(f"nvml: energy counter read failed: {exc}") from None
            if now < self._counter0:
                raise SensorReadError("nvml: energy counter went backwards (driver reloaded?)")
            return (now - self._counter0) / 1000.0
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise SensorReadError(f"nvml: power sampling failed: {error}")
        try:
            return self._sample()
        except Exception as exc:
            raise SensorReadError(f"nvml: power read failed: {exc}") from None

    def describe(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"name": self.name, "mode": self.mode,
                                  "domains": [self.gpu_name or "gpu"], "estimate": False}
        if self.mode == "sampling":
            detail["sample_interval_s"] = self._interval
        return detail

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=1.0)
            self._thread = None
        if getattr(self, "_inited", False):
            self._inited = False
            with contextlib.suppress(Exception):
                self._nv.nvmlShutdown()


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


# ------------------------------------------------------------------------------ codecarbon

#: codecarbon CPU modes that model power from a TDP instead of reading a sensor.
CODECARBON_ESTIMATE_MODES = frozenset({"constant", "cpu_load"})


class CodecarbonSensor(Sensor):
    """codecarbon's CPU and GPU energy (its RAM figure is always modelled, so it is left out).

    Uses codecarbon's tracker internals (``_measure_power_and_energy``, ``_total_cpu_energy``,
    ``_total_gpu_energy``, each CPU's ``_mode``), which are stable across 2.x but private: an
    incompatible version is reported as unavailable rather than guessed at.
    """

    name = "codecarbon"

    def __init__(self, module: Any = None) -> None:
        if module is None:
            try:
                module = importlib.import_module("codecarbon")
            except ImportError:
                raise SensorUnavailable(
                    "codecarbon: not installed (pip install 'onnx-energy[carbon]')"
                ) from None
        cls = getattr(module, "OfflineEmissionsTracker", None)
        if cls is None:
            raise SensorUnavailable("codecarbon: no OfflineEmissionsTracker in this version")
        wanted = {"country_iso_code": "USA", "save_to_file": False, "log_level": "error",
                  "measure_power_secs": 3600, "tracking_mode": "machine",
                  "allow_multiple_runs": True}
        try:
            params = inspect.signature(cls).parameters
            if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
                wanted = {k: v for k, v in wanted.items() if k in params}
        except (TypeError, ValueError):
            pass
        try:
            self._tracker = cls(**wanted)
            self._tracker.start()
            self._modes = self._hardware_modes()
            self._base = self._joules()
        except SensorUnavailable:
            raise
        except Exception as exc:
            raise SensorUnavailable(f"codecarbon: tracker failed to start ({exc})") from None
        cpu_modes = [m for kind, m in self._modes if kind == "cpu"]
        self.estimate = any(m in CODECARBON_ESTIMATE_MODES for m in cpu_modes)

    def _hardware_modes(self) -> list[tuple[str, str]]:
        modes: list[tuple[str, str]] = []
        for hw in getattr(self._tracker, "_hardware", []):
            kind = type(hw).__name__.lower()
            if kind == "cpu":
                modes.append(("cpu", str(getattr(hw, "_mode", "unknown"))))
            elif kind == "gpu":
                modes.append(("gpu", "nvml"))
        return modes

    def _joules(self) -> float:
        tracker = self._tracker
        try:
            tracker._measure_power_and_energy()
            kwh = tracker._total_cpu_energy.kWh + tracker._total_gpu_energy.kWh
        except AttributeError as exc:
            raise SensorUnavailable(
                f"codecarbon: unsupported version (no {exc.name or 'energy totals'})"
            ) from None
        return float(kwh) * 3.6e6

    def read(self) -> float:
        try:
            return self._joules() - self._base
        except SensorUnavailable as exc:
            raise SensorReadError(str(exc)) from None
        except Exception as exc:
            raise SensorReadError(f"codecarbon: read failed: {exc}") from None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": ",".join(f"{kind}:{mode}" for kind, mode in self._modes) or None,
            "domains": [kind for kind, _ in self._modes],
            "estimate": self.estimate,
            "tracking_mode": getattr(self._tracker, "_tracking_mode", None),
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._tracker.stop()


# ------------------------------------------------------------------------------- choosing


def open_sensor(
    choice: str = "auto",
    provider: str = "cpu",
    device: int = 0,
    rapl_root: str | os.PathLike[str] = POWERCAP_ROOT,
    nvml_module: Any = None,
) -> tuple[Sensor, list[str]]:
    """Open the chosen sensor; returns it and notes on why better ones were not used.

    ``auto`` picks the best real sensor for the provider: NVML for ``cuda`` (then RAPL),
    RAPL for ``cpu``. codecarbon is used only when asked for. An explicit choice that cannot
    be opened raises `SensorUnavailable`.
    """
    if choice not in SENSOR_CHOICES:
        raise SensorUnavailable(
            f"unknown sensor {choice!r}; choose from {', '.join(SENSOR_CHOICES)}"
        )
    openers: dict[str, Callable[[], Sensor]] = {
        "rapl": lambda: RaplSensor(rapl_root),
        "nvml": lambda: NvmlSensor(device, module=nvml_module),
        "codecarbon": lambda: CodecarbonSensor(),
        "none": NoSensor,
    }
    if choice != "auto":
        return openers[choice](), []
    order = ["nvml", "rapl"] if provider == "cuda" else ["rapl"]
    notes: list[str] = []
    for name in order:
        try:
            return openers[name](), notes
        except SensorUnavailable as exc:
            notes.append(str(exc))
    return NoSensor(), notes
