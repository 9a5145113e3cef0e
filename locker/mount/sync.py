"""The sync planner: what changed in the mount directory since the last sync, and its commit.

A sync scans the directory, reads only files whose stat changed since they were last read,
compares their hashes with what the vault holds, pairs deletes and adds with the same content
as renames, holds back a mass delete until the directory has stayed empty for a while, drops
names the vault refuses, and commits everything as one atomic save with one audit event.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from locker.errors import LockerError, UsageError
from locker.mount import scan as sc
from locker.mount.tracker import Clock, Tracker
from locker.store import safefs
from locker.store.format import check_name
from locker.vault import Vault

INLINE_LIMIT = 64 * 1024 * 1024  # larger files are hashed and encrypted in two streaming reads
ALL_GONE_GRACE = 2.0  # an emptied directory must stay empty this long before the vault follows

Warn = Callable[[str, str], None]  # (key, message): said once per key


@dataclass
class Known:
    sha256: str
    stat: sc.FileStat


@dataclass
class SyncResult:
    changes: sc.Changes = field(default_factory=sc.Changes)
    skipped: list[str] = field(default_factory=list)


@dataclass
class SavedCounts:
    """File changes saved into the vault over a whole mount, by kind."""

    changed: int = 0
    added: int = 0
    deleted: int = 0
    renamed: int = 0

    def add(self, changes: sc.Changes) -> None:
        self.changed += len(changes.changed)
        self.added += len(changes.added)
        self.deleted += len(changes.deleted)
        self.renamed += len(changes.renamed)

    @property
    def total(self) -> int:
        return self.changed + self.added + self.deleted + self.renamed

    def summary(self) -> str:
        return sc.change_summary(self.changed, self.added, self.deleted, self.renamed)


class Syncer:
    """Keeps what the vault holds of each file (`known`) and saves what changed into the vault."""

    def __init__(
        self, vault: Vault, root: Path, tracker: Tracker, clock: Clock, warn_once: Warn
    ) -> None:
        self.vault, self.root, self.tracker, self.clock = vault, root, tracker, clock
        self._warn_once = warn_once
        self.known: dict[str, Known] = {}
        self.saved = SavedCounts()
        self.syncs = 0
        self.last_error = ""
        self._all_gone_since: float | None = None

    def materialise(self) -> None:
        root_fd = safefs.open_dir(self.root)
        try:
            for entry in self.vault.entries():
                digest = hashlib.sha256()
                chunks = _hashing(self.vault.chunks(entry.name), digest)
                st = safefs.write_file(root_fd, entry.name, chunks, durable=False)
                self.known[entry.name] = Known(digest.hexdigest(), sc.FileStat.of(st))
        finally:
            os.close(root_fd)

    def sync(self, final: tuple[str, str] | None = None, strict: bool = False) -> SyncResult:
        """Save what changed into the vault: one commit, one audit event (plus `final`, an
        extra (event, detail) recorded in the same commit). `strict` makes an unreadable file
        an error instead of a retry later."""
        scan = sc.scan_tree(self.root, self.known)
        result = SyncResult(skipped=scan.skipped)
        for name in scan.skipped:
            self._warn_once(f"skip:{name}", f"{name} is not a regular file; it is not saved")
        contents: dict[str, bytes | None] = {}
        fresh: dict[str, Known] = {}
        for name, st in scan.files.items():
            known = self.known.get(name)
            if known and known.stat == st:
                continue
            read = self._read(name, st)
            if read is None:
                if strict and os.path.lexists(self.root / name):
                    raise LockerError(f"cannot read {self.root / name}")
                self.tracker.mark_dirty()
                continue
            data, new = read
            fresh[name] = new
            if not known or known.sha256 != new.sha256:
                contents[name] = data
        gone = {n: k.sha256 for n, k in self.known.items() if n not in scan.files}
        new_names = {n: fresh[n].sha256 for n in contents if n not in self.known}
        added, deleted, renamed = sc.pair_renames(new_names, gone)
        changes = sc.Changes(
            sorted(n for n in contents if n in self.known), added, deleted, renamed
        )
        changes = self._drop_invalid(self._hold_mass_delete(changes, bool(scan.files)))
        if changes or final:
            self.commit(changes, contents, final)
        for name in changes.deleted + [old for old, _ in changes.renamed]:
            self.known.pop(name, None)
        for name, new in fresh.items():
            if name in contents and not self._valid(name):
                continue
            self.known[name] = new
        if changes:
            self.syncs += 1
            self.saved.add(changes)
        result.changes = changes
        return result

    def _hold_mass_delete(self, changes: sc.Changes, files_left: bool) -> sc.Changes:
        """Every file gone at once is saved only once the directory has stayed empty for
        ALL_GONE_GRACE: a directory being torn down must not empty the vault."""
        if files_left or not self.known:
            self._all_gone_since = None
            return changes
        now = self.clock.monotonic()
        if self._all_gone_since is None:
            self._all_gone_since = now
        if now - self._all_gone_since >= ALL_GONE_GRACE:
            return changes
        self._warn_once("all-gone", "every file was deleted; the vault keeps them for now")
        self.tracker.mark_dirty()
        return sc.Changes(changes.changed, changes.added, [], changes.renamed)

    def _read(self, name: str, st: sc.FileStat) -> tuple[bytes | None, Known] | None:
        path = self.root / name
        try:
            self.tracker.expect_own_read(path)
            if st.size > INLINE_LIMIT:
                return None, Known(sc.sha256_file(path), st)
            data, actual = sc.read_regular(path)
            return data, Known(hashlib.sha256(data).hexdigest(), actual)
        except FileNotFoundError:
            return None  # an editor is replacing it; the next sync sees the result
        except (OSError, LockerError) as exc:
            message = exc.strerror if isinstance(exc, OSError) else str(exc)
            self._warn_once(f"read:{name}", f"cannot read {name}: {message}")
            return None

    def _valid(self, name: str) -> bool:
        try:
            check_name(name)
            return True
        except UsageError as exc:
            self._warn_once(f"name:{name}", f"{exc}; it is not saved")
            return False

    def _drop_invalid(self, changes: sc.Changes) -> sc.Changes:
        """Names the vault refuses are not saved (and a rename to one keeps the old entry)."""
        return sc.Changes(
            [n for n in changes.changed if self._valid(n)],
            [n for n in changes.added if self._valid(n)],
            changes.deleted,
            [(old, new) for old, new in changes.renamed if self._valid(new)],
        )

    def commit(
        self, changes: sc.Changes, contents: dict[str, bytes | None], final: tuple[str, str] | None
    ) -> None:
        v = self.vault
        try:
            for old, new in changes.renamed:
                v.rename(old, new, force=True)
            for name in changes.deleted:
                v.remove(name)
            for name in changes.changed + changes.added:
                data = contents[name]
                if data is None:
                    self.tracker.expect_own_read(self.root / name)
                    v.add_file(name, self.root / name, force=True)
                else:
                    v.add_bytes(name, data, force=True)
            if changes:
                names = tuple(changes.changed + changes.added + changes.deleted)
                names += tuple(n for pair in changes.renamed for n in pair)
                v.record("sync", names, changes.summary())
            if final:
                v.record(final[0], detail=final[1])
            v.commit()
            self.last_error = ""
        except (LockerError, OSError) as exc:
            v.discard()
            self.last_error = str(exc)
            self.tracker.mark_dirty()
            raise


def _hashing(chunks: Iterator[bytes], digest: hashlib._Hash) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
