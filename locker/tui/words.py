"""An error as the app shows it: the CLI's words (`errors.describe`) as text, and the traceback
LOCKER_DEBUG=1 asks for (no textual here)."""

from __future__ import annotations

import os
import traceback

from locker.errors import describe


def as_text(exc: BaseException) -> str:
    message, hint = describe(exc)
    return f"error: {message}" + (f"\nhint: {hint}" if hint else "")


def debug_trace(exc: BaseException) -> str | None:
    """The traceback, only when LOCKER_DEBUG=1 asks for it."""
    if os.environ.get("LOCKER_DEBUG") != "1":
        return None
    return "".join(traceback.format_exception(exc))
