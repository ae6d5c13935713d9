"""The measurement record store: one JSON object per line, one line per window.

Each record is written with a single ``write`` and then flushed and fsynced before the next
window starts, so an interrupted run (Ctrl-C, kill, power loss) loses at most the window in
progress. A torn last line (a kill in the middle of a write) is skipped and counted by
`read_records`; the next writer starts on a fresh line.

The schema is ``onnx_energy/data/record.schema.json`` (JSON Schema 2020-12), documented in
``docs/measurement.md``. Version 2 adds the record's ``kind`` (a whole model, a single-op
spec, a node group timed in context, a block of code) and its ``runner`` (what executed it:
records measured elsewhere say so); version-1 files are still read, upgraded in memory.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import RecordFileError
from ..render.json import dumps

SCHEMA_ID = "onnx-energy/record/2"
SCHEMA_V1 = "onnx-energy/record/1"
KINDS = ("model", "op", "group", "code")

#: Keys every record has (values may be null where the schema allows it).
REQUIRED_KEYS = ("schema", "kind", "runner", "sensor", "runtime_s", "energy_j")
#: The field each kind must carry (an object).
KIND_FIELD = {"op": "spec", "group": "group", "model": "model", "code": None}
#: Keys every version-1 record had.
V1_REQUIRED_KEYS = (
    "schema", "run_id", "window", "timestamp", "model", "spec", "provider", "threads", "dims",
    "batch_size", "inputs", "seed", "sensor", "sensor_detail", "estimate", "iterations",
    "window_s", "runtime_s", "energy_j", "energy_dynamic_j", "power_w", "idle_power_w",
    "hardware",
)


def record_schema() -> dict[str, Any]:
    """The JSON Schema of one record."""
    text = resources.files("onnx_energy").joinpath("data/record.schema.json").read_text("utf-8")
    return json.loads(text)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class RecordWriter:
    """Appends records to a JSON-lines file, durably, one window at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.written = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a+b")  # noqa: SIM115 - closed in close()
            self._fh.seek(0, os.SEEK_END)
            if self._fh.tell() > 0:
                self._fh.seek(-1, os.SEEK_END)
                if self._fh.read(1) != b"\n":  # a torn line from an earlier kill: start afresh
                    self._fh.write(b"\n")
                    self._sync()
        except OSError as exc:
            raise RecordFileError(
                f"record file {self.path}: cannot append ({exc.strerror or exc})") from None

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def append(self, record: dict[str, Any]) -> None:
        line = dumps(_finite(record)) + "\n"
        self._fh.write(line.encode("utf-8"))
        self._sync()
        self.written += 1

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RecordFile:
    """The records of a file (version 1 upgraded to 2), and how many lines were skipped."""

    records: list[dict[str, Any]]
    skipped: int
    upgraded: int = 0


def upgrade(record: dict[str, Any]) -> dict[str, Any] | None:
    """A record in the current version, or None when it is not a record of either version.

    A version-1 record was always run by onnxruntime: it becomes kind ``op`` (a single-op
    spec) or ``model``, with the runner named from its hardware fingerprint.
    """
    version = record.get("schema")
    if version == SCHEMA_ID:
        if any(k not in record for k in REQUIRED_KEYS) or record["kind"] not in KINDS:
            return None
        needed = KIND_FIELD[record["kind"]]
        if needed is not None and not isinstance(record.get(needed), dict):
            return None
        if not isinstance(record["runner"], dict) or "name" not in record["runner"]:
            return None
        return record
    if version == SCHEMA_V1 and all(k in record for k in V1_REQUIRED_KEYS):
        hardware = record.get("hardware") or {}
        return {**record, "schema": SCHEMA_ID,
                "kind": "op" if isinstance(record.get("spec"), dict) else "model",
                "runner": {"name": "onnxruntime", "version": hardware.get("onnxruntime")}}
    return None


def read_records(path: str | os.PathLike[str]) -> RecordFile:
    """All complete records of a file; torn or foreign lines are skipped and counted."""
    records: list[dict[str, Any]] = []
    skipped = upgraded = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            current = upgrade(rec) if isinstance(rec, dict) else None
            if current is None:
                skipped += 1
                continue
            upgraded += current is not rec
            records.append(current)
    return RecordFile(records, skipped, upgraded)
