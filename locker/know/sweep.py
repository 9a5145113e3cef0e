"""`locker sweep`: find the plaintext secrets lying around a tree, worst first.

Walks the given paths without following symbolic links, skipping special files and (unless
asked) other file systems; reads each regular file up to the recogniser's size limit and keeps
those the recogniser says hold a secret (`facts["secret"]`): private keys, private JWKs,
credential env files, kubeconfigs with keys or tokens, .netrc, .pgpass, AWS credentials.
Public certificates and keys, READMEs and source are never reported. Needs no vault.

`--import` is two steps, so a face can ask before the second: `import_findings` adds the
files to a vault, commits and verifies them by reading back; `shred_held` then removes the
originals the vault verifiably holds.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from locker.errors import InvalidNameError
from locker.know.facts import MAX_RECOGNISED_SIZE, Facts, key_label
from locker.know.recognise import recognise
from locker.know.shred import digest_of, shred_if_held
from locker.text import plural

if TYPE_CHECKING:
    from locker.vault import Vault

# Directories that hold no one's plaintext secrets and are huge: skipped by name.
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", ".tox"}


@dataclass
class Finding:
    path: Path
    facts: Facts
    owner: str
    uid: int
    mode: int
    size: int
    mtime_ns: int

    @property
    def readable_by(self) -> str:
        if self.mode & 0o004:
            return "everyone"
        if self.mode & 0o040:
            return "group"
        return "owner"

    @property
    def encrypted(self) -> bool:
        keys = self.facts.get("keys") or []
        return bool(self.facts.get("encrypted")) or (
            bool(keys) and all(k.get("encrypted") for k in keys)
        )

    @property
    def what(self) -> str:
        f = self.facts
        if f["type"] == "env":
            names = f.get("credentials") or []
            return "credentials " + ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")
        keys = (f.get("keys") or []) + (f.get("jwks") or [])
        if keys:
            return key_label(keys[0])
        for field in ("machines", "profiles", "clusters"):
            if f.get(field):
                return f"{field} " + ", ".join(f[field][:4])
        return ""

    def badness(self) -> tuple[int, int]:
        """Higher is worse: who can read it, then an unencrypted key over credentials."""
        reach = {"everyone": 2, "group": 1, "owner": 0}[self.readable_by]
        return reach, 0 if self.encrypted else 1


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _read(path: str, size: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def walk(root: Path, cross_devices: bool = False) -> Iterator[tuple[str, os.stat_result]]:
    """(path, lstat) of every regular file under `root`; links and special files are skipped."""
    try:
        top = os.lstat(root)
    except OSError:
        return
    if stat.S_ISREG(top.st_mode):
        yield str(root), top
        return
    if not stat.S_ISDIR(top.st_mode):
        return
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for entry in reversed(entries):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if entry.name in SKIP_DIRS or (not cross_devices and st.st_dev != top.st_dev):
                    continue
                stack.append(entry.path)
            elif stat.S_ISREG(st.st_mode):
                yield entry.path, st


def sweep(paths: list[Path], cross_devices: bool = False) -> tuple[list[Finding], int]:
    """(the secrets found, worst first; how many files were looked at)."""
    found: list[Finding] = []
    seen = 0
    for root in paths:
        for path, st in walk(root, cross_devices):
            seen += 1
            if st.st_size == 0 or st.st_size > MAX_RECOGNISED_SIZE:
                continue
            data = _read(path, st.st_size)
            if data is None:
                continue
            facts = recognise(data, path)
            if facts is None or not facts.get("secret"):
                continue
            found.append(
                Finding(
                    Path(path),
                    facts,
                    _owner(st.st_uid),
                    st.st_uid,
                    stat.S_IMODE(st.st_mode),
                    st.st_size,
                    st.st_mtime_ns,
                )
            )
    found.sort(key=lambda f: (tuple(-x for x in f.badness()), str(f.path)))
    return found, seen


HEADINGS = ("READABLE BY", "MODE", "OWNER", "KIND", "PATH", "WHAT")


def cells(f: Finding) -> tuple[str, str, str, str, str, str]:
    """One finding as a row of the sweep table, in the order of HEADINGS (not escaped)."""
    what = f.what if not f.encrypted else "encrypted"
    owner = "you" if f.uid == os.getuid() else f.owner
    return (f.readable_by, f"{f.mode:04o}", owner, f.facts["type"], str(f.path), what)


def summary(found: int, seen: int, imported: int, left: int) -> str:
    return (
        f"{plural(found, 'plaintext secret')} in {plural(seen, 'file')}; "
        f"{imported} imported, {left} left in place"
    )


def entry_name(path: Path) -> str:
    """The vault name of a swept file: its absolute path without the leading '/'."""
    return str(Path(os.path.abspath(path))).lstrip("/")


def read_unchanged(finding: Finding) -> bytes | None:
    """The file's content, if it is still the file that was found (same size and mtime)."""
    try:
        st = os.lstat(finding.path)
    except OSError:
        return None
    if (st.st_size, st.st_mtime_ns) != (finding.size, finding.mtime_ns):
        return None
    data = _read(str(finding.path), st.st_size)
    return data if data is not None and len(data) == st.st_size else None


@dataclass
class Held:
    """After `import_findings`: the files the vault verifiably holds (path -> (entry name,
    SHA-256 of the content)), and why each other file was left in place."""

    held: dict[Path, tuple[str, str]] = dataclasses.field(default_factory=dict)
    reasons: dict[Path, str] = dataclasses.field(default_factory=dict)


def import_findings(vault: Vault, found: list[Finding]) -> Held:
    """Add each finding under `entry_name(path)` to `vault` (open for writing), commit, and
    verify every one by reading it back. A file that changed since the sweep, or whose name
    is taken or not a valid entry name, is skipped with its reason. Nothing is shredded."""
    result = Held()
    staged: dict[Path, tuple[str, str]] = {}
    taken = set(vault.names())
    for f in found:
        name = entry_name(f.path)
        data = read_unchanged(f)
        if data is None:
            result.reasons[f.path] = "it changed while being imported"
        elif name in taken:
            result.reasons[f.path] = f"the vault already has an entry named {name}"
        else:
            try:
                vault.add_bytes(name, data)
            except InvalidNameError as exc:  # a name someone else chose: skip just this file
                result.reasons[f.path] = f"its path cannot be an entry name: {exc}"
                continue
            staged[f.path] = (name, digest_of([data]))
    if staged:
        vault.record("sweep", tuple(n for n, _ in staged.values()))
        vault.commit()
    for path, (name, digest) in staged.items():
        if digest_of(vault.chunks(name)) == digest:
            result.held[path] = (name, digest)
        else:
            result.reasons[path] = f"it did not verify (the vault holds it as {name})"
    return result


def shred_held(held: Held) -> dict[Path, str]:
    """Shred each original the vault holds, if it is still what was imported; returns the
    shredded paths -> entry names, and adds to `held.reasons` why any other was kept."""
    imported: dict[Path, str] = {}
    for path, (name, digest) in held.held.items():
        why = shred_if_held(path, digest)
        if why is None:
            imported[path] = name
        else:
            held.reasons[path] = f"{why} (the vault holds it as {name})"
    return imported
