"""Budgets: quantities with units, and budget tables from pyproject.toml or onnx-energy.toml.

Quantities (`parse_quantity`) take SI prefixes and are case-safe: where a letter's case
changes the meaning it is respected (``mJ`` is millijoules) and a slip is refused rather
than guessed (``MJ``, ``Ms``: no inference costs a megajoule; ``Mb`` is megabits); where only
one meaning makes sense either case is accepted (``5g`` MACs is 5 G, ``200mB`` is 200 MB:
there are no milli-MACs or millibytes). Binary prefixes (``KiB``, ``MiB``, ``GiB``) are
1024-based. Times, energies and masses need their unit: ``--max-latency 20`` is refused
rather than read as 20 s.

Budget tables (docs/check.md) are found from the current directory upward: the first
``onnx-energy.toml`` (``[[budget]]`` or ``[[tool.onnx-energy.budget]]`` tables), or
``pyproject.toml`` with ``[[tool.onnx-energy.budget]]`` tables. Each table names model
path globs (relative to the file's folder; a glob without ``/`` matches file names
anywhere) and its budgets; later tables override earlier ones, the command line overrides
all.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BudgetError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Metric:
    """A budgetable quantity: its budget key, JSON name, unit and kind of quantity."""

    key: str
    name: str
    unit: str
    kind: str
    label: str


METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("max-energy", "energy_j", "J", "energy", "energy"),
    Metric("max-latency", "runtime_s", "s", "time", "latency"),
    Metric("max-macs", "macs", "", "count", "MACs"),
    Metric("max-params", "params", "", "count", "params"),
    Metric("max-memory", "peak_activation_bytes", "B", "bytes", "peak memory"),
    Metric("max-co2", "co2_g", "g", "mass", "CO2-eq"),
)}
#: Keys of a budget table besides the budgets themselves.
SETTINGS = ("models", "profile", "confidence", "dims", "batch-size", "carbon-intensity",
            "country")
CONFIDENCES = ("value", "upper")

_SI = {"Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3,
       "": 1.0, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "n": 1e-9, "p": 1e-12}
_BIG = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15, "e": 1e18, "": 1.0}
_BINARY = {"ki": 2 ** 10, "mi": 2 ** 20, "gi": 2 ** 30, "ti": 2 ** 40, "pi": 2 ** 50}
_UNITS = {"energy": ("J", "Wh"), "time": ("s",), "mass": ("g",)}
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(.*?)\s*$")
_EXAMPLES = {"energy": "50mJ, 1.5 J, 2 µJ, 0.1 Wh", "time": "20ms, 1.5 s, 800us",
             "count": "5G, 30M, 1.2e9, 500k", "bytes": "200MB, 1.5GiB, 64KiB",
             "mass": "0.5g, 20mg, 1kg (of CO2-eq)"}


def parse_quantity(text: str | float | int, kind: str, what: str = "value") -> float:
    """``text`` in SI base units (J, s, a count, bytes, g); see the module docstring."""
    if isinstance(text, bool):
        raise BudgetError(f"{what}: {text!r} is not a quantity")
    if isinstance(text, int | float):
        if kind not in ("count", "bytes"):
            raise BudgetError(f"{what}: {text!r} needs a unit, e.g. {_EXAMPLES[kind]}")
        value = float(text)
    else:
        m = _NUMBER.match(text)
        if m is None:
            raise BudgetError(f"{what}: {text!r} is not a quantity (e.g. {_EXAMPLES[kind]})")
        value = float(m.group(1)) * _scale(m.group(2), kind, what, text)
    if not math.isfinite(value) or value < 0:
        raise BudgetError(f"{what}: {text!r} must be a finite quantity >= 0")
    return value


def _scale(suffix: str, kind: str, what: str, text: str) -> float:
    bad = BudgetError(f"{what}: cannot read the unit of {text!r} (e.g. {_EXAMPLES[kind]})")
    if kind == "count":
        s = suffix.lower()
        if s not in _BIG:
            raise bad
        return _BIG[s]
    if kind == "bytes":
        if suffix == "":
            return 1.0
        if suffix.endswith("b"):  # 'Mb' is megabits: refused, not guessed
            raise BudgetError(f"{what}: {text!r}: 'b' is bits; write bytes as B "
                              "(e.g. 200MB, 1.5GiB)")
        if not suffix.endswith("B"):
            raise bad
        prefix = suffix[:-1].lower()  # no millibytes: 'mB' can only mean MB
        if prefix in _BINARY:
            return _BINARY[prefix]
        if prefix in _BIG:
            return _BIG[prefix]
        raise bad
    suffix = re.sub(r"(?i)co2(-?e(q)?)?$", "", suffix) if kind == "mass" else suffix
    for unit in _UNITS[kind]:
        # the unit letter in either case; the prefix case-sensitive (m milli, M mega)
        if suffix.lower().endswith(unit.lower()) and len(suffix) >= len(unit):
            prefix = suffix[: len(suffix) - len(unit)]
            if prefix == "K":
                prefix = "k"
            if prefix not in _SI:
                raise bad
            if _SI[prefix] >= 1e6:  # a megajoule or megasecond per inference: a case slip
                raise BudgetError(f"{what}: {text!r} is {prefix}{unit} (x{_SI[prefix]:.0e}) per "
                                  f"inference; for milli write m{unit}")
            return _SI[prefix] * (3600.0 if unit == "Wh" else 1.0)
    if suffix == "":
        raise BudgetError(f"{what}: {text!r} needs a unit, e.g. {_EXAMPLES[kind]}")
    raise bad


# ----------------------------------------------------------------------------- budget files


@dataclass(frozen=True)
class BudgetEntry:
    """One budget table: the model globs it applies to, its budgets and settings."""

    models: tuple[str, ...]
    values: Mapping[str, Any]
    source: str

    def matches(self, model: Path, base: Path) -> bool:
        return any(glob_matches(g, model, base) for g in self.models)


@dataclass(frozen=True)
class BudgetFile:
    """A config file holding budget tables."""

    path: Path
    entries: tuple[BudgetEntry, ...]

    @property
    def base(self) -> Path:
        return self.path.parent


@dataclass
class ModelBudgets:
    """What applies to one model: budgets (SI), settings, and where each came from."""

    limits: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def find_budget_file(start: Path | None = None) -> BudgetFile | None:
    """The first budget file from ``start`` (default: the current directory) upward."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in ("onnx-energy.toml", "pyproject.toml"):
            path = folder / name
            if path.is_file():
                found = read_budget_file(path, required=name == "onnx-energy.toml")
                if found is not None:
                    return found
    return None


def read_budget_file(path: Path, required: bool = True) -> BudgetFile | None:
    """The budget tables of ``path``; None when a pyproject.toml has none (not required)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BudgetError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BudgetError(f"{path} is not valid TOML: {exc}") from None
    tool = data.get("tool", {}).get("onnx-energy", {}) if isinstance(data.get("tool"),
                                                                      dict) else {}
    tables = tool.get("budget") if isinstance(tool, dict) else None
    if tables is None and path.name != "pyproject.toml":
        tables = data.get("budget")
    if tables is None:
        if required:
            raise BudgetError(f"{path} has no [[budget]] or [[tool.onnx-energy.budget]] tables")
        return None
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list):
        raise BudgetError(f"{path}: budget must be an array of tables ([[...budget]])")
    entries = [_entry(t, f"{path.name} budget #{i + 1}") for i, t in enumerate(tables)]
    return BudgetFile(path, tuple(entries))


def _entry(table: Any, source: str) -> BudgetEntry:
    if not isinstance(table, dict):
        raise BudgetError(f"{source}: must be a table")
    unknown = [k for k in table if k not in METRICS and k not in SETTINGS]
    if unknown:
        raise BudgetError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))} (budgets: "
                          f"{', '.join(METRICS)}; settings: {', '.join(SETTINGS)})")
    models = table.get("models")
    if isinstance(models, str):
        models = [models]
    if not models or not isinstance(models, list) or not all(isinstance(g, str) and g
                                                             for g in models):
        raise BudgetError(f"{source}: 'models' must be a path glob or a list of them")
    values: dict[str, Any] = {}
    for key, v in table.items():
        if key in METRICS:
            values[key] = parse_quantity(v, METRICS[key].kind, f"{source} {key}")
        elif key != "models":
            values[key] = _setting(key, v, source)
    return BudgetEntry(tuple(models), values, source)


def _setting(key: str, v: Any, source: str) -> Any:
    if key == "confidence":
        if v not in CONFIDENCES:
            raise BudgetError(f"{source}: confidence must be one of {', '.join(CONFIDENCES)}")
        return v
    if key == "dims":
        if not isinstance(v, dict) or not all(isinstance(x, int) and not isinstance(x, bool)
                                              and x >= 0 for x in v.values()):
            raise BudgetError(f"{source}: dims must be a table of NAME = integer >= 0")
        return dict(v)
    if key == "batch-size":
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise BudgetError(f"{source}: batch-size must be an integer >= 1")
        return v
    if key == "carbon-intensity":
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise BudgetError(f"{source}: carbon-intensity must be a number >= 0 (g/kWh)")
        return float(v)
    if not isinstance(v, str) or not v:  # profile, country
        raise BudgetError(f"{source}: {key} must be a string")
    return v


def glob_matches(pattern: str, model: Path, base: Path) -> bool:
    """Whether ``model`` matches ``pattern``: relative to ``base`` when the glob has a
    ``/`` (``**`` spans folders), else against the file name."""
    if "/" not in pattern:
        return _glob_regex(pattern).match(model.name) is not None
    try:
        rel = model.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return False
    return _glob_regex(pattern.removeprefix("./")).match(rel) is not None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def budgets_for(model: Path, file: BudgetFile | None, cli_limits: Mapping[str, float],
                cli_settings: Mapping[str, Any]) -> ModelBudgets:
    """The budgets and settings of ``model``: the file's matching tables in order, then the
    command line's (``cli_settings`` holds only what was given)."""
    out = ModelBudgets()
    if file is not None:
        for entry in file.entries:
            if entry.matches(model, file.base):
                for key, v in entry.values.items():
                    if key == "dims":
                        out.settings["dims"] = {**out.settings.get("dims", {}), **v}
                    elif key in METRICS:
                        out.limits[key] = v
                    else:
                        out.settings[key] = v
                    out.sources[key] = entry.source
    for key, v in cli_limits.items():
        out.limits[key] = v
        out.sources[key] = f"--{key}"
    for key, v in cli_settings.items():
        if key == "dims":
            out.settings["dims"] = {**out.settings.get("dims", {}), **v}
        else:
            out.settings[key] = v
    return out


def describe_globs(entries: Sequence[BudgetEntry]) -> str:
    return ", ".join(g for e in entries for g in e.models)
