"""Scanning a mount directory: its regular files by entry name, their stat, their hashes, and
what changed against a recorded set of hashes (with renames paired by content).

Plain file-system code that the mount and recovery share. No vault, no crypto, no watchdog.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from locker.errors import LockerError

# Editor swap, backup and lock files, and locker's own temp names: new files with such names are
# never synced (and are wiped on lock). An entry the vault holds is synced whatever its name.
IGNORED = (".*.sw?", ".*.swx", "*~", "4913", ".#*", ".locker-????????????????.tmp")


def is_ignored(name: str) -> bool:
    """True for a file name (last component) that looks like editor litter: a new file with such
    a name is not synced (an entry already in the vault is, whatever its name)."""
    leaf = name.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(leaf, pattern) for pattern in IGNORED)


@dataclass(frozen=True)
class FileStat:
    """What changes when a file is written or replaced: compared before anything is read."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@dataclass
class Scan:
    files: dict[str, FileStat] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # symlinks, sockets, fifos


def scan_tree(root: Path, known: Collection[str] = ()) -> Scan:
    """Regular files under `root` by entry name ('/'-separated), never following symlinks.
    Editor litter is left out unless its name is in `known` (an entry the vault holds)."""
    scan = Scan()

    def walk(directory: Path, prefix: str) -> None:
        try:
            items = list(os.scandir(directory))
        except FileNotFoundError:
            return
        for item in items:
            name = prefix + item.name
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                walk(Path(item.path), name + "/")
            elif stat.S_ISREG(st.st_mode):
                if name in known or not is_ignored(name):
                    scan.files[name] = FileStat.of(st)
            else:
                scan.skipped.append(name)

    walk(root, "")
    return scan


def read_regular(path: Path) -> tuple[bytes, FileStat]:
    """The whole content of a regular file (never through a symlink) and its stat."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LockerError(f"{path} is not a regular file")
        return f.read(), FileStat.of(st)


def sha256_file(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class Changes:
    """What a mount directory holds that the vault does not (as of the last recorded sync)."""

    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.deleted or self.renamed)

    def lines(self) -> list[str]:
        out = [f"changed  {n}" for n in self.changed]
        out += [f"added    {n}" for n in self.added]
        out += [f"deleted  {n}" for n in self.deleted]
        out += [f"renamed  {a} -> {b}" for a, b in self.renamed]
        return out

    def summary(self) -> str:
        return change_summary(
            len(self.changed), len(self.added), len(self.deleted), len(self.renamed)
        )


def change_summary(changed: int, added: int, deleted: int, renamed: int) -> str:
    """'3 changed, 1 added, 1 deleted' (only the kinds that happened), or 'no changes'."""
    counts = (changed, "changed"), (added, "added"), (deleted, "deleted"), (renamed, "renamed")
    return ", ".join(f"{n} {label}" for n, label in counts if n) or "no changes"


def pair_renames(
    added: dict[str, str], deleted: dict[str, str]
) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Match deleted and added names with the same content hash: those are renames."""
    by_hash: dict[str, list[str]] = {}
    for name, digest in sorted(deleted.items()):
        by_hash.setdefault(digest, []).append(name)
    renamed, still_added = [], []
    for name, digest in sorted(added.items()):
        olds = by_hash.get(digest)
        if olds:
            renamed.append((olds.pop(0), name))
        else:
            still_added.append(name)
    paired = {old for old, _ in renamed}
    return still_added, sorted(n for n in deleted if n not in paired), renamed


def diff(root: Path, recorded: dict[str, str]) -> Changes:
    """Compare every file under `root` with the recorded hashes (recovery: no stat shortcut)."""
    current = {name: sha256_file(root / name) for name in scan_tree(root, recorded).files}
    changed = sorted(n for n, h in current.items() if n in recorded and recorded[n] != h)
    added, deleted, renamed = pair_renames(
        {n: h for n, h in current.items() if n not in recorded},
        {n: h for n, h in recorded.items() if n not in current},
    )
    return Changes(changed, added, deleted, renamed)
