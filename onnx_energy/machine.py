"""Which machine this is: CPU model and cores, architecture, OS (no onnxruntime, no GPU).

Shared by measurement records (`measure.fingerprint` adds the GPU and the onnxruntime
version) and by prediction, which checks a profile's fingerprint against this machine.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any

#: The fingerprint fields that say whether a profile was measured on this kind of machine.
MATCH_KEYS = ("cpu_model", "machine", "cpu_cores_usable")
#: The kernel of the speed probe (`measure.probe` times it): how fast this machine runs now,
#: as profiles and validations write it beside its time.
PROBE_KERNEL = "MatMul 256x256x256 float32"


def _cpuinfo() -> tuple[str | None, int | None]:
    """CPU model name and physical core count from /proc/cpuinfo (Linux), best effort."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, None
    model: str | None = None
    cores: set[tuple[str, str]] = set()
    phys = core = None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("model name", "Model", "Processor") and model is None and value:
            model = value
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
        elif not line.strip():
            if core is not None:
                cores.add((phys or "0", core))
            phys = core = None
    return model, (len(cores) or None)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip() or None
    except OSError:
        return None


def cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """Size of the largest CPU cache (the last level) from sysfs (Linux), best effort."""
    units = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
    sizes = []
    for path in Path(root).glob("index*/size"):
        text = _read(str(path)) or ""
        digits, unit = text[:-1], text[-1:].upper()
        if unit in units and digits.isdigit():
            sizes.append(int(digits) * units[unit])
        elif text.isdigit():
            sizes.append(int(text))
    return max(sizes) if sizes else None


@functools.lru_cache(maxsize=1)
def machine_fingerprint() -> dict[str, Any]:
    """CPU model, cores and last-level cache, governor, architecture, OS and Python of this
    machine."""
    model, physical = _cpuinfo()
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cpu_model": model or platform.processor() or None,
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_physical": physical,
        "cpu_cores_usable": usable,
        "cpu_cache_bytes": cache_bytes(),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "machine": platform.machine() or None,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def differences(recorded: dict[str, Any], here: dict[str, Any] | None = None) -> list[str]:
    """How a recorded fingerprint differs from this machine on `MATCH_KEYS` (the GPU too
    when both name one): ``["cpu_model: A (profile) vs B (here)", ...]``."""
    here = machine_fingerprint() if here is None else here
    out = []
    for key in (*MATCH_KEYS, "gpu_name"):
        a, b = recorded.get(key), here.get(key)
        if a is None or b is None:
            continue
        if str(a) != str(b):
            out.append(f"{key}: {a} (profile) vs {b} (here)")
    return out
