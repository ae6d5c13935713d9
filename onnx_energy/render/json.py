"""The one JSON writer: compact (analysis reports, records) or indented (measurements)."""

from __future__ import annotations

import json

import orjson


def dumps(data: object, *, pretty: bool = False) -> str:
    """``data`` as JSON text.

    Compact output goes through orjson, about 6x faster on a large graph's report; counts
    beyond 64 bits (possible on absurd models) fall back to the standard encoder. Pretty
    output is indented by two spaces and refuses NaN and infinities.
    """
    if pretty:
        return json.dumps(data, indent=2, allow_nan=False)
    try:
        return orjson.dumps(data).decode()
    except TypeError:
        return json.dumps(data, separators=(",", ":"), check_circular=False)
