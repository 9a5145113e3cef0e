"""The vault's key slots: list, find, add and remove them, keep each slot's label and times
in the index, change the passphrase of the slot that unlocked, and rekey. `Vault` inherits
these methods; they work on its staged slots and are saved by its `commit`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from locker.errors import LockerError, NotFoundError, UsageError
from locker.store import keys
from locker.store.container import Container, Reencrypt
from locker.store.format import (
    MAX_SLOTS,
    SLOT_KEYRING,
    SLOT_KIND_NAMES,
    SLOT_PASSPHRASE,
    SLOT_PASSPHRASE_KEYFILE,
    KdfCost,
    Slot,
    check_kdf_cost,
)
from locker.store.keys import PassphraseOpener, Random, Unlocked
from locker.store.sources import CopyCiphertext
from locker.vault_edits import Staged


class SlotInfo(NamedTuple):
    """What `slot ls` shows about a key slot: never a secret."""

    slot_id: str
    kind: str
    label: str
    created: int | None
    used: int | None
    unlocked: bool


DEFAULT_KDF = KdfCost(memory_kib=256 * 1024, time_cost=3, parallelism=4)

OLD_COPY_NOTE = (
    "an old copy of this vault (a backup, a synced or copied file) still opens with the old "
    "secret; 'locker rekey' (or --rekey) gives the current vault a new master key"
)


def check_label(label: str) -> str:
    """A slot's label: printable text of at most 200 bytes (UsageError otherwise)."""
    if len(label.encode()) > 200 or not label.isprintable():
        raise UsageError("a label is printable text of at most 200 bytes")
    return label


def _slot_setting(slot_id: str, what: str) -> str:
    """Index `settings` keys that hold a slot's times: slot.<id hex>.created / .used."""
    return f"slot.{slot_id}.{what}"


class SlotMethods:
    """Key-slot methods of `Vault`, over the staging state it keeps."""

    _container: Container
    _slots: list[Slot]
    _labels: dict[str, str]
    _settings: dict[str, str]
    _unlocked: Unlocked
    _master: bytearray
    _staged: dict[str, Staged]
    _rng: Random
    _clock: Callable[[], float]

    if TYPE_CHECKING:  # Vault's own

        def _require_writer(self) -> None: ...
        def record(self, event: str, names: tuple[str, ...] = (), detail: str = "") -> None: ...
        def commit(self) -> None: ...
        @property
        def container_id(self) -> bytes: ...

    @property
    def unlocked_slot(self) -> Slot:
        return self._unlocked.slot

    def unlocking_kdf(self) -> KdfCost | None:
        """Argon2 cost of the slot this vault was unlocked with."""
        return self._unlocked.slot.kdf

    def slots(self) -> list[SlotInfo]:
        """The slots as staged, in header order."""
        labels, settings = self._container.index.slot_labels, self._settings
        out = []
        for s in self._slots:
            sid = s.slot_id.hex()
            created = settings.get(_slot_setting(sid, "created"))
            used = settings.get(_slot_setting(sid, "used"))
            out.append(
                SlotInfo(
                    sid,
                    SLOT_KIND_NAMES[s.kind],
                    self._labels.get(sid, labels.get(sid, "")),
                    int(created) if created else None,
                    int(used) if used else None,
                    s.slot_id == self._unlocked.slot.slot_id,
                )
            )
        return out

    def slot_list(self) -> list[Slot]:
        """The slots as staged, with their header fields."""
        return list(self._slots)

    def find_slot(self, spec: str) -> Slot:
        """A slot by its id in hex, or by a prefix of it that only one slot has."""
        want = spec.strip().lower()
        found = [s for s in self._slots if want and s.slot_id.hex().startswith(want)]
        if len(found) == 1:
            return found[0]
        if found:
            raise UsageError(f"{spec!r} is the start of {len(found)} slot ids: give more of it")
        raise NotFoundError(f"no key slot {spec!r}", hint="'locker slot ls' lists the slots")

    def add_slot(self, slot: Slot, kek: bytes, label: str = "") -> Slot:
        """Wrap the master key under `kek` into the new `slot` (made by keys.new_slot)."""
        self._require_writer()
        if len(self._slots) >= MAX_SLOTS:
            raise UsageError(
                f"this vault has {MAX_SLOTS} key slots, the most a vault can have",
                hint="remove one with 'locker slot rm ID' first",
            )
        if any(s.slot_id == slot.slot_id for s in self._slots):
            raise LockerError("internal error: slot id drawn twice")
        wrapped = keys.wrap_master(self._container.container_id, slot, kek, self._master)
        self._slots.append(wrapped)
        sid = slot.slot_id.hex()
        self._labels[sid] = label
        self._settings[_slot_setting(sid, "created")] = str(int(self._clock()))
        detail = f"{SLOT_KIND_NAMES[slot.kind]} slot {sid}" + (f" ({label})" if label else "")
        self.record("slot-add", detail=detail)
        return wrapped

    def remove_slot(self, slot: Slot) -> None:
        """Drop a slot; the last one is refused (nothing could unlock the vault then)."""
        self._require_writer()
        if len(self._slots) <= 1:
            raise UsageError(
                "refusing to remove the last key slot: nothing could unlock the vault",
                hint="add another slot first ('locker slot add-passphrase' or add-recovery)",
            )
        self._slots = [s for s in self._slots if s.slot_id != slot.slot_id]
        self.record("slot-rm", detail=f"{SLOT_KIND_NAMES[slot.kind]} slot {slot.slot_id.hex()}")

    def keyring_slots(self, kr: Any) -> list[Slot]:
        """This vault's keyring slots whose secret the keyring `kr` holds."""
        from locker.slots import keyring_slot

        return [
            s
            for s in self._slots
            if s.kind == SLOT_KEYRING and keyring_slot.load(kr, self.container_id, s.slot_id)
        ]

    def remember(
        self, kr: Any, label: str, saving: contextlib.AbstractContextManager[Any] | None = None
    ) -> Slot | None:
        """`slot remember`: a keyring slot whose random secret `kr` (this machine's keyring)
        keeps, committed (inside `saving`); None if `kr` already opens this vault. The secret
        leaves the keyring again if the commit fails."""
        from locker.slots import keyring_slot

        if self.keyring_slots(kr):
            return None
        secret = os.urandom(keyring_slot.SECRET_SIZE)
        slot = keys.new_slot(os.urandom, SLOT_KEYRING)
        self.add_slot(slot, keys.secret_kek(secret, slot), label)
        keyring_slot.store(kr, self.container_id, slot.slot_id, secret)
        try:
            with saving or contextlib.nullcontext():
                self.commit()
        except BaseException:
            keyring_slot.delete(kr, self.container_id, slot.slot_id)
            raise
        return slot

    def forget(
        self, kr: Any, saving: contextlib.AbstractContextManager[Any] | None = None
    ) -> list[Slot]:
        """`slot forget`: remove the keyring slots `kr` opens, commit (inside `saving`), then
        delete their secrets from `kr`; the slots removed (none: nothing to forget)."""
        from locker.slots import keyring_slot

        mine = self.keyring_slots(kr)
        if not mine:
            return []
        for slot in mine:
            self.remove_slot(slot)
        with saving or contextlib.nullcontext():
            self.commit()
        for slot in mine:
            keyring_slot.delete(kr, self.container_id, slot.slot_id)
        return mine

    def require_passphrase_slot(self) -> None:
        """Refuse `passwd` when the slot that unlocked has no passphrase (say so before asking)."""
        used = self._unlocked.slot
        if used.kind not in (SLOT_PASSPHRASE, SLOT_PASSPHRASE_KEYFILE):
            raise UsageError(
                f"this vault was unlocked with its {SLOT_KIND_NAMES[used.kind]} slot, "
                "which has no passphrase to change",
                hint="add one with 'locker slot add-passphrase', or unlock with the passphrase",
            )

    def _slot_index(self) -> tuple[dict[str, str], dict[str, str]]:
        """The labels and settings the next commit saves: those of removed slots dropped, and
        the unlocking slot's time of use set (with one slot, every change is its use)."""
        ids = {s.slot_id.hex() for s in self._slots}
        labels = {k: v for k, v in self._labels.items() if k in ids and v}
        settings = {
            k: v
            for k, v in self._settings.items()
            if not k.startswith("slot.") or k.split(".")[1] in ids
        }
        used = self._unlocked.slot.slot_id.hex()
        if used in ids and len(ids) > 1:
            settings[_slot_setting(used, "used")] = str(int(self._clock()))
        return labels, settings

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
