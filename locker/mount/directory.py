"""The mount directory itself: where it is made, and wiping it.

Plain files in a private 0700 directory (no FUSE, no root): RAM-backed where the system offers
one. Wiping zeroes each file in place and then unlinks it, file by file, so the plaintext does
not linger in freed pages of a disk-backed fallback. It walks by directory descriptors and never
follows a symlink, and never zeroes a file that has another hard link.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from locker.errors import LockerError, UsageError
from locker.mount import runtime


def make_mount_dir(requested: str | None) -> tuple[Path, bool, str | None]:
    """(directory, created by us, warning). A given --dir must be missing or an empty directory."""
    if requested:
        path = Path(requested).absolute()
        created = False
        try:
            os.mkdir(path, 0o700)
            created = True
        except FileNotFoundError:
            raise UsageError(f"the parent of {path} does not exist") from None
        except FileExistsError:
            pass
        if not created:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                raise UsageError(f"{path} is not a directory of yours")
            if os.listdir(path):
                raise UsageError(f"{path} is not empty", hint="mount into a new or empty directory")
            os.chmod(path, 0o700)
        warning = None if runtime.is_ram_backed(path) else f"{path} is not RAM-backed (tmpfs)"
        return path, created, warning
    base = runtime.ram_base()  # never on disk: refused there unless --dir asks for it
    path = base.path / f"mnt-{secrets.token_hex(8)}"
    os.mkdir(path, 0o700)
    return path, True, None


def _zero_fd(fd: int, size: int) -> None:
    zeros = bytes(min(size, 1024 * 1024))
    done = 0
    while done < size:
        done += os.pwrite(fd, zeros[: size - done], done)


_O_PATH = getattr(os, "O_PATH", 0)


def _zero_at(dir_fd: int, name: str, durable: bool) -> bool:
    """Zero the file `name` in `dir_fd` in place if it is a regular file with no other hard
    link (checked on the opened descriptor); a read-only one is made 0600 first. True if zeroed."""
    try:
        fd = os.open(
            name,
            (_O_PATH or os.O_RDONLY | os.O_NONBLOCK) | os.O_NOFOLLOW | os.O_CLOEXEC,
            dir_fd=dir_fd,
        )
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return False
        via = f"/proc/self/fd/{fd}"
        try:
            if stat.S_IMODE(st.st_mode) & 0o600 != 0o600:
                os.chmod(via, 0o600)  # follows the descriptor's magic link: the same inode
            wfd = os.open(via, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # no /proc: open the name again and make sure it is the same file
            with contextlib.suppress(OSError):
                os.chmod(name, 0o600, dir_fd=dir_fd, follow_symlinks=False)
            wfd = os.open(
                name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
            )
        try:
            wst = os.fstat(wfd)
            if (wst.st_dev, wst.st_ino) != (st.st_dev, st.st_ino) or wst.st_nlink != 1:
                return False
            _zero_fd(wfd, wst.st_size)
            if durable:
                os.fsync(wfd)  # on a disk the zeros reach it before the blocks are freed
            return True
        finally:
            os.close(wfd)
    except OSError:
        return False
    finally:
        os.close(fd)


def _wipe_dir(dir_fd: int, durable: bool) -> int:
    """Zero and unlink each file in the directory `dir_fd`, one at a time, and remove its
    subdirectories, descending only through descriptors opened without following symlinks."""
    with contextlib.suppress(OSError):
        os.fchmod(dir_fd, 0o700)
    count = 0
    for name in os.listdir(dir_fd):
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                sub = os.open(
                    name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd
                )
            except OSError:  # replaced by a symlink or a file since: remove just the name
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dir_fd)
                continue
            try:
                count += _wipe_dir(sub, durable)
            finally:
                os.close(sub)
            try:
                os.rmdir(name, dir_fd=dir_fd)
            except NotADirectoryError:  # swapped for a symlink after it was opened
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            continue
        if stat.S_ISREG(st.st_mode):
            _zero_at(dir_fd, name, durable)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
        count += 1
    return count


def wipe_tree(root: Path, remove_root: bool, expect: tuple[int, int] | None = None) -> int:
    """Zero and unlink every file under `root` (editor litter included), file by file, then
    remove the directories. `expect` is the (st_dev, st_ino) the directory must still have:
    one replaced since is not touched. Returns the number of files removed."""
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        st = os.fstat(root_fd)
        if expect is not None and (st.st_dev, st.st_ino) != expect:
            raise LockerError(f"{root} was replaced by another directory; it was not wiped")
        count = _wipe_dir(root_fd, durable=not runtime.is_ram_backed(root))
    finally:
        os.close(root_fd)
    if remove_root:
        with contextlib.suppress(FileNotFoundError):
            now = os.lstat(root)
            if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                os.rmdir(root)
    return count


def wipe_files(root: Path, names: list[str], expect: tuple[int, int] | None = None) -> int:
    """Zero and unlink just the files `names` ('/'-separated, relative to `root`), each reached
    through directory descriptors that never follow a symlink. Returns how many were removed."""
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0
    count = 0
    try:
        st = os.fstat(root_fd)
        if expect is not None and (st.st_dev, st.st_ino) != expect:
            raise LockerError(f"{root} was replaced by another directory; it was not wiped")
        durable = not runtime.is_ram_backed(root)
        for name in names:
            *parents, leaf = name.split("/")
            fds = [root_fd]
            try:
                for part in parents:
                    fds.append(
                        os.open(
                            part,
                            os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                            dir_fd=fds[-1],
                        )
                    )
                if _zero_at(fds[-1], leaf, durable):
                    os.unlink(leaf, dir_fd=fds[-1])
                    count += 1
            except OSError:
                continue
            finally:
                for fd in fds[1:]:
                    os.close(fd)
    finally:
        os.close(root_fd)
    return count
