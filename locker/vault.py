"""The API a user thinks in: create, unlock, list, read, verify, the audit log and the commit.
The staging of entry changes (add, copy, remove, rename) comes from `vault_edits.py`, the
key-slot methods (and passwd, rekey) from `vault_slots.py`, those of format 2's generations (a
passed-over commit record, recover) from `vault_generations.py`. Writes are staged and saved
in one atomic commit under the writer lock.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from locker.errors import (
    ExistsError,
    LockerError,
    NotFoundError,
)
from locker.store import container as ct
from locker.store import deferred, generations, keys
from locker.store.container import Container, Planned, Sealed
from locker.store.format import (
    VERSION_1,
    VERSION_SINCE,
    KdfCost,
    check_kdf_cost,
    check_tree,
)
from locker.store.index import Entry, Index, LogEvent, log_event
from locker.store.keys import Opener, PassphraseOpener, Random, Unlocked
from locker.store.lockfile import WriterLock, lock_vault_file
from locker.vault_edits import EditMethods, Recogniser, Staged
from locker.vault_generations import GenerationMethods, read_again, verify_entries
from locker.vault_slots import DEFAULT_KDF as DEFAULT_KDF
from locker.vault_slots import SlotMethods

Clock = Callable[[], float]


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


class Vault(EditMethods, SlotMethods, GenerationMethods):
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
        self._staged = {e.name: Staged(e.copy(), c.copy_source(e)) for e in c.index.entries}
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
                f"upgraded {self.path} to format 2; locker before {VERSION_SINCE} cannot open "
                f"it: every machine that opens this vault needs locker {VERSION_SINCE} or later"
            )
