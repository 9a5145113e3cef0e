"""Seal and open one container file (format 2, or 1 read): verify the header or choose the
commit record in force with the unlocked master key, stream entries, and write a whole new
file atomically (temp file, fsync, rename, fsync directory: a compaction) under a one-writer
lock. Slots and the master key are `keys`'; where new ciphertext comes from is `sources`';
the in-place append-and-switch save is `generations`'.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

from locker.errors import (
    AuthenticationError,
    BusyError,
    FormatError,
    IntegrityError,
    LockerError,
    NotFoundError,
)
from locker.store import crypto
from locker.store.format import (
    DATA_AREA_START,
    HEAD_SIZE,
    RECORD_BLOCK_SIZE,
    RECORD_NAMES,
    RECORD_OFFSETS,
    RECORD_SIZE,
    VERSION,
    VERSION_1,
    Head,
    Record,
    Slot,
    Unusable,
    parse_head,
    parse_header,
    read_records,
    read_version,
    usable_records,
)
from locker.store.index import (
    Entry,
    Index,
    IndexAt,
    Placement,
    decode_index,
    encode_for_writing,
    sealed_length,
)
from locker.store.keys import Unlocked
from locker.store.lockfile import stem_beside
from locker.store.passed_over import PassedOver, alone, others
from locker.store.safefs import NO_DIR_FSYNC
from locker.store.sources import COPY_BLOCK, CopyCiphertext, Source, read_ahead

Random = Callable[[int], bytes]
_READ_CHUNKS = 16  # 1 MiB of ciphertext per read


def entry_aad(container_id: bytes, entry_id: bytes) -> bytes:
    return container_id + entry_id


def entry_label(entry: Entry) -> str:
    return f"entry {entry.name!r}"


# The key opened a slot, so it is right; nothing in the file vouches for its entries.
_RESTORE_FROM_BACKUP = "the key is right but the file was changed: restore it from a backup"


class Sealed:
    """A container file as found on disk, before any key is known: enough for `info`.

    `header_bytes` is a v1 file's header or a v2 file's 4096-byte head; `records` the commit
    records a key may choose from, the higher generation first (a v1 header's index fields
    make its one record, generation 0); `unusable` (v2) the records neither usable nor empty;
    `raw_records` (v2) both records' 68 bytes as read."""

    def __init__(
        self,
        path: Path,
        header: Head,
        header_bytes: bytes,
        file_size: int,
        file: BinaryIO,
        identity: FileIdentity,
        version: int,
        records: list[tuple[int, Record]],
    ) -> None:
        self.path = path
        self.header = header
        self.header_bytes = header_bytes
        self.file_size = file_size
        self.file = file
        self.identity = identity
        self.version = version
        self.records = records
        self.unusable: tuple[Unusable, ...] = ()
        self.raw_records: tuple[bytes, ...] = ()

    @classmethod
    def read(cls, path: Path, holes_from: int | None = 0) -> Sealed:
        """The vault at `path`, its holes looked for from byte `holes_from` on (None: not at
        all, for a caller that checks them itself: `check_no_holes` walks every page of a
        tmpfs file, so a reader of a few bytes of head, or the reopen after an append, must
        not pay for the whole vault)."""
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
        try:
            f = os.fdopen(fd, "rb")
        except OSError:  # a directory: refused here, before `parse` could say so
            os.close(fd)
            raise LockerError(f"{path} is not a regular file") from None
        try:
            return cls.parse(path, f, holes_from)
        except BaseException:
            f.close()
            raise

    @classmethod
    def parse(cls, path: Path, f: BinaryIO, holes_from: int | None = 0) -> Sealed:
        """The file open as `f` as it is now, in the order of FORMAT.md sections 10 and 20
        (the hole check after the head, as their step 10 and 7 say)."""
        fd = f.fileno()
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LockerError(f"{path} is not a regular file")
        head = read_at(fd, DATA_AREA_START, 0)
        # The size after the head: a reader holds no lock, and a writer writes an index before
        # the record naming it, so every record read lies within the file as it is now (with
        # the size taken first, two appends in between left both records past its end).
        st = os.fstat(fd)
        identity = FileIdentity.of(st)
        if read_version(head) == VERSION_1:
            header = parse_header(head)
            if header.size + header.index_length > st.st_size:
                raise FormatError("container is truncated (shorter than its header and index)")
            if holes_from is not None:
                check_no_holes(fd, st.st_size, holes_from)
            record = Record(0, header.size, header.index_length, header.index_nonce, header.mac)
            raw = head[: header.size]
            return cls(path, header, raw, st.st_size, f, identity, VERSION_1, [(0, record)])
        if st.st_size < DATA_AREA_START:
            raise FormatError("container is truncated inside its head and commit records")
        parsed = parse_head(head)
        if holes_from is not None:
            check_no_holes(fd, st.st_size, holes_from)
        records, problems = read_records(head, st.st_size)
        sealed = cls(path, parsed, head[:HEAD_SIZE], st.st_size, f, identity, VERSION, records)
        sealed.unusable = tuple(problems)
        sealed.raw_records = tuple(head[at : at + RECORD_SIZE] for at in RECORD_OFFSETS)
        return sealed

    def reread(self) -> Sealed:
        """This file as it is now, through the same descriptor (and the same lock)."""
        return Sealed.parse(self.path, self.file)

    def mac_input(self, record: Record) -> bytes:
        """What `record`'s MAC covers: a v1 header before its MAC; a v2 head and record fields."""
        if self.version == VERSION_1:
            return self.header_bytes[:-32]
        return self.header_bytes + record.fields()

    @property
    def data_start(self) -> int:
        """Where data begins: after a v1 file's index, or at a v2 file's data area."""
        if self.version == VERSION_1:
            return len(self.header_bytes) + self.records[0][1].index_length
        return DATA_AREA_START

    @property
    def offset_base(self) -> int:
        """What an entry's `offset` counts from: a v1 data section's start, or 0 (absolute)."""
        return self.data_start if self.version == VERSION_1 else 0

    def close(self) -> None:
        self.file.close()


def read_at(fd: int, n: int, offset: int) -> bytes:
    """Up to `n` bytes at `offset`, fewer only at the end of the file: a FUSE file system
    (fusefat) may return less than asked from one read."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        part = os.pread(fd, n - got, offset + got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def check_no_holes(fd: int, size: int, start: int) -> None:
    """Refuse a sparse file: locker writes every byte of a container, so a hole (a file that
    claims 2^62 bytes on a few blocks) was made by someone else, and a save would copy it.
    Looks from byte `start` on. Leaves the file position at 0. File systems without
    SEEK_HOLE report none."""
    try:
        hole = os.lseek(fd, start, os.SEEK_HOLE)
    except OSError:
        hole = size
    os.lseek(fd, 0, os.SEEK_SET)
    if hole < size:
        raise FormatError(
            f"container has a hole at byte {hole} of {size} (a sparse file); "
            "locker never writes one"
        )


class Reencrypt:
    """Existing content under a new key (rekey): decrypted and verified chunk by chunk."""

    def __init__(self, container: Container, entry: Entry) -> None:
        self.container = container
        self.entry = entry

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


class Planned(NamedTuple):
    """One entry of the container about to be written, and where its ciphertext comes from."""

    entry: Entry
    source: Source


class Container:
    """An unlocked container: header, index and read access to every entry's ciphertext.

    `record` is the commit record in force and `position` where it lies (0 for record A, and
    for a v1 header); `passed_over` names the other record when it is not empty and was not
    taken (a save killed while writing its record, or a damaged record: it may hold a save
    newer than the one in force, FORMAT.md section 20). `unverified`: no record verified, and
    `record` is the one whose index authenticates, opened only for `recover --generation`."""

    def __init__(
        self,
        sealed: Sealed,
        unlocked: Unlocked,
        index: Index,
        record: Record,
        position: int,
        passed_over: tuple[PassedOver, ...] = (),
        unverified: bool = False,
    ) -> None:
        self.sealed = sealed
        self.unlocked = unlocked
        self.index = index
        self.record = record
        self.position = position
        self.passed_over = passed_over
        self.unverified = unverified

    @classmethod
    def open(cls, sealed: Sealed, unlocked: Unlocked, unverified: bool = False) -> Container:
        """Steps 10 to 14 of FORMAT.md section 20: the records' MACs (a tie is refused only
        when both verify), then the index of the highest verifying generation whose index
        opens; a lower one is taken only when the higher one's index fails. When none
        verifies but a record's index authenticates, that record is opened only if
        `unverified` (an explicit restore), else AuthenticationError names the restore."""
        header, master = sealed.header, unlocked.master
        mac_key = crypto.header_mac_key(master, header.container_id)
        verified: list[tuple[int, Record]] = []
        failed: list[tuple[int, Record]] = []
        for position, record in sealed.records:
            if crypto.header_mac_matches(mac_key, sealed.mac_input(record), record.mac):
                verified.append((position, record))
            else:
                failed.append((position, record))
        if not verified:
            found = alone(sealed, failed, lambda r: _index_opens(sealed, master, r))
            if found is not None and found.record is not None and unverified:
                index = open_index(sealed, master, found.record)
                return cls(sealed, unlocked, index, found.record, found.position, (found,), True)
            raise AuthenticationError(
                "container header failed authentication: it was changed or is corrupt"
                + ("" if sealed.version == VERSION_1 else " (no commit record verified)"),
                hint=_RESTORE_FROM_BACKUP
                if found is None
                else f"commit record {found.name}'s index authenticates with this key: copy the "
                f"vault file first; 'locker recover --generation {found.generation}' restores "
                f"the save it names (its index is authentic; its damaged record is not)",
            )
        if len(verified) == 2 and verified[0][1].generation == verified[1][1].generation:
            raise FormatError(
                f"both commit records hold generation {verified[0][1].generation} and both "
                "verify; no writer makes that"
            )
        passed: list[PassedOver] = []
        first_error: IntegrityError | None = None
        for position, record in verified:
            try:
                index = open_index(sealed, master, record)
            except IntegrityError as exc:
                first_error = first_error or exc
                problem = f"verified, but its index did not open ({exc})"
                passed.append(PassedOver(position, record.generation, problem))
                continue
            break
        else:
            raise first_error or AuthenticationError("no commit record verified")
        passed += others(
            sealed, record, position, failed, lambda r: _index_opens(sealed, master, r)
        )
        return cls(sealed, unlocked, index, record, position, tuple(passed))

    def restored(self, position: int) -> Container:
        """The generation after the one in force, which the passed-over record at `position`
        names, opened without its MAC: only for an explicit recovery, and only when it is
        `restorable`."""
        found = [p.record for p in self.passed_over if p.position == position and p.restorable]
        record = found[0] if found else None
        if record is None:
            raise LockerError(
                f"commit record {RECORD_NAMES[position]} names no index that authenticates"
            )
        index = open_index(self.sealed, self.unlocked.master, record)
        record = record._replace(generation=self.record.generation + 1)
        return Container(self.sealed, self.unlocked, index, record, position)

    @property
    def header(self) -> Head:
        return self.sealed.header

    @property
    def version(self) -> int:
        return self.sealed.version

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
        pos = self.sealed.offset_base + entry.offset
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
        return CopyCiphertext(
            self.sealed.file, self.sealed.offset_base + entry.offset, entry.length
        )

    def close(self) -> None:
        self.sealed.close()


def open_index(sealed: Sealed, master: bytes | bytearray, record: Record) -> Index:
    """Read, decrypt and check the index `record` names (steps 13 and 14 of section 20)."""
    container_id = sealed.header.container_id
    ct = read_at(sealed.file.fileno(), record.index_length, record.index_offset)
    if len(ct) != record.index_length:
        raise FormatError("container is truncated inside the index")
    key = crypto.index_key(master, container_id)
    plain = crypto.open_sealed(key, record.index_nonce, ct, container_id, "index")
    if sealed.version == VERSION_1:
        return decode_index(plain, sealed.file_size - sealed.data_start)
    placement = Placement(sealed.file_size, record.index_offset, record.index_length)
    return decode_index(plain, placement)


def _index_opens(sealed: Sealed, master: bytes | bytearray, record: Record) -> bool:
    try:
        open_index(sealed, master, record)
    except IntegrityError:
        return False
    return True


def write_container(
    path: Path,
    container_id: bytes,
    slots: Sequence[Slot],
    master: bytes | bytearray,
    index: Index,
    planned: Sequence[Planned],
    rng: Random,
    expect: FileIdentity | None = None,
    generation: int = 1,
) -> None:
    """Write a whole version 2 container beside `path` and atomically rename it over `path`
    (a compaction, FORMAT.md section 12): `generation` in record A, record B empty.

    `planned` holds one item per entry of `index.entries` (same objects); offsets and lengths
    are assigned here, in name order from the data area's start, the index after them. Every
    limit a reader enforces is checked before the temp file is made, and the temp file is read
    back (head, record, index) before the rename, so a save never replaces a vault with a file
    no reader opens. `expect` is the identity of the file the caller opened: if `path` is
    another file by now (a second writer the lock did not see, as on a network file system),
    nothing is replaced.
    """
    plan = sorted(planned, key=lambda p: p.entry.name)
    offset = DATA_AREA_START
    for p in plan:
        p.entry.offset = offset
        p.entry.length = sealed_length(p.entry.size)
        offset += p.entry.length
    index.entries = [p.entry for p in plan]
    index_plain = encode_for_writing(index, IndexAt(offset))
    index_nonce = rng(crypto.NONCE_SIZE)
    index_ct = crypto.seal(
        crypto.index_key(master, container_id), index_nonce, index_plain, container_id
    )
    head = Head(container_id, tuple(slots)).encode()
    record = seal_record(master, container_id, head, generation, offset, index_ct, index_nonce)
    start = head + record_blocks({0: record})
    check_readable(start, offset + len(index_ct), 0)

    def key_for(entry: Entry) -> bytes:
        return crypto.entry_key(master, container_id, entry.entry_id, entry.content_salt)

    # Every step goes through one descriptor of the vault's directory, opened once: if the
    # drive is unmounted (even lazily) or the directory is swapped during the save, no file
    # lands in whatever directory the path names by then, and the rename and its fsync reach
    # the directory the vault was read from (or fail there, on a pulled drive).
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise save_error(path, exc) from None
    try:
        if expect is not None:
            check_identity(dir_fd, path, expect)  # before anything is written
        tmp = temp_path(path, rng(6).hex()).name
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=dir_fd,
            )
        except OSError as exc:
            raise save_error(path, exc) from None
        try:
            with os.fdopen(fd, "wb", buffering=COPY_BLOCK) as out:
                out.write(start)
                write_entries(out, _runs(plan), key_for, container_id)
                out.write(index_ct)
                out.flush()
                os.fsync(out.fileno())
            verify_written(dir_fd, tmp, master, container_id, path, generation)
            if expect is not None:
                check_identity(dir_fd, path, expect)
            os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise save_error(path, exc) from None
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


def seal_record(
    master: bytes | bytearray,
    container_id: bytes,
    head: bytes,
    generation: int,
    index_offset: int,
    index_ct: bytes,
    index_nonce: bytes,
) -> Record:
    """The commit record naming an index written at `index_offset`, with its MAC."""
    record = Record(generation, index_offset, len(index_ct), index_nonce)
    mac = crypto.header_mac(crypto.header_mac_key(master, container_id), head + record.fields())
    return Record(generation, index_offset, len(index_ct), index_nonce, mac)


def record_blocks(records: dict[int, Record]) -> bytes:
    """Both record blocks, with `records` at their positions and the others empty."""
    out = b""
    for position in range(len(RECORD_OFFSETS)):
        record = records.get(position)
        raw = record.encode() if record is not None else bytes(RECORD_SIZE)
        out += raw + bytes(RECORD_BLOCK_SIZE - RECORD_SIZE)
    return out


def check_readable(start: bytes, file_size: int, position: int) -> None:
    """Refuse to write a head and records the reader's parser would refuse (steps 2 to 10 of
    FORMAT.md section 20) for a file of `file_size` bytes starting with `start`, or in which
    the record at `position`, the one this save writes, is not usable (an append keeps the
    other one usable: the reader would open the generation before)."""
    try:
        parse_head(start)
        records, problems = read_records(start, file_size)
        if len(records) == 2 and records[0][1].generation == records[1][1].generation:
            raise FormatError("both commit records would hold one generation")
    except FormatError as exc:
        raise LockerError(f"refusing to save a vault no reader would open: {exc}") from None
    if all(p != position for p, _ in records):
        why = "; ".join(what for p, _, what in problems if p == position) or "it is empty"
        raise LockerError(f"refusing to save a commit record every reader passes over: {why}")


def write_entries(
    out: BinaryIO,
    runs: list[tuple[Source, list[Planned]]],
    key_for: Callable[[Entry], bytes],
    container_id: bytes,
) -> None:
    """Write each run's STREAMs at `out`'s position, checking each run's planned length."""
    for source, run in runs:
        start, entry = out.tell(), run[0].entry
        aad = entry_aad(container_id, entry.entry_id)
        source.write_to(out, key_for, aad, entry)
        if out.tell() - start != sum(p.entry.length for p in run):
            names = ", ".join(repr(p.entry.name) for p in run)
            raise LockerError(f"internal error: entry {names} has the wrong length")


def check_identity(dir_fd: int, path: Path, expect: FileIdentity) -> None:
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


def save_error(path: Path, exc: OSError) -> LockerError:
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return LockerError(f"cannot save {path}{where}: {exc.strerror or exc}; the vault is unchanged")


def verify_written(
    dir_fd: int,
    name: str,
    master: bytes | bytearray,
    container_id: bytes,
    path: Path,
    generation: int,
) -> None:
    """Read the just-written container `name` (in `dir_fd`) back as a reader would, through a
    new descriptor (some FUSE file systems return stale data through the writing one): head,
    records, the record in force (it must be `generation`), its index and its placement."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        _verify_fd(fd, master, container_id, path, generation)
    finally:
        os.close(fd)


def _verify_fd(
    fd: int, master: bytes | bytearray, container_id: bytes, path: Path, generation: int
) -> None:
    start = read_at(fd, DATA_AREA_START, 0)
    size = os.fstat(fd).st_size
    try:
        parse_head(start)
        mac_key = crypto.header_mac_key(master, container_id)
        record = next(
            r
            for _, r in usable_records(start, size)
            if crypto.header_mac_matches(mac_key, start[:HEAD_SIZE] + r.fields(), r.mac)
        )
        if record.generation != generation:
            raise FormatError(f"generation {record.generation} is in force, not {generation}")
        ct = read_at(fd, record.index_length, record.index_offset)
        key = crypto.index_key(master, container_id)
        plain = crypto.open_sealed(key, record.index_nonce, ct, container_id, "index")
        decode_index(plain, Placement(size, record.index_offset, record.index_length))
    except (IntegrityError, StopIteration) as exc:
        what = exc if isinstance(exc, IntegrityError) else "no commit record verified"
        raise LockerError(
            f"cannot save {path}: the new copy did not read back ({what}); the vault is unchanged",
            hint="check the disk",
        ) from None


class FileIdentity(NamedTuple):
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
