"""Format 2's generations as the vault sees them: the generation in force, a commit record
that was passed over, the refusal to save while one is, the explicit decision of `locker
recover --generation N`, and seeing the file again after a failed save (docs/FORMAT.md
section 20). `Vault` inherits these methods.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from locker.errors import BusyError, IntegrityError, LockerError, UsageError
from locker.store import container as ct
from locker.store.container import Container
from locker.store.format import VERSION_1
from locker.store.generations import Attempt
from locker.store.lockfile import WriterLock
from locker.store.passed_over import PassedOver


def verify_entries(container: Container) -> list[str]:
    failures = []
    for e in container.index.entries:
        try:
            for _ in container.chunks(e):
                pass
        except IntegrityError as exc:
            failures.append(str(exc))
    return failures


def read_again(container: Container) -> Container:
    """A reader without the lock that passed over a record may have read the records while an
    append wrote its record (or measured the size before its index was there): read the file
    once more, through the same descriptor, before reporting it. An empty record B beside
    bytes after the index in force, while a writer holds the lock, is an append under way
    (the first after a compaction), not reported (FORMAT.md section 22)."""
    try:
        sealed = container.sealed.reread()
        again = Container.open(sealed, container.unlocked)
    except LockerError:
        return container
    passed = again.passed_over
    if passed and all(p.empty and p.position == 1 for p in passed) and _writer_at_work(again):
        return Container(again.sealed, again.unlocked, again.index, again.record, again.position)
    return again


def _writer_at_work(container: Container) -> bool:
    try:
        WriterLock(container.sealed.path).check_free()
    except BusyError:
        return True
    return False


def ways_out(c: Container) -> str:
    """The decisions `locker recover --generation N` offers about a passed-over record, the
    restore first when there is one (continuing discards that save for good)."""
    g = c.record.generation
    go_on = f"'locker recover --generation {g}' continues from generation {g}"
    if any(p.restorable for p in c.passed_over):
        return (
            f"'locker recover --generation {g + 1}' restores the save that record names (its "
            f"index authenticates); {go_on} and discards that save for good"
        )
    return go_on


def _passed_over_error(path: Path, c: Container) -> IntegrityError:
    """Why a save is refused while a record is passed over, and the ways out."""
    p = c.passed_over[0]
    return IntegrityError(
        f"cannot save {path}: {p}, and the vault opened at generation {c.record.generation}; "
        "a save would overwrite that record; nothing was saved",
        hint=f"copy the vault file first; {ways_out(c)}; 'locker verify' tells more",
    )


class GenerationMethods:
    """Generation methods of `Vault`, over the container and staging state it keeps."""

    path: Path
    _container: Container
    _recovered: bool  # recover_generation decided about a passed-over record
    _compact_next: bool  # the next save is a compaction (a restored generation)
    _unfinished: tuple[int, bytes] | None  # this writer's own record write that failed

    if TYPE_CHECKING:  # Vault's own

        def _require_writer(self) -> None: ...
        def _reset_staging(self) -> None: ...
        def record(self, event: str, names: tuple[str, ...] = (), detail: str = "") -> None: ...

    @property
    def unverified(self) -> bool:
        """No commit record verified: opened at the one whose index authenticates, for
        `recover_generation` alone."""
        return self._container.unverified

    @property
    def generation(self) -> int:
        """The generation in force (format 2); 0 for a version 1 file."""
        return self._container.record.generation

    def passed_over(self) -> tuple[PassedOver, ...]:
        """The commit record that was not taken although it is not empty (format 2): what a
        save killed while writing its record, or a damaged record, leaves. While there is one,
        saves are refused until `recover_generation` decides (FORMAT.md section 20)."""
        return self._container.passed_over

    def passed_over_warnings(self) -> list[str]:
        """One line per record passed over, for the CLI's warnings and the TUI's notices: the
        generation the vault opened at instead, and what a restore would give."""
        c = self._container
        g = c.record.generation
        return [
            f"{p}; {self.path} opened at generation {g}, without the save that record may hold"
            + (f" (restorable as generation {g + 1})" if p.restorable else "")
            for p in c.passed_over
        ]

    def recover_hint(self) -> str:
        """What `locker recover --generation N` can decide about the passed-over record."""
        return ways_out(self._container)

    def check_saves_allowed(self) -> None:
        """IntegrityError while a record is passed over and no recovery decided about it: a
        save would overwrite that record, or compact it away (FORMAT.md section 20)."""
        c = self._container
        if c.passed_over and not self._recovered and not self._own_unfinished(c):
            raise _passed_over_error(self.path, c)

    def _own_unfinished(self, c: Container) -> bool:
        """The only record passed over is this writer's own record write that failed (it
        overwrote the previous generation, and the save was never confirmed): this vault may
        write it again (FORMAT.md section 21, step 5)."""
        own = self._unfinished
        return (
            own is not None
            and all(p.position == own[0] for p in c.passed_over)
            and c.sealed.raw_records[own[0]] == own[1]
        )

    def recover_generation(self, generation: int) -> str:
        """Decide, explicitly, what a passed-over record means: the generation in force
        continues from it (the next save overwrites the record passed over); the one after it,
        which a restorable passed-over record names, is opened without that record's MAC,
        every entry verified, and the next save is a compaction holding it. The decision goes
        into the audit log of that save. Returns what was decided."""
        self._require_writer()
        c = self._container
        if not c.passed_over:
            raise UsageError(
                f"nothing to recover: every commit record verifies; generation "
                f"{c.record.generation} is in force"
            )
        passed = "; ".join(str(p) for p in c.passed_over)
        if generation == c.record.generation and not c.unverified:
            decided = f"continued from generation {generation} ({passed})"
        else:
            found = [p for p in c.passed_over if p.restorable]
            # no record verified: the one whose index authenticates, by the number it claims
            target = c.record.generation + (0 if c.unverified else 1)
            if generation != target or not found:
                can, why = [], []
                if not c.unverified:
                    can.append(str(c.record.generation))
                    why.append(f"the generation in force is {c.record.generation}")
                if found:
                    can.append(str(target))
                    why.append(f"the save passed over would be generation {target}")
                else:
                    why.append("no record passed over names a save that authenticates")
                raise UsageError(
                    f"generation {generation} cannot be recovered from {self.path}: "
                    + "; ".join(why),
                    hint=f"choose generation {' or '.join(can)}",
                )
            restored = c if c.unverified else c.restored(found[0].position)
            failures = verify_entries(restored)
            if failures:
                raise IntegrityError(
                    f"generation {generation} cannot be restored: {failures[0]}",
                    hint=f"'locker recover --generation {c.record.generation}' continues "
                    "from the generation in force",
                )
            self._container = restored
            self._compact_next = True
            decided = f"restored generation {generation}, whose commit record did not verify"
        self._reset_staging()
        self._recovered = True
        self.record("recover", detail=decided)
        return decided

    def _see_failed_save(self, old: Container, attempt: Attempt) -> None:
        """After a failed save, see the vault file as it is now when the save changed it under
        this writer's lock (an append cut back to its old size has a new mtime; a failed record
        write may have switched or torn the record), so that this vault can save again. Only
        this writer's own doing is taken: another change (a writer the lock did not keep out)
        keeps the old identity, so the next save is refused as this one was."""
        try:
            at = os.stat(self.path, follow_symlinks=False)
            mine = os.fstat(old.sealed.file.fileno())
            if (at.st_dev, at.st_ino) != (mine.st_dev, mine.st_ino):
                return  # another file now: the next save's identity check refuses it
            if ct.FileIdentity.of(mine) == old.sealed.identity:
                return
            sealed = old.sealed.reread()
            if not _own_doing(old.sealed, sealed, attempt):
                return
            container = Container.open(sealed, old.unlocked)
        except (OSError, LockerError):
            return
        t, passed = attempt.target, container.passed_over
        if t is not None and container.position == old.position and passed:
            # its own record write, cut short: only the record it was writing is passed over
            own = all(p.position == t for p in passed)
            self._unfinished = (t, sealed.raw_records[t]) if own else None
        self._container = container


def _own_doing(old: ct.Sealed, now: ct.Sealed, attempt: Attempt) -> bool:
    """Whether the file is as this writer's failed save left it: both records as read, and
    the size it had (cut back) or the end of the new bytes (not cut back); or only the record
    being written changed, each byte the old one's, the new one's or zero (a torn write), and
    the file ends at the new bytes."""
    if old.version == VERSION_1 or now.version == VERSION_1:
        return False
    if now.raw_records == old.raw_records:
        return now.file_size in (old.file_size, attempt.end)
    t = attempt.target
    if t is None or not attempt.record or now.file_size != attempt.end:
        return False
    if now.raw_records[1 - t] != old.raw_records[1 - t]:
        return False
    pairs = zip(now.raw_records[t], old.raw_records[t], attempt.record, strict=True)
    return all(b in (was, new, 0) for b, was, new in pairs)
