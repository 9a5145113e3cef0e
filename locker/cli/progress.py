"""A progress bar on stderr for work that takes more than about a second, drawn with rich.

Only when stderr is a terminal that can redraw a line; nothing at all otherwise (scripts,
pipes, logs, TERM=dumb). The work is
measured without touching the layers below: by this process's own I/O counters
(/proc/self/io: bytes read and written through system calls), against the number of bytes the
command expects to move. Work whose library reports its own progress through a hook (a mount
materialising the vault) passes `advance` as that hook instead (`counter=None`). rich is
imported only once a bar is actually shown.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from locker.mount.process import io_bytes

SHOW_AFTER = 1.0  # seconds of work before a bar appears
POLL = 0.1


class Progress:
    """`with Progress("adding", total_bytes): ...` shows a bar while the block runs."""

    def __init__(
        self,
        label: str,
        total: int,
        stream: TextIO | None = None,
        counter: Callable[[], int] | None = io_bytes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0  # what `advance` was told, when the work reports its own progress
        self.counter = counter if counter is not None else lambda: self.done
        self.clock = clock
        self.start = clock()
        self.base = self.counter()
        self.bar: Any = None
        self.task: Any = None
        self._hooked = counter is None
        self._shown = False
        self._ticked = self.start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self._shown = self._is_terminal()
        if self._shown and not self._hooked:
            self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
            self._thread.start()
        return self

    def advance(self, amount: int) -> None:
        """The hook for work that reports its own progress (made with `counter=None`): count
        `amount` more done, and move the bar at most every POLL seconds."""
        self.done += amount
        if self._shown and self.clock() - self._ticked >= POLL:
            self._ticked = self.clock()
            self.tick()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.bar is not None:
            self.bar.stop()

    def _is_terminal(self) -> bool:
        """A terminal that can redraw a line (not TERM=dumb, where a bar would leave lines)."""
        if os.environ.get("TERM", "") in ("", "dumb"):
            return False
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            self.tick()

    def tick(self) -> None:
        """Show the bar once SHOW_AFTER has passed, and move it to what the counter says."""
        if self.clock() - self.start < SHOW_AFTER:
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            from rich.progress import Progress as Bar

            console = Console(file=self.stream, stderr=True)
            self.bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total)
        done = min(self.counter() - self.base, self.total)
        self.bar.update(self.task, completed=done)
