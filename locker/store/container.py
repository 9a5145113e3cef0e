"""Seal and open one container file: verify the header with the unlocked master key, stream
entries, and save atomically (temp file, fsync, rename, fsync directory) under a one-writer
lock. Slots and the master key are `keys`'; where new ciphertext comes from is `sources`'.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from locker.errors import (
    BusyError,
    FormatError,
    IntegrityError,
    LockerError,
    NotFoundError,
)
from locker.store import crypto
from locker.store.format import (
    MAX_HEADER_SIZE,
    Header,
    Slot,
    parse_header,
)
from locker.store.index import Entry, Index, decode_index, encode_for_writing, sealed_length
from locker.store.keys import Unlocked
from locker.store.lockfile import stem_beside
from locker.store.safefs import NO_DIR_FSYNC
from locker.store.sources import COPY_BLOCK, CopyCiphertext, Source, read_ahead

Random = Callable[[int], bytes]
_READ_CHUNKS = 16  # 1 MiB of ciphertext per read


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
    identity: FileIdentity

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
            check_no_holes(fd, st.st_size)
            head = f.read(MAX_HEADER_SIZE)
            header = parse_header(head)
            if header.size + header.index_length > st.st_size:
                raise FormatError("container is truncated (shorter than its header and index)")
            return cls(path, header, head[: header.size], st.st_size, f, FileIdentity.of(st))
        except BaseException:
            f.close()
            raise

    @property
    def data_start(self) -> int:
        # len(header_bytes) is header.size, without re-encoding the header on every call.
        return len(self.header_bytes) + self.header.index_length

    def close(self) -> None:
        self.file.close()


def check_no_holes(fd: int, size: int) -> None:
    """Refuse a sparse file: locker writes every byte of a container, so a hole (a file that
    claims 2^62 bytes on a few blocks) was made by someone else, and a save would copy it.
    Leaves the file position at 0. File systems without SEEK_HOLE report none."""
    try:
        hole = os.lseek(fd, 0, os.SEEK_HOLE)
    except OSError:
        hole = size
    os.lseek(fd, 0, os.SEEK_SET)
    if hole < size:
        raise FormatError(
            f"container has a hole at byte {hole} of {size} (a sparse file); "
            "locker never writes one"
        )


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
        size = crypto.SEALED_CHUNK_SIZE
        # _READ_CHUNKS sealed chunks per read, into one buffer reused for the whole entry
        buf = memoryview(bytearray(min(_READ_CHUNKS * size, remaining)))
        if remaining > len(buf):
            read_ahead(fd, pos, remaining)
        while True:
            n = min(len(buf), remaining)
            got = os.preadv(fd, [buf[:n]], pos) if n else 0
            if got != n:
                raise FormatError(f"{entry_label(entry)} is truncated")
            pos += n
            remaining -= n
            for start in range(0, n, size) if n else (0,):
                end = min(start + size, n)
                yield opener.open(buf[start:end], last=remaining == 0 and end == n)
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
    expect: FileIdentity | None = None,
) -> None:
    """Write a whole container beside `path` and atomically rename it over `path`.

    `planned` holds one item per entry of `index.entries` (same objects); offsets and lengths
    are assigned here, in name order. Every limit a reader enforces is checked before the
    temp file is made, and the temp file is read back (header, MAC, index) before the rename,
    so a save never replaces a vault with a file no reader opens. `expect` is the identity of
    the file the caller opened: if `path` is another file by now (a second writer the lock
    did not see, as on a network file system), nothing is replaced.
    """
    plan = sorted(planned, key=lambda p: p.entry.name)
    offset = 0
    for p in plan:
        p.entry.offset = offset
        p.entry.length = sealed_length(p.entry.size)
        offset += p.entry.length
    index.entries = [p.entry for p in plan]
    index_plain = encode_for_writing(index, offset)
    index_nonce = rng(crypto.NONCE_SIZE)
    index_ct = crypto.seal(
        crypto.index_key(master, container_id), index_nonce, index_plain, container_id
    )
    header = Header(container_id, tuple(slots), index_nonce, len(index_ct))
    body = header.without_mac()
    mac = crypto.header_mac(crypto.header_mac_key(master, container_id), body)
    try:
        parse_header(body + mac)
    except FormatError as exc:
        raise LockerError(f"refusing to save a vault no reader would open: {exc}") from None

    def key_for(entry: Entry) -> bytes:
        return crypto.entry_key(master, container_id, entry.entry_id, entry.content_salt)

    # Every step goes through one descriptor of the vault's directory, opened once: if the
    # drive is unmounted (even lazily) or the directory is swapped during the save, no file
    # lands in whatever directory the path names by then, and the rename and its fsync reach
    # the directory the vault was read from (or fail there, on a pulled drive).
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _save_error(path, exc) from None
    try:
        if expect is not None:
            _check_identity(dir_fd, path, expect)  # before anything is written
        tmp = temp_path(path, rng(6).hex()).name
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=dir_fd,
            )
        except OSError as exc:
            raise _save_error(path, exc) from None
        try:
            with os.fdopen(fd, "wb", buffering=COPY_BLOCK) as out:
                out.write(body + mac)
                out.write(index_ct)
                for source, run in _runs(plan):
                    start, entry = out.tell(), run[0].entry
                    aad = entry_aad(container_id, entry.entry_id)
                    source.write_to(out, key_for, aad, entry)
                    if out.tell() - start != sum(p.entry.length for p in run):
                        names = ", ".join(repr(p.entry.name) for p in run)
                        raise LockerError(f"internal error: entry {names} has the wrong length")
                out.flush()
                os.fsync(out.fileno())
            verify_written(dir_fd, tmp, master, container_id, path)
            if expect is not None:
                _check_identity(dir_fd, path, expect)
            os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise _save_error(path, exc) from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        try:
            os.fsync(dir_fd)
        except OSError as exc:
            if exc.errno in NO_DIR_FSYNC:
                return
            raise LockerError(
                f"saved {path}, but syncing its directory {path.parent} failed: {exc.strerror}",
                hint="the new file may not survive a power loss; check the disk",
            ) from None
    finally:
        os.close(dir_fd)


def _check_identity(dir_fd: int, path: Path, expect: FileIdentity) -> None:
    """Refuse to replace anything but the vault file the caller opened, in its directory."""
    now = FileIdentity.at(dir_fd, path.name)
    if now is None:
        raise LockerError(
            f"cannot save {path}: the vault file is no longer there (was its drive removed or "
            "unmounted?); nothing was saved",
            hint="put the drive back, then run 'locker recover' if a mount was interrupted",
        )
    if now != expect:
        raise BusyError(
            f"{path} was changed by another writer while this save was made; nothing was saved",
            hint="locking needs a local file system; run the command again",
        )


def _runs(plan: Sequence[Planned]) -> list[tuple[Source, list[Planned]]]:
    """The plan as writes: unchanged entries that lie back to back in the old file become one
    copy (a save after a small change copies the rest of the vault in a few calls)."""
    runs: list[tuple[Source, list[Planned]]] = []
    for p in plan:
        if runs and isinstance(p.source, CopyCiphertext):
            last, entries = runs[-1]
            if isinstance(last, CopyCiphertext) and last.followed_by(p.source):
                runs[-1] = (
                    CopyCiphertext(last.file, last.offset, last.length + p.source.length),
                    [*entries, p],
                )
                continue
        runs.append((p.source, [p]))
    return runs


def _save_error(path: Path, exc: OSError) -> LockerError:
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return LockerError(f"cannot save {path}{where}: {exc.strerror or exc}; the vault is unchanged")


def verify_written(
    dir_fd: int, tmp: str, master: bytes | bytearray, container_id: bytes, path: Path
) -> None:
    """Read the just-written container `tmp` (in `dir_fd`) back as a reader would, through a
    new descriptor (some FUSE file systems return stale data through the writing one): header,
    MAC, index, size."""
    fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        _verify_fd(fd, master, container_id, path)
    finally:
        os.close(fd)


def _verify_fd(fd: int, master: bytes | bytearray, container_id: bytes, path: Path) -> None:
    sealed_head = os.pread(fd, MAX_HEADER_SIZE, 0)
    try:
        header = parse_header(sealed_head)
        crypto.verify_header_mac(
            crypto.header_mac_key(master, container_id), sealed_head[: header.size - 32], header.mac
        )
        ct = os.pread(fd, header.index_length, header.size)
        key = crypto.index_key(master, container_id)
        plain = crypto.open_sealed(key, header.index_nonce, ct, container_id, "index")
        data_start = header.size + header.index_length
        decode_index(plain, os.fstat(fd).st_size - data_start)
    except IntegrityError as exc:
        raise LockerError(
            f"cannot save {path}: the new copy did not read back ({exc}); the vault is unchanged",
            hint="check the disk",
        ) from None


@dataclass(frozen=True)
class FileIdentity:
    """What tells one version of the vault file from the next: device, inode, size, mtime."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @classmethod
    def at(cls, dir_fd: int, name: str) -> FileIdentity | None:
        try:
            return cls.of(os.stat(name, dir_fd=dir_fd, follow_symlinks=False))
        except FileNotFoundError:
            return None


_TEMP_HEX = 12


def _temp_prefix(path: Path) -> str:
    return f".{stem_beside(path, len('..tmp-') + _TEMP_HEX)}.tmp-"


def temp_path(path: Path, token: str) -> Path:
    """The temp file a save of `path` writes: `.<name>.tmp-<12 hex digits>` (a name too
    long for that is shortened, lockfile.stem_beside)."""
    return path.with_name(_temp_prefix(path) + token)


def is_temp_of(path: Path, name: str) -> bool:
    """Whether `name` is exactly one of `path`'s temp files (not those of `path.tmp-x`)."""
    prefix = _temp_prefix(path)  # not a glob: vault names may hold [ ] * ?
    token = name[len(prefix) :]
    return (
        name.startswith(prefix)
        and len(token) == _TEMP_HEX
        and all(c in "0123456789abcdef" for c in token)
    )


def remove_stale_temps(path: Path) -> None:
    """Delete temp files a killed writer left behind. Call only while holding the writer lock."""
    for name in os.listdir(path.parent):
        if is_temp_of(path, name):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)
