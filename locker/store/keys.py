"""The master key and its key slots: wrapping and unwrapping the master key under a slot's key
(KEK), deriving a passphrase slot's KEK with Argon2id, and trying the slots of a header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from locker.errors import AuthenticationError, BadKeyError, FormatError
from locker.store import crypto
from locker.store.format import SLOT_PASSPHRASE, Header, KdfCost, Slot

Random = Callable[[int], bytes]


def unwrap_master(header: Header, slot: Slot, kek: bytes) -> bytearray:
    key = crypto.open_sealed(
        kek, slot.nonce, slot.wrapped_key, slot.binding(header.container_id), "key slot"
    )
    return bytearray(key)


def wrap_master(container_id: bytes, slot: Slot, kek: bytes, master: bytes | bytearray) -> Slot:
    """Return `slot` with the master key wrapped under `kek` (a fresh nonce must be in `slot`)."""
    wrapped = crypto.seal(kek, slot.nonce, bytes(master), slot.binding(container_id))
    return Slot(slot.kind, slot.slot_id, slot.salt, slot.nonce, wrapped, slot.kdf)


def passphrase_kek(passphrase: bytes | bytearray, slot: Slot) -> bytes:
    if slot.kdf is None:
        raise FormatError("passphrase slot without Argon2 parameters")
    params = crypto.KdfParams(slot.kdf.memory_kib, slot.kdf.time_cost, slot.kdf.parallelism)
    return crypto.argon2id(passphrase, slot.salt, params)


@dataclass
class Unlocked:
    """The key material from one successful unlock: the master key and the slot that gave it."""

    master: bytearray
    slot: Slot
    kek: bytes

    def forget(self) -> None:
        for i in range(len(self.master)):
            self.master[i] = 0


def unlock_with_passphrase(header: Header, passphrase: bytes | bytearray) -> Unlocked:
    slots = [s for s in header.slots if s.kind == SLOT_PASSPHRASE]
    if not slots:
        raise BadKeyError(
            "this vault has no passphrase slot", hint="unlock it with its key file or recovery key"
        )
    for slot in slots:
        kek = passphrase_kek(passphrase, slot)
        try:
            return Unlocked(unwrap_master(header, slot, kek), slot, kek)
        except AuthenticationError:
            continue
    raise BadKeyError(
        "wrong passphrase", hint="check the passphrase (and --passphrase-file) and try again"
    )


def new_passphrase_slot(rng: Random, cost: KdfCost) -> Slot:
    """A passphrase slot with fresh salt, id and nonce; the key is wrapped by wrap_master."""
    return Slot(SLOT_PASSPHRASE, rng(8), rng(crypto.SALT_SIZE), rng(crypto.NONCE_SIZE), b"", cost)
