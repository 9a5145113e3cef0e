"""mount/tree_writer.py: materialising writes keep write_file's promises at fewer system calls.

Each promise is checked with the O_TMPFILE path and with the fallback through
`safefs.write_file` (as on a file system without O_TMPFILE).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from locker.errors import ExistsError, LockerError
from locker.mount import tree_writer
from locker.mount.tree_writer import TreeWriter
from locker.store import safefs


@pytest.fixture(params=["O_TMPFILE", "fallback"])
def root(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if request.param == "fallback":
        monkeypatch.setattr(safefs, "_open_anonymous", lambda dir_fd: None)
    path = tmp_path / "mnt"
    path.mkdir(mode=0o700)
    return path


def write(root: Path, files: dict[str, list[bytes]]) -> dict[str, os.stat_result]:
    fd = safefs.open_dir(root)
    try:
        with TreeWriter(fd) as tree:
            return {name: tree.write(name, iter(chunks)) for name, chunks in files.items()}
    finally:
        os.close(fd)


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_writes_the_tree_private(root: Path) -> None:
    files = {
        "a.txt": [b"alpha"],
        "d/e/b.key": [b"x" * 65536, b"y" * 3],
        "d/c.pem": [],
        "d/e/f/g": [b"deep"],
    }
    stats = write(root, files)
    for name, chunks in files.items():
        path = root / name
        assert path.read_bytes() == b"".join(chunks)
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert (st.st_ino, st.st_size) == (stats[name].st_ino, stats[name].st_size)
    for d in ("d", "d/e", "d/e/f"):
        assert stat.S_IMODE((root / d).stat().st_mode) == 0o700
    assert listing(root) == ["a.txt", "d", "d/c.pem", "d/e", "d/e/b.key", "d/e/f", "d/e/f/g"]


def test_an_existing_name_is_refused_not_replaced(root: Path) -> None:
    (root / "a.txt").write_bytes(b"mine")
    with pytest.raises(ExistsError, match="already exists"):
        write(root, {"a.txt": [b"theirs"]})
    assert (root / "a.txt").read_bytes() == b"mine"
    assert listing(root) == ["a.txt"]


def test_a_failed_file_leaves_nothing_under_its_name(root: Path) -> None:
    def failing() -> Iterator[bytes]:
        yield b"first chunk"
        raise LockerError("chunk 1 failed authentication")

    fd = safefs.open_dir(root)
    try:
        with TreeWriter(fd) as tree:
            tree.write("ok.txt", iter([b"fine"]))
            with pytest.raises(LockerError, match="authentication"):
                tree.write("sub/bad.txt", failing())
    finally:
        os.close(fd)
    assert listing(root) == ["ok.txt", "sub"]  # no temp file, no partial file


def test_a_one_chunk_file_whose_write_fails_leaves_nothing(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-chunk file is written straight under its name: a failed write (a full tmpfs)
    removes the name again, and a chunk that fails authentication never makes it."""

    def full(fd: int, data: bytes) -> None:
        os.write(fd, data[:2])
        raise OSError(28, "No space left on device")

    def tampered() -> Iterator[bytes]:
        raise LockerError("chunk 0 failed authentication")
        yield b""

    monkeypatch.setattr(tree_writer, "_write_all", full)
    with pytest.raises(OSError, match="No space"):
        write(root, {"a.txt": [b"secret"]})
    with pytest.raises(LockerError, match="authentication"):
        write(root, {"b.txt": tampered()})
    assert listing(root) == []


def test_never_writes_through_a_symlink(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "d").symlink_to(outside)
    with pytest.raises(LockerError, match="refusing to write through 'd'"):
        write(root, {"d/a.txt": [b"secret"]})
    assert list(outside.iterdir()) == []
    (root / "link.txt").symlink_to(outside / "target")
    with pytest.raises(ExistsError):
        write(root, {"link.txt": [b"secret"]})
    assert not (outside / "target").exists()


def test_write_anonymous_links_only_a_complete_file_and_never_replaces(tmp_path: Path) -> None:
    """safefs.write_anonymous, the O_TMPFILE path write_file and TreeWriter share."""
    root = tmp_path / "out"
    root.mkdir()
    fd = safefs.open_dir(root)
    try:
        st = safefs.write_anonymous(fd, "a.key", iter([b"al", b"pha"]), "d/a.key", False)
        assert st is not None  # this test machine has O_TMPFILE (tmpfs, ext4)
        assert (root / "a.key").read_bytes() == b"alpha"
        assert (st.st_ino, stat.S_IMODE(st.st_mode)) == ((root / "a.key").stat().st_ino, 0o600)
        with pytest.raises(ExistsError, match=r"^d/a\.key already exists$"):
            safefs.write_anonymous(fd, "a.key", iter([b"theirs"]), "d/a.key", True)
        assert (root / "a.key").read_bytes() == b"alpha"
    finally:
        os.close(fd)
    assert listing(root) == ["a.key"]


def test_write_anonymous_without_o_tmpfile_reads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(safefs, "_open_anonymous", lambda dir_fd: None)
    chunks = iter([b"kept for the fallback"])
    root = tmp_path / "out"
    root.mkdir()
    fd = safefs.open_dir(root)
    try:
        assert safefs.write_anonymous(fd, "a.key", chunks, "a.key", False) is None
    finally:
        os.close(fd)
    assert list(chunks) == [b"kept for the fallback"]
    assert listing(root) == []
