"""Durations on the command line: '90', '90s', '5m', '1h30m', '2.5h' (for --idle, --max-time)."""

from __future__ import annotations

import re

from locker.errors import UsageError

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, what: str) -> float:
    """'90', '90s', '5m', '1h30m', '2.5h' -> seconds (> 0)."""
    spec = text.strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd]?)", spec)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([smhd]?)", "", spec).strip():
        raise UsageError(
            f"{what} {text!r} is not a duration", hint="use e.g. 300, 90s, 5m, 8h, 1h30m"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"{what} must be more than zero")
    return seconds
