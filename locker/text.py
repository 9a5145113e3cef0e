"""How locker words things for people: counts, times, and text from a vault made safe to print."""

from __future__ import annotations

import time


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 file', '2 files', '0 files' (`many` for irregular plurals)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def iso_time(ts: float) -> str:
    """UTC, to the second: what `ls`, `log` and `status` show and their --json carries."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def printable(text: str) -> str:
    """Escape control characters so text from a vault cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else f"\\x{{{ord(c):x}}}" for c in text)
