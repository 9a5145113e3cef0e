"""Staging writes to the vault's entries: add a file or bytes, copy an entry from another
vault, set an attribute, remove, rename, and the facts of new content (know/ recognises it).
`Vault` inherits these methods; its `commit` saves what they stage.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from locker.errors import ExistsError, NotFoundError, UsageError
from locker.store.container import Container, Reencrypt
from locker.store.format import check_name
from locker.store.index import Entry
from locker.store.keys import Random
from locker.store.sources import PlainFile, Plaintext, Source

# Describes new content for the index (know/ provides it; the vault only stores its answer in
# the entry's `facts` attribute): (content, entry name) -> facts as JSON text, or None.
Recogniser = Callable[[bytes, str], "str | None"]
FACTS_ATTR = "facts"
RECOGNISE_LIMIT = 1024 * 1024  # larger content is a plain file and is not read twice


class Staged:
    """An entry as the next save writes it, and where its ciphertext comes from."""

    __slots__ = ("entry", "source")

    def __init__(self, entry: Entry, source: Source) -> None:
        self.entry = entry
        self.source = source


def _read_small(path: Path) -> bytes | None:
    """A small file's content for the recogniser; None if it cannot be read (the save says so)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = f.read(RECOGNISE_LIMIT + 1)
    return data if len(data) <= RECOGNISE_LIMIT else None


class EditMethods:
    """Entry-staging methods of `Vault`, over the staging state it keeps."""

    _container: Container
    _staged: dict[str, Staged]
    _rng: Random
    _clock: Callable[[], float]
    recogniser: Recogniser | None

    if TYPE_CHECKING:  # Vault's own

        def _require_writer(self) -> None: ...
        def _reset_staging(self) -> None: ...
        def entry(self, name: str) -> Entry: ...
        def chunks(self, name: str) -> Iterator[bytes]: ...

    def _new_content(
        self, name: str, size: int, source: Source, force: bool, head: bytes | None = None
    ) -> None:
        old = self._take_name(name, force)
        now = int(self._clock())
        entry = Entry(
            entry_id=old.entry.entry_id if old else self._rng(16),
            name=name,
            size=size,
            created=old.entry.created if old else now,
            modified=now,
            content_salt=self._rng(16),
            kind=old.entry.kind if old else "file",
            attrs=dict(old.entry.attrs) if old else {},
        )
        self._stage(entry, source, head)

    def _take_name(self, name: str, force: bool) -> Staged | None:
        """Check that `name` may receive new content; the entry it replaces, if any."""
        self._require_writer()
        check_name(name)
        old = self._staged.get(name)
        if old and not force:
            raise ExistsError(f"entry {name!r} already exists", hint="pass --force to replace it")
        return old

    def _stage(self, entry: Entry, source: Source, head: bytes | None) -> None:
        """Stage `entry`; with a recogniser its facts are made anew from `head`, its content
        when small enough (never taken on trust from elsewhere)."""
        if self.recogniser is not None:
            entry.attrs.pop(FACTS_ATTR, None)
            facts = self.recogniser(head, entry.name) if head is not None else None
            if facts is not None:
                entry.attrs[FACTS_ATTR] = facts
        self._staged[entry.name] = Staged(entry, source)

    def add_file(self, name: str, path: Path, force: bool = False) -> None:
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError as exc:
            raise NotFoundError(f"cannot read {path}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path} is not a regular file")
        head = _read_small(path) if self.recogniser and st.st_size <= RECOGNISE_LIMIT else None
        self._new_content(name, st.st_size, PlainFile(path, st.st_size), force, head)

    def copy_entry(
        self, other: EditMethods, name: str, as_name: str | None = None, force: bool = False
    ) -> None:
        """Stage `other`'s entry `name` here (as `as_name`), content and metadata, re-encrypted
        under this vault's key; every chunk is verified as it is read. `other` stays open until
        the commit."""
        src = other.entry(name)
        new_name = as_name or name
        old = self._take_name(new_name, force)
        entry = Entry(
            entry_id=old.entry.entry_id if old else self._rng(16),
            name=new_name,
            size=src.size,
            created=src.created,
            modified=src.modified,
            content_salt=self._rng(16),
            kind=src.kind,
            attrs=dict(src.attrs),
        )
        source: Source = Reencrypt(other._container, src)
        head = None
        if self.recogniser is not None and src.size <= RECOGNISE_LIMIT:
            # A vault that recognises (import) never takes facts on trust: a crafted bundle
            # must not make inspect report a false expiry or pairing. The content read for
            # that, verified, is what the save writes: the entry is decrypted once.
            head = b"".join(other.chunks(name))
            source = Plaintext(head)
        self._stage(entry, source, head)

    def add_bytes(self, name: str, data: bytes, force: bool = False) -> None:
        small = data if len(data) <= RECOGNISE_LIMIT else None
        self._new_content(name, len(data), Plaintext(data), force, small)

    def set_attr(self, name: str, key: str, value: str) -> None:
        """Stage a new value of one index attribute of `name`; its content stays as it is."""
        self._require_writer()
        if name not in self._staged:
            raise NotFoundError(f"no entry named {name!r}", hint="'locker ls' lists the entries")
        staged = self._staged[name]
        staged.entry.attrs = {**staged.entry.attrs, key: value}  # never the saved entry's dict

    def remove(self, name: str) -> None:
        self._require_writer()
        if name not in self._staged:
            raise NotFoundError(f"no entry named {name!r}", hint="'locker ls' lists the entries")
        del self._staged[name]

    def rename(self, old: str, new: str, force: bool = False) -> None:
        self._require_writer()
        check_name(new)
        if old not in self._staged:
            raise NotFoundError(f"no entry named {old!r}", hint="'locker ls' lists the entries")
        if new in self._staged and not force:
            raise ExistsError(f"entry {new!r} already exists", hint="pass --force to replace it")
        staged = self._staged.pop(old)
        staged.entry.name = new
        self._staged[new] = staged

    def names(self) -> list[str]:
        """Names as staged (what the next commit will hold)."""
        return sorted(self._staged)

    def discard(self) -> None:
        """Drop everything staged since the last commit (a failed sync retries from scratch)."""
        self._reset_staging()
