"""How locker words things for people: counts, times, and text from a vault made safe to print."""

from __future__ import annotations

import time


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 file', '2 files', '0 files' (`many` for irregular plurals)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def iso_time(ts: float) -> str:
    """UTC, to the second: what `ls`, `log` and `status` show and their --json carries."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def duration(seconds: float) -> str:
    """A time left that cannot be misread: '42s', '59m57s', '7h59m' (never negative)."""
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{s:02d}s" if m else f"{s}s"


def printable(text: str) -> str:
    """Escape control characters so text from a vault cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else f"\\x{{{ord(c):x}}}" for c in text)


def size_text(size: int) -> str:
    """'912 bytes', '3.4 KiB', '100.0 MiB', '4.2 GiB'."""
    if size < 1024:
        return plural(size, "byte")
    if size < 1024**2:
        return f"{size / 1024:.1f} KiB"
    if size < 1024**3:
        return f"{size / 1024**2:.1f} MiB"
    return f"{size / 1024**3:.1f} GiB"
