"""Writing plaintext files without following symlinks: every path is walked from a directory
file descriptor with O_NOFOLLOW, and files appear under their final name only when complete.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import queue
import stat
import threading
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


def open_subdir(parent_fd: int, name: str, create: bool) -> int:
    """A descriptor of the directory `name` in `parent_fd`, never through a symlink; made 0700
    if missing and `create` (else FileNotFoundError)."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            raise
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LockerError(
                f"refusing to write through {name!r}: not a plain directory"
            ) from None
        raise


@contextlib.contextmanager
def walk_to_parent(root_fd: int, parts: list[str], create: bool) -> Iterator[int]:
    """Yield a descriptor of root/parts[0]/.../parts[-2], creating 0700 directories if asked."""
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            nxt = open_subdir(fd, part, create)
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
        tmp = leaf if not force else _temp_name()
        try:
            if not anonymous or write_anonymous(dir_fd, tmp, chunks, name, durable) is None:
                tmp = _temp_name()
                _write_named(dir_fd, tmp, chunks, durable)
            if tmp != leaf:
                if exists(dir_fd, leaf) and stat.S_ISDIR(
                    os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False).st_mode
                ):
                    raise ExistsError(f"{name} is a directory; not replacing it")
                os.rename(tmp, leaf, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            if tmp != leaf:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dir_fd)
            raise
        if durable:
            fsync_dir(dir_fd)
        if written is not None:
            written.add(key)
        return os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)


_PIPELINE_MIN = 8 * 1024 * 1024  # past this many bytes, the rest is written on a second thread
_BATCH = 1024 * 1024  # bytes handed to the writer thread at a time
_DEPTH = 3  # batches in flight at most


def write_chunks(fd: int, chunks: Iterable[bytes]) -> None:
    """Write every chunk to `fd`, in order.

    The first _PIPELINE_MIN bytes are written as they come (small files: no thread). Past
    that, chunks are gathered into batches of about _BATCH bytes that a second thread writes
    with one `writev` each, while this thread produces (decrypts) the next batch: the write
    system call releases the GIL. If `chunks` raises, the batches already handed over are
    written and the error goes on; a write error is raised here.
    """
    it = iter(chunks)
    written = 0
    for chunk in it:
        _write_all(fd, [chunk])
        written += len(chunk)
        if written >= _PIPELINE_MIN:
            break
    else:
        return
    writer = _Writer(fd)
    try:
        batch: list[bytes] = []
        size = 0
        for chunk in it:
            batch.append(chunk)
            size += len(chunk)
            if size >= _BATCH:
                writer.submit(batch)
                batch, size = [], 0
        if batch:
            writer.submit(batch)
    except BaseException:
        writer.close(raise_error=False)
        raise
    writer.close()


def _write_all(fd: int, chunks: list[bytes]) -> None:
    """`writev` until every byte is written (a regular file may take fewer bytes per call)."""
    views = [memoryview(c) for c in chunks if len(c)]
    while views:
        n = os.writev(fd, views)
        if n <= 0:
            raise OSError(errno.EIO, "write made no progress")
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]


class _Writer:
    """The second thread of write_chunks: writes submitted batches in order; at most _DEPTH
    wait. After the first write error it writes nothing more and keeps the error for the
    caller's thread."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(_DEPTH)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="locker-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is None:
                try:
                    _write_all(self._fd, batch)
                except OSError as exc:  # handed to the caller's thread
                    self._error = exc

    def submit(self, batch: list[bytes]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def close(self, raise_error: bool = True) -> None:
        """Wait until every batch is written (or skipped after an error)."""
        self._queue.put(None)
        self._thread.join()
        if raise_error and self._error is not None:
            raise self._error


def caseless(name: str) -> str:
    """Canonical caseless form (Unicode 3.13 D145): equal for names that a case-insensitive,
    normalising file system (FAT, exFAT, APFS, SMB shares) stores as one file."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def _temp_name() -> str:
    return f".locker-{os.urandom(8).hex()}.tmp"  # fits any name limit, whatever the leaf


def write_anonymous(
    dir_fd: int, leaf: str, chunks: Iterable[bytes], name: str, durable: bool
) -> os.stat_result | None:
    """Write `chunks` to an unnamed 0600 file in `dir_fd` (O_TMPFILE) and link it as `leaf`
    once all of it is written (fsynced first if `durable`); returns its stat.

    A `leaf` that exists is never replaced: ExistsError, naming the file `name`. If the
    iterator raises, nothing gets a name. None, with nothing read from `chunks`, where the
    file system or the system has no O_TMPFILE (or no /proc): write the file another way.
    """
    fd = _open_anonymous(dir_fd)
    if fd is None:
        return None
    try:
        write_chunks(fd, chunks)
        if durable:
            os.fsync(fd)
        try:
            os.link(f"{_PROC_FD}/{fd}", leaf, dst_dir_fd=dir_fd, follow_symlinks=True)
        except FileExistsError:
            raise ExistsError(f"{name} already exists", hint="pass --force to replace it") from None
        return os.fstat(fd)
    finally:
        os.close(fd)


def _write_named(dir_fd: int, tmp: str, chunks: Iterable[bytes], durable: bool) -> None:
    """Write `chunks` to the new 0600 file `tmp` in `dir_fd` (the caller renames or removes it)."""
    fd = os.open(
        tmp,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
        dir_fd=dir_fd,
    )
    try:
        write_chunks(fd, chunks)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


_PROC_FD = "/proc/self/fd"


def _open_anonymous(dir_fd: int) -> int | None:
    """An unnamed 0600 file in the directory, or None where O_TMPFILE or /proc is missing."""
    if not _has_anonymous():
        return None
    try:
        return os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise


@functools.cache
def _has_anonymous() -> bool:
    """Whether this system has O_TMPFILE and /proc/self/fd to link such a file by (asked once)."""
    return bool(getattr(os, "O_TMPFILE", 0)) and os.path.isdir(_PROC_FD)


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
