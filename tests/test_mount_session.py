"""The mount session as a library: deadlines and debouncing on an injected clock (no sleeps),
sync-back driven by hand, activity tracking with the real watchdog observer, wipe, holders."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, Places, require
from test_faults import FaultLayer

from locker.cli.mount_commands import duration, lock_summary, parse_duration
from locker.errors import IntegrityError, LockerError, UsageError
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import process, sync, tracker
from locker.mount import runtime as rt
from locker.mount import scan as sc
from locker.mount import session as m
from locker.store import deferred, generations
from locker.vault import Vault


class Clocks:
    """Monotonic and wall clocks that only move when told to; `suspend` moves the wall only."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = 1_700_000_000.0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds

    def suspend(self, seconds: float) -> None:
        self.wall += seconds

    def clock(self) -> tracker.Clock:
        return tracker.Clock(monotonic=lambda: self.mono, wall=lambda: self.wall)


class NoObserver:
    """Stands in for watchdog where a test feeds events by hand."""

    started = stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def join(self, timeout: float | None = None) -> None:
        pass


# -- deadlines and debouncing: pure timing, injected clock ----------------------------------------


def test_idle_deadline_and_touch() -> None:
    c = Clocks()
    d = tracker.Deadlines(c.clock(), idle=300, max_time=3600)
    c.advance(299)
    assert d.expired() is None
    d.touch()
    c.advance(299)
    assert d.expired() is None
    c.advance(1)
    assert d.expired() == tracker.REASON_IDLE


def test_max_time_wins_over_activity() -> None:
    c = Clocks()
    d = tracker.Deadlines(c.clock(), idle=300, max_time=1000)
    for _ in range(10):
        c.advance(100)
        d.touch()
    assert d.expired() == tracker.REASON_MAX_TIME


@pytest.mark.parametrize(
    ("max_time", "sleep", "reason"), [(3600, 1000, "idle"), (3600, 4000, "max-time")]
)
def test_suspend_past_the_deadline_locks_on_wake(
    max_time: float, sleep: float, reason: str
) -> None:
    """While suspended the monotonic clock stands still; the wall clock does not."""
    c = Clocks()
    d = tracker.Deadlines(c.clock(), idle=300, max_time=max_time)
    c.advance(10)
    assert d.expired() is None
    c.suspend(sleep)
    assert c.mono == 110
    assert d.expired() == reason
    assert d.idle_left() < 0


def test_wall_clock_set_back_does_not_extend_the_deadline() -> None:
    c = Clocks()
    d = tracker.Deadlines(c.clock(), idle=60, max_time=3600)
    c.advance(61)
    c.wall -= 3600
    assert d.expired() == tracker.REASON_IDLE


def test_wall_deadlines_for_the_journal() -> None:
    c = Clocks()
    d = tracker.Deadlines(c.clock(), idle=60, max_time=600)
    c.advance(10)
    assert d.wall_deadlines() == (c.wall + 50, c.wall + 590)


def test_debounce_waits_for_quiet_but_not_forever() -> None:
    c = Clocks()
    t = tracker.Tracker(c.clock(), tracker.Deadlines(c.clock(), 300, 3600))
    t.on_event("modified", "/m/a", False)
    assert not t.sync_due()
    c.advance(tracker.QUIET + 0.01)
    assert t.sync_due()
    t.take()
    assert not t.sync_due()
    # a file written continuously still syncs after MAX_DELAY
    for _ in range(int(tracker.MAX_DELAY / 0.1) + 1):
        t.on_event("modified", "/m/a", False)
        c.advance(0.1)
    assert t.sync_due()


def test_opens_are_activity_but_not_changes_and_own_reads_are_neither() -> None:
    c = Clocks()
    d = tracker.Deadlines(c.clock(), idle=10, max_time=3600)
    t = tracker.Tracker(c.clock(), d)
    c.advance(5)
    t.expect_own_read(Path("/m/a"))
    t.on_event("opened", "/m/a", False)
    t.on_event("closed_no_write", "/m/a", False)
    assert d.idle_left() == 5  # locker's own read: no activity
    t.on_event("opened", "/m/a", False)  # a second open is someone else's
    assert d.idle_left() == 10
    c.advance(1)
    assert not t.sync_due()  # reading changes nothing
    t.on_event("closed_no_write", "/m/b", False)
    t.on_event("modified", "/m", True)  # directory mtime: activity, not a change
    assert not t.sync_due()
    t.on_event("closed", "/m/b", False)
    c.advance(tracker.QUIET + 0.01)
    assert t.sync_due()


def test_own_read_tokens_expire() -> None:
    c = Clocks()
    d = tracker.Deadlines(c.clock(), idle=100, max_time=3600)
    t = tracker.Tracker(c.clock(), d)
    t.expect_own_read(Path("/m/a"))
    c.advance(tracker.OWN_EVENT_TTL + 1)
    t.on_event("opened", "/m/a", False)
    assert d.idle_left() == 100


def test_parse_duration() -> None:
    assert parse_duration("90", "--idle") == 90
    assert parse_duration("1h30m", "--max-time") == 5400
    assert parse_duration("2.5h", "--max-time") == 9000
    assert parse_duration("8h", "--max-time") == 28800
    for bad in ("", "0", "abc", "5x", "-3"):
        with pytest.raises(UsageError):
            parse_duration(bad, "--idle")


# -- the session on a real directory ---------------------------------------------------------------


@pytest.fixture
def session(filled_vault: Path, tmp_path: Path) -> Iterator[tuple[m.Session, Clocks]]:
    clocks = Clocks()
    s = unstarted(filled_vault, tmp_path, clocks)
    s.start()
    try:
        yield s, clocks
    finally:
        s.vault.close()


def contents(path: Path) -> dict[str, bytes]:
    with Vault.open(path, PASSPHRASE) as v:
        return {e.name: v.read_bytes(e.name) for e in v.entries()}


def unstarted(vault_file: Path, tmp_path: Path, clocks: Clocks) -> m.Session:
    journal_dir = tmp_path / "journal"
    rt.ensure_private_dir(journal_dir)
    root = tmp_path / "mnt-test"
    root.mkdir(mode=0o700)
    return m.Session(
        Vault.open(vault_file, PASSPHRASE, write=True, purpose="mount"),
        root,
        journal=jn.Journal(journal_dir),
        idle=60,
        max_time=600,
        clock=clocks.clock(),
        observer_factory=lambda root, sink: NoObserver(),
    )


def events(s: m.Session) -> list[str]:
    return [e.event for e in s.vault.log()]


def test_ready_comes_before_the_audit_commit(filled_vault: Path, tmp_path: Path) -> None:
    """`locker mount` shows the directory once the files are on record in the journal; the
    audit event and the watch come after that (tests/test_mount_events.py)."""
    s = unstarted(filled_vault, tmp_path, Clocks())
    seen: list[tuple[str, bool, str]] = []

    def ready() -> None:
        [record] = list(s.journal.records())
        seen.append((record.state, s._observer is not None, "mount" in events(s)))

    with s.vault:
        s.start(ready=ready)
        assert seen == [(jn.STATE_MOUNTED, False, False)]
        assert s.vault.log()[-1].event == "mount" and s.start_error == ""
        assert s._observer is not None
        assert s.poll() is None
        s.lock(tracker.REASON_IDLE)


def no_event_file(*args: object, **kwargs: object) -> Path:
    raise OSError(28, "disk full")


def test_a_failed_audit_commit_after_ready_locks_and_keeps_what_changed(
    filled_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory was shown, so a file may have changed before the mount's audit event
    failed (neither its file beside the vault nor a save could be written): the session locks
    through its final sync instead of wiping (as a failed start would)."""
    s = unstarted(filled_vault, tmp_path, Clocks())
    notes: list[str] = []
    s.notify = notes.append
    monkeypatch.setattr(deferred, "write", no_event_file)
    real_commit = s.vault.commit
    s.vault.commit = lambda: (_ for _ in ()).throw(OSError(28, "disk full"))  # type: ignore[method-assign]

    def ready() -> None:
        (s.root / "a.txt").write_bytes(b"changed at once")

    with s.vault:
        s.start(ready=ready)
        assert "disk full" in s.start_error
        assert any(m.REASON_NOT_RECORDED in n for n in notes)
        assert s.poll() == m.REASON_NOT_RECORDED
        s.vault.commit = real_commit  # type: ignore[method-assign]
        s.lock(m.REASON_NOT_RECORDED)
        log = [(e.event, e.detail) for e in s.vault.log()]
    assert contents(filled_vault)["a.txt"] == b"changed at once"
    assert [e for e, _ in log[-3:]] == ["mount", "sync", "lock"]  # the mount is on record
    assert log[-1] == ("lock", m.REASON_NOT_RECORDED)
    assert not s.root.exists()


def test_materialise_modes_and_journal(session: tuple[m.Session, Clocks]) -> None:
    s, _ = session
    root = s.root
    assert (root / "sub" / "deep" / "b.key").read_bytes() == b"-----BEGIN KEY-----\n"
    for dirpath, _, filenames in os.walk(root):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700
        for name in filenames:
            assert stat.S_IMODE(os.stat(Path(dirpath, name)).st_mode) == 0o600
    [record] = list(s.journal.records())
    assert record.state == jn.STATE_MOUNTED
    assert sorted(record.files) == ["a.txt", "c.env", "d.txt", "sub/deep/b.key"]
    assert s.vault.log()[-1].event == "mount"


def test_start_tells_its_progress_hook_every_byte_it_writes(
    filled_vault: Path, tmp_path: Path
) -> None:
    """The hook a UI draws its bar from while a large vault mounts (issue 8 item 15)."""
    with Vault.open(filled_vault, PASSPHRASE, write=True) as v:
        v.add_bytes("big.bin", os.urandom(3 << 20))  # several chunks
        v.commit()
    journal_dir = tmp_path / "journal"
    rt.ensure_private_dir(journal_dir)
    root = tmp_path / "mnt-progress"
    root.mkdir(mode=0o700)
    told: list[int] = []
    with Vault.open(filled_vault, PASSPHRASE, write=True, purpose="mount") as vault:
        total = sum(e.size for e in vault.entries())
        s = m.Session(
            vault,
            root,
            journal=jn.Journal(journal_dir),
            observer_factory=lambda root, sink: NoObserver(),
        )
        s.start(progress=told.append)
        try:
            assert sum(told) == total
            assert len(told) > len(vault.entries())  # chunk by chunk, not file by file
            assert (root / "big.bin").stat().st_size == 3 << 20
        finally:
            s.lock("test")


def test_sync_changes_renames_deletes_and_ignores_litter(
    session: tuple[m.Session, Clocks], filled_vault: Path
) -> None:
    s, _ = session
    root = s.root
    (root / "a.txt").write_bytes(b"alpha 2\n")
    (root / "c.env").unlink()
    (root / "d.txt").rename(root / "sub" / "d-renamed.txt")
    (root / "new" / "dir").mkdir(parents=True)
    (root / "new" / "dir" / "n.pem").write_bytes(b"new")
    for litter in (".a.txt.swp", "a.txt~", "4913", ".#a.txt", "sub/.b.key.swx"):
        (root / litter).write_bytes(b"litter")
    tmp = root / "sub" / "deep" / ".b.key.tmp123"
    tmp.write_bytes(b"-----BEGIN NEW KEY-----\n")
    os.replace(tmp, root / "sub" / "deep" / "b.key")
    result = s.sync()
    assert result.changes.changed == ["a.txt", "sub/deep/b.key"]
    assert result.changes.added == ["new/dir/n.pem"]
    assert result.changes.deleted == ["c.env"]
    assert result.changes.renamed == [("d.txt", "sub/d-renamed.txt")]
    assert contents(filled_vault) == {
        "a.txt": b"alpha 2\n",
        "new/dir/n.pem": b"new",
        "sub/d-renamed.txt": b"delta\n",
        "sub/deep/b.key": b"-----BEGIN NEW KEY-----\n",
    }
    assert not s.sync().changes  # nothing new: no commit
    [record] = list(s.journal.records())
    assert record.files == {n: k.sha256 for n, k in s.known.items()}
    assert s.vault.log()[-1].event == "sync"


def test_touch_without_change_is_not_synced(session: tuple[m.Session, Clocks]) -> None:
    s, _ = session
    events = len(s.vault.log())
    os.utime(s.root / "a.txt", (1, 1))
    assert not s.sync().changes
    assert len(s.vault.log()) == events


def test_invalid_name_is_not_saved_and_warned(session: tuple[m.Session, Clocks]) -> None:
    s, _ = session
    notes: list[str] = []
    s.notify = notes.append
    (s.root / "bad\x01name").write_bytes(b"x")
    assert not s.sync().changes
    assert any("control character" in n for n in notes)


def test_poll_locks_on_idle_and_lock_wipes(
    session: tuple[m.Session, Clocks], filled_vault: Path
) -> None:
    s, clocks = session
    clocks.advance(30)
    assert s.poll() is None
    (s.root / "a.txt").write_bytes(b"changed just before the deadline")
    clocks.advance(31)
    assert s.poll() == tracker.REASON_IDLE
    result = s.lock(tracker.REASON_IDLE)
    assert result.synced.changed == ["a.txt"]
    assert not s.root.exists()
    assert list(s.journal.records()) == []
    assert contents(filled_vault)["a.txt"] == b"changed just before the deadline"
    assert (s.vault.log()[-1].event, s.vault.log()[-1].detail) == ("lock", "idle")


def test_request_lock_wins(session: tuple[m.Session, Clocks]) -> None:
    s, _ = session
    s.request_lock("SIGHUP")
    s.request_lock("SIGTERM")
    assert s.poll() == "SIGHUP"
    assert s.run() == "SIGHUP"


def test_failed_final_sync_wipes_the_unchanged_and_keeps_only_unsaved_files(
    session: tuple[m.Session, Clocks],
) -> None:
    """The vault cannot be written at lock (ENOSPC): every file the vault holds as it is gets
    wiped anyway; only the unsaved edit, new file and deletion stay, for `locker recover`."""
    s, _ = session
    (s.root / "a.txt").write_bytes(b"precious")
    (s.root / "new.txt").write_bytes(b"new")
    (s.root / "d.txt").unlink()

    def broken_commit() -> None:
        raise OSError(28, "No space left on device")

    s.vault.commit = broken_commit  # type: ignore[method-assign]
    with pytest.raises(LockerError) as raised:
        s.lock(tracker.REASON_IDLE)
    message = str(raised.value)
    assert "wiped 2 unchanged files" in message
    assert "kept 3 files with unsaved changes: a.txt, new.txt, d.txt (deleted)" in message
    assert sorted(sc.scan_tree(s.root).files) == ["a.txt", "new.txt"]
    assert (s.root / "a.txt").read_bytes() == b"precious"
    [record] = list(s.journal.records())
    assert record.state == jn.STATE_WIPING and record.kept == ["a.txt", "new.txt"]
    assert "No space left on device" in record.error  # for `locker lock` to tell its caller
    assert sorted(record.files) == ["a.txt", "d.txt"]  # what `recover` compares with
    changes = sc.diff(s.root, record.files)
    assert (changes.changed, changes.added, changes.deleted) == (["a.txt"], ["new.txt"], ["d.txt"])


def test_failed_final_sync_with_nothing_unsaved_wipes_everything(
    session: tuple[m.Session, Clocks], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing changed, so nothing is lost by wiping, even where the lock event can be
    recorded neither beside the vault nor in a save: keeping plaintext because the audit log
    cannot take an event would be the worse failure. The mount says so."""
    s, _ = session
    notes: list[str] = []
    s.notify = notes.append
    monkeypatch.setattr(deferred, "write", no_event_file)
    s.vault.commit = lambda: (_ for _ in ()).throw(OSError(28, "disk full"))  # type: ignore[method-assign]
    assert s.lock(tracker.REASON_IDLE).wiped == 4
    assert not s.root.exists() and list(s.journal.records()) == []
    assert any("could not be recorded" in n for n in notes)


def test_sync_error_is_retried_later(session: tuple[m.Session, Clocks]) -> None:
    s, clocks = session
    notes: list[str] = []
    s.notify = notes.append
    real_commit = s.vault.commit
    s.vault.commit = lambda: (_ for _ in ()).throw(OSError(28, "disk full"))  # type: ignore[method-assign]
    (s.root / "a.txt").write_bytes(b"v2")
    s.tracker.mark_dirty()
    clocks.advance(1)
    assert s.poll() is None
    assert any("sync failed" in n for n in notes)
    s.vault.commit = real_commit  # type: ignore[method-assign]
    clocks.advance(1)
    s.poll()
    assert s.syncs == 0  # not retried before RETRY_AFTER
    clocks.advance(m.RETRY_AFTER)
    s.poll()
    assert s.syncs == 1


# -- the real watchdog observer: what counts as activity ------------------------------------------


class Settling:
    """The real watchdog observer, with a barrier: `settle()` makes a file in the mount and
    removes it, and returns once the observer has passed that removal on. inotify delivers a
    watch's events in order, so by then every event of what was done before has reached the
    tracker; the barrier's own events (and the root directory's "modified") do not."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.marker = root / ".settle"
        self._seen = 0
        self._cond = threading.Condition()

    def factory(self, root: Path, sink: tracker.EventSink) -> tracker.Observer:
        def passed_on(kind: str, path: str, is_dir: bool) -> None:
            if path == str(self.marker):
                if kind == "deleted":
                    with self._cond:
                        self._seen += 1
                        self._cond.notify_all()
                return
            if path != str(root):
                sink(kind, path, is_dir)

        return tracker.watchdog_observer(root, passed_on)

    def settle(self) -> None:
        with self._cond:
            target = self._seen + 1
        self.marker.write_bytes(b"")
        self.marker.unlink()
        with self._cond:
            assert self._cond.wait_for(lambda: self._seen >= target, timeout=120)


def test_real_observer_reads_count_own_reads_do_not(filled_vault: Path, tmp_path: Path) -> None:
    clocks = Clocks()
    journal_dir = tmp_path / "journal"
    rt.ensure_private_dir(journal_dir)
    root = tmp_path / "mnt-real"
    root.mkdir(mode=0o700)
    watch = Settling(root)
    with Vault.open(filled_vault, PASSPHRASE, write=True, purpose="mount") as vault:
        s = m.Session(
            vault,
            root,
            journal=jn.Journal(journal_dir),
            idle=60,
            clock=clocks.clock(),
            observer_factory=watch.factory,
        )
        s.start()
        try:
            clocks.advance(10)
            watch.settle()
            assert s.tracker.events == 0  # materialising raised no events: watching began after
            assert s.deadlines.idle_left() == 50
            (root / "a.txt").read_bytes()  # a user's read: open + close_nowrite
            watch.settle()
            read_events = s.tracker.events
            assert read_events >= 1
            assert s.deadlines.idle_left() == 60
            (root / "a.txt").write_bytes(b"edited")  # opened, modified, closed
            watch.settle()
            assert s.tracker.events >= read_events + 3
            clocks.advance(5)  # the edit was at t=10; now t=15
            assert s.tracker.sync_due()
            seen = s.tracker.events
            s.poll()  # syncs: reads a.txt itself
            assert s.syncs == 1
            watch.settle()  # the events of locker's own read have arrived
            assert s.tracker.events == seen
            assert s.deadlines.idle_left() == 55  # still measured from the user's edit
        finally:
            s.lock("test")
    assert not root.exists()


# -- wipe and holders ----------------------------------------------------------------------------


@pytest.mark.permissions
def test_wipe_overwrites_before_unlinking(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "d" / "e").mkdir(parents=True)
    secret = root / "d" / "e" / "k"
    secret.write_bytes(b"S" * 70_000)
    (root / "d" / "link").symlink_to(secret)
    (root / ".k.swp").write_bytes(b"swap")
    (root / "d").chmod(0o500)
    with secret.open("rb") as held:
        assert mountdir.wipe_tree(root, remove_root=True).count == 3
        assert held.read() == bytes(70_000)  # the open descriptor sees the zeros
    assert not root.exists()


def test_holders_are_named(tmp_path: Path) -> None:
    root = tmp_path / "h"
    root.mkdir()
    (root / "f").write_text("x")
    code = "import sys, time; f = open(sys.argv[1]); print('ready', flush=True); time.sleep(30)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(root / "f")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        [holder] = process.find_holders(root)
        assert holder.pid == proc.pid
        assert "python" in holder.command
        assert holder.paths == [str(root / "f")]
    finally:
        proc.kill()
        proc.wait()
    assert process.find_holders(root) == []


def test_mount_dir_option(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    path, created, _ = mountdir.make_mount_dir(str(fresh))
    assert (path, created) == (fresh, True)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    path, created, _ = mountdir.make_mount_dir(str(empty))
    assert not created and stat.S_IMODE(empty.stat().st_mode) == 0o700
    (empty / "x").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        mountdir.make_mount_dir(str(empty))
    with pytest.raises(UsageError, match="parent"):
        mountdir.make_mount_dir(str(tmp_path / "no" / "such"))


def test_mount_dir_default_is_private_and_ram_backed(places: Places) -> None:
    require(rt.is_ram_backed(places.xdg), "a RAM-backed /dev/shm for this test's runtime dir")
    path, created, warning = mountdir.make_mount_dir(None)
    assert path.parent == places.xdg / "locker" and created and warning is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o700 and rt.is_ram_backed(path)
    path.rmdir()


def test_removed_mount_dir_deletes_nothing(
    session: tuple[m.Session, Clocks], filled_vault: Path
) -> None:
    """logind removes $XDG_RUNTIME_DIR at logout: the vault must not follow the empty dir."""
    import shutil

    s, clocks = session
    before = contents(filled_vault)
    shutil.rmtree(s.root)
    s.tracker.mark_dirty()
    clocks.advance(1)
    assert s.poll() == m.REASON_DIR_GONE
    result = s.lock(m.REASON_DIR_GONE)
    assert result.wiped == 0 and not result.synced
    assert contents(filled_vault) == before
    assert s.vault.log()[-1].event == "lock"
    assert list(s.journal.records()) == []


def test_emptied_dir_is_saved_only_after_a_grace_period(
    session: tuple[m.Session, Clocks], filled_vault: Path
) -> None:
    s, clocks = session
    names = list(s.known)
    for name in names:
        (s.root / name).unlink()
    assert not s.sync().changes  # not yet: it could be a directory being torn down
    assert set(contents(filled_vault)) == set(names)
    clocks.advance(sync.ALL_GONE_GRACE)
    assert sorted(s.sync().changes.deleted) == sorted(names)
    assert contents(filled_vault) == {}


def test_emptied_dir_at_lock_time_keeps_the_entries(
    session: tuple[m.Session, Clocks], filled_vault: Path
) -> None:
    s, _ = session
    before = contents(filled_vault)
    for name in list(s.known):
        (s.root / name).unlink()
    s.lock("SIGHUP")
    assert contents(filled_vault) == before


# -- what locking tells `locker lock`, and the summary -------------------------------------------


def test_lock_names_holders_in_the_journal_before_wiping(
    session: tuple[m.Session, Clocks], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`locker lock` runs in another shell: the holders must be in the record before the wipe,
    and a lock it asked for leaves the outcome (state "locked") for it to read."""
    s, _ = session
    code = "import sys, time; f = open(sys.argv[1]); print('ready', flush=True); time.sleep(30)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(s.root / "c.env")], stdout=subprocess.PIPE, text=True
    )
    seen: list[jn.Record | None] = []
    real_wipe = mountdir.wipe_tree

    def spy(root: Path, remove_root: bool, **kwargs: Any) -> mountdir.Wiped:
        seen.append(s.journal.read(s.record.mount_id))
        return real_wipe(root, remove_root, **kwargs)

    monkeypatch.setattr(mountdir, "wipe_tree", spy)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        result = s.lock(m.REASON_COMMAND)
    finally:
        proc.kill()
        proc.wait()
    [before] = seen
    assert before is not None and before.state == jn.STATE_WIPING  # the final sync is in
    # Everything is in the vault: nothing is kept, and no name is left to read as deleted.
    assert before.files == {} and before.kept == []
    assert [(h["pid"], h["paths"]) for h in before.holders] == [(proc.pid, [str(s.root / "c.env")])]
    assert "python" in before.holders[0]["command"]
    after = s.journal.read(s.record.mount_id)
    assert after is not None and after.state == jn.STATE_LOCKED
    assert after.wiped == result.wiped == 4 and after.files == {} and after.finished > 0
    assert after.holders == before.holders


def test_a_sync_after_a_failed_append_saves(
    session: tuple[m.Session, Clocks], filled_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk full during one sync's append (the file is cut back, its mtime moves): the
    mount's next sync saves, in the same session (FORMAT.md section 21, step 5)."""
    s, _ = session
    (s.root / "a.txt").write_bytes(b"alpha 2\n" * 1000)
    with monkeypatch.context() as patch, pytest.raises(LockerError, match="No space left"):
        patch.setattr(generations, "os", FaultLayer("write", 1, errno.ENOSPC))
        s.sync()
    assert contents(filled_vault)["a.txt"] == b"alpha\n"
    s.tracker.mark_dirty()
    assert s.sync().changes.changed == ["a.txt"]
    assert contents(filled_vault)["a.txt"] == b"alpha 2\n" * 1000


def test_a_commit_record_passed_over_refuses_the_mount(filled_vault: Path, tmp_path: Path) -> None:
    """The newest save's record damaged: a mount (CLI or TUI) would open the generation before
    and could save nothing; it is refused before a file is written (FORMAT.md section 20)."""
    with Vault.open(filled_vault, PASSPHRASE, write=True) as v:
        v.add_bytes("newest.txt", b"the save after\n")
        v.commit()
        at = (4096, 8192)[v._container.position] + 67
    data = bytearray(filled_vault.read_bytes())
    data[at] ^= 1
    filled_vault.write_bytes(data)
    s = unstarted(filled_vault, tmp_path, Clocks())
    with s.vault, pytest.raises(IntegrityError, match="did not verify"):
        s.start()
    assert list(s.root.iterdir()) == [] and list(s.journal.records()) == []


def test_lock_summary_counts_every_kind_of_change(session: tuple[m.Session, Clocks]) -> None:
    """Three edits, one new file and one deletion: all five are reported, by kind."""
    s, _ = session
    for text in (b"v2", b"v3"):
        (s.root / "a.txt").write_bytes(text)
        s.sync()
    (s.root / "a.txt").write_bytes(b"v4")
    (s.root / "new.txt").write_bytes(b"new")
    (s.root / "c.env").unlink()
    s.sync()
    (s.root / "d.txt").rename(s.root / "e.txt")
    s.sync()
    result = s.lock("test")
    assert (s.saved.changed, s.saved.added, s.saved.deleted, s.saved.renamed) == (3, 1, 1, 1)
    assert lock_summary(s.saved, s.syncs, result.wiped) == (
        "3 changed, 1 added, 1 deleted, 1 renamed saved in 4 syncs; 4 files wiped"
    )


def test_lock_summary_singular_and_nothing() -> None:
    one = sync.SavedCounts(changed=1)
    assert lock_summary(one, 1, 1) == "1 changed saved in 1 sync; 1 file wiped"
    assert lock_summary(sync.SavedCounts(), 0, 0) == "no changes; 0 files wiped"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (42.9, "42s"), (60, "1m00s"), (3597, "59m57s"), (3600, "1h00m"),
     (28740, "7h59m"), (-5, "0s"), (50 * 3600 + 61, "50h01m")],
)  # fmt: skip
def test_duration_cannot_be_misread(seconds: float, text: str) -> None:
    assert duration(seconds) == text


# -- review findings: litter-named entries, wipe safety ---------------------------------------------


def test_entries_named_like_editor_litter_are_synced_like_any_file(
    vault_path: Path, tmp_path: Path
) -> None:
    """`*~` and `4913` are only litter when they are new: entries with such names stay in the
    vault, and their edits are saved; a new swap file is neither saved nor left behind."""
    start = {"notes~": b"old notes\n", "4913": b"a number\n", "normal.txt": b"normal\n"}
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        for name, data in start.items():
            v.add_bytes(name, data)
        v.commit()

    def mounted() -> m.Session:
        root = tmp_path / f"mnt-{len(list(tmp_path.glob('mnt-*')))}"
        root.mkdir(mode=0o700)
        journal_dir = tmp_path / "journal"
        rt.ensure_private_dir(journal_dir)
        s = m.Session(
            Vault.open(vault_path, PASSPHRASE, write=True, purpose="mount"),
            root,
            journal=jn.Journal(journal_dir),
            clock=Clocks().clock(),
            observer_factory=lambda root, sink: NoObserver(),
        )
        s.start()
        return s

    s = mounted()
    try:
        assert not s.sync().changes
        s.lock(tracker.REASON_IDLE)
    finally:
        s.vault.close()
    assert contents(vault_path) == start

    s = mounted()
    try:
        (s.root / "notes~").write_bytes(b"new notes\n")
        (s.root / ".x.swp").write_bytes(b"swap")
        assert s.sync().changes.changed == ["notes~"]
        s.lock(tracker.REASON_IDLE)
        assert not s.root.exists()
    finally:
        s.vault.close()
    assert contents(vault_path) == {**start, "notes~": b"new notes\n"}


def test_wipe_leaves_a_hard_linked_file_alone(tmp_path: Path) -> None:
    """`ln /dev/shm/precious MNT/x`: the mount's name goes, the other name's content stays."""
    precious = tmp_path / "precious"
    precious.write_bytes(b"not the mount's to zero")
    root = tmp_path / "w"
    root.mkdir()
    os.link(precious, root / "x")
    (root / "own").write_bytes(b"secret")
    assert mountdir.wipe_tree(root, remove_root=True).count == 2
    assert precious.read_bytes() == b"not the mount's to zero"
    assert not root.exists()


def test_wipe_writes_nothing_into_a_fifo_or_socket_and_removes_them(tmp_path: Path) -> None:
    """Files are opened for writing straight from the listing: a FIFO (read by someone, or by
    nobody) must neither block the wipe nor receive its zeros, a socket must not fail it."""
    import socket

    root = tmp_path / "w"
    root.mkdir()
    os.mkfifo(root / "lonely")
    os.mkfifo(root / "read")
    reader = os.open(root / "read", os.O_RDONLY | os.O_NONBLOCK)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "sock"))
        (root / "own").write_bytes(b"secret")
        assert mountdir.wipe_tree(root, remove_root=True).count == 4
        assert os.read(reader, 100) == b""  # nothing was written into it
    finally:
        sock.close()
        os.close(reader)
    assert not root.exists()


@pytest.mark.permissions
def test_wipe_zeroes_read_only_files(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    key = root / "aws-key.pem"
    key.write_bytes(b"-----BEGIN RSA PRIVATE KEY----- secret\n")
    key.chmod(0o400)
    fd = os.open(key, os.O_RDONLY)
    try:
        assert mountdir.wipe_tree(root, remove_root=True).count == 1
        # Made writable and zeroed (as root the open for writing would succeed anyway: the
        # mode shows the wipe did not depend on that).
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
        assert os.pread(fd, 100, 0) == bytes(len(b"-----BEGIN RSA PRIVATE KEY----- secret\n"))
    finally:
        os.close(fd)
    assert not root.exists()


def test_wipe_does_not_follow_a_directory_swapped_for_a_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process of the user swaps sub/ for a symlink to a directory outside the mount
    while the wipe runs (at its first write): nothing outside the mount is zeroed or unlinked."""
    mnt, victim = tmp_path / "mnt", tmp_path / "victim"
    (mnt / "sub").mkdir(parents=True)
    victim.mkdir()
    (mnt / "a.txt").write_bytes(b"first")
    (mnt / "sub" / "key.pem").write_bytes(b"mount secret\n")
    (victim / "key.pem").write_bytes(b"FILE OUTSIDE THE MOUNT\n")
    real_pwrite = os.pwrite
    swapped: list[bool] = []

    def racing_pwrite(fd: int, data: bytes, offset: int) -> int:
        if not swapped:
            swapped.append(True)
            os.rename(mnt / "sub", tmp_path / "moved-sub")
            os.symlink(victim, mnt / "sub")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", racing_pwrite)
    mountdir.wipe_tree(mnt, remove_root=True)
    monkeypatch.undo()
    assert swapped
    assert (victim / "key.pem").read_bytes() == b"FILE OUTSIDE THE MOUNT\n"
    assert not mnt.exists()


def test_wipe_refuses_a_replaced_root(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_bytes(b"x")
    st = os.lstat(root)
    with pytest.raises(LockerError, match="replaced"):
        mountdir.wipe_tree(root, remove_root=True, expect=(st.st_dev, st.st_ino + 1))
    assert (root / "f").read_bytes() == b"x"


def test_watchdogs_own_warnings_never_reach_the_terminal(tmp_path: Path) -> None:
    """watchdog logs "Inotify queue overflowed ..." under heavy churn; without a handler Python
    prints it raw on stderr, over the mount's own lines (it rescans, and nothing is lost)."""
    code = (
        "import logging, sys\nfrom pathlib import Path\nfrom locker.mount import tracker\n"
        "tracker.watchdog_observer(Path(sys.argv[1]), lambda *a: None)\n"
        "logging.getLogger('watchdog.observers.inotify').warning('Inotify queue overflowed')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
