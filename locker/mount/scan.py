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
from locker.text import printable

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
    # What could not be listed or looked at (a directory ends with '/'), with the reason: what
    # is below it is unknown, neither present nor deleted.
    unreadable: dict[str, str] = field(default_factory=dict)
    # Names listed but gone before they could be looked at (renamed or removed meanwhile; a
    # directory ends with '/'): the directory was changing under the scan.
    vanished: set[str] = field(default_factory=set)

    def hides(self, name: str) -> bool:
        """True if `name` may exist but could not be seen (it is under an unreadable name; the
        root, "", unreadable hides every name)."""
        return name in self.unreadable or any(
            u == "" or (u.endswith("/") and name.startswith(u)) for u in self.unreadable
        )


RESCANS = 50  # how often a scan that saw files move under it looks again

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def scan_tree(root: Path, known: Collection[str] = ()) -> Scan:
    """Regular files under `root` by entry name ('/'-separated), never following symlinks.
    Editor litter is left out unless its name is in `known` (an entry the vault holds). It walks
    by directory descriptors, so no path length limit applies, and never raises for what it
    cannot read: that goes to `unreadable`."""
    scan = Scan()

    def walk(dir_fd: int, prefix: str) -> None:
        try:
            names = os.listdir(dir_fd)
        except OSError as exc:
            scan.unreadable[prefix] = exc.strerror or type(exc).__name__
            return
        for leaf in names:
            name = prefix + leaf
            try:
                st = os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                scan.vanished.add(name)
                continue
            except OSError as exc:
                scan.unreadable[name] = exc.strerror or type(exc).__name__
                continue
            if stat.S_ISDIR(st.st_mode):
                try:
                    sub = os.open(leaf, _DIR_FLAGS, dir_fd=dir_fd)
                except FileNotFoundError:
                    scan.vanished.add(name + "/")
                    continue
                except OSError as exc:
                    scan.unreadable[name + "/"] = exc.strerror or type(exc).__name__
                    continue
                try:
                    walk(sub, name + "/")
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                if name in known or not is_ignored(name):
                    scan.files[name] = FileStat.of(st)
            else:
                scan.skipped.append(name)

    try:
        root_fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        return scan
    except OSError as exc:
        scan.unreadable[""] = exc.strerror or type(exc).__name__
        return scan
    try:
        walk(root_fd, "")
    finally:
        os.close(root_fd)
    return scan


def steady_scan(root: Path, known: Collection[str] = (), tries: int = RESCANS) -> Scan:
    """`scan_tree` again until no listed name vanished under it (a rename in flight), at most
    `tries` times; the last scan otherwise (its `vanished` then says that files still move)."""
    scan = scan_tree(root, known)
    for _ in range(tries - 1):
        if not scan.vanished:
            break
        scan = scan_tree(root, known)
    return scan


def read_regular(path: Path) -> tuple[bytes, FileStat]:
    """The whole content of a regular file (never through a symlink) and its stat: read to
    its end, however much it grew since the stat, in plain `read`s into one buffer (five
    system calls for a small file, where a buffered file object makes nine)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LockerError(f"{path} is not a regular file")
        data = os.read(fd, st.st_size + 1)  # one more byte: a file that grew is read on
        if data:
            more = [data]
            while block := os.read(fd, max(st.st_size, 64 * 1024)):
                more.append(block)
            data = b"".join(more) if len(more) > 1 else data
        return data, FileStat.of(st)
    finally:
        os.close(fd)


def hash_regular(path: Path) -> tuple[str, FileStat, FileStat]:
    """sha256 of a regular file read in a stream (never through a symlink), with its stat
    before and after the read: when they differ, the file changed while it was read."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb"):
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LockerError(f"{path} is not a regular file")
        digest = _sha256_upto(fd, st.st_size)
        return digest, FileStat.of(st), FileStat.of(os.fstat(fd))


def sha256_file(path: Path) -> str:
    """sha256 of a file as large as it was when opened: one that keeps growing while it is read
    must not keep the reader busy for ever (the caller sees the change by its stat)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return _sha256_upto(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _sha256_upto(fd: int, size: int) -> str:
    digest = hashlib.sha256()
    done = 0
    while done < size:
        block = os.pread(fd, min(1024 * 1024, size - done), done)
        if not block:
            break
        digest.update(block)
        done += len(block)
    return digest.hexdigest()


@dataclass
class Changes:
    """What a mount directory holds that the vault does not (as of the last recorded sync)."""

    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    # Files whose content could not be read, with the reason: not known to be changed or not.
    unreadable: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.deleted or self.renamed or self.unreadable)

    def lines(self) -> list[str]:
        """One line per change, names made safe for a terminal."""
        p = printable
        out = [f"changed  {p(n)}" for n in self.changed]
        out += [f"added    {p(n)}" for n in self.added]
        out += [f"deleted  {p(n)}" for n in self.deleted]
        out += [f"renamed  {p(a)} -> {p(b)}" for a, b in self.renamed]
        out += [f"unreadable {p(n)}: {why}" for n, why in sorted(self.unreadable.items())]
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
    """Compare every file under `root` with the recorded hashes (recovery: no stat shortcut).
    What cannot be read is listed as unreadable, and a recorded name that may be hidden under
    it is not taken as deleted."""
    scan = scan_tree(root, recorded)
    current: dict[str, str] = {}
    unreadable = {n.rstrip("/") or ".": why for n, why in scan.unreadable.items()}
    for name in scan.files:
        try:
            current[name] = sha256_file(root / name)
        except OSError as exc:
            unreadable[name] = exc.strerror or type(exc).__name__
    changed = sorted(n for n, h in current.items() if n in recorded and recorded[n] != h)
    added, deleted, renamed = pair_renames(
        {n: h for n, h in current.items() if n not in recorded},
        {
            n: h
            for n, h in recorded.items()
            if n not in current and n not in unreadable and not scan.hides(n)
        },
    )
    return Changes(changed, added, deleted, renamed, unreadable)
