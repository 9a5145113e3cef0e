"""The CLI's words for an error, for notifications and error states (no textual here)."""

from __future__ import annotations

import os
import traceback

from locker.errors import LockerError

DEBUG_HINT = "rerun with LOCKER_DEBUG=1 for details"


def describe(exc: BaseException) -> tuple[str, str | None]:
    """(message, hint) as `locker: error: ...` / `locker: hint: ...` would say them."""
    if isinstance(exc, LockerError):
        return str(exc), exc.hint
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", None
    return f"internal error ({type(exc).__name__})", DEBUG_HINT


def as_text(exc: BaseException) -> str:
    message, hint = describe(exc)
    return f"error: {message}" + (f"\nhint: {hint}" if hint else "")


def debug_trace(exc: BaseException) -> str | None:
    """The traceback, only when LOCKER_DEBUG=1 asks for it."""
    if os.environ.get("LOCKER_DEBUG") != "1":
        return None
    return "".join(traceback.format_exception(exc))
