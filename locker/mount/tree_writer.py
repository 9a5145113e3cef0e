"""Materialising a mount: many new files under one fresh directory, a few system calls each.

`safefs.write_file` walks every parent directory from the root, checks for an existing name
twice and writes through a buffered file object: about twenty system calls per file. Here each
parent directory is opened (and made, 0700) once for the whole tree. A file of one chunk (up to
64 KiB: nearly every secret) is decrypted and verified whole before its name is made, then
created exclusively and written with one `os.write` and fstat'ed: four calls. A larger one is
an unnamed O_TMPFILE file (`safefs.write_anonymous`) linked under its name when complete.
The promises are write_file's: nothing is followed through a symlink, a name that exists is
refused, and nothing appears under a name unless all of it was verified; a small file can be seen empty only for the
instant of its one write, in a directory nobody has been shown yet (a kill then leaves the
journal saying "materialising", and `locker recover` wipes the whole directory).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable

from locker.errors import ExistsError
from locker.store import safefs


class TreeWriter:
    """Many new files under one directory (a mount being materialised), at a few system calls
    each: every parent directory is walked (and made, 0700) once; a small file is created and
    written whole, a larger one is an unnamed O_TMPFILE file linked under its name when
    complete. Nothing is fsynced (for RAM-backed directories, whose files must never reach a
    disk anyway); a name that exists already is refused, never replaced. Where O_TMPFILE or
    /proc is missing, each larger file goes through `write_file` instead."""

    def __init__(self, root_fd: int) -> None:
        self._root_fd = root_fd
        self._dirs: dict[str, int] = {}
        self._anonymous = True

    def __enter__(self) -> TreeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        dirs, self._dirs = self._dirs, {}
        for fd in dirs.values():
            os.close(fd)

    def write(self, name: str, chunks: Iterable[bytes]) -> os.stat_result:
        """Write `chunks` to root/name (0600); it appears under `name` only after the last
        chunk, and nothing does if the iterator raises. Returns the file's stat.

        A file of one chunk (64 KiB at most: most secrets) is whole in memory before its name
        is made, and is written with one `write` straight under its name: four system calls,
        not O_TMPFILE's and the link's six (the link's path goes through /proc). If that write
        fails, the name is removed again."""
        parent, _, leaf = name.rpartition("/")
        dir_fd = self._dir(parent) if parent else self._root_fd
        pending = iter(chunks)
        first = next(pending, b"")
        rest = next(pending, None)
        if rest is None:
            return self._write_whole(dir_fd, leaf, name, first)
        whole = itertools.chain((first, rest), pending)
        st = safefs.write_anonymous(dir_fd, leaf, whole, name, False) if self._anonymous else None
        if st is None:
            self._anonymous = False
            return safefs.write_file(self._root_fd, name, whole, durable=False)
        return st

    def _write_whole(self, dir_fd: int, leaf: str, name: str, data: bytes) -> os.stat_result:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(leaf, flags, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            raise ExistsError(f"{name} already exists", hint="pass --force to replace it") from None
        try:
            _write_all(fd, data)
            return os.fstat(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(leaf, dir_fd=dir_fd)
            raise
        finally:
            os.close(fd)

    def _dir(self, path: str) -> int:
        """A descriptor of root/path, opened without following symlinks, made if missing."""
        fd = self._dirs.get(path)
        if fd is not None:
            return fd
        parent, _, leaf = path.rpartition("/")
        parent_fd = self._dir(parent) if parent else self._root_fd
        fd = safefs.open_subdir(parent_fd, leaf, create=True)
        self._dirs[path] = fd
        return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
