"""The sync planner: what changed in the mount directory since the last sync, and its commit.

A sync scans the directory, reads only files whose stat changed since they were last read (and
files read within one timestamp tick of their last change: on coarse-timestamp file systems a
same-size rewrite in that tick leaves the stat as it was), compares their hashes with what the
vault holds, pairs deletes and adds with the same content as renames, holds back a mass delete
until the directory has stayed empty for a while, leaves out names the vault refuses, and
commits everything as one atomic save with one audit event. The final sync reads every file.

Memory stays flat: small files are read once into a bounded budget, the rest are hashed and
then streamed into the container by the writer. A file that changes while it is saved (still
growing) is left for a later sync instead of failing the whole commit.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from locker.errors import LockerError, UsageError
from locker.mount import scan as sc
from locker.mount.tracker import Clock, Tracker
from locker.mount.tree_writer import TreeWriter
from locker.store import safefs
from locker.store.format import check_name
from locker.vault import Vault

SMALL_FILE = 1024 * 1024  # files up to this size are read once and kept for the commit...
MEMORY_BUDGET = 16 * 1024 * 1024  # ...up to this much per sync; the rest are streamed
ALL_GONE_GRACE = 2.0  # an emptied directory must stay empty this long before the vault follows
# Coarse file timestamps (ramfs; tmpfs before Linux 6.13) advance once per jiffy (10 ms at
# HZ=100): a file changed this close to its read may be rewritten with the same stat.
RACY_NS = 50_000_000
STILL_WRITTEN = "it is still being written"
ROOT_UNREAD = "nothing is saved until it can be read"  # the mount directory cannot be listed

Warn = Callable[[str, str], None]  # (key, message): said once per key
Progress = Callable[[int], None]  # told the size of each piece of work done, as it is done


@dataclass
class Known:
    sha256: str
    stat: sc.FileStat
    read_ns: int = 0  # wall clock when it was read (or written by materialise), in ns

    def trusted(self, st: sc.FileStat) -> bool:
        """The file is as it was read: same stat, and that stat was not taken within a tick of
        the file's last change (a rewrite in the same tick would keep it)."""
        return self.stat == st and self.read_ns - max(st.mtime_ns, st.ctime_ns) > RACY_NS


@dataclass
class SyncResult:
    changes: sc.Changes = field(default_factory=sc.Changes)
    skipped: list[str] = field(default_factory=list)
    # Files with changes this sync could not save, with the reason (unreadable, still being
    # written, a name the vault refuses, under a directory that cannot be read).
    unsaved: dict[str, str] = field(default_factory=dict)


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


@dataclass
class _Read:
    known: Known
    data: bytes | None  # None: streamed from the file at commit


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

    def materialise(self, progress: Progress = lambda done: None) -> None:
        """Write every entry into the directory; `progress` is told each chunk's size."""
        root_fd = safefs.open_dir(self.root)
        try:
            with TreeWriter(root_fd) as tree:
                for entry in self.vault.entries():
                    digest = hashlib.sha256()
                    chunks = _hashing(self.vault.chunks(entry.name), digest, progress)
                    st = tree.write(entry.name, chunks)
                    self.known[entry.name] = Known(digest.hexdigest(), sc.FileStat.of(st), 0)
        finally:
            os.close(root_fd)
        done = time.time_ns()  # nobody else knows the directory yet: it was all written by now
        for known in self.known.values():
            known.read_ns = done

    def sync(self, final: tuple[str, str] | None = None, strict: bool = False) -> SyncResult:
        """Save what changed into the vault: one commit, one audit event (plus `final`, an
        extra (event, detail) recorded in the same commit). `strict` (the final sync) reads
        every file whatever its stat says; what cannot be saved is in `unsaved` either way."""
        scan = sc.scan_tree(self.root, self.known)
        result = SyncResult(skipped=scan.skipped)
        for name in scan.skipped:
            self._warn_once(f"skip:{name}", f"{name} is not a regular file; it is not saved")
        for name, why in scan.unreadable.items():
            said = f"cannot read {name}: {why}" if name else f"cannot read ./: {why}; {ROOT_UNREAD}"
            self._warn_once(f"read:{name}", said)
            result.unsaved[name.rstrip("/") or "."] = why
        fresh: dict[str, _Read] = {}
        budget = [MEMORY_BUDGET]
        pending, present, listed = dict(scan.files), set(scan.files), scan
        tries = sc.RESCANS if strict else 1
        for attempt in range(tries):
            vanished = self._read_all(pending, strict, fresh, budget, result) | listed.vanished
            if not vanished or attempt == tries - 1:
                break
            # A file moved between the listing and its stat or read (renamed, replaced): look
            # again at once for what was not read, so that the final sync catches it where it
            # went.
            listed = sc.scan_tree(self.root, self.known)
            pending = {
                n: st
                for n, st in listed.files.items()
                if n not in fresh and (n in vanished or n not in present)
            }
            present |= set(listed.files)
        if vanished:
            self.tracker.mark_dirty()
        # While files move under the scan no deletion is saved (a rename seen half-way would
        # read as one): the sync is due again and sees where they went.
        gone = {
            n: k.sha256
            for n, k in self.known.items()
            if n not in present and not scan.hides(n) and not vanished
        }
        new_names = {n: r.known.sha256 for n, r in fresh.items() if n not in self.known}
        added, deleted, renamed = sc.pair_renames(new_names, gone)
        changes = sc.Changes(sorted(n for n in fresh if n in self.known), added, deleted, renamed)
        changes = self._hold_mass_delete(changes, bool(scan.files))
        changes = self._drop_invalid(changes, result.unsaved)
        if changes:
            changes = self._commit_settled(changes, fresh, final, result.unsaved)
        elif final:
            self.record_event(*final)
        for name in changes.deleted + [old for old, _ in changes.renamed]:
            self.known.pop(name, None)
        for name in changes.changed + changes.added + [new for _, new in changes.renamed]:
            self.known[name] = fresh[name].known
        self._distrust_moved(changes, fresh)
        if changes:
            self.syncs += 1
            self.saved.add(changes)
        result.changes = changes
        return result

    def _read_all(
        self,
        files: dict[str, sc.FileStat],
        strict: bool,
        fresh: dict[str, _Read],
        budget: list[int],
        result: SyncResult,
    ) -> set[str]:
        """Read what may have changed into `fresh` (what cannot be read goes to
        `result.unsaved`); return the names that vanished before they could be read."""
        vanished = set()
        for name, st in files.items():
            known = self.known.get(name)
            if known and not strict and known.trusted(st):
                continue
            read = self._read(name, st, budget)
            if not isinstance(read, _Read):
                if read:
                    result.unsaved[name] = read
                else:  # it vanished: renamed or replaced since the scan
                    vanished.add(name)
                self.tracker.mark_dirty()
                continue
            result.unsaved.pop(name, None)
            if known and known.sha256 == read.known.sha256:
                known.stat, known.read_ns = read.known.stat, read.known.read_ns
                continue
            fresh[name] = read
        return vanished

    def _read(self, name: str, st: sc.FileStat, budget: list[int]) -> _Read | str:
        """The file's hash (and its content if small and within the budget), or why not
        ('' if it is gone)."""
        path = self.root / name
        try:
            self.tracker.expect_own_read(path)
            read_ns = time.time_ns()
            if st.size <= SMALL_FILE and st.size <= budget[0]:
                data, actual = sc.read_regular(path)
                budget[0] -= len(data)
                return _Read(Known(hashlib.sha256(data).hexdigest(), actual, read_ns), data)
            digest, actual, after = sc.hash_regular(path)
            if after != actual:
                self._warn_once(f"busy:{name}", f"{name}: {STILL_WRITTEN}; saved once it settles")
                return STILL_WRITTEN
            return _Read(Known(digest, actual, read_ns), None)
        except FileNotFoundError:
            return ""
        except (OSError, LockerError) as exc:
            message = exc.strerror if isinstance(exc, OSError) else str(exc)
            self._warn_once(f"read:{name}", f"cannot read {name}: {message}")
            return message or "unreadable"

    def _distrust_moved(self, changes: sc.Changes, fresh: dict[str, _Read]) -> None:
        """A streamed file changed after it was hashed: what the vault took is unknown, so the
        next sync reads and saves it again."""
        for name in changes.changed + changes.added:
            if fresh[name].data is None and self._stat(name) != fresh[name].known.stat:
                self.known[name] = Known("", fresh[name].known.stat, 0)
                self.tracker.mark_dirty()

    def _stat(self, name: str) -> sc.FileStat | None:
        try:
            return sc.FileStat.of(os.lstat(self.root / name))
        except OSError:
            return None

    def _hold_mass_delete(self, changes: sc.Changes, files_left: bool) -> sc.Changes:
        """Every file gone at once is saved only once the directory has stayed empty for
        ALL_GONE_GRACE: a directory being torn down must not empty the vault."""
        if files_left or not changes.deleted:
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

    def _valid(self, name: str, unsaved: dict[str, str]) -> bool:
        try:
            check_name(name)
            return True
        except UsageError as exc:
            self._warn_once(f"name:{name}", f"{exc}; it is not saved")
            unsaved[name] = str(exc)
            return False

    def _drop_invalid(self, changes: sc.Changes, unsaved: dict[str, str]) -> sc.Changes:
        """Names the vault refuses are not saved (and a rename to one keeps the old entry);
        they go to `unsaved`, to be kept at lock and renamed by `locker recover`."""
        return sc.Changes(
            [n for n in changes.changed if self._valid(n, unsaved)],
            [n for n in changes.added if self._valid(n, unsaved)],
            changes.deleted,
            [(old, new) for old, new in changes.renamed if self._valid(new, unsaved)],
        )

    def _commit_settled(
        self,
        changes: sc.Changes,
        fresh: dict[str, _Read],
        final: tuple[str, str] | None,
        unsaved: dict[str, str],
    ) -> sc.Changes:
        """Commit; if that fails while streamed files changed since they were hashed (still
        growing), commit again without the files that moved, which wait for a later sync, as
        often as the retry meets another one."""
        while True:
            try:
                self.commit(changes, fresh, final)
                return changes
            except (LockerError, OSError):
                moved = {
                    n
                    for n in changes.changed + changes.added
                    if fresh[n].data is None and self._stat(n) != fresh[n].known.stat
                }
                if not moved:
                    raise
            for name in sorted(moved):
                self._warn_once(f"busy:{name}", f"{name}: {STILL_WRITTEN}; saved once it settles")
                unsaved[name] = STILL_WRITTEN
            changes = sc.Changes(
                [n for n in changes.changed if n not in moved],
                [n for n in changes.added if n not in moved],
                changes.deleted,
                changes.renamed,
            )
            if not changes:
                if final:
                    self.record_event(*final)
                return changes

    def record_event(self, event: str, detail: str) -> None:
        """An audit event with nothing else to save (the mount, a lock with no changes): sealed
        into a small file beside the vault that the next save merges (store/deferred.py), not a
        save of the whole vault. It is synced to the disk when this returns; if it cannot be
        written, a save carries the event instead, and if that fails too, this raises with the
        event still staged, for the next save that succeeds."""
        try:
            self.vault.record_deferred(event, detail=detail)
        except LockerError:
            self.vault.record(event, detail=detail)
            self.vault.commit()

    def commit(
        self, changes: sc.Changes, fresh: dict[str, _Read], final: tuple[str, str] | None
    ) -> None:
        v = self.vault
        try:
            for old, new in changes.renamed:
                v.rename(old, new, force=True)
            for name in changes.deleted:
                v.remove(name)
            for name in changes.changed + changes.added:
                data = fresh[name].data
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


def _hashing(chunks: Iterator[bytes], digest: hashlib._Hash, progress: Progress) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
        progress(len(chunk))
