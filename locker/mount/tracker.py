"""Activity and deadlines of a mount: the idle and hard deadlines on the monotonic and the wall
clock, the watchdog observer, and the tracker that turns file events into activity and pending
changes while ignoring locker's own reads.

The clock and the observer are injected, so tests drive `on_event()` and the clock by hand.
watchdog is imported only inside `watchdog_observer`, so importing this module stays cheap.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

DEFAULT_IDLE = 300.0
DEFAULT_MAX_TIME = 8 * 3600.0
QUIET = 0.3  # a sync waits for this long without changes...
MAX_DELAY = 1.5  # ...but never longer than this after the first change
OWN_EVENT_TTL = 5.0

REASON_IDLE = "idle"
REASON_MAX_TIME = "max-time"

# watchdog event types: which ones are only activity, and which may change content.
ACTIVITY_ONLY = frozenset({"opened", "closed_no_write", "attrib"})


@dataclass(frozen=True)
class Clock:
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time


class Deadlines:
    """Idle and hard deadlines. Elapsed time is the larger of the monotonic and the wall clock
    reading, so a machine that slept past a deadline (monotonic stood still) locks on wake."""

    def __init__(self, clock: Clock, idle: float, max_time: float) -> None:
        self.clock, self.idle, self.max_time = clock, idle, max_time
        self._start = self._now()
        self._last = self._start

    def _now(self) -> tuple[float, float]:
        return self.clock.monotonic(), self.clock.wall()

    def _elapsed(self, since: tuple[float, float]) -> float:
        mono, wall = self._now()
        return max(mono - since[0], wall - since[1])

    def touch(self) -> None:
        self._last = self._now()

    def idle_left(self) -> float:
        return self.idle - self._elapsed(self._last)

    def hard_left(self) -> float:
        return self.max_time - self._elapsed(self._start)

    def expired(self) -> str | None:
        if self.hard_left() <= 0:
            return REASON_MAX_TIME
        if self.idle_left() <= 0:
            return REASON_IDLE
        return None

    def wall_deadlines(self) -> tuple[float, float]:
        """(idle deadline, hard deadline) as wall-clock timestamps, for the journal and status."""
        now = self.clock.wall()
        return now + self.idle_left(), now + self.hard_left()


class Observer(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


EventSink = Callable[[str, str, bool], None]  # (event type, path, is_directory)
ObserverFactory = Callable[[Path, EventSink], Observer]


def watchdog_observer(root: Path, sink: EventSink) -> Observer:
    """A recursive watchdog observer on `root` that passes every event to `sink`."""
    import logging

    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer as NativeObserver

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            sink(event.event_type, os.fsdecode(event.src_path), event.is_directory)
            if event.dest_path:
                sink(event.event_type, os.fsdecode(event.dest_path), event.is_directory)

    # watchdog logs "Inotify queue overflowed ..." as a warning when events are dropped, which
    # Python's last-resort handler would print raw over the mount's own lines; it rescans the
    # tree itself, and the final sync reads every file, so nothing is lost: keep it quiet.
    quiet = logging.getLogger("watchdog")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    observer = NativeObserver()
    observer.schedule(Handler(), str(root), recursive=True)
    return observer


class Tracker:
    """Receives events on the observer thread: marks activity and pending changes, and drops
    the open/close events of locker's own reads. Nothing slow happens here."""

    def __init__(self, clock: Clock, deadlines: Deadlines) -> None:
        self._clock = clock
        self._deadlines = deadlines
        self._lock = threading.Lock()
        self._own: dict[tuple[str, str], list[float]] = {}
        self._first: float | None = None
        self._last = 0.0
        self.events = 0

    def expect_own_read(self, path: Path) -> None:
        """locker is about to open `path` for reading: its open/close events are not activity."""
        expiry = self._clock.monotonic() + OWN_EVENT_TTL
        with self._lock:
            for kind in ("opened", "closed_no_write"):
                self._own.setdefault((kind, str(path)), []).append(expiry)

    def on_event(self, kind: str, path: str, is_dir: bool) -> None:
        now = self._clock.monotonic()
        with self._lock:
            tokens = self._own.get((kind, path))
            while tokens and tokens[0] < now:
                tokens.pop(0)
            if tokens:
                tokens.pop(0)
                return
            self.events += 1
            self._deadlines.touch()
            if kind in ACTIVITY_ONLY or (is_dir and kind == "modified"):
                return
            if self._first is None:
                self._first = now
            self._last = now

    def mark_dirty(self) -> None:
        with self._lock:
            now = self._clock.monotonic()
            self._first = self._first if self._first is not None else now
            self._last = now

    def sync_due(self) -> bool:
        with self._lock:
            if self._first is None:
                return False
            now = self._clock.monotonic()
            return now - self._last >= QUIET or now - self._first >= MAX_DELAY

    def take(self) -> None:
        """A sync starts: changes from now on need another one."""
        with self._lock:
            self._first = None
            self._own = {k: v for k, v in self._own.items() if v}
