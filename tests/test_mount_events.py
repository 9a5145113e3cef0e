"""The mount's start and lock as the user sees them, fast paths included: the directory is
shown before watchdog starts, and a change made before the watch began is still saved; the
mount and lock audit events go into a small sealed file beside the vault instead of a save of
the whole vault, the lock's is on the disk before anything is wiped, and when that file cannot
be written a save carries the event (where neither can be written, test_mount_session.py's
test_failed_final_sync_with_nothing_unsaved_wipes_everything)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import MOUNT_FILES, PASSPHRASE
from test_mount_session import Clocks, contents, unstarted

from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import session as m
from locker.mount import tracker
from locker.store import deferred
from locker.vault import Vault


class Observer:
    """Stands in for watchdog and reports nothing: what it would have seen is not needed."""

    def __init__(self, started: list[str]) -> None:
        self.started = started

    def start(self) -> None:
        self.started.append("watch")

    def stop(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def make_session(
    filled_vault: Path, tmp_path: Path, clocks: Clocks
) -> Iterator[Callable[..., m.Session]]:
    made: list[m.Session] = []

    def make(factory: tracker.ObserverFactory | None = None) -> m.Session:
        s = unstarted(filled_vault, tmp_path, clocks)
        s._observer_factory = factory or (lambda root, sink: Observer([]))
        made.append(s)
        return s

    yield make
    for s in made:
        s.vault.close()


def event_files(vault: Path) -> list[str]:
    return sorted(n for n in os.listdir(vault.parent) if deferred.is_event_of(vault, n))


def identity(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


def log(vault: Path) -> list[tuple[str, str]]:
    with Vault.open(vault, PASSPHRASE) as v:
        return [(e.event, e.detail) for e in v.log()]


# -- start ---------------------------------------------------------------------------------------


def test_the_directory_is_shown_before_the_watch_and_the_audit_event(
    make_session: Callable[..., m.Session], filled_vault: Path
) -> None:
    steps: list[str] = []
    s = make_session(lambda root, sink: Observer(steps))

    def ready() -> None:
        [record] = list(s.journal.records())
        steps.append(f"ready {record.state} {len(list(s.root.iterdir()))}")
        steps.append(f"events {event_files(filled_vault)}")

    before = identity(filled_vault)
    s.start(ready=ready)
    assert steps == [f"ready {jn.STATE_MOUNTED} 4", "events []", "watch"]
    assert s.start_error == ""
    # the mount is on record without a save of the whole vault: one event file beside it
    assert identity(filled_vault) == before and len(event_files(filled_vault)) == 1
    assert log(filled_vault)[-1][0] == "mount"
    s.lock(tracker.REASON_IDLE)


@pytest.mark.parametrize("same_size", [True, False])
def test_a_change_made_before_the_watch_began_is_saved(
    make_session: Callable[..., m.Session], filled_vault: Path, clocks: Clocks, same_size: bool
) -> None:
    """Between `ready` and the observer's start nothing reports a change: the rescan asked for
    once it watches finds it, whatever its stat says (a same-size rewrite in the same tick)."""
    s = make_session()
    new = b"ALPHA\n" if same_size else b"alpha, changed before the watch\n"

    def ready() -> None:
        (s.root / "a.txt").write_bytes(new)
        (s.root / "early.txt").write_bytes(b"made before the watch\n")

    s.start(ready=ready)
    assert s.poll() is None
    clocks.advance(tracker.QUIET + 0.01)
    assert s.poll() is None  # the sync ran: no event reported the change
    assert contents(filled_vault) == {
        **MOUNT_FILES,
        "a.txt": new,
        "early.txt": b"made before the watch\n",
    }
    s.lock(tracker.REASON_IDLE)


def test_a_watch_that_cannot_start_after_ready_locks_and_saves(
    make_session: Callable[..., m.Session], filled_vault: Path
) -> None:
    """The directory was shown, so files may have changed: no watch (the inotify limit) means
    a lock through the final sync, with the reason and the hint."""

    def no_watch(root: Path, sink: tracker.EventSink) -> tracker.Observer:
        raise OSError(errno.ENOSPC, "No space left on device")

    s = make_session(no_watch)
    notes: list[str] = []
    s.notify = notes.append
    s.start(ready=lambda: (s.root / "a.txt").write_bytes(b"edited at once\n"))
    assert s.start_error.startswith(m.REASON_NOT_WATCHED) and "inotify" in s.start_error
    assert s.start_hint and "max_user_watches" in s.start_hint
    assert s.poll() == m.REASON_NOT_WATCHED
    s.lock(m.REASON_NOT_WATCHED)
    assert contents(filled_vault)["a.txt"] == b"edited at once\n"
    assert [e for e, _ in log(filled_vault)][-3:] == ["mount", "sync", "lock"]
    assert not s.root.exists()


# -- lock ----------------------------------------------------------------------------------------


def test_a_lock_with_nothing_changed_writes_its_event_beside_the_vault_before_the_wipe(
    make_session: Callable[..., m.Session], filled_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make_session()
    s.start(ready=lambda: None)
    before = identity(filled_vault)
    seen: list[list[tuple[str, str]]] = []
    real_wipe = mountdir.wipe_tree

    def wipe(*args: object, **kwargs: object) -> mountdir.Wiped:
        seen.append(log(filled_vault))  # what another process reads at this moment
        return real_wipe(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mountdir, "wipe_tree", wipe)
    result = s.lock(tracker.REASON_IDLE)
    assert result.wiped == len(MOUNT_FILES) and not s.root.exists()
    assert seen and seen[0][-1] == ("lock", tracker.REASON_IDLE)
    assert identity(filled_vault) == before  # no save of the whole vault
    assert len(event_files(filled_vault)) == 2  # the mount's and the lock's
    # the next save merges both into the vault and removes the files
    s.vault.close()
    with Vault.open(filled_vault, PASSPHRASE, write=True) as v:
        v.add_bytes("later.txt", b"x")
        v.commit()
    assert event_files(filled_vault) == []
    assert [e for e, _ in log(filled_vault)][-2:] == ["mount", "lock"]


def test_a_lock_whose_event_file_cannot_be_written_saves_the_event_into_the_vault(
    make_session: Callable[..., m.Session], filled_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make_session()
    s.start(ready=lambda: None)

    def refuse(*args: object, **kwargs: object) -> Path:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(deferred, "write", refuse)
    before = identity(filled_vault)
    s.lock(tracker.REASON_IDLE)
    assert identity(filled_vault) != before  # saved, with the lock event in its own log
    with Vault.open(filled_vault, PASSPHRASE) as v:
        assert v.log()[-1].event == "lock"
    assert not s.root.exists()
