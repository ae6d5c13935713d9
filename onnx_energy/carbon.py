"""Carbon: grams of CO2-equivalent per inference from predicted energy and a grid intensity.

The intensity is given (``--carbon-intensity G_PER_KWH``) or looked up by country
(``--country ISO3``) in codecarbon's offline energy-mix data, read straight from the
installed package's data file (codecarbon itself is not imported: no tracker starts, nothing
is fetched). ``pip install 'onnx-energy[carbon]'`` installs it.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import CarbonError

#: Joules per kilowatt-hour.
J_PER_KWH = 3.6e6
#: Where codecarbon (>= 2.3) keeps its per-country energy mix, inside the package.
ENERGY_MIX = Path("data") / "private_infra" / "global_energy_mix.json"
INSTALL_HINT = ("pip install 'onnx-energy[carbon]' for codecarbon's offline data, or give "
                "--carbon-intensity G_PER_KWH")


@dataclass(frozen=True)
class CarbonIntensity:
    """A grid's carbon intensity in gCO2-eq per kWh, and where it came from."""

    g_per_kwh: float
    source: str
    country: str | None = None

    def grams(self, energy_j: float) -> float:
        """gCO2-eq of ``energy_j`` joules."""
        return energy_j / J_PER_KWH * self.g_per_kwh

    def report(self, energy_j: float | None,
               interval: list[float] | None = None) -> dict[str, Any]:
        """The ``carbon`` block of a report, for an energy per inference (None: unknown)."""
        g = None if energy_j is None else self.grams(energy_j)
        return {"g_per_kwh": self.g_per_kwh, "source": self.source, "country": self.country,
                "g_per_inference": g,
                "g_per_million_inferences": None if g is None else g * 1e6,
                "g_per_inference_interval": None if interval is None or g is None
                else [self.grams(interval[0]), self.grams(interval[1])],
                "note": None if g is not None else "no energy predicted: no CO2 estimate"}


def resolve_intensity(g_per_kwh: float | None, country: str | None) -> CarbonIntensity | None:
    """The intensity of ``--carbon-intensity`` or ``--country`` (None when neither is given)."""
    if g_per_kwh is not None and country is not None:
        raise CarbonError("give --carbon-intensity or --country, not both")
    if g_per_kwh is not None:
        if not math.isfinite(g_per_kwh) or g_per_kwh < 0:
            raise CarbonError(f"--carbon-intensity must be a number >= 0 (gCO2-eq/kWh), not "
                              f"{g_per_kwh}")
        return CarbonIntensity(float(g_per_kwh), "--carbon-intensity")
    if country is not None:
        return country_intensity(country)
    return None


def country_intensity(iso3: str) -> CarbonIntensity:
    """A country's intensity from codecarbon's offline data (ISO 3166 alpha-3 code)."""
    code = iso3.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise CarbonError(f"--country {iso3!r}: give an ISO 3166 alpha-3 code such as FRA, USA")
    data, version = _energy_mix()
    row = data.get(code)
    if not isinstance(row, dict) or not isinstance(row.get("carbon_intensity"), int | float):
        raise CarbonError(f"--country {code}: not in codecarbon's energy-mix data "
                          f"({len(data)} countries)")
    name = row.get("country_name") or code
    year = f", {row['year']}" if row.get("year") else ""
    return CarbonIntensity(float(row["carbon_intensity"]),
                           f"codecarbon {version} offline data: {name}{year}", code)


@lru_cache(maxsize=1)
def _energy_mix() -> tuple[dict[str, Any], str]:
    spec = importlib.util.find_spec("codecarbon")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise CarbonError(f"--country needs codecarbon, which is not installed: {INSTALL_HINT}")
    path = Path(locations[0]) / ENERGY_MIX
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CarbonError(f"codecarbon's energy-mix data cannot be read at {path} ({exc}): "
                          "give --carbon-intensity G_PER_KWH") from None
    if not isinstance(data, dict):
        raise CarbonError(f"codecarbon's energy-mix data at {path} is not a table")
    try:
        version = metadata.version("codecarbon")
    except metadata.PackageNotFoundError:
        version = "?"
    return data, version
