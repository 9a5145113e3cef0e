"""The mount session: a private directory holding the vault's files while you work.

`Session` materialises every entry into a 0700 directory, watches it (watchdog, inotify on
Linux), syncs changes back into the vault debounced (each sync one atomic commit with an audit
event), keeps idle and hard deadlines on both the monotonic and the wall clock, and locks:
final sync, overwrite and unlink every file, remove the directories, drop the journal record.

What changed and how it is saved is the sync planner's (`sync.Syncer`); the lock sequence is
`locking.LockMethods`', which `Session` inherits; deadlines and events are the tracker's. The
clock and the observer are injected: tests drive `poll()` by hand.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from locker.errors import LockerError
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount.drive_watch import REASON_DRIVE_GONE, DriveGoneError, DriveWatch
from locker.mount.locking import REASON_COMMAND, LockMethods
from locker.mount.sync import Known, Progress, SavedCounts, Syncer, SyncResult
from locker.mount.tracker import (
    DEFAULT_IDLE,
    DEFAULT_MAX_TIME,
    REASON_IDLE,
    REASON_MAX_TIME,
    Clock,
    Deadlines,
    Observer,
    ObserverFactory,
    Tracker,
    watchdog_observer,
)
from locker.vault import Vault

RETRY_AFTER = 5.0
REASON_DIR_GONE = "mount directory removed"
REASON_NOT_RECORDED = "the mount could not be recorded in the vault"
REASON_NOT_WATCHED = "the mount directory could not be watched"
SIGNAL_REASONS = {
    signal.SIGINT: "SIGINT",
    signal.SIGTERM: "SIGTERM",
    signal.SIGHUP: "SIGHUP",
    jn.LOCK_SIGNAL: REASON_COMMAND,  # `locker lock`
}


Notify = Callable[[str], None]


class Session(LockMethods):
    """One mount of one vault (opened for writing with purpose "mount") at `root`."""

    def __init__(
        self,
        vault: Vault,
        root: Path,
        *,
        journal: jn.Journal,
        created_dir: bool = True,
        idle: float = DEFAULT_IDLE,
        max_time: float = DEFAULT_MAX_TIME,
        clock: Clock | None = None,
        observer_factory: ObserverFactory = watchdog_observer,
        notify: Notify = lambda message: None,
    ) -> None:
        self.vault, self.root, self.journal = vault, root, journal
        self.clock = clock or Clock()
        self.deadlines = Deadlines(self.clock, idle, max_time)
        self.tracker = Tracker(self.clock, self.deadlines)
        self._observer_factory = observer_factory
        self._observer: Observer | None = None
        self._unwatching: threading.Thread | None = None
        self.notify = notify
        self._warned: set[str] = set()
        self._requested: str | None = None
        self.start_error = ""  # watching or the audit event failed after `ready`: it locks
        self.start_hint: str | None = None
        self._retry_at = 0.0
        self._root_id: tuple[int, int] | None = None
        self._wake = threading.Event()
        idle_at, hard_at = self.deadlines.wall_deadlines()
        self.record = jn.Record.new(
            vault.path,
            root,
            started=self.clock.wall(),
            idle_seconds=idle,
            idle_deadline=idle_at,
            hard_deadline=hard_at,
            created_dir=created_dir,
        )
        self.syncer = Syncer(vault, root, self.tracker, self.clock, self._warn_once)
        self.drive = DriveWatch(vault, self.clock.monotonic)

    @property
    def known(self) -> dict[str, Known]:
        """What the vault holds of each file in the directory, as of the last sync."""
        return self.syncer.known

    @property
    def saved(self) -> SavedCounts:
        return self.syncer.saved

    @property
    def syncs(self) -> int:
        return self.syncer.syncs

    @property
    def last_error(self) -> str:
        return self.syncer.last_error

    # -- start -------------------------------------------------------------------------------

    def start(
        self, progress: Progress | None = None, ready: Callable[[], None] | None = None
    ) -> None:
        """Journal, materialise, record the mount in the audit log, start watching.

        `progress` is told the bytes of each chunk as it is written into the directory (the
        entries' sizes add up to the whole): a UI's hook for a bar while a large vault mounts.

        With `ready`, the directory is shown first: `ready` is called once the files are in
        place and on record in the journal as mounted, so that `locker mount` shows the
        directory while the audit event is written and watchdog is imported and started. A
        change made before the watch began is never missed: once it watches, the session asks
        for a sync, which compares every file with what the vault holds. If the audit event or
        watching then fails, files may have been changed already: instead of raising, the
        session says so and asks to lock (the final sync saves what changed, or keeps it for
        `locker recover`), and `start_error` says why.
        """
        self.vault.check_saves_allowed()  # a commit record passed over: no sync could save
        self.journal.write(self.record)
        self.materialise(progress)
        st = os.lstat(self.root)
        self._root_id = (st.st_dev, st.st_ino)
        if ready is None:
            self._record_mount()
            self._watch()
        self.record.state = jn.STATE_MOUNTED
        self._save_journal()
        self.deadlines.touch()
        if ready is None:
            return
        ready()
        steps = ((REASON_NOT_RECORDED, self._record_mount), (REASON_NOT_WATCHED, self._watch))
        for reason, step in steps:
            try:
                step()
            except (LockerError, OSError) as exc:
                self.start_error = f"{reason}: {exc}"
                self.start_hint = getattr(exc, "hint", None)
                self.notify(f"error: {reason} ({exc}); locking")
                self.request_lock(reason)
                return
        # A rescan now that it watches: whatever changed before the watch began (unseen by
        # it) is found and saved by this sync, as a change seen by the observer would be.
        self.tracker.mark_dirty()

    def _record_mount(self) -> None:
        """The mount's audit event: a small sealed file beside the vault, not a whole save."""
        self.syncer.record_event("mount", f"{len(self.known)} files at {self.root}")

    def _watch(self) -> None:
        try:
            observer = self._observer_factory(self.root, self.tracker.on_event)
            observer.start()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise LockerError(
                    "inotify watch limit reached; cannot watch the mount directory",
                    hint="raise fs.inotify.max_user_watches (sysctl) and mount again",
                ) from None
            raise
        self._observer = observer

    def materialise(self, progress: Progress | None = None) -> None:
        self.syncer.materialise(progress or (lambda done: None))

    # -- the loop ----------------------------------------------------------------------------

    def request_lock(self, reason: str) -> None:
        """Ask the loop to lock (signal handlers, `locker lock`, a UI). Safe from any thread."""
        if self._requested is None:
            self._requested = reason
        self._wake.set()

    def poll(self) -> str | None:
        """One step: the lock reason if it is time to lock, else sync if a sync is due."""
        if self._requested:
            return self._requested
        reason = self.deadlines.expired()
        if reason:
            return reason
        if self.tracker.sync_due() and self.clock.monotonic() >= self._retry_at:
            try:
                self.sync()
            except DriveGoneError:
                pass  # said and locked just below
            except (LockerError, OSError) as exc:
                self._retry_at = self.clock.monotonic() + RETRY_AFTER
                self.notify(f"error: sync failed ({exc}); retrying in {RETRY_AFTER:g} s")
        if self.drive.gone():
            self._warn_once("drive", f"the drive holding {self.vault.path} went away; locking")
            self.request_lock(REASON_DRIVE_GONE)
            return REASON_DRIVE_GONE
        self._update_deadlines()
        return self._requested or self.deadlines.expired()

    def run(self, tick: Callable[[], None] = lambda: None, step: float = 0.1) -> str:
        """Poll until it is time to lock; return the reason (the caller then calls lock())."""
        while True:
            reason = self.poll()
            if reason:
                return reason
            tick()
            self._wake.wait(step)
            self._wake.clear()

    def left(self) -> tuple[float, str]:
        """Seconds until auto-lock, and which deadline it is."""
        idle, hard = self.deadlines.idle_left(), self.deadlines.hard_left()
        return (hard, REASON_MAX_TIME) if hard < idle else (idle, REASON_IDLE)

    def _update_deadlines(self) -> None:
        idle_at, hard_at = self.deadlines.wall_deadlines()
        if (
            abs(idle_at - self.record.idle_deadline) > 1
            or abs(hard_at - self.record.hard_deadline) > 1
        ):
            self.record.idle_deadline, self.record.hard_deadline = idle_at, hard_at
            self._save_journal()

    def _save_journal(self) -> None:
        """Write the record, with the hash of every file as the vault now holds it (once it is
        wiping, the record keeps only what the kept files are compared with)."""
        if self.record.state not in (jn.STATE_WIPING, jn.STATE_LOCKED):
            self.record.files = {n: k.sha256 for n, k in self.known.items()}
        try:
            self.journal.write(self.record)
        except OSError as exc:
            self._warn_once("journal", f"cannot update the mount journal: {exc.strerror}")

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.notify(f"warning: {message}")

    # -- sync --------------------------------------------------------------------------------

    def sync(self, final: tuple[str, str] | None = None, strict: bool = False) -> SyncResult:
        """Save what changed in the directory into the vault: one commit, one audit event.

        `final` is an extra (event, detail) to record in the same commit (the lock event).
        `strict` makes any unreadable file an error instead of a retry later.
        """
        self.drive.check()  # never write where the vault used to be
        self.tracker.take()
        if not self.root_intact():
            # Removed under us (logind clears $XDG_RUNTIME_DIR at logout): that is no reason
            # to delete anything from the vault. Lock, recording only the event.
            self._warn_once("root", f"{self.root} was removed or replaced; locking")
            self.request_lock(REASON_DIR_GONE)
            if final:
                self.syncer.record_event(final[0], f"{final[1]}; {REASON_DIR_GONE}")
            return SyncResult()
        result = self.syncer.sync(final, strict)
        if result.changes:
            self._save_journal()
            lines = result.changes.lines()
            self.notify("synced: " + "; ".join(" ".join(x.split()) for x in lines))
        return result

    def root_intact(self) -> bool:
        """The mount directory is still the one materialised (not removed, not replaced)."""
        try:
            st = os.lstat(self.root)
        except OSError:
            return False
        return self._root_id is None or (st.st_dev, st.st_ino) == self._root_id

    # -- lock --------------------------------------------------------------------------------

    def stop_watching(self, wait: bool = True) -> None:
        """Stop the observer. Stopping takes 10 to 20 ms, mostly the kernel tearing down the
        inotify watches: with `wait=False` that happens on a thread of its own (while the lock
        syncs), and a later call waits for it."""
        if self._observer is not None:
            observer, self._observer = self._observer, None

            def stop() -> None:
                observer.stop()
                observer.join(timeout=5)

            self._unwatching = threading.Thread(target=stop, name="locker-unwatch", daemon=True)
            self._unwatching.start()
        if wait and self._unwatching is not None:
            self._unwatching.join()
            self._unwatching = None

    def abort(self) -> None:
        """Start-up failed before anything could have been changed: wipe without syncing."""
        self.stop_watching()
        with contextlib.suppress(OSError):
            wiped = mountdir.wipe_tree(
                self.root, remove_root=self.record.created_dir, expect=self._root_id
            )
            for line in wiped.warnings():
                self.notify(f"warning: {line}")
        self.journal.remove(self.record.mount_id)


# -- signals -------------------------------------------------------------------------------------


def install_signal_handlers(session: Session) -> Callable[[], None]:
    """SIGINT/SIGTERM/SIGHUP and `locker lock`'s SIGUSR1 ask the session to lock; Ctrl-Z
    (SIGTSTP) is ignored: a stopped mount would never lock. Returns undo."""

    def handler(signum: int, frame: FrameType | None) -> None:
        session.request_lock(SIGNAL_REASONS.get(signal.Signals(signum), str(signum)))

    previous = {sig: signal.signal(sig, handler) for sig in SIGNAL_REASONS}
    previous[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, signal.SIG_IGN)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
