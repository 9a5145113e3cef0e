"""Seal and open one container file: unlock a key slot, verify the header, stream entries,
and save atomically (temp file, fsync, rename, fsync directory) under a one-writer lock.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import queue
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from locker.errors import (
    AuthenticationError,
    BadKeyError,
    FormatError,
    LockerError,
    NotFoundError,
)
from locker.store import crypto
from locker.store.format import (
    MAX_HEADER_SIZE,
    SLOT_PASSPHRASE,
    Header,
    KdfCost,
    Slot,
    parse_header,
)
from locker.store.index import Entry, Index, decode_index, encode_index, sealed_length

Random = Callable[[int], bytes]
_COPY_BLOCK = 1024 * 1024
_SEAL_BLOCK_CHUNKS = 16  # 1 MiB of plaintext per read
_PIPELINE_MIN = 8 * 1024 * 1024  # entries this large are written on a second thread


def entry_aad(container_id: bytes, entry_id: bytes) -> bytes:
    return container_id + entry_id


def entry_label(entry: Entry) -> str:
    return f"entry {entry.name!r}"


@dataclass
class Sealed:
    """A container file as found on disk, before any key is known: enough for `info`."""

    path: Path
    header: Header
    header_bytes: bytes
    file_size: int
    file: BinaryIO

    @classmethod
    def read(cls, path: Path) -> Sealed:
        try:
            # O_NONBLOCK: a FIFO planted at the path must not hang us; regular files ignore it.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            raise NotFoundError(
                f"no vault at {path}", hint="create one with 'locker init' or pass --vault PATH"
            ) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LockerError(f"{path} is a symbolic link; refusing to follow it") from None
            raise LockerError(f"cannot open {path}: {exc.strerror}") from None
        f = os.fdopen(fd, "rb")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise LockerError(f"{path} is not a regular file")
            head = f.read(MAX_HEADER_SIZE)
            header = parse_header(head)
            if header.size + header.index_length > st.st_size:
                raise FormatError("container is truncated (shorter than its header and index)")
            return cls(path, header, head[: header.size], st.st_size, f)
        except BaseException:
            f.close()
            raise

    @property
    def data_start(self) -> int:
        # len(header_bytes) is header.size, without re-encoding the header on every call.
        return len(self.header_bytes) + self.header.index_length

    def close(self) -> None:
        self.file.close()


def unwrap_master(header: Header, slot: Slot, kek: bytes) -> bytearray:
    key = crypto.open_sealed(
        kek, slot.nonce, slot.wrapped_key, slot.binding(header.container_id), "key slot"
    )
    return bytearray(key)


def wrap_master(container_id: bytes, slot: Slot, kek: bytes, master: bytes | bytearray) -> Slot:
    """Return `slot` with the master key wrapped under `kek` (a fresh nonce must be in `slot`)."""
    wrapped = crypto.seal(kek, slot.nonce, bytes(master), slot.binding(container_id))
    return Slot(slot.kind, slot.slot_id, slot.salt, slot.nonce, wrapped, slot.kdf)


def passphrase_kek(passphrase: bytes | bytearray, slot: Slot) -> bytes:
    if slot.kdf is None:
        raise FormatError("passphrase slot without Argon2 parameters")
    params = crypto.KdfParams(slot.kdf.memory_kib, slot.kdf.time_cost, slot.kdf.parallelism)
    return crypto.argon2id(passphrase, slot.salt, params)


@dataclass
class Unlocked:
    """The key material from one successful unlock: the master key and the slot that gave it."""

    master: bytearray
    slot: Slot
    kek: bytes

    def forget(self) -> None:
        for i in range(len(self.master)):
            self.master[i] = 0


def unlock_with_passphrase(header: Header, passphrase: bytes | bytearray) -> Unlocked:
    slots = [s for s in header.slots if s.kind == SLOT_PASSPHRASE]
    if not slots:
        raise BadKeyError(
            "this vault has no passphrase slot", hint="unlock it with its key file or recovery key"
        )
    for slot in slots:
        kek = passphrase_kek(passphrase, slot)
        try:
            return Unlocked(unwrap_master(header, slot, kek), slot, kek)
        except AuthenticationError:
            continue
    raise BadKeyError(
        "wrong passphrase", hint="check the passphrase (and --passphrase-file) and try again"
    )


class Source(Protocol):
    """Where a saved entry's ciphertext comes from."""

    def write_to(
        self, out: BinaryIO, key_for: Callable[[Entry], bytes], aad: bytes, entry: Entry
    ) -> None: ...


@dataclass
class CopyCiphertext:
    """An unchanged entry: its ciphertext is copied byte for byte, never decrypted."""

    file: BinaryIO
    offset: int
    length: int

    def write_to(
        self, out: BinaryIO, key_for: Callable[[Entry], bytes], aad: bytes, entry: Entry
    ) -> None:
        remaining, pos = self.length, self.offset
        while remaining:
            block = os.pread(self.file.fileno(), min(_COPY_BLOCK, remaining), pos)
            if not block:
                raise FormatError("container ended while copying an entry")
            out.write(block)
            pos += len(block)
            remaining -= len(block)


@dataclass
class PlainFile:
    """New content read from a file of a known size; a file that changes size mid-read fails."""

    path: Path
    size: int

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
            seal_stream(f, self.size, out, key_for(entry), aad, str(self.path))


@dataclass
class Plaintext:
    """New content already in memory (small values, tests, generated keys)."""

    data: bytes

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


@dataclass
class Reencrypt:
    """Existing content under a new key (rekey): decrypted and verified chunk by chunk."""

    container: Container
    entry: Entry

    def write_to(
        self, out: BinaryIO, key_for: Callable[[Entry], bytes], aad: bytes, entry: Entry
    ) -> None:
        sealer = crypto.StreamSealer(key_for(entry), aad)
        chunks = self.container.chunks(self.entry)
        prev = next(chunks)
        for chunk in chunks:
            out.write(sealer.seal(prev, last=False))
            prev = chunk
        out.write(sealer.seal(prev, last=True))


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
                n = f.readinto(plain[got:want])
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


@dataclass
class Planned:
    """One entry of the container about to be written, and where its ciphertext comes from."""

    entry: Entry
    source: Source


class Container:
    """An unlocked container: header, index and read access to every entry's ciphertext."""

    def __init__(self, sealed: Sealed, unlocked: Unlocked, index: Index) -> None:
        self.sealed = sealed
        self.unlocked = unlocked
        self.index = index

    @classmethod
    def open(cls, sealed: Sealed, unlocked: Unlocked) -> Container:
        header, master = sealed.header, unlocked.master
        crypto.verify_header_mac(
            crypto.header_mac_key(master, header.container_id),
            sealed.header_bytes[:-32],
            header.mac,
        )
        ct = os.pread(sealed.file.fileno(), header.index_length, header.size)
        if len(ct) != header.index_length:
            raise FormatError("container is truncated inside the index")
        key = crypto.index_key(master, header.container_id)
        plain = crypto.open_sealed(key, header.index_nonce, ct, header.container_id, "index")
        index = decode_index(plain, sealed.file_size - sealed.data_start)
        return cls(sealed, unlocked, index)

    @property
    def header(self) -> Header:
        return self.sealed.header

    @property
    def container_id(self) -> bytes:
        return self.sealed.header.container_id

    def entry_key(self, entry: Entry) -> bytes:
        return crypto.entry_key(
            self.unlocked.master, self.container_id, entry.entry_id, entry.content_salt
        )

    def chunks(self, entry: Entry) -> Iterator[bytes]:
        """Yield the entry's plaintext chunk by chunk, each verified before it is yielded."""
        opener = crypto.StreamOpener(
            self.entry_key(entry), entry_aad(self.container_id, entry.entry_id), entry_label(entry)
        )
        fd = self.sealed.file.fileno()
        pos = self.sealed.data_start + entry.offset
        remaining = entry.length
        while True:
            n = min(crypto.SEALED_CHUNK_SIZE, remaining)
            block = os.pread(fd, n, pos)
            if len(block) != n:
                raise FormatError(f"{entry_label(entry)} is truncated")
            pos += n
            remaining -= n
            yield opener.open(block, last=remaining == 0)
            if remaining == 0:
                return

    def copy_source(self, entry: Entry) -> CopyCiphertext:
        return CopyCiphertext(self.sealed.file, self.sealed.data_start + entry.offset, entry.length)

    def close(self) -> None:
        self.sealed.close()


def write_container(
    path: Path,
    container_id: bytes,
    slots: Sequence[Slot],
    master: bytes | bytearray,
    index: Index,
    planned: Sequence[Planned],
    rng: Random,
) -> None:
    """Write a whole container beside `path` and atomically rename it over `path`.

    `planned` holds one item per entry of `index.entries` (same objects); offsets and lengths
    are assigned here, in name order.
    """
    plan = sorted(planned, key=lambda p: p.entry.name)
    offset = 0
    for p in plan:
        p.entry.offset = offset
        p.entry.length = sealed_length(p.entry.size)
        offset += p.entry.length
    index.entries = [p.entry for p in plan]
    index_plain = encode_index(index)
    index_nonce = rng(crypto.NONCE_SIZE)
    index_ct = crypto.seal(
        crypto.index_key(master, container_id), index_nonce, index_plain, container_id
    )
    header = Header(container_id, tuple(slots), index_nonce, len(index_ct))
    body = header.without_mac()
    mac = crypto.header_mac(crypto.header_mac_key(master, container_id), body)

    def key_for(entry: Entry) -> bytes:
        return crypto.entry_key(master, container_id, entry.entry_id, entry.content_salt)

    tmp = path.with_name(f".{path.name}.tmp-{rng(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=_COPY_BLOCK) as out:
            out.write(body + mac)
            out.write(index_ct)
            for p in plan:
                start = out.tell()
                p.source.write_to(out, key_for, entry_aad(container_id, p.entry.entry_id), p.entry)
                if out.tell() - start != p.entry.length:
                    raise LockerError(
                        f"internal error: entry {p.entry.name!r} has the wrong length"
                    )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems (FAT through FUSE) refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def remove_stale_temps(path: Path) -> None:
    """Delete temp files a killed writer left behind. Call only while holding the writer lock."""
    prefix = f".{path.name}.tmp-"  # not a glob: vault names may hold [ ] * ?
    for name in os.listdir(path.parent):
        if name.startswith(prefix):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)


def new_passphrase_slot(rng: Random, cost: KdfCost) -> Slot:
    """A passphrase slot with fresh salt, id and nonce; the key is wrapped by wrap_master."""
    return Slot(SLOT_PASSPHRASE, rng(8), rng(crypto.SALT_SIZE), rng(crypto.NONCE_SIZE), b"", cost)
