"""Tests that kill mutants `scripts/mutate` (mutmut) found alive in mount/sync.py (issue 10,
item 14): a streamed file rewritten between its hash and the save is read again by the next
sync, the racy-timestamp window's edge, the lock summary's counts over several syncs, what a
sync event records, the last error, each warning once per name, and a small file saved as
read."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE
from test_mount_session import Clocks, contents, unstarted

from locker.errors import UsageError
from locker.mount import scan as sc
from locker.mount import session as m
from locker.mount import sync, tracker
from locker.store import deferred, sources
from locker.store.format import check_name
from locker.vault import Vault

BIG = sync.SMALL_FILE + 1  # hashed by the scan, streamed into the save


class _GrowsWhenSaved:
    """Stands in for `io` in store/sources.py: each of `paths` grows as the save opens it."""

    def __init__(self, *paths: Path) -> None:
        self.paths = paths

    def __getattr__(self, name: str) -> Any:
        return getattr(io, name)

    def FileIO(self, fd: int, mode: str) -> io.FileIO:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path in self.paths:
            with path.open("ab") as f:
                f.write(b"more")
        return io.FileIO(fd, mode)


@pytest.fixture
def started(filled_vault: Path, tmp_path: Path) -> Iterator[m.Session]:
    s = unstarted(filled_vault, tmp_path, Clocks())
    with s.vault:
        s.start()
        yield s


def test_a_streamed_file_rewritten_after_its_hash_is_read_again(
    started: m.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The save streamed content the hash never saw: what the vault holds is unknown, so the
    file is known by its stat at hashing and no hash, which the next sync cannot trust. A
    streamed file that stayed still is known by its hash."""
    s = started
    moved, still = s.root / "moved.bin", s.root / "still.bin"
    moved.write_bytes(b"a" * BIG)
    still.write_bytes(b"s" * BIG)
    hashed: dict[str, sc.FileStat] = {}
    real_hash = sc.hash_regular

    def hash_then_rewrite(path: Path) -> tuple[str, sc.FileStat, sc.FileStat]:
        digest, before, after = real_hash(path)
        hashed[path.name] = before
        if path == moved:  # same size, new content and time: the save's size check passes
            moved.write_bytes(b"b" * BIG)
            os.utime(moved, ns=(before.mtime_ns + 10**9, before.mtime_ns + 10**9))
        return digest, before, after

    monkeypatch.setattr(sc, "hash_regular", hash_then_rewrite)
    result = s.sync()
    assert sorted(result.changes.added) == ["moved.bin", "still.bin"]
    assert s.known["moved.bin"] == sync.Known("", hashed["moved.bin"], 0)
    assert s.known["still.bin"].sha256 == hashlib.sha256(b"s" * BIG).hexdigest()
    assert s.known["still.bin"].stat == hashed["still.bin"]
    assert s.vault.read_bytes("moved.bin") == b"b" * BIG


def test_a_read_is_trusted_only_past_the_racy_window() -> None:
    st = sc.FileStat(size=1, mtime_ns=1_000, ctime_ns=2_000, ino=1)
    edge = 2_000 + sync.RACY_NS
    assert not sync.Known("h", st, edge).trusted(st)
    assert sync.Known("h", st, edge + 1).trusted(st)


def test_saved_counts_add_up_over_syncs() -> None:
    counts = sync.SavedCounts()
    for _ in range(2):
        counts.add(sc.Changes(["c"], ["a", "b"], ["d"], [("r", "s")]))
    assert (counts.changed, counts.added, counts.deleted, counts.renamed) == (2, 4, 2, 2)
    assert counts.total == 10


def test_a_streamed_file_growing_between_its_hash_and_the_save_waits_for_a_later_sync(
    started: m.Session, filled_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The save refuses a file that grew while it read it; the sync saves every other change
    without it and says, for each such file, that it is still being written; the next sync
    saves it. At lock the same files are kept, and the lock is on record."""
    s, notes = started, _notes(started)
    growing = [s.root / "growing.log", s.root / "sub" / "growing.log"]
    for path in growing:
        path.write_bytes(b"g" * BIG)
    (s.root / "a.txt").write_bytes(b"alpha 2\n")
    (s.root / "new.txt").write_bytes(b"new\n")
    (s.root / "c.env").unlink()
    (s.root / "d.txt").rename(s.root / "sub" / "d2.txt")
    monkeypatch.setattr(sources, "io", _GrowsWhenSaved(*growing))
    result = s.sync()
    assert result.changes == sc.Changes(
        ["a.txt"], ["new.txt"], ["c.env"], [("d.txt", "sub/d2.txt")]
    )
    assert result.unsaved == {n: sync.STILL_WRITTEN for n in ("growing.log", "sub/growing.log")}
    for name in ("growing.log", "sub/growing.log"):
        assert f"warning: {name}: {sync.STILL_WRITTEN}; saved once it settles" in notes
    assert s.vault.read_bytes("new.txt") == b"new\n"
    assert "growing.log" not in [e.name for e in s.vault.entries()]
    with monkeypatch.context() as settled:
        settled.setattr(sources, "io", io)
        assert s.sync().changes.added == ["growing.log", "sub/growing.log"]
    assert s.vault.read_bytes("growing.log") == b"g" * BIG + b"more"

    (s.root / "a.txt").write_bytes(b"alpha 3\n")
    for path in growing:
        with path.open("ab") as f:
            f.write(b"still")
    done = s.lock(tracker.REASON_IDLE)
    assert done.kept == {n: sync.STILL_WRITTEN for n in ("growing.log", "sub/growing.log")}
    with Vault.open(filled_vault, PASSPHRASE) as v:
        assert v.read_bytes("a.txt") == b"alpha 3\n"
        assert [e.event for e in v.log()][-2:] == ["sync", "lock"]


def test_small_files_are_read_within_the_budget_and_trusted_on_the_next_sync(
    started: m.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files up to SMALL_FILE bytes are read whole while the sync's memory budget lasts, the
    rest hashed; a file read after its last change is not read again while its stat stays
    (the racy window is made 0 here: the files were all just written)."""
    s = started
    monkeypatch.setattr(sync, "RACY_NS", 0)
    monkeypatch.setattr(sync, "SMALL_FILE", 10)
    monkeypatch.setattr(sync, "MEMORY_BUDGET", 20)
    calls: list[tuple[str, str]] = []
    real_read, real_hash = sc.read_regular, sc.hash_regular

    def read(path: Path) -> tuple[bytes, sc.FileStat]:
        calls.append(("read", path.name))
        return real_read(path)

    def hash_(path: Path) -> tuple[str, sc.FileStat, sc.FileStat]:
        calls.append(("hash", path.name))
        return real_hash(path)

    monkeypatch.setattr(sc, "read_regular", read)
    monkeypatch.setattr(sc, "hash_regular", hash_)

    def sync_new(**sizes: int) -> list[tuple[str, str]]:
        calls.clear()
        for name, size in sizes.items():
            (s.root / name).write_bytes(b"x" * size)
        s.sync()
        return sorted(c for c in calls if c[1] in sizes)

    # a file of SMALL_FILE bytes is small; two fill the budget exactly, and may
    assert sync_new(n1=10, n2=10, n3=11) == [("hash", "n3"), ("read", "n1"), ("read", "n2")]
    # what is read uses the budget up, whatever the order the directory lists them in
    three = sync_new(m1=10, m2=10, m3=1)
    assert sorted(kind for kind, _ in three) == ["hash", "read", "read"]
    assert sum((s.root / n).stat().st_size for kind, n in three if kind == "read") <= 20
    # nothing changed: nothing is read again
    assert sync_new() == [] and [c for c in calls if c[1][0] in "nm"] == []


# -- more survivors: refused names, the sync event, the last error, what is saved -----------------------------------------------------------------------------------


def test_each_refused_name_is_warned_once_and_kept_unsaved_with_its_reason(
    started: m.Session,
) -> None:
    s, notes = started, _notes(started)
    bad = ["bad\x01one", "bad\x02two"]
    for name in bad:
        (s.root / name).write_bytes(b"x")
    for _ in range(2):
        result = s.sync()
    for name in bad:
        with pytest.raises(UsageError) as refused:
            check_name(name)
        assert result.unsaved[name] == str(refused.value)
        assert sum(str(refused.value) in n for n in notes) == 1


def test_a_sync_event_names_every_file_it_saved_and_says_what(started: m.Session) -> None:
    s = started
    (s.root / "a.txt").write_bytes(b"changed\n")
    (s.root / "new.txt").write_bytes(b"new\n")
    (s.root / "d.txt").unlink()
    (s.root / "c.env").rename(s.root / "moved.env")
    changes = s.sync().changes
    event = s.vault.log()[-1]
    assert event.event == "sync"
    assert sorted(event.names) == ["a.txt", "c.env", "d.txt", "moved.env", "new.txt"]
    assert event.detail == changes.summary() != ""


def test_the_last_sync_error_is_kept_until_a_sync_succeeds(started: m.Session) -> None:
    s = started
    real_commit = s.vault.commit
    s.vault.commit = lambda: (_ for _ in ()).throw(OSError(28, "disk full"))  # type: ignore[method-assign]
    (s.root / "a.txt").write_bytes(b"v2")
    with pytest.raises(OSError):
        s.sync()
    assert s.last_error == "[Errno 28] disk full"
    s.vault.commit = real_commit  # type: ignore[method-assign]
    s.sync()
    assert s.last_error == ""


def test_a_small_file_is_saved_as_it_was_read_not_as_it_is_at_the_save(
    started: m.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the vault holds is what the hash it is known by says: a small file rewritten after
    it was read is saved as read, and the next sync sees the rewrite."""
    s = started
    path = s.root / "a.txt"
    path.write_bytes(b"as read\n")
    real_pair = sc.pair_renames

    def rewrite_then_pair(*args: Any) -> Any:
        path.write_bytes(b"rewritten\n")
        return real_pair(*args)

    monkeypatch.setattr(sc, "pair_renames", rewrite_then_pair)
    assert s.sync().changes.changed == ["a.txt"]
    monkeypatch.undo()
    assert s.vault.read_bytes("a.txt") == b"as read\n"
    assert s.known["a.txt"].sha256 == hashlib.sha256(b"as read\n").hexdigest()
    assert s.sync().changes.changed == ["a.txt"]
    assert s.vault.read_bytes("a.txt") == b"rewritten\n"


def test_the_saves_own_read_of_a_streamed_file_is_no_activity(started: m.Session) -> None:
    s = started
    path = s.root / "big.bin"
    path.write_bytes(b"b" * BIG)
    assert s.sync().changes.added == ["big.bin"]
    before = s.tracker.events
    for _ in range(2):  # the hash's read and the save's
        s.tracker.on_event("opened", str(path), False)
        s.tracker.on_event("closed_no_write", str(path), False)
    assert s.tracker.events == before


def test_what_is_not_a_regular_file_is_skipped_and_warned_once_each(started: m.Session) -> None:
    s, notes = started, _notes(started)
    os.symlink("a.txt", s.root / "link")
    os.mkfifo(s.root / "fifo")
    for _ in range(2):
        result = s.sync()
    assert sorted(result.skipped) == ["fifo", "link"]
    assert sorted(notes) == [
        "warning: fifo is not a regular file; it is not saved",
        "warning: link is not a regular file; it is not saved",
    ]


class _Unlistable:
    """Stands in for `os` in mount/scan.py: the directory `path` cannot be listed (EACCES), as
    a directory its owner made unreadable is for any user but root."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def listdir(self, fd: int) -> list[str]:
        if os.readlink(f"/proc/self/fd/{fd}") == str(self.path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return os.listdir(fd)


@pytest.mark.parametrize(("where", "unsaved", "said"), [("logX", "logX", "logX/"), ("", ".", "./")])
def test_a_directory_that_cannot_be_read_is_warned_once_and_unsaved(
    started: m.Session, monkeypatch: pytest.MonkeyPatch, where: str, unsaved: str, said: str
) -> None:
    s, notes = started, _notes(started)
    (s.root / "logX").mkdir()
    (s.root / "logX" / "today").write_bytes(b"x")
    monkeypatch.setattr(sc, "os", _Unlistable(s.root / where if where else s.root))
    for _ in range(2):
        result = s.sync()
    why = os.strerror(errno.EACCES)
    assert result.unsaved == {unsaved: why}
    tail = "" if where else f"; {sync.ROOT_UNREAD}"
    assert notes.count(f"warning: cannot read {said}: {why}{tail}") == 1


def test_each_directory_that_cannot_be_read_is_warned(
    started: m.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, notes = started, _notes(started)
    for name in ("logX", "logY"):
        (s.root / name).mkdir()
        (s.root / name / "today").write_bytes(b"x")

    class Unlistable:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def listdir(self, fd: int) -> list[str]:
            if os.readlink(f"/proc/self/fd/{fd}") != str(s.root):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            return os.listdir(fd)

    monkeypatch.setattr(sc, "os", Unlistable())
    s.sync()
    why = os.strerror(errno.EACCES)
    assert sorted(notes) == [f"warning: cannot read {d}/: {why}" for d in ("logX", "logY", "sub")]


def test_each_file_still_written_is_warned_once(
    started: m.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, notes = started, _notes(started)
    for name in ("one.bin", "two.bin"):
        (s.root / name).write_bytes(b"x" * BIG)
    real_hash = sc.hash_regular

    def still_growing(path: Path) -> tuple[str, sc.FileStat, sc.FileStat]:
        digest, before, after = real_hash(path)
        return (
            digest,
            before,
            sc.FileStat(after.size + 1, after.mtime_ns, after.ctime_ns, after.ino),
        )

    monkeypatch.setattr(sc, "hash_regular", still_growing)
    for _ in range(2):
        result = s.sync()
    assert result.unsaved == {"one.bin": sync.STILL_WRITTEN, "two.bin": sync.STILL_WRITTEN}
    assert sorted(notes) == [
        f"warning: {name}: {sync.STILL_WRITTEN}; saved once it settles"
        for name in ("one.bin", "two.bin")
    ]


def _notes(s: m.Session) -> list[str]:
    """What the session tells its user from now on."""
    notes: list[str] = []
    s.notify = notes.append
    return notes


def test_the_final_sync_looks_again_at_once_for_a_file_moved_under_it(
    started: m.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renamed between the listing and its read: the final sync lists again and saves it where
    it went (a later sync would come too late: the directory is wiped)."""
    s = started
    (s.root / "a.txt").write_bytes(b"v2\n")
    real_read = sc.read_regular
    moved: list[Path] = []

    def move_first(path: Path) -> tuple[bytes, sc.FileStat]:
        if path.name == "a.txt" and not moved:
            moved.append(path)
            path.rename(s.root / "renamed.txt")
        return real_read(path)

    monkeypatch.setattr(sc, "read_regular", move_first)
    s.sync(strict=True)
    assert moved
    assert s.vault.read_bytes("renamed.txt") == b"v2\n"


def test_a_rename_to_a_name_the_vault_refuses_keeps_the_old_entry(started: m.Session) -> None:
    s = started
    assert s.last_error == ""
    (s.root / "a.txt").rename(s.root / "bad\x01name")
    result = s.sync()
    assert "bad\x01name" in result.unsaved
    assert s.vault.read_bytes("a.txt") == b"alpha\n"


def test_an_event_with_nothing_to_save_keeps_its_detail(started: m.Session) -> None:
    s = started
    s.syncer.record_event("lock", "idle for 60 s")
    assert (s.vault.log()[-1].event, s.vault.log()[-1].detail) == ("lock", "idle for 60 s")


def test_an_event_that_cannot_be_put_beside_the_vault_is_saved_with_its_detail(
    started: m.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The side file cannot be written (ENOSPC): a save carries the event, detail and all."""
    s = started

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(deferred, "write", full)
    s.syncer.record_event("lock", "idle for 60 s")
    with Vault.open(s.vault.path, PASSPHRASE) as v:
        assert (v.log()[-1].event, v.log()[-1].detail) == ("lock", "idle for 60 s")


def test_an_emptied_directory_is_held_for_the_whole_grace_from_when_it_was_last_full(
    filled_vault: Path, tmp_path: Path
) -> None:
    """Each held sync says so (once) and leaves a sync due; a file that comes back ends the
    hold (the other deletions are saved) and the next emptying waits a grace of its own; it is
    saved at exactly ALL_GONE_GRACE. (Quarters of a second add up exactly in floating point.)"""
    clocks = Clocks()
    s = unstarted(filled_vault, tmp_path, clocks)
    with s.vault:
        s.start()
        notes = _notes(s)
        names = sorted(s.known)
        for name in names:
            (s.root / name).unlink()
        assert not s.sync().changes
        clocks.advance(0.5)
        assert s.tracker.sync_due()  # the vault keeps them only for now: looked at again
        clocks.advance(sync.ALL_GONE_GRACE - 0.75)
        assert not s.sync().changes
        (s.root / "a.txt").write_bytes(b"alpha\n")  # back as it was
        assert s.sync().changes.deleted == [n for n in names if n != "a.txt"]
        (s.root / "a.txt").unlink()
        clocks.advance(0.5)  # past the grace of the first emptying
        assert not s.sync().changes
        clocks.advance(sync.ALL_GONE_GRACE - 0.25)
        assert not s.sync().changes
        clocks.advance(0.25)
        assert s.sync().changes.deleted == ["a.txt"]
        assert notes.count("warning: every file was deleted; the vault keeps them for now") == 1
        assert contents(filled_vault) == {}


@pytest.mark.parametrize(("strict", "listings"), [(True, sc.RESCANS), (False, 1)])
def test_a_file_that_vanishes_at_every_read_is_listed_again_at_most_rescans_times(
    filled_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strict: bool, listings: int
) -> None:
    """The final sync lists the directory again while files move under it, RESCANS listings
    in all; a sync that comes again later lists it once. Nothing is saved as deleted
    meanwhile, and a sync stays due."""
    clocks = Clocks()
    s = unstarted(filled_vault, tmp_path, clocks)
    with s.vault:
        s.start()
        before = contents(filled_vault)
        (s.root / "a.txt").write_bytes(b"edited\n")
        (s.root / "d.txt").unlink()
        real_scan, real_read = sc.scan_tree, sc.read_regular
        scans: list[Path] = []

        def scan_tree(root: Path, known: Any = ()) -> sc.Scan:
            scans.append(root)
            return real_scan(root, known)

        def read_regular(path: Path) -> tuple[bytes, sc.FileStat]:
            if path.name == "a.txt":
                raise FileNotFoundError(errno.ENOENT, "moved", str(path))
            return real_read(path)

        monkeypatch.setattr(sc, "scan_tree", scan_tree)
        monkeypatch.setattr(sc, "read_regular", read_regular)
        s.tracker.take()
        result = s.sync(strict=strict)
        assert len(scans) == listings
        assert not result.changes and contents(filled_vault) == before
        clocks.advance(0.5)
        assert s.tracker.sync_due()


def test_the_final_sync_reads_again_only_what_it_could_not_read(
    filled_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """a.txt is gone when its read comes (an editor's delete and write) and back by the next
    listing with new content: read again and saved. c.env, whose stat failed in the first
    listing, is read in the second. Everything else is read once, and d.txt, deleted after
    the first listing, is not taken for deleted: a name seen in one listing of the final sync
    is not deleted on the strength of another, which a file moving between two directories
    while they are listed may be missing from under both names."""
    clocks = Clocks()
    s = unstarted(filled_vault, tmp_path, clocks)
    with s.vault:
        s.start()
        before = contents(filled_vault)
        (s.root / "a.txt").write_bytes(b"edited\n")
        (s.root / "c.env").write_bytes(b"TOKEN=2\n")
        real_read, reads = sc.read_regular, []
        stat_failed: list[str] = []

        def read_regular(path: Path) -> tuple[bytes, sc.FileStat]:
            reads.append(path.name)
            if path.name == "a.txt" and reads.count("a.txt") == 1:
                os.replace(path, tmp_path / "aside")
                (tmp_path / "aside").write_bytes(b"edited again\n")
                os.replace(tmp_path / "aside", path)
                raise FileNotFoundError(errno.ENOENT, "moved", str(path))
            return real_read(path)

        class StatFailsOnce:
            def __getattr__(self, name: str) -> Any:
                return getattr(os, name)

            def stat(self, leaf: Any, **kwargs: Any) -> os.stat_result:
                if leaf == "c.env" and not stat_failed:
                    stat_failed.append(leaf)
                    raise OSError(errno.EIO, os.strerror(errno.EIO))
                return os.stat(leaf, **kwargs)

        real_scan, scans = sc.scan_tree, []

        def scan_tree(root: Path, known: Any = ()) -> sc.Scan:
            scans.append(root)
            if len(scans) == 2:  # deleted after the first listing
                (s.root / "d.txt").unlink()
            return real_scan(root, known)

        monkeypatch.setattr(sc, "read_regular", read_regular)
        monkeypatch.setattr(sc, "scan_tree", scan_tree)
        monkeypatch.setattr(sc, "os", StatFailsOnce())
        result = s.sync(strict=True)
    assert (stat_failed, len(scans)) == (["c.env"], 2)
    assert sorted(reads) == ["a.txt", "a.txt", "b.key", "c.env", "d.txt"]
    assert result.unsaved == {}
    assert contents(filled_vault) == {**before, "a.txt": b"edited again\n", "c.env": b"TOKEN=2\n"}


def test_an_entry_named_like_editor_litter_is_looked_for_again_at_the_final_sync(
    filled_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vault holds `notes~`: gone at its read and back with new content by the next
    listing, which must list it too (litter is left out of a listing unless the vault holds it)."""
    with Vault.open(filled_vault, PASSPHRASE, write=True) as v:
        v.add_bytes("notes~", b"kept\n")
        v.commit()
    s = unstarted(filled_vault, tmp_path, Clocks())
    with s.vault:
        s.start()
        real_read, moved = sc.read_regular, []

        def read_regular(path: Path) -> tuple[bytes, sc.FileStat]:
            if path.name == "notes~" and not moved:
                moved.append(path)
                path.unlink()
                (s.root / "notes~").write_bytes(b"edited\n")
                raise FileNotFoundError(errno.ENOENT, "moved", str(path))
            return real_read(path)

        monkeypatch.setattr(sc, "read_regular", read_regular)
        s.sync(strict=True)
    assert moved
    assert contents(filled_vault)["notes~"] == b"edited\n"


def test_files_that_come_during_the_final_sync_of_an_emptied_directory_are_saved(
    filled_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first listing finds the directory empty (a name in it gone before its stat), the
    next one a renamed file and a new one: they are saved, the deletions held back."""
    s = unstarted(filled_vault, tmp_path, Clocks())
    with s.vault:
        s.start()
        before = contents(filled_vault)
        aside = tmp_path / "aside"
        aside.mkdir()
        for name in list(s.known):
            os.replace(s.root / name, aside / name.replace("/", "_"))
        real_scan, scans = sc.scan_tree, []

        def scan_tree(root: Path, known: Any = ()) -> sc.Scan:
            scans.append(root)
            if len(scans) == 1:
                return sc.Scan(vanished={"x"})
            (s.root / "moved.txt").write_bytes(before["a.txt"])
            (s.root / "new.txt").write_bytes(b"new\n")
            return real_scan(root, known)

        monkeypatch.setattr(sc, "scan_tree", scan_tree)
        result = s.sync(strict=True)
    assert result.changes == sc.Changes([], ["new.txt"], [], [("a.txt", "moved.txt")])
    saved = dict(before)
    saved["moved.txt"] = saved.pop("a.txt")
    assert contents(filled_vault) == {**saved, "new.txt": b"new\n"}
