"""Tests that kill mutants `scripts/mutate` (mutmut) found alive in the mount wipe
(mount/directory.py) and sync (mount/sync.py) (issue 10, item 14). docs/TESTING.md lists the
survivors judged equivalent.

mutmut runs as root, whom a read-only file never refuses: the wipe's way for such a file
(`_zero_at`) is then never taken, so it is held to its promises here directly."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from locker.mount import directory


@pytest.fixture
def dir_fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


def test_zero_at_zeroes_a_read_only_file_made_0600(tmp_path: Path, dir_fd: int) -> None:
    key = tmp_path / "key"
    key.write_bytes(b"S" * 3000)
    key.chmod(0o400)
    with key.open("rb") as held:
        assert directory._zero_at(dir_fd, "key", durable=False) is True
        assert held.read() == bytes(3000)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_zero_at_keeps_the_mode_of_a_file_its_owner_can_write(tmp_path: Path, dir_fd: int) -> None:
    shared = tmp_path / "shared"
    shared.write_bytes(b"secret")
    shared.chmod(0o641)
    assert directory._zero_at(dir_fd, "shared", durable=False) is True
    assert shared.read_bytes() == bytes(6)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o641


def test_zero_at_touches_nothing_but_a_regular_file_of_one_link(
    tmp_path: Path, dir_fd: int
) -> None:
    outside, alone = tmp_path / "outside", tmp_path / "alone"
    for path in (outside, alone):
        path.write_bytes(b"not the mount's")
        path.chmod(0o400)
    os.symlink(alone, tmp_path / "link")
    os.link(outside, tmp_path / "hard")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    for name in ("link", "hard", "fifo", "dir", "missing"):
        assert directory._zero_at(dir_fd, name, durable=False) is False, name
    for path in (outside, alone):
        assert path.read_bytes() == b"not the mount's"
        assert stat.S_IMODE(path.stat().st_mode) == 0o400


def test_zero_at_makes_the_zeros_durable_when_asked(
    tmp_path: Path, dir_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    for name, durable in (("ram", False), ("disk", True)):
        (tmp_path / name).write_bytes(b"secret")
        (tmp_path / name).chmod(0o400)
        assert directory._zero_at(dir_fd, name, durable) is True
    assert synced == [(tmp_path / "disk").stat().st_ino]


class _Os:
    """Stands in for `os` in mount/directory.py, as a racing process or a user other than root
    would make it behave."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(os, attr)


def _swap_for_symlink(name: str, target: Path, dir_fd: int | None) -> None:
    """What a racing process does: the directory `name` moved aside, a symlink in its place."""
    os.rename(name, name + ".moved", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.symlink(target, name, dir_fd=dir_fd)


class _NotRoot(_Os):
    """A directory whose owner may not read it (mode 000) cannot be opened but by O_PATH: so it
    is to every user but root, and mutmut and CI run as root."""

    def open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if not flags & os.O_PATH:
            follow = not flags & os.O_NOFOLLOW
            try:
                st = os.stat(path, dir_fd=dir_fd, follow_symlinks=follow)
            except OSError:
                st = None
            if st and stat.S_ISDIR(st.st_mode) and st.st_mode & 0o500 != 0o500:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return os.open(path, flags, mode, dir_fd=dir_fd)


def test_a_directory_its_owner_cannot_read_is_made_0700_and_wiped(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "locked" / "deeper").mkdir(parents=True)
    (root / "locked" / "deeper" / "k").write_bytes(b"secret")
    (root / "locked" / "deeper").chmod(0)
    (root / "locked").chmod(0)
    layer = _NotRoot()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        out = directory.wipe_tree(root, remove_root=True)
    assert (out.count, out.left) == (1, [])
    assert not root.exists()


def test_a_kept_file_in_a_directory_its_owner_cannot_read_stays_and_the_directory_is_0700(
    tmp_path: Path,
) -> None:
    root = tmp_path / "w"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "unsaved").write_bytes(b"kept")
    (root / "other").write_bytes(b"secret")
    (root / "locked").chmod(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", _NotRoot())
        out = directory.wipe_tree(root, remove_root=True, keep=frozenset({"locked/unsaved"}))
    assert (out.count, out.left) == (1, [])
    assert stat.S_IMODE((root / "locked").stat().st_mode) == 0o700
    assert (root / "locked" / "unsaved").read_bytes() == b"kept"
    assert sorted(os.listdir(root)) == ["locked"]


class _SwapWhenRefused(_NotRoot):
    """As `_NotRoot`, and a racing process swaps the refused directory `name` for a symlink to
    `target` right after the refusal: the second open (by O_PATH) must not follow it."""

    def __init__(self, name: str, target: Path) -> None:
        self.name, self.target, self.swapped = name, target, False

    def open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        try:
            return super().open(path, flags, mode, dir_fd=dir_fd)
        except PermissionError:
            if path == self.name and not self.swapped:
                self.swapped = True
                _swap_for_symlink(self.name, self.target, dir_fd)
            raise


def test_the_way_into_an_unreadable_directory_never_follows_a_symlink_swapped_in(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "key.pem").write_bytes(b"not the mount's")
    victim.chmod(0)
    root = tmp_path / "w"
    (root / "locked").mkdir(parents=True)
    (root / "locked").chmod(0)
    layer = _SwapWhenRefused("locked", victim)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        directory.wipe_tree(root, remove_root=True)
    assert layer.swapped
    assert stat.S_IMODE(victim.stat().st_mode) == 0
    victim.chmod(0o700)
    assert (victim / "key.pem").read_bytes() == b"not the mount's"
    assert not (root / "locked").exists()


class _Swap(_Os):
    """A racing process swaps the directory `name` for a symlink to `target`: right after the
    wipe lists it (`when="listed"`) or opens it (`when="opened"`). `refuse_unlink` makes the
    name's unlink fail (EPERM, as in an append-only directory); `then_remove` has the racer
    take the symlink away again right after the wipe's rmdir meets it."""

    def __init__(
        self,
        name: str,
        target: Path,
        when: str,
        refuse_unlink: bool = False,
        then_remove: bool = False,
    ) -> None:
        self.name, self.target, self.when = name, target, when
        self.refuse_unlink, self.then_remove = refuse_unlink, then_remove
        self.swapped = False

    def _swap(self, dir_fd: int | None) -> None:
        if not self.swapped:
            self.swapped = True
            _swap_for_symlink(self.name, self.target, dir_fd)

    def scandir(self, dir_fd: int) -> Any:
        with os.scandir(dir_fd) as listing:
            entries = list(listing)
        for entry in entries:
            entry.is_dir(follow_symlinks=False)  # the type as listed, kept by the entry
            if entry.name == self.name and self.when == "listed":
                self._swap(dir_fd)
        return contextlib.nullcontext(entries)

    def open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        fd = os.open(path, flags, mode, dir_fd=dir_fd)
        if path == self.name and self.when == "opened":
            self._swap(dir_fd)
        return fd

    def unlink(self, path: Any, *, dir_fd: int | None = None) -> None:
        if path == self.name and self.refuse_unlink:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), path)
        os.unlink(path, dir_fd=dir_fd)

    def rmdir(self, path: Any, *, dir_fd: int | None = None) -> None:
        try:
            os.rmdir(path, dir_fd=dir_fd)
        except NotADirectoryError:
            if path == self.name and self.then_remove:
                os.unlink(path, dir_fd=dir_fd)
            raise


@pytest.fixture
def bait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory holds a file named like the swapped directory: a name unlinked
    anywhere but in the wipe's own directory would take it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "sub").write_bytes(b"the cwd's")
    monkeypatch.chdir(cwd)
    return cwd / "sub"


def _mount_and_victim(tmp_path: Path) -> tuple[Path, Path]:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "key.pem").write_bytes(b"not the mount's")
    root = tmp_path / "w"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "k").write_bytes(b"secret")
    return root, victim


@pytest.mark.parametrize("when", ["listed", "opened"])
def test_a_directory_swapped_for_a_symlink_loses_just_the_name(
    tmp_path: Path, bait: Path, when: str
) -> None:
    root, victim = _mount_and_victim(tmp_path)
    layer = _Swap("sub", victim, when)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        out = directory.wipe_tree(root, remove_root=True)
    assert layer.swapped
    assert out.left == []
    assert not root.exists()
    assert (victim / "key.pem").read_bytes() == b"not the mount's"
    assert bait.read_bytes() == b"the cwd's"


def test_a_symlink_taken_away_again_after_the_rmdir_met_it_is_no_error(
    tmp_path: Path, bait: Path
) -> None:
    root, victim = _mount_and_victim(tmp_path)
    layer = _Swap("sub", victim, "opened", then_remove=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        out = directory.wipe_tree(root, remove_root=True)
    assert (layer.swapped, out.count, out.left) == (True, 1, [])
    assert not root.exists()
    assert bait.read_bytes() == b"the cwd's"


def test_a_swapped_directory_whose_name_cannot_be_removed_is_listed(
    tmp_path: Path, bait: Path
) -> None:
    root, victim = _mount_and_victim(tmp_path)
    layer = _Swap("sub", victim, "listed", refuse_unlink=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        out = directory.wipe_tree(root, remove_root=True)
    assert out.left == [
        f"sub/: {os.strerror(errno.ENOTDIR)}",
        f"sub: {os.strerror(errno.EPERM)}",
    ]
    assert (root / "sub").is_symlink()
    assert (victim / "key.pem").read_bytes() == b"not the mount's"


def test_files_kept_deep_in_a_directory_stay_and_their_siblings_go(tmp_path: Path) -> None:
    """...in directories made 0700 (the wipe's own, whatever they were)."""
    root = tmp_path / "w"
    (root / "d" / "e").mkdir(parents=True)
    for path in (root, root / "d", root / "d" / "e"):
        path.chmod(0o755)
    (root / "d" / "e" / "unsaved").write_bytes(b"kept")
    (root / "d" / "e" / "saved").write_bytes(b"secret")
    (root / "d" / "saved").write_bytes(b"secret")
    (root / "top").write_bytes(b"secret")
    out = directory.wipe_tree(root, remove_root=True, keep=frozenset({"d/e/unsaved"}))
    assert (out.count, out.left) == (3, [])
    assert [str(p.relative_to(root)) for p in sorted(root.rglob("*"))] == [
        "d",
        "d/e",
        "d/e/unsaved",
    ]
    assert (root / "d" / "e" / "unsaved").read_bytes() == b"kept"
    assert {stat.S_IMODE(p.stat().st_mode) for p in (root, root / "d")} == {0o700}


def test_a_file_that_cannot_be_zeroed_or_unlinked_is_listed(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_bytes(b"secret")
    layer = _Refuse(unlink="f")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        out = directory.wipe_tree(root, remove_root=True)
    assert (out.count, out.left) == (0, [f"f: {os.strerror(errno.EPERM)}"])
    assert (root / "f").read_bytes() == bytes(6)


class _Refuse(_Os):
    """Fails the unlink of `unlink` (EPERM), and the listing of the directory `listing` (EIO,
    `once` or always) by both of the wipe's ways to list one; notes each file fsync'd."""

    def __init__(self, unlink: str = "", listing: Path | None = None, once: bool = False) -> None:
        self.unlink_name, self.listing, self.once = unlink, listing, once
        self.synced: list[int] = []

    def unlink(self, path: Any, *, dir_fd: int | None = None) -> None:
        if path == self.unlink_name:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), path)
        os.unlink(path, dir_fd=dir_fd)

    def _check(self, fd: int) -> None:
        if self.listing is not None and os.readlink(f"/proc/self/fd/{fd}") == str(self.listing):
            if self.once:
                self.listing = None
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    def scandir(self, fd: int) -> Any:
        self._check(fd)
        return os.scandir(fd)

    def listdir(self, fd: int) -> list[str]:
        self._check(fd)
        return os.listdir(fd)

    def fsync(self, fd: int) -> None:
        self.synced.append(os.fstat(fd).st_ino)
        os.fsync(fd)


@pytest.mark.parametrize(
    ("where", "left"),
    [("", ["./: EIO"]), ("d/", ["d/: EIO", f"d/: {os.strerror(errno.ENOTEMPTY)}"])],
)
def test_a_directory_that_cannot_be_listed_is_named(
    tmp_path: Path, where: str, left: list[str]
) -> None:
    root = tmp_path / "w"
    (root / "d").mkdir(parents=True)
    (root / "d" / "x").write_bytes(b"secret")
    layer = _Refuse(listing=root / where)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        out = directory.wipe_tree(root, remove_root=True)
    assert out.left == [n.replace("EIO", os.strerror(errno.EIO)) for n in left]
    assert (root / "d" / "x").exists()


def test_a_kept_directory_that_cannot_be_listed_one_way_is_wiped_the_other(
    tmp_path: Path,
) -> None:
    root = tmp_path / "w"
    (root / "d").mkdir(parents=True)
    (root / "d" / "unsaved").write_bytes(b"kept")
    (root / "d" / "x").write_bytes(b"secret")
    layer = _Refuse(listing=root / "d", once=True)
    layer.scandir = os.scandir  # type: ignore[method-assign]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        out = directory.wipe_tree(root, remove_root=True, keep=frozenset({"d/unsaved"}))
    assert (out.count, out.left) == (1, [])
    assert sorted(os.listdir(root / "d")) == ["unsaved"]


@pytest.mark.parametrize("keep", [frozenset(), frozenset({"d/unsaved"})])
def test_a_symlink_to_a_directory_is_one_name_removed_kept_below_or_not(
    tmp_path: Path, keep: frozenset[str]
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "unsaved").write_bytes(b"not the mount's")
    root = tmp_path / "w"
    root.mkdir()
    (root / "d").symlink_to(victim)
    out = directory.wipe_tree(root, remove_root=not keep, keep=keep)
    assert (out.count, out.left) == (1, [])
    assert not root.exists() if not keep else os.listdir(root) == []
    assert (victim / "unsaved").read_bytes() == b"not the mount's"


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_a_root_that_is_not_a_directory_is_not_followed_nor_touched(
    tmp_path: Path, kind: str
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "k").write_bytes(b"not the mount's")
    root = tmp_path / "w"
    if kind == "symlink":
        root.symlink_to(victim)
    else:
        root.write_bytes(b"a file")
    out = directory.wipe_tree(root, remove_root=True)
    assert (out.count, out.left) == (0, [f"{root}: {os.strerror(errno.ENOTDIR)}"])
    assert (victim / "k").read_bytes() == b"not the mount's"
    assert root.is_symlink() if kind == "symlink" else root.read_bytes() == b"a file"


def test_the_wipe_makes_its_zeros_durable_only_off_ram(tmp_path: Path, places: Any) -> None:
    """On a disk the zeros reach it before the blocks are freed (an fsync per file); in RAM
    there is nothing to reach. Which is which is decided here, not by the machine's /tmp."""
    for base in (tmp_path, places.shm):
        root = base / "w"
        root.mkdir()
        (root / "f").write_bytes(b"secret")
        (root / "ro").write_bytes(b"secret")
        (root / "ro").chmod(0o400)
        inodes = {os.stat(root / n).st_ino for n in ("f", "ro")}
        layer = _Refuse()
        on_disk = base == tmp_path
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(directory, "os", layer)
            mp.setattr(directory.runtime, "is_ram_backed", lambda path, ram=not on_disk: ram)
            assert directory.wipe_tree(root, remove_root=True).count == 2
        assert set(layer.synced) == (inodes if on_disk else set()), base


class _ReadOnlyRefused(_Refuse):
    """As for any user but root: a file cannot be opened for writing unless its owner may
    write it, nor for reading unless its owner may read it (O_PATH needs neither)."""

    def open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if not flags & os.O_PATH:
            try:
                st = os.stat(path, dir_fd=dir_fd, follow_symlinks=not flags & os.O_NOFOLLOW)
            except OSError:
                st = None
            need = 0o200 if flags & os.O_WRONLY else 0o400
            if st and stat.S_ISREG(st.st_mode) and not st.st_mode & need:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return os.open(path, flags, mode, dir_fd=dir_fd)


@pytest.mark.parametrize("mode", [0o400, 0])
def test_a_read_only_file_is_zeroed_durably_the_slower_way(tmp_path: Path, mode: int) -> None:
    root = tmp_path / "w"
    root.mkdir()
    key = root / "key"
    key.write_bytes(b"S" * 5000)
    key.chmod(mode)
    layer = _ReadOnlyRefused()
    with key.open("rb") as held, pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        mp.setattr(directory.runtime, "is_ram_backed", lambda path: False)
        assert directory.wipe_tree(root, remove_root=True).count == 1
        assert held.read() == bytes(5000)
        assert layer.synced == [os.fstat(held.fileno()).st_ino]


def test_what_the_zeroing_says_it_did(tmp_path: Path, dir_fd: int) -> None:
    """True: zeroed; False: not a regular file of one link (or gone), left alone; None (the
    listing's way only): a directory by now."""
    (tmp_path / "own").write_bytes(b"secret")
    (tmp_path / "outside").write_bytes(b"not the mount's")
    os.link(tmp_path / "outside", tmp_path / "hard")
    os.symlink(tmp_path / "outside", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    want = {"own": True, "hard": False, "link": False, "fifo": False, "dir": None, "gone": False}
    for name, result in want.items():
        assert directory._zero_listed_file(dir_fd, name, durable=False) is result, name
    assert (tmp_path / "outside").read_bytes() == b"not the mount's"
    fd = os.open(tmp_path / "hard", os.O_WRONLY)
    try:
        assert directory._zero_open(fd, durable=False) is False
    finally:
        os.close(fd)
    own = os.lstat(tmp_path / "own")
    fd = os.open(tmp_path / "own", os.O_WRONLY)
    try:
        assert directory._zero_open(fd, durable=False, same_as=own) is True
        assert directory._zero_open(fd, durable=False, same_as=os.lstat(tmp_path)) is False
    finally:
        os.close(fd)


def test_a_large_file_is_zeroed_to_its_last_byte(tmp_path: Path, dir_fd: int) -> None:
    size = 3 * len(directory._ZEROS) + 5
    (tmp_path / "big").write_bytes(b"S" * size)
    assert directory._zero_listed_file(dir_fd, "big", durable=False) is True
    assert (tmp_path / "big").read_bytes() == bytes(size)


class _WriteFails(_Os):
    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))


def test_a_file_whose_zeroing_fails_is_said_not_zeroed_with_the_reason(
    tmp_path: Path, dir_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "own").write_bytes(b"secret")
    monkeypatch.setattr(directory, "os", _WriteFails())
    assert directory._zero_listed_file(dir_fd, "own", durable=False) == os.strerror(errno.EIO)
    (tmp_path / "own").chmod(0o400)  # the read-only file's way
    assert directory._zero_at(dir_fd, "own", durable=False) == os.strerror(errno.EIO)


class _NoProc(_ReadOnlyRefused):
    """A system without /proc: nothing opens or changes through /proc/self/fd. `swap`, if
    given, is what a racing process does to the name at the first such attempt."""

    def __init__(self, swap: Any = None) -> None:
        super().__init__()
        self.swap = swap

    def _no_proc(self, path: Any) -> None:
        if str(path).startswith("/proc/"):
            if self.swap is not None:
                swap, self.swap = self.swap, None
                swap()
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)

    def open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        self._no_proc(path)
        return super().open(path, flags, mode, dir_fd=dir_fd)

    def chmod(self, path: Any, mode: int, **kwargs: Any) -> None:
        self._no_proc(path)
        os.chmod(path, mode, **kwargs)


def test_without_proc_a_read_only_file_is_zeroed_by_its_name(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "key").write_bytes(b"secret")
    (root / "key").chmod(0o400)
    with (root / "key").open("rb") as held, pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", _NoProc())
        assert directory.wipe_tree(root, remove_root=True).count == 1
        assert held.read() == bytes(6)
        assert stat.S_IMODE(os.fstat(held.fileno()).st_mode) == 0o600


@pytest.mark.parametrize("into", ["file", "symlink", "gone", "link-back"])
def test_without_proc_a_name_swapped_before_its_reopening_is_not_zeroed(
    tmp_path: Path, dir_fd: int, into: str
) -> None:
    (tmp_path / "key").write_bytes(b"secret")
    (tmp_path / "key").chmod(0o400)
    other = tmp_path / "other"
    other.write_bytes(b"not the mount's")

    def swap() -> None:
        os.rename(tmp_path / "key", tmp_path / "key.moved")
        if into == "file":
            os.rename(other, tmp_path / "key")
        elif into == "symlink":
            os.symlink(other, tmp_path / "key")
        elif into == "link-back":  # to the file itself, moved: still not its name
            os.symlink(tmp_path / "key.moved", tmp_path / "key")

    other.chmod(0o644)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", _NoProc(swap))
        assert directory._zero_at(dir_fd, "key", durable=False) is False
    assert (tmp_path / "key.moved").read_bytes() == b"secret"
    assert into in ("gone", "link-back") or (tmp_path / "key").read_bytes() == b"not the mount's"
    assert into == "file" or stat.S_IMODE(other.stat().st_mode) == 0o644  # outside: untouched


class _NoProcWriteFails(_NoProc):
    """Without /proc, and the name's open for writing fails (EIO)."""

    def open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if path == "key" and flags & os.O_WRONLY:
            raise OSError(errno.EIO, os.strerror(errno.EIO), path)
        return super().open(path, flags, mode, dir_fd=dir_fd)


def test_without_proc_a_file_that_cannot_be_opened_to_zero_says_why(
    tmp_path: Path, dir_fd: int
) -> None:
    (tmp_path / "key").write_bytes(b"secret")
    (tmp_path / "key").chmod(0o400)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", _NoProcWriteFails())
        assert directory._zero_at(dir_fd, "key", durable=False) == os.strerror(errno.EIO)


class _RootStays(_Os):
    """The root's rmdir fails with `errno` (ENOTEMPTY: a writer refills it every time)."""

    def __init__(self, root: Path, code: int) -> None:
        self.root, self.code = root, code

    def rmdir(self, path: Any, *, dir_fd: int | None = None) -> None:
        if dir_fd is None and Path(path) == self.root:
            raise OSError(self.code, os.strerror(self.code), path)
        os.rmdir(path, dir_fd=dir_fd)


@pytest.mark.parametrize(
    ("code", "left"),
    [
        (errno.EBUSY, [os.strerror(errno.EBUSY)]),
        (errno.ENOTEMPTY, ["files kept reappearing while it was wiped"]),
        (errno.ENOENT, []),  # removed by someone else meanwhile
    ],
)
def test_a_root_that_cannot_be_removed_is_reported(
    tmp_path: Path, code: int, left: list[str]
) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_bytes(b"secret")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", _RootStays(root, code))
        out = directory.wipe_tree(root, remove_root=True)
    assert (out.count, out.left) == (1, [f"{root}: {why}" for why in left])


class _FileBecomesDir(_Os):
    """Right after the wipe lists the file `name`, a racing process puts a directory holding
    one file in its place. Counts the listings."""

    def __init__(self, name: str) -> None:
        self.name, self.swapped, self.listings = name, False, 0

    def scandir(self, dir_fd: int) -> Any:
        self.listings += 1
        with os.scandir(dir_fd) as listing:
            entries = list(listing)
        for entry in entries:
            entry.is_dir(follow_symlinks=False)  # the type as listed, kept by the entry
            if entry.name == self.name and not self.swapped:
                self.swapped = True
                os.unlink(self.name, dir_fd=dir_fd)
                os.mkdir(self.name, dir_fd=dir_fd)
                fd = os.open(f"{self.name}/inner", os.O_WRONLY | os.O_CREAT, dir_fd=dir_fd)
                os.close(fd)
        return contextlib.nullcontext(entries)


def test_a_file_replaced_by_a_directory_after_the_listing_is_wiped_as_one(
    tmp_path: Path,
) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_bytes(b"secret")
    layer = _FileBecomesDir("f")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        out = directory.wipe_tree(root, remove_root=True)
    assert (layer.swapped, out.count, out.left) == (True, 1, [])
    assert not root.exists()
    assert layer.listings == 4  # the root twice, the new directory twice: wiped in the pass


class _Recreates(_Os):
    """A writer that puts back every file the wipe unlinks, by its path."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def unlink(self, path: Any, *, dir_fd: int | None = None) -> None:
        os.unlink(path, dir_fd=dir_fd)
        if dir_fd is not None and path == "x":
            Path(os.readlink(f"/proc/self/fd/{dir_fd}"), path).write_bytes(b"again")


def test_a_directory_refilled_at_every_pass_is_named_once(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "d").mkdir(parents=True)
    (root / "d" / "x").write_bytes(b"secret")
    (root / "y").write_bytes(b"secret")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", _Recreates(root))
        out = directory.wipe_tree(root, remove_root=True)
    assert out.left == [f"d/: {os.strerror(errno.ENOTEMPTY)}"]
    assert sorted(p.name for p in root.rglob("*")) == ["d", "x"]


@pytest.mark.parametrize("keep", [frozenset(), frozenset({"d/unsaved"})], ids=["none", "kept"])
@pytest.mark.parametrize("where", ["", "d", "d/e"])
def test_a_directory_that_cannot_be_listed_once_is_wiped_without_a_note(
    tmp_path: Path, where: str, keep: frozenset[str]
) -> None:
    """A listing that fails once (EIO) and works when tried again: everything is wiped, and
    nothing is said (the lock said "could not wipe d/: ...", and "Directory not empty", or left
    the whole directory when it was the mount's own, and kept its record for `locker recover`
    with nothing to recover)."""
    root = tmp_path / "w"
    (root / "d" / "e").mkdir(parents=True)
    for name in ("top", "d/x", "d/e/y", *keep):
        (root / name).write_bytes(b"secret")
    layer = _Refuse(listing=root / where, once=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(directory, "os", layer)
        out = directory.wipe_tree(root, remove_root=not keep, keep=keep)
    assert (layer.listing, out.count, out.left) == (None, 3, [])
    assert (
        not root.exists()
        if not keep
        else sorted(p.name for p in root.rglob("*"))
        == [
            "d",
            "unsaved",
        ]
    )
