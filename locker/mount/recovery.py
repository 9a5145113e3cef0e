"""Recovering what a crashed mount left behind: compare the orphaned directory with the
journal and with the vault as it is now, and save the changes without ever overwriting what
changed in the vault meanwhile (the orphan's copy is kept beside it as NAME.recovered-...).
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from locker.errors import LockerError, UsageError
from locker.mount import journal as jn
from locker.mount import scan as sc
from locker.store.format import check_name
from locker.text import plural
from locker.vault import Vault

VAULT_PHRASES = {
    "changed": "changed in the vault",
    "added": "added to the vault",
    "deleted": "deleted from the vault",
}


@dataclass
class Conflict:
    """The vault changed an entry since the orphaned mount last synced it, and the mount
    changed it too: the vault's version is never overwritten."""

    name: str
    mount: str  # what the mount did: "changed", "added", "deleted", "renamed to NEW"
    vault: str  # what happened in the vault since: "changed", "added", "deleted"
    saved_as: str | None = None  # where the mount's version goes (None: the mount deleted it)

    def message(self, done: bool = True) -> str:
        """One line; `done=False` says what recovering will do (for the report before it)."""
        keep, save = ("kept", "saved") if done else ("will keep", "will save")
        actions = []
        if self.vault != "deleted":
            actions.append(f"{keep} the vault's version")
        if self.saved_as:
            actions.append(f"{save} the mount's as {self.saved_as}")
        return (
            f"{self.name}: {self.mount} in the mount, but {VAULT_PHRASES[self.vault]} since the "
            f"mount last saved; {' and '.join(actions)}"
        )

    def audit(self) -> str:
        return f"{self.name} -> {self.saved_as}" if self.saved_as else f"kept {self.name}"


@dataclass
class RecoveryPlan:
    """What `recover` does to the vault: renames, removals, and writes of files from the
    orphaned directory (entry name, file name), with the conflicts that shaped it."""

    renames: list[tuple[str, str]] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    writes: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    def names(self) -> tuple[str, ...]:
        out = [n for pair in self.renames for n in pair] + self.removes
        out += [n for pair in self.writes for n in pair if valid_name(n)]
        return tuple(dict.fromkeys(out))


def valid_name(name: str) -> bool:
    """A name the vault takes (a file saved under another name has its own refused one)."""
    try:
        check_name(name)
        return True
    except UsageError:
        return False


def recovered_name(name: str, taken: set[str], when: float) -> str:
    """`NAME.recovered-YYYYMMDD-HHMMSS` (then -2, -3...): a valid entry name, unused by any
    name in `taken` and not clashing with one as a file/directory."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    head, _, leaf = name.rpartition("/")
    for n in range(1, 10_000):
        suffix = f".recovered-{stamp}" + (f"-{n}" if n > 1 else "")
        room = 255 - len(suffix.encode())
        short = leaf.encode()[:room].decode(errors="ignore")
        candidate = f"{head}/{short}{suffix}" if head else f"{short}{suffix}"
        try:
            check_name(candidate)
        except UsageError:
            continue
        if candidate in taken or any(t.startswith(candidate + "/") for t in taken):
            continue
        taken.add(candidate)
        return candidate
    raise LockerError(f"no free name to save the recovered version of {name!r}")


def suggest_name(name: str, taken: set[str], when: float) -> str:
    """A valid entry name for a file whose name the vault refuses: systemd's `\\xNN` escapes
    decoded where that gives a printable character, other backslashes, controls, bidi marks
    and undecodable bytes made `_`, components cut to 255 bytes and the whole to 1024; one
    already taken gets the `.recovered-...` suffix."""
    raw = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    raw = re.sub(r"\\x([0-9a-fA-F]{2})", _unescape, raw)
    parts = []
    for part in raw.split("/"):
        clean = "".join(
            "_" if c in "\\\ufffd" or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
            for c in part
        )
        if clean in ("", ".", ".."):
            clean = clean.replace(".", "_") or "_"
        parts.append(clean.encode()[:255].decode(errors="ignore"))
    candidate = "/".join(parts).encode()[:1024].decode(errors="ignore").rstrip("/") or "_"
    try:
        check_name(candidate)
    except UsageError:
        candidate = "recovered"
    if candidate in taken or any(t.startswith(candidate + "/") for t in taken):
        return recovered_name(candidate, taken, when)
    taken.add(candidate)
    return candidate


def _unescape(match: re.Match[str]) -> str:
    c = chr(int(match.group(1), 16))
    return c if c.isprintable() and c not in "/\\" else match.group(0)


def _entry_hash(vault: Vault, name: str) -> str:
    """sha256 of the entry's content as the vault holds it now (streamed, each chunk verified)."""
    digest = hashlib.sha256()
    for chunk in vault.chunks(name):
        digest.update(chunk)
    return digest.hexdigest()


def plan_recovery(
    vault: Vault,
    record: jn.Record,
    changes: sc.Changes,
    now: float | None = None,
    sources: dict[str, str] | None = None,
) -> RecoveryPlan:
    """Decide how to save an orphan's changes without overwriting what the vault changed since.

    The journal holds each file's hash as last synced, which is what the vault held then. An
    entry whose vault content still has that hash is the orphan's to change; one whose content
    moved on (or that appeared or vanished) is a conflict: the vault's version stays, and the
    orphan's is saved beside it under a new name. Nothing is overwritten or deleted silently.
    `sources` maps an entry name in `changes` to the file it comes from, where they differ (a
    file whose name the vault refuses, saved under another).
    """
    files = sources or {}
    root = Path(record.dir)
    when = time.time() if now is None else now
    plan = RecoveryPlan()
    present = set(vault.names())
    current: dict[str, str | None] = {}

    def in_vault(name: str) -> str | None:
        if name not in current:
            current[name] = _entry_hash(vault, name) if name in present else None
        return current[name]

    taken = present | set(changes.changed) | set(changes.added)
    taken |= {new for _, new in changes.renamed}

    def put(name: str, mount: str) -> Conflict | None:
        """The orphan's file `name` should become that entry, which the vault was expected
        to hold with the recorded hash (or not at all, for a new name)."""
        source = files.get(name, name)
        now_hash = in_vault(name)
        if now_hash == record.files.get(name):
            plan.writes.append((name, source))
            return None
        if now_hash is not None and now_hash == sc.sha256_file(root / source):
            return None  # the vault already holds exactly this
        vault_did = (
            "deleted" if now_hash is None else "added" if name not in record.files else "changed"
        )
        saved = recovered_name(name, taken, when)
        plan.writes.append((saved, source))
        conflict = Conflict(name, mount, vault_did, saved)
        plan.conflicts.append(conflict)
        return conflict

    def drop(name: str, mount: str) -> bool:
        """The orphan deleted `name` (or moved it away); True if the vault's entry may go."""
        now_hash = in_vault(name)
        if now_hash is None:
            return False  # gone from the vault too
        if now_hash == record.files.get(name):
            return True
        plan.conflicts.append(Conflict(name, mount, "changed"))
        return False

    for name in changes.changed:
        put(name, "changed")
    for name in changes.added:
        put(name, "added")
    for name in changes.deleted:
        if drop(name, "deleted"):
            plan.removes.append(name)
    for old, new in changes.renamed:
        old_now, old_then = in_vault(old), record.files.get(old)
        if old_now == old_then and in_vault(new) is None:
            plan.renames.append((old, new))
            continue
        # Not a clean rename: the old name and the new one are each handled on their own.
        if old_now == old_then:
            plan.removes.append(old)
            put(new, f"renamed from {old}")
            continue
        # The vault changed (or deleted) the old entry since: it stays as the vault has it.
        moved = f"renamed to {new}"
        kept = None if old_now is None else Conflict(old, moved, "changed")
        if kept:
            plan.conflicts.append(kept)
        if put(new, f"renamed from {old}") is None and (new, files.get(new, new)) in plan.writes:
            if kept:
                kept.saved_as = new
            else:
                plan.conflicts.append(Conflict(old, moved, "deleted", new))
    return plan


def recover(
    vault: Vault, record: jn.Record, changes: sc.Changes, plan: RecoveryPlan | None = None
) -> RecoveryPlan:
    """Save an orphaned mount's changes into `vault` (opened for writing) as `plan_recovery`
    decides, in one commit whose audit event names every conflict."""
    root = Path(record.dir)
    plan = plan or plan_recovery(vault, record, changes)
    for old, new in plan.renames:
        vault.rename(old, new, force=True)
    for name in plan.removes:
        vault.remove(name)
    for name, source in plan.writes:
        vault.add_file(name, root / source, force=True)
    detail = f"{changes.summary()} from {record.dir}"
    if plan.conflicts:
        detail += f"; {plural(len(plan.conflicts), 'conflict')}: "
        detail += ", ".join(c.audit() for c in plan.conflicts)
    vault.record("recover", plan.names(), detail[:1000])
    vault.commit()
    return plan
