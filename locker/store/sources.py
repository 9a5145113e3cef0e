"""Where a saved entry's ciphertext comes from, and how it reaches the new file: copied as
ciphertext when unchanged (blocks shared with the old file where the file system can), sealed
from a file, from bytes, or re-encrypted under a new key; large entries are written on a
second thread so sealing and writing overlap.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import queue
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from locker.errors import FormatError, LockerError
from locker.store import crypto
from locker.store.index import Entry

COPY_BLOCK = 1024 * 1024
_SEAL_BLOCK_CHUNKS = 16  # 1 MiB of plaintext per read
_PIPELINE_MIN = 8 * 1024 * 1024  # entries this large are written on a second thread


class Source(Protocol):
    """Where a saved entry's ciphertext comes from."""

    def write_to(
        self, out: BinaryIO, key_for: Callable[[Entry], bytes], aad: bytes, entry: Entry
    ) -> None: ...


class CopyCiphertext:
    """An unchanged entry (or several back to back): its ciphertext is copied byte for byte,
    never decrypted."""

    __slots__ = ("file", "length", "offset")

    def __init__(self, file: BinaryIO, offset: int, length: int) -> None:
        self.file = file
        self.offset = offset
        self.length = length

    def followed_by(self, other: CopyCiphertext) -> bool:
        """Whether `other` starts in the same file where this one ends."""
        return other.file is self.file and other.offset == self.offset + self.length

    def write_to(
        self, out: BinaryIO, key_for: Callable[[Entry], bytes], aad: bytes, entry: Entry
    ) -> None:
        """Where the old and the new file can share blocks (the same offset within a block on
        btrfs or XFS), `copy_file_range` makes the copy a reflink; everywhere else the bytes
        go through memory, which measured faster than the kernel's own copy on XFS and ext4
        (docs/PERFORMANCE.md). A container that ends early fails the same way on both paths."""
        out.flush()
        dst = out.tell()
        done = 0
        if (self.offset - dst) % SHARE_BLOCK == 0:
            done = _copy_range(self.file.fileno(), self.offset, out.fileno(), dst, self.length)
            out.seek(dst + done)
        remaining, pos = self.length - done, self.offset + done
        while remaining:
            block = os.pread(self.file.fileno(), min(COPY_BLOCK, remaining), pos)
            if not block:
                raise FormatError("container ended while copying an entry")
            out.write(block)
            pos += len(block)
            remaining -= len(block)


SHARE_BLOCK = 4096  # the block size in which btrfs and XFS share data between files
_COPY_RANGE_MAX = 64 * 1024 * 1024  # per call: a signal is handled between calls
# copy_file_range cannot join these two files (other file systems, no support): copy by hand
_NO_COPY_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})


def _copy_range(src: int, src_pos: int, dst: int, dst_pos: int, length: int) -> int:
    """Copy up to `length` bytes in the kernel; how many it copied (0 where it will not)."""
    done = 0
    while done < length and hasattr(os, "copy_file_range"):
        want = min(_COPY_RANGE_MAX, length - done)
        try:
            n = os.copy_file_range(src, dst, want, src_pos + done, dst_pos + done)
        except OSError as exc:
            if exc.errno not in _NO_COPY_RANGE:
                raise
            return done
        if n == 0:  # refused, or the end of the old file: the caller's copy tells which
            return done
        done += n
    return done


class PlainFile:
    """New content read from a file of a known size; a file that changes size mid-read fails."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    def write_to(
        self, out: BinaryIO, key_for: Callable[[Entry], bytes], aad: bytes, entry: Entry
    ) -> None:
        flags = (
            os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        )  # a FIFO must not hang us
        try:
            fd = os.open(self.path, flags)
        except OSError as exc:
            raise LockerError(f"cannot read {self.path}: {exc.strerror}") from None
        with io.FileIO(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LockerError(f"{self.path} is no longer a regular file; nothing was saved")
            os.set_blocking(fd, True)
            read_ahead(fd, 0, self.size)
            seal_stream(f, self.size, out, key_for(entry), aad, str(self.path))


def read_ahead(fd: int, offset: int, length: int) -> None:
    """Tell the kernel this range will be read once, front to back: it reads further ahead
    from a disk (a hint only: nothing changes where it is not supported)."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_SEQUENTIAL)


class Plaintext:
    """New content already in memory (small values, tests, generated keys)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def write_to(
        self, out: BinaryIO, key_for: Callable[[Entry], bytes], aad: bytes, entry: Entry
    ) -> None:
        sealer = crypto.StreamSealer(key_for(entry), aad)
        view = memoryview(self.data)
        chunks = [
            view[i : i + crypto.CHUNK_SIZE] for i in range(0, len(view), crypto.CHUNK_SIZE)
        ] or [view]
        for i, chunk in enumerate(chunks):
            out.write(sealer.seal(chunk, last=i == len(chunks) - 1))


def seal_stream(
    f: io.RawIOBase, size: int, out: BinaryIO, key: bytes, aad: bytes, what: str
) -> None:
    """Encrypt exactly `size` bytes from `f`, refusing a file that grew or shrank meanwhile.

    Reads and seals _SEAL_BLOCK_CHUNKS chunks at a time into reused buffers: the same STREAM
    chunks as sealing one by one, with far fewer system calls and allocations. Past
    _PIPELINE_MIN bytes a second thread writes each sealed block while the next is read and
    sealed; the bytes written, and their order, are the same.
    """
    sealer = crypto.StreamSealer(key, aad)
    plain = memoryview(bytearray(_SEAL_BLOCK_CHUNKS * crypto.CHUNK_SIZE))
    block = _SEAL_BLOCK_CHUNKS * crypto.SEALED_CHUNK_SIZE
    writer = _BackgroundWriter(out, block) if size >= _PIPELINE_MIN else _InlineWriter(out, block)
    try:
        remaining = size
        while True:
            want = min(len(plain), remaining)
            got = 0
            while got < want:
                try:
                    n = f.readinto(plain[got:want])
                except OSError as exc:  # named: the save's error says which file failed
                    raise OSError(exc.errno, exc.strerror, what) from None
                if not n:
                    raise LockerError(f"{what} shrank while it was being read; nothing was saved")
                got += n
            remaining -= got
            last_block = remaining == 0
            if last_block and f.read(1):
                raise LockerError(f"{what} grew while it was being read; nothing was saved")
            buf = writer.buffer()
            sealed = memoryview(buf)
            written = 0
            for start in range(0, got, crypto.CHUNK_SIZE) if got else (0,):
                end = min(start + crypto.CHUNK_SIZE, got)
                last = last_block and end == got
                room = sealed[written : written + end - start + crypto.TAG_SIZE]
                written += sealer.seal_into(plain[start:end], last, room)
            writer.submit(buf, written)
            if last_block:
                break
    except BaseException:
        writer.abort()
        raise
    writer.close()


class _InlineWriter:
    """Writes each sealed block at once, from one reused buffer (small entries)."""

    def __init__(self, out: BinaryIO, block_size: int) -> None:
        self._out = out
        self._buf = bytearray(block_size)

    def buffer(self) -> bytearray:
        return self._buf

    def submit(self, buf: bytearray, n: int) -> None:
        self._out.write(memoryview(buf)[:n])

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _BackgroundWriter:
    """Writes sealed blocks to `out`, in order, on a second thread.

    The write system call (tmpfs page allocation and copying, with the GIL released) then
    overlaps the reading and sealing of the next block on the other core. At most `depth`
    blocks are in flight. Until close() or abort() returns, only this thread touches `out`;
    a write error is raised again in the caller by buffer() or close().
    """

    def __init__(self, out: BinaryIO, block_size: int, depth: int = 3) -> None:
        self._out = out
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(depth):
            self._free.put(bytearray(block_size))
        self._full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="locker-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            buf, n = item
            if self._error is None:
                try:
                    self._out.write(memoryview(buf)[:n])
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc
            self._free.put(buf)

    def buffer(self) -> bytearray:
        buf = self._free.get()
        if self._error is not None:
            raise self._error
        return buf

    def submit(self, buf: bytearray, n: int) -> None:
        self._full.put((buf, n))

    def close(self) -> None:
        """Wait until every block is written; raise the write error if there was one."""
        self._full.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop after the blocks already handed over; never raises (the caller is)."""
        self._full.put(None)
        self._thread.join()
