"""The mount session: a private directory holding the vault's files while you work.

`Session` materialises every entry into a 0700 directory, watches it (watchdog, inotify on
Linux), syncs changes back into the vault debounced (each sync one atomic commit with an audit
event), keeps idle and hard deadlines on both the monotonic and the wall clock, and locks:
final sync, overwrite and unlink every file, remove the directories, drop the journal record.

The clock and the observer are injected: tests drive `poll()` and `on_event()` by hand.
watchdog is imported only inside `watchdog_observer`, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Protocol

from locker.errors import LockerError, UsageError
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.store import safefs
from locker.store.format import check_name
from locker.text import plural
from locker.vault import Vault

DEFAULT_IDLE = 300.0
DEFAULT_MAX_TIME = 8 * 3600.0
QUIET = 0.3  # a sync waits for this long without changes...
MAX_DELAY = 1.5  # ...but never longer than this after the first change
OWN_EVENT_TTL = 5.0
RETRY_AFTER = 5.0
INLINE_LIMIT = 64 * 1024 * 1024  # larger files are hashed and encrypted in two streaming reads

REASON_IDLE = "idle"
REASON_MAX_TIME = "max-time"
REASON_COMMAND = "locker lock"
REASON_DIR_GONE = "mount directory removed"
ALL_GONE_GRACE = 2.0  # an emptied directory must stay empty this long before the vault follows
SIGNAL_REASONS = {
    signal.SIGINT: "SIGINT",
    signal.SIGTERM: "SIGTERM",
    signal.SIGHUP: "SIGHUP",
    signal.SIGUSR1: REASON_COMMAND,
}
LOCK_SIGNAL = signal.SIGUSR1  # what `locker lock` sends

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
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer as NativeObserver

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            sink(event.event_type, os.fsdecode(event.src_path), event.is_directory)
            if event.dest_path:
                sink(event.event_type, os.fsdecode(event.dest_path), event.is_directory)

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


@dataclass
class Known:
    sha256: str
    stat: jn.FileStat


@dataclass
class SyncResult:
    changes: jn.Changes = field(default_factory=jn.Changes)
    skipped: list[str] = field(default_factory=list)


@dataclass
class SavedCounts:
    """File changes saved into the vault over a whole mount, by kind."""

    changed: int = 0
    added: int = 0
    deleted: int = 0
    renamed: int = 0

    def add(self, changes: jn.Changes) -> None:
        self.changed += len(changes.changed)
        self.added += len(changes.added)
        self.deleted += len(changes.deleted)
        self.renamed += len(changes.renamed)

    @property
    def total(self) -> int:
        return self.changed + self.added + self.deleted + self.renamed

    def summary(self) -> str:
        return jn.change_summary(self.changed, self.added, self.deleted, self.renamed)


@dataclass
class LockResult:
    reason: str
    synced: jn.Changes
    holders: list[mountdir.Holder]
    wiped: int


Notify = Callable[[str], None]


class Session:
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
        self.notify = notify
        self.known: dict[str, Known] = {}
        self.saved = SavedCounts()
        self.syncs = 0
        self.last_error = ""
        self._warned: set[str] = set()
        self._requested: str | None = None
        self._retry_at = 0.0
        self._root_id: tuple[int, int] | None = None
        self._all_gone_since: float | None = None
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

    # -- start -------------------------------------------------------------------------------

    def start(self) -> None:
        """Journal, materialise, record the mount in the audit log, start watching."""
        self.journal.write(self.record)
        self.materialise()
        st = os.lstat(self.root)
        self._root_id = (st.st_dev, st.st_ino)
        self.vault.record("mount", detail=f"{len(self.known)} files at {self.root}")
        self.vault.commit()
        self.record.state = jn.STATE_MOUNTED
        self._save_journal()
        self.deadlines.touch()
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

    def materialise(self) -> None:
        root_fd = safefs.open_dir(self.root)
        try:
            for entry in self.vault.entries():
                digest = hashlib.sha256()
                chunks = _hashing(self.vault.chunks(entry.name), digest)
                st = safefs.write_file(root_fd, entry.name, chunks, durable=False)
                self.known[entry.name] = Known(digest.hexdigest(), jn.FileStat.of(st))
        finally:
            os.close(root_fd)

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
            except (LockerError, OSError) as exc:
                self._retry_at = self.clock.monotonic() + RETRY_AFTER
                self.notify(f"error: sync failed ({exc}); retrying in {RETRY_AFTER:g} s")
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
        """Write the record, with the hash of every file as the vault now holds it."""
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
        self.tracker.take()
        if not self.root_intact():
            # Removed under us (logind clears $XDG_RUNTIME_DIR at logout): that is no reason
            # to delete anything from the vault. Lock, recording only the event.
            self._warn_once("root", f"{self.root} was removed or replaced; locking")
            self.request_lock(REASON_DIR_GONE)
            if final:
                self._commit(jn.Changes(), {}, (final[0], f"{final[1]}; {REASON_DIR_GONE}"))
            return SyncResult()
        scan = jn.scan_tree(self.root, self.known)
        result = SyncResult(skipped=scan.skipped)
        for name in scan.skipped:
            self._warn_once(f"skip:{name}", f"{name} is not a regular file; it is not saved")
        contents: dict[str, bytes | None] = {}
        fresh: dict[str, Known] = {}
        for name, st in scan.files.items():
            known = self.known.get(name)
            if known and known.stat == st:
                continue
            read = self._read(name, st)
            if read is None:
                if strict and os.path.lexists(self.root / name):
                    raise LockerError(f"cannot read {self.root / name}")
                self.tracker.mark_dirty()
                continue
            data, new = read
            fresh[name] = new
            if not known or known.sha256 != new.sha256:
                contents[name] = data
        gone = {n: k.sha256 for n, k in self.known.items() if n not in scan.files}
        new_names = {n: fresh[n].sha256 for n in contents if n not in self.known}
        added, deleted, renamed = jn.pair_renames(new_names, gone)
        changes = jn.Changes(
            sorted(n for n in contents if n in self.known), added, deleted, renamed
        )
        changes = self._drop_invalid(self._hold_mass_delete(changes, bool(scan.files)))
        if changes or final:
            self._commit(changes, contents, final)
        for name in changes.deleted + [old for old, _ in changes.renamed]:
            self.known.pop(name, None)
        for name, new in fresh.items():
            if name in contents and not self._valid(name):
                continue
            self.known[name] = new
        if changes:
            self.syncs += 1
            self.saved.add(changes)
            self._save_journal()
            self.notify("synced: " + "; ".join(" ".join(x.split()) for x in changes.lines()))
        result.changes = changes
        return result

    def root_intact(self) -> bool:
        """The mount directory is still the one materialised (not removed, not replaced)."""
        try:
            st = os.lstat(self.root)
        except OSError:
            return False
        return self._root_id is None or (st.st_dev, st.st_ino) == self._root_id

    def _hold_mass_delete(self, changes: jn.Changes, files_left: bool) -> jn.Changes:
        """Every file gone at once is saved only once the directory has stayed empty for
        ALL_GONE_GRACE: a directory being torn down must not empty the vault."""
        if files_left or not self.known:
            self._all_gone_since = None
            return changes
        now = self.clock.monotonic()
        if self._all_gone_since is None:
            self._all_gone_since = now
        if now - self._all_gone_since >= ALL_GONE_GRACE:
            return changes
        self._warn_once("all-gone", "every file was deleted; the vault keeps them for now")
        self.tracker.mark_dirty()
        return jn.Changes(changes.changed, changes.added, [], changes.renamed)

    def _read(self, name: str, st: jn.FileStat) -> tuple[bytes | None, Known] | None:
        path = self.root / name
        try:
            self.tracker.expect_own_read(path)
            if st.size > INLINE_LIMIT:
                return None, Known(jn.sha256_file(path), st)
            data, actual = jn.read_regular(path)
            return data, Known(hashlib.sha256(data).hexdigest(), actual)
        except FileNotFoundError:
            return None  # an editor is replacing it; the next sync sees the result
        except (OSError, LockerError) as exc:
            message = exc.strerror if isinstance(exc, OSError) else str(exc)
            self._warn_once(f"read:{name}", f"cannot read {name}: {message}")
            return None

    def _valid(self, name: str) -> bool:
        try:
            check_name(name)
            return True
        except UsageError as exc:
            self._warn_once(f"name:{name}", f"{exc}; it is not saved")
            return False

    def _drop_invalid(self, changes: jn.Changes) -> jn.Changes:
        """Names the vault refuses are not saved (and a rename to one keeps the old entry)."""
        return jn.Changes(
            [n for n in changes.changed if self._valid(n)],
            [n for n in changes.added if self._valid(n)],
            changes.deleted,
            [(old, new) for old, new in changes.renamed if self._valid(new)],
        )

    def _commit(
        self, changes: jn.Changes, contents: dict[str, bytes | None], final: tuple[str, str] | None
    ) -> None:
        v = self.vault
        try:
            for old, new in changes.renamed:
                v.rename(old, new, force=True)
            for name in changes.deleted:
                v.remove(name)
            for name in changes.changed + changes.added:
                data = contents[name]
                if data is None:
                    self.tracker.expect_own_read(self.root / name)
                    v.add_file(name, self.root / name, force=True)
                else:
                    v.add_bytes(name, data, force=True)
            if changes:
                names = tuple(changes.changed + changes.added + changes.deleted)
                names += tuple(n for pair in changes.renamed for n in pair)
                v.record("sync", names, changes.summary())
            if final:
                v.record(final[0], detail=final[1])
            v.commit()
            self.last_error = ""
        except (LockerError, OSError) as exc:
            v.discard()
            self.last_error = str(exc)
            self.tracker.mark_dirty()
            raise

    # -- lock --------------------------------------------------------------------------------

    def stop_watching(self) -> None:
        if self._observer is not None:
            observer, self._observer = self._observer, None
            observer.stop()
            observer.join(timeout=5)

    def lock(self, reason: str) -> LockResult:
        """Final sync (with the lock event), name processes that still hold files, wipe.

        The journal record says "locking" and names the holders before anything is wiped, so
        `locker lock` in another shell can report them; once the final sync is committed it
        says "wiping", so a crash during the wipe is finished by `locker recover` without
        importing anything. If the final sync fails, every file the vault already holds as it
        is is wiped anyway; only files with unsaved changes stay (and the record, with the
        error, lists just those) for `locker recover`. When `locker lock` asked, the record is
        left in state "locked" with the outcome, for it to read and remove.
        """
        self.stop_watching()
        holders = mountdir.find_holders(self.root)
        self.record.state = jn.STATE_LOCKING
        self.record.holders = [asdict(h) for h in holders]
        self._save_journal()
        detail = reason
        if holders:
            detail += "; still open in " + ", ".join(f"{h.pid} ({h.command})" for h in holders)
        try:
            result = self.sync(final=("lock", detail[:500]), strict=True)
        except (LockerError, OSError) as exc:
            result = self._lock_after_failed_sync(exc)
        self.record.state = jn.STATE_WIPING
        self._save_journal()
        wiped = 0
        if self.root_intact():
            wiped = mountdir.wipe_tree(
                self.root, remove_root=self.record.created_dir, expect=self._root_id
            )
        if reason == REASON_COMMAND:
            self.record.state = jn.STATE_LOCKED
            self.known.clear()
            self.record.wiped = wiped
            self.record.finished = time.time()
            self._save_journal()
        else:
            self.journal.remove(self.record.mount_id)
        return LockResult(reason, result.changes, holders, wiped)

    def _lock_after_failed_sync(self, exc: BaseException) -> SyncResult:
        """The final sync failed: wipe every file whose content the vault holds as it is, keep
        only those with unsaved changes, and raise saying which. If nothing is unsaved, the
        lock goes on (only its audit event is missing) and the caller wipes the rest."""
        unchanged: list[str] = []
        kept: list[str] = []
        scan = jn.scan_tree(self.root, self.known) if self.root_intact() else jn.Scan()
        for name in sorted(scan.files):
            known = self.known.get(name)
            try:
                same = known is not None and jn.sha256_file(self.root / name) == known.sha256
            except OSError:
                same = False
            (unchanged if same else kept).append(name)
        gone = sorted(n for n in self.known if n not in scan.files)
        if not kept and not gone:
            self.notify(f"warning: the lock could not be recorded in the vault ({exc})")
            return SyncResult()
        wiped = mountdir.wipe_files(self.root, unchanged, expect=self._root_id)
        for name in unchanged:
            self.known.pop(name, None)
        self.record.error = str(exc)
        self._save_journal()
        unsaved = [*kept, *(f"{n} (deleted)" for n in gone)]
        raise LockerError(
            f"could not save the mount directory into the vault: {exc}; wiped "
            f"{plural(wiped, 'unchanged file')}, kept {plural(len(unsaved), 'file')} "
            f"with unsaved changes: {', '.join(unsaved)}",
            hint=f"they are still in {self.root}: fix the problem, then run 'locker recover'",
        ) from None

    def abort(self) -> None:
        """Start-up failed before anything could have been changed: wipe without syncing."""
        self.stop_watching()
        with contextlib.suppress(OSError):
            mountdir.wipe_tree(self.root, remove_root=self.record.created_dir, expect=self._root_id)
        self.journal.remove(self.record.mount_id)


def _hashing(chunks: Iterator[bytes], digest: hashlib._Hash) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


# -- signals -------------------------------------------------------------------------------------


def install_signal_handlers(session: Session) -> Callable[[], None]:
    """SIGINT/SIGTERM/SIGHUP and `locker lock`'s SIGUSR1 ask the session to lock. Returns undo."""

    def handler(signum: int, frame: FrameType | None) -> None:
        session.request_lock(SIGNAL_REASONS.get(signal.Signals(signum), str(signum)))

    previous = {sig: signal.signal(sig, handler) for sig in SIGNAL_REASONS}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
