"""The version 2 save: append a new generation and switch the commit record, or compact.

A save that only adds (new entries, new content, renames, attributes, the log) writes the new
STREAMs and a new index at the end of the open vault file, `fsync`s, reads the index back, then
writes the 68-byte commit record not in force and `fsync`s again: it costs what changed, not
what the vault weighs. Anything that must make bytes leave the file (a v1 file's upgrade, a key
slot change, a removed entry, `rekey`, more than half of the data area garbage) is a compaction,
`container.write_container`. docs/FORMAT.md, sections 21 and 22, is the specification.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, cast

from locker.errors import BusyError, IntegrityError, LockerError
from locker.store import crypto, drives
from locker.store.container import (
    Container,
    FileIdentity,
    Planned,
    Random,
    Reencrypt,
    check_identity,
    check_readable,
    read_at,
    record_blocks,
    save_error,
    seal_record,
    write_container,
    write_entries,
)
from locker.store.format import (
    DATA_AREA_START,
    MAX_GENERATION,
    RECORD_OFFSETS,
    RECORD_SIZE,
    VERSION_1,
    Head,
    Record,
    Slot,
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
from locker.store.sources import COPY_BLOCK, CopyCiphertext


class _AppendOnly:
    """The vault file as the new entries' sources see it: a write anywhere before `start` (a
    byte some generation may use) is refused, whatever a source does with `seek`."""

    def __init__(self, f: BinaryIO, start: int) -> None:
        self._f, self._start = f, start

    def write(self, data: Any) -> int:
        if self._f.tell() < self._start:
            raise LockerError("internal error: a write before the end of the vault was refused")
        return self._f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


class Attempt:
    """How far a save got, for its writer to tell its own doing from another writer's after a
    failure: the file size the append's new bytes end at, and the record it was writing."""

    def __init__(self) -> None:
        self.end: int | None = None
        self.target: int | None = None  # the position of the record not in force
        self.record = b""  # the 68 bytes, set just before they are written


class _Append(NamedTuple):
    """An append worked out in full before anything is written."""

    start: int  # E: the file size the new bytes go after
    new: list[Planned]  # the entries whose STREAMs are written, in name order
    index_plain: bytes
    index_offset: int


def save(
    path: Path,
    old: Container,
    slots: Sequence[Slot],
    master: bytes | bytearray,
    index: Index,
    planned: Sequence[Planned],
    rng: Random,
    compact: bool,
    attempt: Attempt | None = None,
) -> bool:
    """Save `index` and `planned` over the vault `old` was read from: an append-and-switch
    when FORMAT.md section 21 allows one and `compact` does not ask for a whole new file, else
    a compaction. True when it appended. `attempt` is filled in as the append goes."""
    expect = old.sealed.identity
    generation = old.record.generation + 1
    if generation > MAX_GENERATION:
        raise LockerError("the vault has been saved 2^64 - 1 times; it cannot be saved again")
    plan = None if compact else _append_plan(old, slots, index, planned)
    if plan is None:
        write_container(
            path, old.container_id, slots, master, index, planned, rng, expect, generation
        )
        return False
    _append(path, old, master, plan, rng, expect, generation, attempt or Attempt())
    return True


def compaction_reason(old: Container, slots: Sequence[Slot], planned: Sequence[Planned]) -> str:
    """Why this save must write a whole new file (rules 1 to 4 and 6 of FORMAT.md section 21),
    or '' when it may append."""
    if old.version == VERSION_1:
        return "upgrade of a version 1 file"
    if not drives.appends_in_place(old.sealed.path):
        return "a file system where locker does not write in place"
    if Head(old.container_id, tuple(slots)).encode() != old.sealed.header_bytes:
        return "key slots changed"
    ids = {p.entry.entry_id for p in planned}
    if any(e.entry_id not in ids for e in old.index.entries):
        return "entries removed"
    if any(isinstance(p.source, Reencrypt) and p.source.container is old for p in planned):
        return "rekey"
    return ""


def _kept(p: Planned, old: Container) -> CopyCiphertext | None:
    source = p.source
    if isinstance(source, CopyCiphertext) and source.file is old.sealed.file:
        return source
    return None


def _append_plan(
    old: Container, slots: Sequence[Slot], index: Index, planned: Sequence[Planned]
) -> _Append | None:
    """Place every entry for an append (unchanged ones where they are, new STREAMs at the end
    of the file, in name order), encode the index after them; None when the save must be a
    compaction, rule 5 (garbage) included. Draws nothing from the randomness source."""
    if compaction_reason(old, slots, planned):
        return None
    start = os.fstat(old.sealed.file.fileno()).st_size
    if start != old.sealed.file_size:
        return None  # the file changed under us: the compaction's identity check says so
    new: list[Planned] = []
    offset = start
    for p in sorted(planned, key=lambda p: p.entry.name):
        kept = _kept(p, old)
        if kept is not None:
            p.entry.offset, p.entry.length = kept.offset, kept.length
            continue
        p.entry.offset = offset
        p.entry.length = sealed_length(p.entry.size)
        offset += p.entry.length
        new.append(p)
    index.entries = sorted((p.entry for p in planned), key=lambda e: e.name)
    plain = encode_for_writing(index, IndexAt(offset))
    size = offset + len(plain) + crypto.TAG_SIZE
    live = len(plain) + crypto.TAG_SIZE + sum(e.length for e in index.entries)
    if 2 * (size - DATA_AREA_START - live) > size - DATA_AREA_START:
        return None
    return _Append(start, new, plain, offset)


def _append(
    path: Path,
    old: Container,
    master: bytes | bytearray,
    plan: _Append,
    rng: Random,
    expect: FileIdentity,
    generation: int,
    attempt: Attempt,
) -> None:
    """Steps 2 to 7 of the append (FORMAT.md section 21)."""
    container_id = old.container_id
    nonce = rng(crypto.NONCE_SIZE)
    index_ct = crypto.seal(
        crypto.index_key(master, container_id), nonce, plan.index_plain, container_id
    )
    head = old.sealed.header_bytes
    record = seal_record(master, container_id, head, generation, plan.index_offset, index_ct, nonce)
    target = 1 - old.position  # the record not in force
    blocks = record_blocks({target: record, old.position: old.record})
    check_readable(head + blocks, plan.index_offset + len(index_ct), target)
    attempt.end, attempt.target = plan.index_offset + len(index_ct), target

    def key_for(entry: Entry) -> bytes:
        return crypto.entry_key(master, container_id, entry.entry_id, entry.content_salt)

    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise save_error(path, exc) from None
    try:
        check_identity(dir_fd, path, expect)
        try:
            fd = os.open(path.name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            raise save_error(path, exc) from None
        try:
            if FileIdentity.of(os.fstat(fd)) != expect:
                check_identity(dir_fd, path, expect)  # raises: another writer was here
                raise LockerError(
                    f"cannot save {path}: the vault file changed while opening it",
                    hint="another program wrote to it; nothing was saved: run the command again",
                )
            _write_generation(fd, dir_fd, path, plan, index_ct, key_for, container_id)
            _check_before_switch(fd, dir_fd, path, old, plan.index_offset + len(index_ct))
            attempt.record = record.encode()
            _switch(fd, path, record, target)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def _write_generation(
    fd: int,
    dir_fd: int,
    path: Path,
    plan: _Append,
    index_ct: bytes,
    key_for: Callable[[Entry], bytes],
    container_id: bytes,
) -> None:
    """Steps 3 to 5: the new STREAMs and index at the end, fsync, the index read back. On any
    failure the file is cut back to where it ended (no generation uses those bytes)."""
    try:
        with os.fdopen(os.dup(fd), "r+b", buffering=COPY_BLOCK) as out:
            out.seek(plan.start)
            runs = [(p.source, [p]) for p in plan.new]
            guarded = cast(BinaryIO, _AppendOnly(out, plan.start))
            write_entries(guarded, runs, key_for, container_id)  # each run's length checked
            out.write(index_ct)
            out.flush()
            os.fsync(out.fileno())
        _read_back(dir_fd, path, plan, index_ct)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, plan.start)
            os.fsync(fd)
        if isinstance(exc, OSError):
            raise save_error(path, exc) from None
        raise


def _read_back(dir_fd: int, path: Path, plan: _Append, index_ct: bytes) -> None:
    """Step 5: the new index as a reader will read it, through a new descriptor."""
    rfd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        ct = read_at(rfd, len(index_ct), plan.index_offset)
        size = os.fstat(rfd).st_size
    finally:
        os.close(rfd)
    try:
        if ct != index_ct:
            raise IntegrityError("the index read back is not the one written")
        decode_index(plan.index_plain, Placement(size, plan.index_offset, len(index_ct)))
    except IntegrityError as exc:
        raise LockerError(
            f"cannot save {path}: the new index did not read back ({exc}); the vault is unchanged",
            hint="check the disk",
        ) from None


def _check_before_switch(fd: int, dir_fd: int, path: Path, old: Container, end: int) -> None:
    """Just before the record write: the name is still this file, nobody else wrote after the
    new generation (the file ends where it does), and both records are the bytes this writer
    read. A writer the lock does not keep out (a network file system, a tool that takes no
    lock) is refused here and its bytes are left alone: the new ones are garbage."""
    st = os.fstat(fd)
    at = FileIdentity.at(dir_fd, path.name)
    records = tuple(read_at(fd, RECORD_SIZE, offset) for offset in RECORD_OFFSETS)
    if (
        at is None
        or (at.device, at.inode) != (st.st_dev, st.st_ino)
        or st.st_size != end
        or records != old.sealed.raw_records
    ):
        raise BusyError(
            f"{path} was changed by another writer while this save was made; nothing was saved",
            hint="locking needs a local file system; run the command again",
        )


def _switch(fd: int, path: Path, record: Record, target: int) -> None:
    """Steps 6 and 7: the 68-byte record into the record not in force, then fsync."""
    raw = record.encode()
    try:
        written = os.pwrite(fd, raw, RECORD_OFFSETS[target])
        if written != len(raw):
            raise OSError(0, f"short write of the commit record ({written} bytes)")
        os.fsync(fd)
    except OSError as exc:
        raise LockerError(
            f"cannot save {path}: writing its commit record failed: {exc.strerror or exc}",
            hint="the vault opens at this save or the one before it; 'locker verify' says which",
        ) from None
