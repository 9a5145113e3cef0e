"""An error as the app shows it: the CLI's words (`errors.describe`) as text, the traceback
LOCKER_DEBUG=1 asks for, and `reported`, which sends a handler's error there (no textual here)."""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from locker.errors import describe

P = ParamSpec("P")
S = TypeVar("S")


def as_text(exc: BaseException) -> str:
    message, hint = describe(exc)
    return f"error: {message}" + (f"\nhint: {hint}" if hint else "")


def debug_trace(exc: BaseException) -> str | None:
    """The traceback, only when LOCKER_DEBUG=1 asks for it."""
    if os.environ.get("LOCKER_DEBUG") != "1":
        return None
    return "".join(traceback.format_exception(exc))


def reported(handler: Callable[Concatenate[S, P], None]) -> Callable[Concatenate[S, P], None]:
    """A message handler or a callback from a worker whose unexpected error becomes the app's
    error notification (`LockerApp.report`) instead of closing the app, as `run_action` does
    for keys. Textual ends the app on an error in a handler; this decorator is the way round."""

    @functools.wraps(handler)
    def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            handler(self, *args, **kwargs)
        except Exception as exc:
            app: Any = getattr(self, "app", self)
            app.report(exc)

    return run
