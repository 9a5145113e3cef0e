"""Materialising a mount: many new files under one fresh directory, a few system calls each.

`safefs.write_file` walks every parent directory from the root, checks for an existing name
twice and writes through a buffered file object: about twenty system calls per file. Here each
parent directory is opened (and made, 0700) once for the whole tree, and each file is an
unnamed O_TMPFILE file (`safefs.write_anonymous`), linked under its name when complete and
fstat'ed: six calls for a small file. The promises are write_file's: nothing is followed
through a symlink, a name that exists is refused (the link fails), and nothing appears under a
name unless all of it was written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from locker.store import safefs


class TreeWriter:
    """Many new files under one directory (a mount being materialised), at a few system calls
    each: every parent directory is walked (and made, 0700) once, and each file is an unnamed
    O_TMPFILE file (`safefs.write_anonymous`) linked under its name when complete. Nothing is
    fsynced (for RAM-backed directories, whose files must never reach a disk anyway); a name
    that exists already is refused, never replaced. Where O_TMPFILE or /proc is missing, each
    file goes through `write_file` instead."""

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
        chunk, and nothing does if the iterator raises. Returns the file's stat."""
        parent, _, leaf = name.rpartition("/")
        dir_fd = self._dir(parent) if parent else self._root_fd
        st = safefs.write_anonymous(dir_fd, leaf, chunks, name, False) if self._anonymous else None
        if st is None:
            self._anonymous = False
            return safefs.write_file(self._root_fd, name, chunks, durable=False)
        return st

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
