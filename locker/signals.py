"""SIGTERM and SIGHUP turned into a clean exit while plaintext is being written.

A dropped SSH session sends SIGHUP; `kill` and service managers send SIGTERM. Their default
action ends the process at once, so no `finally` runs and a half-written plaintext temp file
stays behind. Inside `exit_cleanly()` either signal raises `Terminated` in the main thread
instead: it unwinds like Ctrl-C, every cleanup runs, and the CLI exits with 128 + the
signal's number. Used by `get`, and meant for every command that writes plaintext (`edit`,
`run --file`); the mount has its own handlers.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM or SIGHUP inside `exit_cleanly()`."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def exit_cleanly(signals: tuple[signal.Signals, ...] = SIGNALS) -> Iterator[None]:
    """Raise `Terminated` on `signals` until the block ends; then restore the old handlers.

    A signal that was ignored (`nohup` ignores SIGHUP) stays ignored. Outside the main thread,
    where Python cannot install handlers, this does nothing.
    """
    import threading  # here: every command imports this module, few enter this block

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in signals:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, _raise)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
