"""Mounted: the directory's path (copyable), a live countdown to the idle and the hard lock, a
line per sync, and lock now. The session runs in a thread worker; it talks back by messages."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Label, RichLog, Static

from locker.text import plural
from locker.tui.messages import MountEvent, MountLocked
from locker.tui.screens.base import LockerScreen
from locker.tui.widgets.status import StatusBar
from locker.tui.words import reported

if TYPE_CHECKING:
    from locker.mount.session import Session


class MountScreen(LockerScreen):
    BINDINGS = [
        Binding("c", "copy_path", "Copy path"),
        Binding("l", "lock", "Lock now"),
        Binding("q", "app.quit", "Lock and quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.session: Session | None = None
        self.finished = threading.Event()  # the worker is done: locked, or never mounted
        self.stopping: str | None = None

    def request_stop(self, reason: str) -> None:
        """Ask the session to lock (now, or as soon as it has started). Does not wait."""
        self.stopping = self.stopping or reason
        if self.session is not None:
            self.session.request_lock(reason)

    def stop(self, reason: str, wait: float = 60.0) -> None:
        """Lock the mount and wait until it is wiped (quitting, SIGTERM)."""
        self.request_stop(reason)
        if self.is_running_worker():
            self.finished.wait(wait)

    def is_running_worker(self) -> bool:
        return any(w.group == "mount" and not w.is_finished for w in self.workers)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Vertical(id="mount"):
            yield Label("mounting…", id="mount-path")
            yield Static("", id="countdown")
            yield RichLog(id="events", wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.run_session()

    @work(thread=True, exit_on_error=False, exclusive=True, group="mount")
    def run_session(self) -> None:
        """Start, poll until a lock is due, lock: all on this thread, as `locker mount` does."""
        try:
            self._run_session()
        finally:
            self.finished.set()

    def _run_session(self) -> None:
        from locker.mount import directory as mountdir
        from locker.mount import journal as jn
        from locker.mount import runtime as rt
        from locker.mount import session as m

        app = self.locker
        vault = app.vault
        if vault is None:
            return
        with app.vault_lock:
            try:
                root, created, warning = mountdir.make_mount_dir(None)
                if warning:
                    self.post_message(
                        MountEvent(f"warning: {warning}: plaintext may reach the disk")
                    )
                session = m.Session(
                    vault,
                    root,
                    journal=jn.Journal(rt.runtime_base().journal_dir),
                    created_dir=created,
                    idle=app.idle,
                    max_time=app.max_time,
                    clock=app.clock,
                    notify=self._notify,
                )
                try:
                    session.start()
                except BaseException:
                    session.abort()
                    raise
            except Exception as exc:
                self.app.call_from_thread(self._failed, exc)
                return
            self.session = session
            if self.stopping:
                session.request_lock(self.stopping)
            self.app.call_from_thread(self._started, session)
            reason = session.run()
            try:
                result = session.lock(reason)
            except Exception as exc:
                self.post_message(MountLocked(reason, f"error: {exc}", []))
                return
        saved = session.saved
        head = (
            f"{saved.summary()} saved in {plural(session.syncs, 'sync')}"
            if saved.total
            else "no changes"
        )
        holders = [
            f"process {h.pid} ({h.command}) still had {', '.join(h.paths)} open; "
            "its files were wiped anyway"
            for h in result.holders
        ]
        summary = f"{head}; {plural(result.wiped, 'file')} wiped"
        self.post_message(MountLocked(result.reason, summary, holders))

    def _notify(self, text: str) -> None:
        """From the session's thread: one line for the event log."""
        self.post_message(MountEvent(text))

    @reported
    def _failed(self, exc: BaseException) -> None:
        self.locker.report(exc)
        self.app.pop_screen()

    @reported
    def _started(self, session: Session) -> None:
        self.query_one("#mount-path", Label).update(f"[b]{session.root}[/b]")
        self.query_one(RichLog).write(
            f"mounted {plural(len(session.known), 'file')} at {session.root}; "
            "work on the files there. c copies the path, l locks now."
        )
        self.locker.tick()

    def show_left(self, idle: float, hard: float) -> None:
        from locker.text import duration

        self.query_one("#countdown", Static).update(
            f"locks in [b]{duration(idle)}[/b] if idle · in [b]{duration(hard)}[/b] at the latest"
        )

    @on(MountEvent)
    @reported
    def event_line(self, message: MountEvent) -> None:
        from time import strftime

        self.query_one(RichLog).write(f"{strftime('%H:%M:%S')} {message.text}")

    @on(MountLocked)
    @reported
    def locked(self, message: MountLocked) -> None:
        self.session = None
        self.locker.mount_locked(message)

    def action_copy_path(self) -> None:
        if self.session is not None:
            self.app.copy_to_clipboard(str(self.session.root))
            self.notify(f"copied {self.session.root}")

    def action_lock(self) -> None:
        self.request_stop("locked from the TUI")
