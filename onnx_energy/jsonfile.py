"""Reading a JSON object from a file, with one-line errors naming what the file was for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import OnnxEnergyError


def read_json_object(path: Path, what: str, error: type[OnnxEnergyError]) -> dict[str, Any]:
    """The JSON object in ``path``; ``error("cannot read {what} ...")`` (or "is not valid
    JSON", "must be a JSON object") otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{what} {path} must be a JSON object")
    return data
