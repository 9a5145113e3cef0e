"""A file in the mount that cannot be read (a disk error, a denied read) during a sync or the
final one (issue 10, item 15): the vault keeps what it had (never the file as deleted or
empty), the mount says which file and why, and the lock keeps the file for `locker recover`.

The faults are injected into the reads of one real file: in mount/scan.py (reading and
hashing what changed) and in store/sources.py (streaming a large file into the save).
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_mount_session import Clocks, contents, unstarted

from locker.errors import LockerError
from locker.mount import scan as sc
from locker.mount import session as m
from locker.mount import sync, tracker
from locker.store import sources

BIG = sync.SMALL_FILE + 70_000  # hashed by the scan, streamed by the save


def _on(fd: int, *paths: Path) -> bool:
    return os.readlink(f"/proc/self/fd/{fd}") in map(str, paths)


class _Unreadable:
    """Stands in for `os` in mount/scan.py: reads of `paths` fail with `err`, whole (`read`)
    and block by block (`pread`)."""

    def __init__(self, err: int, *paths: Path) -> None:
        self._paths, self._err = paths, err

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def _check(self, fd: int) -> None:
        if _on(fd, *self._paths):
            raise OSError(self._err, os.strerror(self._err))

    def read(self, fd: int, n: int) -> bytes:
        self._check(fd)
        return os.read(fd, n)

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        self._check(fd)
        return os.pread(fd, n, offset)


class _StreamFails:
    """Stands in for `io` in store/sources.py: the save's reads of `path` fail with EIO."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Any:
        return getattr(io, name)

    def FileIO(self, fd: int, mode: str) -> io.FileIO:
        if not _on(fd, self._path):
            return io.FileIO(fd, mode)

        class Failing(io.FileIO):
            def readinto(self, buffer: Any) -> int:
                raise OSError(errno.EIO, os.strerror(errno.EIO))

        return Failing(fd, mode)


@pytest.fixture
def started(filled_vault: Path, tmp_path: Path) -> Iterator[tuple[m.Session, list[str]]]:
    s = unstarted(filled_vault, tmp_path, Clocks())
    notes: list[str] = []
    s.notify = notes.append
    with s.vault:
        s.start()
        yield s, notes


@pytest.mark.parametrize("err", [errno.EIO, errno.EACCES])
@pytest.mark.parametrize("size", [5, BIG], ids=["read", "hashed"])
def test_a_file_that_cannot_be_read_is_neither_deleted_nor_emptied(
    started: tuple[m.Session, list[str]],
    filled_vault: Path,
    monkeypatch: pytest.MonkeyPatch,
    err: int,
    size: int,
) -> None:
    s, notes = started
    before = contents(filled_vault)
    edited, new = s.root / "a.txt", s.root / "new.bin"
    edited.write_bytes(b"e" * size)
    new.write_bytes(b"n" * size)
    (s.root / "c.env").write_bytes(b"C=2\n")  # readable: saved as usual
    why = os.strerror(err)
    monkeypatch.setattr(sc, "os", _Unreadable(err, edited, new))
    result = s.sync()
    assert result.unsaved == {"a.txt": why, "new.bin": why}
    assert result.changes == sc.Changes(["c.env"], [], [], [])
    assert f"warning: cannot read a.txt: {why}" in notes
    assert f"warning: cannot read new.bin: {why}" in notes
    assert contents(filled_vault) == {**before, "c.env": b"C=2\n"}

    # new.bin can be read again, a.txt still cannot at lock: the final sync saves new.bin
    # and keeps a.txt for `locker recover`
    monkeypatch.setattr(sc, "os", _Unreadable(err, edited))
    (s.root / "d.txt").unlink()
    done = s.lock(tracker.REASON_IDLE)
    assert done.kept == {"a.txt": why}
    assert f"warning: a.txt is kept, not saved: {why}" in notes
    assert edited.read_bytes() == b"e" * size
    saved = contents(filled_vault)
    assert saved["a.txt"] == before["a.txt"]
    assert saved["new.bin"] == b"n" * size and "d.txt" not in saved
    [record] = list(s.journal.records())
    assert record.kept == ["a.txt"]


def test_a_file_that_fails_while_the_save_streams_it_keeps_the_vault_and_the_file(
    started: tuple[m.Session, list[str]],
    filled_vault: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scan hashed the file; reading it into the save fails (EIO): the save is refused
    naming that file, the vault is byte-identical, and the lock keeps the file."""
    s, _ = started
    big = s.root / "big.bin"
    big.write_bytes(os.urandom(BIG))
    (s.root / "a.txt").write_bytes(b"alpha 2\n")
    before = filled_vault.read_bytes()
    monkeypatch.setattr(sources, "io", _StreamFails(big))
    with pytest.raises(LockerError) as raised:
        s.sync()
    assert str(raised.value) == (
        f"cannot save {filled_vault} ({big}): Input/output error; the vault is unchanged"
    )
    assert filled_vault.read_bytes() == before
    with pytest.raises(LockerError) as locked:
        s.lock(tracker.REASON_IDLE)
    message = str(locked.value)
    assert message.startswith(
        f"could not save the mount directory into the vault: cannot save {filled_vault} ({big})"
    ), message
    assert "kept 2 files with unsaved changes: a.txt, big.bin" in message
    assert filled_vault.read_bytes() == before
    assert sorted(sc.scan_tree(s.root).files) == ["a.txt", "big.bin"]
    [record] = list(s.journal.records())
    assert record.kept == ["a.txt", "big.bin"]


@pytest.mark.parametrize(
    ("error", "unsaved"),
    [
        (LockerError("a.txt is not a regular file"), {"a.txt": "a.txt is not a regular file"}),
        (OSError(), {"a.txt": "unreadable"}),  # no reason given: still kept, and said
        (FileNotFoundError(errno.ENOENT, "gone"), {}),  # moved since the listing: looked for
    ],
    ids=["replaced", "no-reason", "vanished"],
)
def test_what_a_failed_read_leaves_unsaved(
    started: tuple[m.Session, list[str]],
    filled_vault: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    unsaved: dict[str, str],
) -> None:
    s, _ = started
    before = contents(filled_vault)
    (s.root / "a.txt").write_bytes(b"edited")
    real_read = sc.read_regular

    def failing(path: Path) -> tuple[bytes, sc.FileStat]:
        if path.name == "a.txt":
            raise error
        return real_read(path)

    monkeypatch.setattr(sc, "read_regular", failing)
    result = s.sync()
    assert result.unsaved == unsaved
    assert not result.changes
    assert contents(filled_vault) == before


class _RootUnlistable:
    """Stands in for `os` in mount/scan.py: the mount directory itself cannot be listed (`err`),
    `times` times (None: always)."""

    def __init__(self, root: Path, err: int, times: int | None = None) -> None:
        self.root, self.err, self.times = root, err, times

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def listdir(self, fd: int) -> list[str]:
        if os.readlink(f"/proc/self/fd/{fd}") == str(self.root) and self.times != 0:
            if self.times is not None:
                self.times -= 1
            raise OSError(self.err, os.strerror(self.err))
        return os.listdir(fd)


@pytest.mark.parametrize("err", [errno.EACCES, errno.EIO])
def test_a_mount_directory_that_cannot_be_listed_is_a_read_error_not_a_mass_delete(
    filled_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    """Every file seemed deleted (held back, then saved as deleted once the grace period was
    over): the vault emptied. It is a read error: nothing changes in the vault, and it says so."""
    clocks = Clocks()
    s = unstarted(filled_vault, tmp_path, clocks)
    notes: list[str] = []
    s.notify = notes.append
    with s.vault:
        s.start()
        before = contents(filled_vault)
        (s.root / "a.txt").write_bytes(b"edited, not saved yet\n")
        monkeypatch.setattr(sc, "os", _RootUnlistable(s.root, err))
        why = os.strerror(err)
        for _ in range(2):
            result = s.sync()
            assert (result.changes, result.unsaved) == (sc.Changes(), {".": why})
            clocks.advance(sync.ALL_GONE_GRACE + 1)
        assert contents(filled_vault) == before
        assert notes == [f"warning: cannot read ./: {why}; nothing is saved until it can be read"]

        # listed once more at lock, it is saved; a failure only at the final sync keeps all
        monkeypatch.setattr(sc, "os", _RootUnlistable(s.root, err, times=1))
        done = s.lock(tracker.REASON_IDLE)
        assert done.kept == {".": why}
        assert contents(filled_vault) == before
        assert (s.root / "a.txt").read_bytes() == b"edited, not saved yet\n"
        assert sorted(sc.scan_tree(s.root).files) == sorted(before)
        [record] = list(s.journal.records())
        assert record.kept == ["."]
        assert sorted(record.files) == sorted(before)  # what `locker recover` compares with
