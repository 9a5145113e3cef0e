"""Writing plaintext files without following symlinks: every path is walked from a directory
file descriptor with O_NOFOLLOW, and files appear under their final name only when complete.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import unicodedata
from collections.abc import Iterable, Iterator

from locker.errors import ExistsError, LockerError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_dir(path: str | os.PathLike[str], follow: bool = False) -> int:
    """Open an existing directory; its last component may be a symlink only if `follow`."""
    flags = _DIR_FLAGS & ~os.O_NOFOLLOW if follow else _DIR_FLAGS
    try:
        return os.open(path, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LockerError(
                f"{os.fspath(path)} is not a directory (or is a symbolic link)"
            ) from None
        raise LockerError(f"cannot open directory {os.fspath(path)}: {exc.strerror}") from None


@contextlib.contextmanager
def walk_to_parent(root_fd: int, parts: list[str], create: bool) -> Iterator[int]:
    """Yield a descriptor of root/parts[0]/.../parts[-2], creating 0700 directories if asked."""
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o700, dir_fd=fd)
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LockerError(
                        f"refusing to write through {part!r}: not a plain directory"
                    ) from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def write_file(
    root_fd: int,
    name: str,
    chunks: Iterable[bytes],
    force: bool = False,
    durable: bool = True,
    anonymous: bool = True,
    written: set[str] | None = None,
) -> os.stat_result:
    """Write `chunks` to root/name (0600); it appears under `name` only after the last chunk.

    Where the file system has `O_TMPFILE` (and `anonymous`), the data goes to an unnamed
    file that gets a name only when complete (`linkat`): a `kill -9` mid-write leaves
    nothing behind. Elsewhere a hidden `.locker-*.tmp` temp file is renamed into place. If
    the iterator raises (a chunk failed authentication, `Terminated` by a signal) nothing
    appears under `name`. `durable=False` skips the fsyncs: for RAM-backed mounts, whose
    files must never reach a disk anyway. Returns the new file's stat.

    `written` collects the caseless keys of the names one run has written: a name whose key
    is there and that exists already is the same file on a case-insensitive or normalising
    file system (`A` after `a` on FAT), and is refused even with `force`, never overwritten.
    """
    parts = name.split("/")
    leaf = parts[-1]
    with walk_to_parent(root_fd, parts, create=True) as dir_fd:
        key = caseless(name)
        if written is not None and key in written and exists(dir_fd, leaf):
            raise ExistsError(
                f"{name} is the same file here as an entry written just before it "
                "(the file system ignores case or normalises Unicode); not overwriting it",
                hint="get the entries into separate directories",
            )
        if not force and exists(dir_fd, leaf):
            raise ExistsError(f"{name} already exists", hint="pass --force to replace it")
        fd = _open_anonymous(dir_fd) if anonymous else None
        tmp: str | None = None
        if fd is None:
            tmp = _temp_name()
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=dir_fd,
            )
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                if durable:
                    os.fsync(out.fileno())
                if exists(dir_fd, leaf) and stat.S_ISDIR(
                    os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False).st_mode
                ):
                    raise ExistsError(f"{name} is a directory; not replacing it")
                if tmp is None:
                    tmp = leaf if not force else _temp_name()
                    _link(out.fileno(), dir_fd, tmp, name)
            if tmp != leaf:
                os.rename(tmp, leaf, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            if tmp is not None and tmp != leaf:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dir_fd)
            raise
        if durable:
            fsync_dir(dir_fd)
        if written is not None:
            written.add(key)
        return os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)


def caseless(name: str) -> str:
    """Canonical caseless form (Unicode 3.13 D145): equal for names that a case-insensitive,
    normalising file system (FAT, exFAT, APFS, SMB shares) stores as one file."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def _temp_name() -> str:
    return f".locker-{secrets.token_hex(8)}.tmp"  # fits any name limit, whatever the leaf


_PROC_FD = "/proc/self/fd"


def _open_anonymous(dir_fd: int) -> int | None:
    """An unnamed 0600 file in the directory, or None where O_TMPFILE or /proc is missing."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir(_PROC_FD):
        return None
    try:
        return os.open(".", flag | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise


def _link(fd: int, dir_fd: int, leaf: str, name: str) -> None:
    """Give the unnamed file `fd` the name `leaf` (never replacing one)."""
    try:
        os.link(f"{_PROC_FD}/{fd}", leaf, dst_dir_fd=dir_fd, follow_symlinks=True)
    except FileExistsError:
        raise ExistsError(f"{name} already exists", hint="pass --force to replace it") from None


# What fsync of a directory says on file systems that cannot sync one (FAT through FUSE).
NO_DIR_FSYNC = (errno.EINVAL, errno.ENOTSUP, errno.EBADF)


def fsync_dir(dir_fd: int) -> None:
    """Make the new name durable where the file system can."""
    try:
        os.fsync(dir_fd)
    except OSError as exc:
        if exc.errno not in NO_DIR_FSYNC:
            raise


def exists(dir_fd: int, leaf: str) -> bool:
    try:
        os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
