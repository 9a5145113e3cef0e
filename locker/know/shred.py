"""Remove a plaintext source once the vault is known to hold exactly its content.

`shred_if_held(path, digest)` re-reads the file through one descriptor, and only if its
SHA-256 still equals `digest` (what the vault verifiably holds) overwrites it with zeros,
fsyncs and unlinks it. On SSDs, copy-on-write file systems (btrfs, ZFS), journals and
snapshots the old blocks may survive: this is best effort, and the docs say so.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from locker.text import plural

BLOCK = 1024 * 1024


def digest_of(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def shred_if_held(path: Path, digest: str) -> str | None:
    """None when the file was overwritten and removed; else why it was left in place."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        return f"cannot open it: {exc.strerror}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "it is no longer a regular file"
        if st.st_nlink != 1:  # zeroing the shared blocks would wipe the other names too
            links = plural(st.st_nlink - 1, "other hard link")
            return f"it has {links} that shredding would zero too"
        h = hashlib.sha256()
        while block := os.read(fd, BLOCK):
            h.update(block)
        if h.hexdigest() != digest:
            return "it changed since it was read; the vault holds the earlier content"
        os.lseek(fd, 0, os.SEEK_SET)
        zeros = bytes(min(BLOCK, st.st_size))
        left = st.st_size
        while left > 0:
            left -= os.write(fd, zeros[: min(left, BLOCK)])
        os.fsync(fd)
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return "it was replaced while being shredded"
        os.unlink(path)
    except OSError as exc:
        return f"cannot shred it: {exc.strerror}"
    finally:
        os.close(fd)
    return None
