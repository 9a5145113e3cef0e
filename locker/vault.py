"""The API a user thinks in: create, unlock, list, read, add, remove, rename, passwd, rekey,
verify and the audit log; the key-slot methods come from `vault_slots.py`, those of format 2's
generations (a passed-over commit record, recover) from `vault_generations.py`. Writes are
staged and saved in one atomic commit under the writer lock.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from locker.errors import (
    ExistsError,
    LockerError,
    NotFoundError,
    UsageError,
)
from locker.store import container as ct
from locker.store import deferred, generations, keys
from locker.store.container import Container, Planned, Reencrypt, Sealed
from locker.store.format import (
    SLOT_KIND_NAMES,
    VERSION_1,
    VERSION_SINCE,
    KdfCost,
    check_kdf_cost,
    check_name,
    check_tree,
)
from locker.store.index import Entry, Index, LogEvent, log_event
from locker.store.keys import Opener, PassphraseOpener, Random, Unlocked
from locker.store.lockfile import WriterLock, lock_vault_file
from locker.store.sources import CopyCiphertext, PlainFile, Plaintext, Source
from locker.vault_generations import GenerationMethods, read_again, verify_entries
from locker.vault_slots import SlotMethods

Clock = Callable[[], float]
# Describes new content for the index (know/ provides it; the vault only stores its answer in
# the entry's `facts` attribute): (content, entry name) -> facts as JSON text, or None.
Recogniser = Callable[[bytes, str], "str | None"]
FACTS_ATTR = "facts"
RECOGNISE_LIMIT = 1024 * 1024  # larger content is a plain file and is not read twice

DEFAULT_KDF = KdfCost(memory_kib=256 * 1024, time_cost=3, parallelism=4)


def info(path: Path) -> dict[str, Any]:
    """Header facts that need no passphrase. Entry names and counts stay secret."""
    sealed = Sealed.read(path)
    try:
        h = sealed.header
        slots = []
        for s in h.slots:
            item: dict[str, Any] = {"kind": SLOT_KIND_NAMES[s.kind], "id": s.slot_id.hex()}
            if s.kdf is not None:
                item["kdf"] = {
                    "algorithm": "argon2id",
                    "memory_mib": s.kdf.memory_kib / 1024,
                    "time_cost": s.kdf.time_cost,
                    "parallelism": s.kdf.parallelism,
                }
            slots.append(item)
        # Unauthenticated facts: the highest usable record of a v2 file is the one a key
        # would most likely choose.
        record = sealed.records[0][1]
        facts = {
            "path": str(path),
            "format_version": sealed.version,
            "container_id": h.container_id.hex(),
            "file_size": sealed.file_size,
            "header_size": sealed.data_start
            - (record.index_length if sealed.version == VERSION_1 else 0),
            "index_size": record.index_length,
            "index_offset": record.index_offset,
            # v2: everything after the records but that index (entries, and any garbage)
            "data_size": sealed.file_size
            - sealed.data_start
            - (0 if sealed.version == VERSION_1 else record.index_length),
            "slot_count": len(h.slots),
            "slots": slots,
        }
        if sealed.version != VERSION_1:
            facts["generation"] = record.generation
        return facts
    finally:
        sealed.close()


def create(
    path: Path,
    passphrase: bytes | bytearray,
    cost: KdfCost = DEFAULT_KDF,
    *,
    rng: Random = os.urandom,
    clock: Clock = time.time,
) -> None:
    """Write a new, empty vault. Refuses to replace anything at `path`."""
    Vault.new(path, passphrase, cost, rng=rng, clock=clock).close()


def _event(clock: Clock, event: str, names: tuple[str, ...] = (), detail: str = "") -> LogEvent:
    import getpass  # on first use: listing records no event, and socket costs ~3 ms CPU
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return log_event(int(clock()), event, names, _text(user), _text(socket.gethostname()), detail)


def _text(value: str) -> str:
    """`value` as valid Unicode: bytes that were not UTF-8 (a `$USER` from a Latin-1 system,
    decoded with surrogateescape) are kept as backslash escapes instead of failing the save."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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


Key = bytes | bytearray | Sequence[Opener]


def _openers(key: Key) -> Sequence[Opener]:
    return [PassphraseOpener(key)] if isinstance(key, bytes | bytearray) else key


def _refuse_existing(path: Path) -> None:
    if os.path.lexists(path):
        raise ExistsError(f"{path} already exists", hint="choose another --vault path")


def _refuse_symlink(path: Path) -> None:
    """Before the lock file is made: a symlinked vault is refused and leaves no `.lock`."""
    if path.is_symlink():
        raise LockerError(f"{path} is a symbolic link; refusing to follow it")


def _check_writable(sealed: Sealed) -> None:
    """Take the vault file's own lock (a hard link is the same vault), and refuse to replace
    a vault its owner made read-only: a save would silently turn it into a 0600 file."""
    fd = sealed.file.fileno()
    lock_vault_file(fd, sealed.path)
    mode = os.fstat(fd).st_mode
    if not mode & stat.S_IWUSR:
        raise LockerError(
            f"{sealed.path} is read-only (mode {stat.S_IMODE(mode):04o}); not changing it",
            hint=f"chmod u+w {sealed.path} to allow changes",
        )


class _Staged:
    """An entry as the next save writes it, and where its ciphertext comes from."""

    __slots__ = ("entry", "source")

    def __init__(self, entry: Entry, source: Source) -> None:
        self.entry = entry
        self.source = source


class Vault(SlotMethods, GenerationMethods):
    """An unlocked vault. Opened for writing it holds the writer lock until closed."""

    def __init__(
        self, path: Path, container: Container, lock: WriterLock | None, rng: Random, clock: Clock
    ) -> None:
        self.path = path
        self._container = container
        self._lock = lock
        # After an append the vault file is the same one, and its flock stays with the
        # descriptor that took it (a new descriptor of the same file cannot take it again).
        self._lock_holder: BinaryIO | None = None
        self._rng = rng
        self._clock = clock
        # Set by the CLI and the TUI for writes; None keeps entries' facts as they are.
        self.recogniser: Recogniser | None = None
        # Set by the CLI and the TUI: one line for the user (the save that upgrades a version 1
        # file says so).
        self.notice: Callable[[str], None] | None = None
        self._recovered = False  # recover_generation decided about a passed-over record
        self._compact_next = False
        self._unfinished: tuple[int, bytes] | None = None  # GenerationMethods._see_failed_save
        self._reset_staging()

    @classmethod
    def open(
        cls,
        path: Path,
        key: Key,
        *,
        write: bool = False,
        purpose: str = "write",
        rng: Random = os.urandom,
        clock: Clock = time.time,
        unverified: bool = False,
    ) -> Vault:
        """Unlock with a passphrase, or with the first of `key`'s openers that opens a slot.
        With write=True, take the writer lock first (exit 5 if held). `unverified`: open a
        vault none of whose records verifies at the one whose index authenticates, for
        `recover_generation` alone (Container.open)."""
        if write:
            _refuse_symlink(path)
        lock = WriterLock(path, purpose).acquire() if write else None
        try:
            sealed = Sealed.read(path)
            try:
                if write:
                    _check_writable(sealed)
                unlocked = keys.unlock(sealed.header, _openers(key))
                container = Container.open(sealed, unlocked, unverified)
                if container.passed_over and not write:
                    container = read_again(container)
            except BaseException:
                sealed.close()
                raise
            if write:
                ct.remove_stale_temps(path)
            return cls(path, container, lock, rng, clock)
        except BaseException:
            if lock:
                lock.release()
            raise

    @classmethod
    def new(
        cls,
        path: Path,
        passphrase: bytes | bytearray,
        cost: KdfCost = DEFAULT_KDF,
        *,
        purpose: str = "init",
        rng: Random = os.urandom,
        clock: Clock = time.time,
    ) -> Vault:
        """Write a new, empty vault and return it open for writing (one key derivation).

        Refuses to replace anything at `path`.
        """
        check_kdf_cost(cost)
        _refuse_existing(path)  # before the lock file is made, and again holding the lock
        lock = WriterLock(path, purpose).acquire()
        try:
            _refuse_existing(path)
            container_id = rng(16)
            master = bytearray(rng(32))
            slot = keys.new_passphrase_slot(rng, cost)
            kek = keys.passphrase_kek(passphrase, slot)
            slot = keys.wrap_master(container_id, slot, kek, master)
            index = Index(log=[_event(clock, "init")])
            ct.write_container(path, container_id, [slot], master, index, [], rng)
            sealed = Sealed.read(path)
            try:
                container = Container.open(sealed, Unlocked(master, slot, kek))
            except BaseException:
                sealed.close()
                raise
            return cls(path, container, lock, rng, clock)
        except BaseException:
            lock.release()
            raise

    def close(self) -> None:
        self._container.unlocked.forget()
        with contextlib.suppress(OSError):  # a file on a drive that went away
            self._container.close()
        if self._lock_holder is not None:
            with contextlib.suppress(OSError):
                self._lock_holder.close()
            self._lock_holder = None
        if self._lock:
            with contextlib.suppress(OSError):
                self._lock.release()
            self._lock = None

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        return list(self._container.index.entries)

    def entry(self, name: str) -> Entry:
        found = self._by_name.get(name)
        if found is not None:
            return found
        raise NotFoundError(f"no entry named {name!r}", hint="'locker ls' lists the entries")

    def chunks(self, name: str) -> Iterator[bytes]:
        """The entry's content, chunk by chunk, each verified before it is yielded."""
        return self._container.chunks(self.entry(name))

    def read_bytes(self, name: str) -> bytes:
        return b"".join(self.chunks(name))

    def verify(self) -> list[str]:
        """Decrypt every entry; return one message per entry that fails."""
        return verify_entries(self._container)

    def on_disk(self) -> bool:
        """The file at `path` is still the one this vault has open: False once its drive went
        away (unplugged, unmounted, or mounted again as another device)."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
            mine = os.fstat(self._container.sealed.file.fileno())
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def log(self) -> list[LogEvent]:
        """The audit log, with the events that wait beside the vault for its next save."""
        return self._merged_log(self._deferred())

    def _deferred(self) -> deferred.Pending:
        c = self._container
        return deferred.read(self.path, c.container_id, c.unlocked.master)

    def _merged_log(self, pending: deferred.Pending) -> list[LogEvent]:
        log = self._container.index.log
        new = [e for e in pending.events if e not in log]  # one merged before, left behind
        return sorted(log + new, key=lambda e: e.time) if new else list(log)

    def record_deferred(self, event: str, names: tuple[str, ...] = (), detail: str = "") -> None:
        """Put an audit-log event beside the vault without rewriting it (no writer lock
        needed): the next save merges it into the log (store/deferred.py)."""
        c = self._container
        try:
            deferred.write(
                self.path,
                c.container_id,
                c.unlocked.master,
                _event(self._clock, event, names, detail),
                self._rng,
            )
        except OSError as exc:
            raise LockerError(
                f"cannot record the {event} in the audit log beside {self.path}: {exc.strerror}"
            ) from None

    @property
    def container_id(self) -> bytes:
        return self._container.container_id

    # -- staging writes ------------------------------------------------------------------------

    def _reset_staging(self) -> None:
        c = self._container
        self._staged = {e.name: _Staged(e.copy(), c.copy_source(e)) for e in c.index.entries}
        self._by_name = {e.name: e for e in c.index.entries}
        self._slots = list(c.header.slots)
        self._master = c.unlocked.master
        self._pending_log: list[LogEvent] = []
        self._unlocked = c.unlocked
        self._labels = dict(c.index.slot_labels)
        self._settings = dict(c.index.settings)

    def _require_writer(self) -> None:
        if self._lock is None:
            raise LockerError("internal error: vault opened read-only")

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

    def _take_name(self, name: str, force: bool) -> _Staged | None:
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
        self._staged[entry.name] = _Staged(entry, source)

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
        self, other: Vault, name: str, as_name: str | None = None, force: bool = False
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

    def change_passphrase(
        self,
        new: bytes | bytearray,
        cost: KdfCost | None = None,
        keyfile_secret: bytes | None = None,
    ) -> None:
        """Rewrap the master key under a new passphrase in the slot used to unlock (a passphrase
        slot, or a passphrase+keyfile slot whose key file stays). No data moves."""
        self._require_writer()
        self.require_passphrase_slot()
        used = self._unlocked.slot
        new_cost = cost or used.kdf or DEFAULT_KDF
        check_kdf_cost(new_cost)
        slot = keys.new_slot(self._rng, used.kind, new_cost, slot_id=used.slot_id)
        opener = PassphraseOpener(new, keyfile_secret)
        kek = opener.kek(self._container.header, slot)
        if kek is None:
            raise UsageError("the key file is needed to change this slot's passphrase")
        wrapped = keys.wrap_master(self.container_id, slot, kek, self._master)
        self._slots = [wrapped if s.slot_id == slot.slot_id else s for s in self._slots]
        self._unlocked = Unlocked(self._master, slot, kek, opener.renew)

    def rekey(self) -> int:
        """New master key: every entry re-encrypted, the unlocking slot made anew (fresh salt
        and nonce where its key can renew it, else a fresh nonce under the same KEK).

        Returns how many other slots were dropped (their secrets are not at hand).
        """
        self._require_writer()
        used = self._unlocked.slot
        if all(s.slot_id != used.slot_id for s in self._slots):
            # Keeping it would bring back the removed slot as the only one (and, for a keyring
            # slot whose secret then leaves the keyring, leave nothing that opens the vault).
            raise UsageError(
                "the slot being removed is the one that unlocked the vault, and a rekey keeps "
                "only that slot",
                hint="unlock with a key whose slot stays (--no-keyring, --passphrase-file, "
                "--recovery-key-file, --keyfile, --identity) and try again",
            )
        master = bytearray(self._rng(32))
        renew = self._unlocked.renew
        if renew is not None:
            fresh, kek = renew(self._rng, used)
        else:
            fresh, kek = used._replace(nonce=self._rng(12)), self._unlocked.kek
        slot = keys.wrap_master(self.container_id, fresh, kek, master)
        dropped = len(self._slots) - 1
        saved = {e.entry_id: e for e in self._container.index.entries}
        for staged in self._staged.values():
            if isinstance(staged.source, CopyCiphertext):
                staged.source = Reencrypt(self._container, saved[staged.entry.entry_id])
            staged.entry.content_salt = self._rng(16)
        self._slots = [slot]
        self._master = master
        self._unlocked = Unlocked(master, slot, kek, renew)
        return dropped

    def _reopen_failed(self, exc: LockerError | OSError) -> LockerError:
        """The error of a commit whose file is in place but could not be read back."""
        why = f"{self.path}: {exc.strerror}" if isinstance(exc, OSError) else str(exc)
        return LockerError(
            f"saved {self.path}, but reopening it to check failed: {why}",
            hint="run 'locker verify' once the cause is fixed",
        )

    def record(self, event: str, names: tuple[str, ...] = (), detail: str = "") -> None:
        """Add an audit-log event to the next commit."""
        self._pending_log.append(_event(self._clock, event, names, detail))

    def commit(self, compact: bool = False) -> None:
        """Save everything staged in one atomic write, then reopen and verify what was written.

        The save appends a new generation when the format allows it (docs/FORMAT.md section
        21); `compact` asks for a whole new file holding this generation alone."""
        self._require_writer()
        check_tree(list(self._staged))
        self.check_saves_allowed()
        old = self._container
        pending = self._deferred()
        log = self._merged_log(pending) + self._pending_log
        index = Index([], log, *self._slot_index())
        plan = [Planned(s.entry, s.source) for s in self._staged.values()]
        compact = compact or self._compact_next
        attempt = generations.Attempt()
        try:
            appended = generations.save(
                self.path, old, self._slots, self._master, index, plan, self._rng, compact, attempt
            )
        except BaseException:
            self._see_failed_save(old, attempt)
            raise
        try:
            sealed = Sealed.read(self.path, holes_from=None)  # below, once `same` is known
        except (LockerError, OSError) as exc:
            raise self._reopen_failed(exc) from None
        keep_old_file = False
        try:
            same = (sealed.identity.device, sealed.identity.inode) == (
                old.sealed.identity.device,
                old.sealed.identity.inode,
            )
            # An append to this file (locked, its bytes before the old end checked at open)
            # is looked at from the old end: the reopen costs what changed.
            start = old.sealed.file_size if appended and same else 0
            ct.check_no_holes(sealed.file.fileno(), sealed.file_size, start)
            if appended and same:
                keep_old_file = self._lock_holder is None
                if keep_old_file:
                    self._lock_holder = old.sealed.file
            else:
                lock_vault_file(sealed.file.fileno(), self.path)
                if self._lock_holder is not None:
                    with contextlib.suppress(OSError):
                        self._lock_holder.close()
                    self._lock_holder = None
            reopened = Container.open(sealed, self._unlocked)
        except BaseException as exc:
            sealed.close()
            if isinstance(exc, (LockerError, OSError)):
                raise self._reopen_failed(exc) from None
            raise
        if reopened.record.generation != old.record.generation + 1:
            sealed.close()
            raise LockerError(
                f"saved {self.path}, but it opens at generation "
                f"{reopened.record.generation}, not {old.record.generation + 1}",
                hint="run 'locker verify'; the disk may not keep what is written",
            )
        self._container = reopened
        if old.unlocked.master is not self._master:
            old.unlocked.forget()
        if not keep_old_file:
            old.close()
        self._recovered = self._compact_next = False
        self._unfinished = None
        self._reset_staging()
        deferred.remove(self.path, pending.files)
        if old.version == VERSION_1 and self.notice is not None:
            self.notice(
                f"upgraded {self.path} to format 2; locker before {VERSION_SINCE} cannot open it"
            )
