"""The lock of a mount: final sync, what is kept, the "wiping" record, the wipe.

`Session` inherits these methods. The order is the promise: the journal record says
"locking" (with the processes still holding files) before the final sync, and "wiping" (with
the files kept and what they are compared with) before anything is wiped; if even the empty
marker cannot be written, nothing is wiped. A final sync that fails keeps only the files with
unsaved changes and wipes the rest (`_lock_after_failed_sync`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from locker.errors import LockerError
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import process
from locker.mount import scan as sc
from locker.text import plural

if TYPE_CHECKING:
    from locker.mount.sync import Known, SyncResult

REASON_COMMAND = "locker lock"


@dataclass
class LockResult:
    reason: str
    synced: sc.Changes
    holders: list[process.Holder]
    wiped: int
    kept: dict[str, str] = field(default_factory=dict)  # left for `locker recover`, and why
    not_wiped: list[str] = field(default_factory=list)  # what the wipe could not remove, and why
    unzeroed: str | None = None  # the files the wipe deleted without zeroing them, said in a line


class LockMethods:
    """The lock sequence of `Session`, over the state it keeps."""

    root: Path
    journal: jn.Journal
    record: jn.Record
    notify: Callable[[str], None]
    _root_id: tuple[int, int] | None

    if TYPE_CHECKING:  # Session's own

        @property
        def known(self) -> dict[str, Known]: ...
        def stop_watching(self, wait: bool = True) -> None: ...
        def sync(
            self, final: tuple[str, str] | None = None, strict: bool = False
        ) -> SyncResult: ...
        def root_intact(self) -> bool: ...
        def _save_journal(self) -> None: ...

    def lock(self, reason: str) -> LockResult:
        """Final sync (with the lock event), name processes that still hold files, wipe.

        The journal record says "locking" and names the holders before anything is wiped, so
        `locker lock` in another shell can report them. Nothing is wiped before the record says
        "wiping" (with the files kept, if any, and no file that is in the vault left listed as
        one the mount deleted): if that cannot be written, not even as an empty marker, nothing
        is wiped at all. Files the final sync could not save (unreadable, still being written,
        a name the vault refuses) are kept for `locker recover`, which is what `kept` in the
        result lists. If the final sync fails altogether, `_lock_after_failed_sync` decides.
        When `locker lock` asked, the record is left in state "locked" with the outcome, for it
        to read and remove.
        """
        self.stop_watching(wait=False)  # events from here on change nothing
        try:
            return self._lock(reason)
        finally:
            self.stop_watching()

    def _lock(self, reason: str) -> LockResult:
        holders = process.find_holders(self.root)
        self.record.state = jn.STATE_LOCKING
        self.record.holders = [h._asdict() for h in holders]
        self._save_journal()
        detail = reason
        if holders:
            detail += "; still open in " + ", ".join(f"{h.pid} ({h.command})" for h in holders)
        try:
            result = self.sync(final=("lock", detail[:500]), strict=True)
        except (LockerError, OSError) as exc:
            return self._lock_after_failed_sync(exc, reason, holders)
        for name, why in sorted(result.unsaved.items()):
            self.notify(f"warning: {name} is kept, not saved: {why}")
        return self._wipe(reason, holders, result.changes, result.unsaved, gone=[])

    def _wipe(
        self,
        reason: str,
        holders: list[process.Holder],
        synced: sc.Changes,
        kept: dict[str, str],
        gone: list[str],
    ) -> LockResult:
        """Put "wiping" on record (what stays, and what it is compared with), then wipe."""
        if not self.root_intact():
            self.journal.remove(self.record.mount_id)
            return LockResult(reason, synced, holders, 0)
        self.record.state = jn.STATE_WIPING
        self.record.kept = sorted(kept)
        self.record.files = {
            n: k.sha256 for n, k in self.known.items() if n in gone or _under(n, self.record.kept)
        }
        self._record_wiping()
        wiped = mountdir.wipe_tree(
            self.root,
            remove_root=self.record.created_dir and not kept,
            expect=self._root_id,
            keep=frozenset(kept),
        )
        for line in wiped.warnings():
            self.notify(f"warning: {line}")
        unzeroed = wiped.unzeroed_note()
        problems = ["could not wipe " + "; ".join(wiped.left)] if wiped.left else []
        if unzeroed:
            problems.append(unzeroed)
        if problems:  # after the final sync's error, if it failed
            self.record.error = "; ".join(filter(None, [self.record.error, *problems]))
        self.record.wiped = wiped.count
        if kept or wiped.left:
            self._save_journal()  # stays for `locker recover`
        elif reason == REASON_COMMAND:
            self.record.state = jn.STATE_LOCKED
            self.known.clear()
            self.record.finished = time.time()
            self._save_journal()
        else:
            self.journal.remove(self.record.mount_id)
        return LockResult(reason, synced, holders, wiped.count, dict(kept), wiped.left, unzeroed)

    def _record_wiping(self) -> None:
        """Write the "wiping" record, or failing that (a full tmpfs) the empty marker that says
        the same when nothing is kept; raise if neither is on record: then nothing is wiped."""
        try:
            self.journal.write(self.record)
            return
        except OSError as exc:
            problem = exc.strerror or str(exc)
        if not self.record.kept and not self.record.files:
            try:
                self.journal.mark_wiping(self.record.mount_id)
                return
            except OSError:
                pass
        raise LockerError(
            f"cannot record the lock in the mount journal ({problem}); nothing was wiped",
            hint=f"{self.root} still holds the files: free space in "
            f"{self.journal.directory}, then run 'locker recover'",
        )

    def _lock_after_failed_sync(
        self, exc: BaseException, reason: str, holders: list[process.Holder]
    ) -> LockResult:
        """The final sync failed: wipe every file whose content the vault holds as it is, keep
        only those with unsaved changes, and raise saying which. If nothing is unsaved, the
        lock goes on (only its audit event is missing). The names that stay, and the deletions
        the vault did not take, are on record before anything is wiped."""
        scan = sc.steady_scan(self.root, self.known) if self.root_intact() else sc.Scan()
        kept = {n.rstrip("/") or ".": why for n, why in scan.unreadable.items()}
        for name in sorted(scan.files):
            known = self.known.get(name)
            try:
                same = known is not None and sc.sha256_file(self.root / name) == known.sha256
            except OSError:
                same = False
            if not same:
                kept[name] = "not saved"
        gone = sorted(
            n for n in self.known if n not in scan.files and not scan.hides(n) and not scan.vanished
        )
        if not kept and not gone:
            self.notify(f"warning: the lock could not be recorded in the vault ({exc})")
            return self._wipe(reason, holders, sc.Changes(), {}, [])
        self.record.error = str(exc)
        result = self._wipe(reason, holders, sc.Changes(), kept, gone)
        unsaved = [*kept, *(f"{n} (deleted)" for n in gone)]
        raise LockerError(
            f"could not save the mount directory into the vault: {exc}; wiped "
            f"{plural(result.wiped, 'unchanged file')}, kept {plural(len(unsaved), 'file')} "
            f"with unsaved changes: {', '.join(unsaved)}",
            hint=f"they are still in {self.root}: fix the problem, then run 'locker recover'",
        ) from None


def _under(name: str, kept: list[str]) -> bool:
    """`name` is one of the kept names or inside a kept directory ("." is the whole mount
    directory, kept when it could not be listed)."""
    return any(name == k or name.startswith(k + "/") or k == "." for k in kept)
