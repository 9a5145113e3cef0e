"""Format 2's passed-over commit records (docs/FORMAT.md section 20): a record that is not in
force although it may hold a save newer than the one in force (it failed its MAC, is unusable,
or reads as empty where no save leaves it so), and whether that save can be restored.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from locker.errors import FormatError
from locker.store.format import RECORD_NAMES, RECORD_SIZE, VERSION_1, Record, parse_record

if TYPE_CHECKING:
    from locker.store.container import Sealed


class PassedOver(NamedTuple):
    """A commit record that was not taken. `generation` is the number it claims (not
    authenticated: a damaged record may claim any), None for an empty record. `restorable`:
    its offset and length pass the placement rules and name an index after the one in force
    that authenticates under its nonce, so it names the save after the one in force
    (generation in force + 1, whatever it claims), made durable before its record was
    damaged; `record` holds those fields, which `Container.restored` opens."""

    position: int
    generation: int | None
    problem: str
    restorable: bool = False
    record: Record | None = None

    @property
    def name(self) -> str:
        return RECORD_NAMES[self.position]

    @property
    def empty(self) -> bool:
        return self.generation is None

    def __str__(self) -> str:
        if self.generation is None:  # an empty record claims nothing
            return f"commit record {self.name} {self.problem}"
        return f"commit record {self.name} (claims generation {self.generation}) {self.problem}"


def others(
    sealed: Sealed,
    in_force: Record,
    position: int,
    failed: Sequence[tuple[int, Record]],
    index_opens: Callable[[Record], bool],
) -> list[PassedOver]:
    """The records passed over beside the one in force at `position`, other than those that
    verified but whose index did not open: those that failed their MAC, the unusable ones,
    and an empty one where no save leaves it empty."""
    end = in_force.index_offset + in_force.index_length

    def restorable(record: Record | None) -> bool:
        # A newer save was appended after the index in force; an older index, or a record
        # torn into naming one, lies before it (and would authenticate as well).
        return record is not None and record.index_offset >= end and index_opens(record)

    passed = [PassedOver(p, r.generation, "did not verify", restorable(r), r) for p, r in failed]
    for p, claimed, what in sealed.unusable:
        record = _fields(sealed.raw_records[p], sealed.file_size)
        ok = restorable(record)
        passed.append(PassedOver(p, claimed, f"is unusable: {what}", ok, record if ok else None))
    if sealed.version != VERSION_1 and sealed.raw_records[1 - position] == bytes(RECORD_SIZE):
        # No save leaves record A empty (a compaction writes A, an append the record not in
        # force), and after a compaction its index ends the file: an empty record beside bytes
        # after the index in force is a save killed before its record write, or a record that
        # reads back as zeros (a bad sector): it may have held a newer save.
        if position == 1:
            passed.append(PassedOver(0, None, "reads as empty, which no save leaves it"))
        elif sealed.file_size > end:
            passed.append(
                PassedOver(
                    1,
                    None,
                    "is empty, but the file has bytes after the newest save (an interrupted "
                    "save, or bytes added to the file)",
                )
            )
    return passed


def alone(
    sealed: Sealed, failed: Sequence[tuple[int, Record]], index_opens: Callable[[Record], bool]
) -> PassedOver | None:
    """When no record verifies (format 2), the one whose index authenticates under its nonce:
    the last appended (its index lies furthest into the file) when both do. After a
    compaction record A is alone, and one bit of it must not lock the vault."""
    if sealed.version == VERSION_1:
        return None
    found = [(p, r) for p, r in failed if index_opens(r)]
    if not found:
        return None
    p, r = max(found, key=lambda item: item[1].index_offset)
    return PassedOver(p, r.generation, "did not verify", True, r)


def _fields(raw: bytes, file_size: int) -> Record | None:
    """An unusable record's fields when its generation alone makes it unusable (0, one bit
    away from 2^k): the rest may name a durable index, and a restore never uses the number."""
    try:
        return parse_record(struct.pack(">Q", 1) + raw[8:], file_size)
    except FormatError:
        return None
