"""The master key and its key slots: wrapping and unwrapping the master key under a slot's key
(KEK), each slot kind's KEK derivation, and unlocking a header with the keys a user gave.

A key the user holds is an `Opener`: it names the slot kinds it can open and derives a slot's
KEK. `unlock` tries the openers in the order given (the CLI's unlock order) and each one on
its kinds' slots in header order; the first unwrap that authenticates wins. An opener can
also `renew` the slot it opened (fresh salt and nonce, same secret) for `rekey`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from locker.errors import AuthenticationError, BadKeyError, FormatError
from locker.store import crypto
from locker.store.format import (
    SLOT_KEYFILE,
    SLOT_KEYRING,
    SLOT_KINDS,
    SLOT_PASSPHRASE,
    SLOT_PASSPHRASE_KEYFILE,
    SLOT_RECOVERY,
    Head,
    KdfCost,
    Slot,
)

Random = Callable[[int], bytes]


def unwrap_master(header: Head, slot: Slot, kek: bytes) -> bytearray:
    key = crypto.open_sealed(
        kek, slot.nonce, slot.wrapped_key, slot.binding(header.container_id), "key slot"
    )
    return bytearray(key)


def wrap_master(container_id: bytes, slot: Slot, kek: bytes, master: bytes | bytearray) -> Slot:
    """Return `slot` with the master key wrapped under `kek` (a fresh nonce must be in `slot`)."""
    wrapped = crypto.seal(kek, slot.nonce, bytes(master), slot.binding(container_id))
    return slot._replace(wrapped_key=wrapped)


def passphrase_kek(passphrase: bytes | bytearray, slot: Slot) -> bytes:
    if slot.kdf is None:
        raise FormatError("passphrase slot without Argon2 parameters")
    params = crypto.KdfParams(slot.kdf.memory_kib, slot.kdf.time_cost, slot.kdf.parallelism)
    return crypto.argon2id(passphrase, slot.salt, params)


def secret_kek(secret: bytes | bytearray, slot: Slot) -> bytes:
    """KEK of a slot whose secret is already high-entropy (every kind without Argon2)."""
    return crypto.slot_kek(secret, slot.salt, SLOT_KINDS[slot.kind].name)


def passphrase_keyfile_kek(
    passphrase: bytes | bytearray, keyfile_secret: bytes | bytearray, slot: Slot
) -> bytes:
    """Both factors: HKDF over the Argon2id output followed by the key file's secret."""
    stretched = passphrase_kek(passphrase, slot)
    return secret_kek(stretched + bytes(keyfile_secret), slot)


def new_slot(
    rng: Random, kind: int, cost: KdfCost | None = None, extra: bytes = b"", slot_id: bytes = b""
) -> Slot:
    """A slot of `kind` with fresh id (unless given), salt and nonce; wrap_master fills the key.

    Draws slot id (8), salt (16), nonce (12) in that order, as docs/FORMAT.md says."""
    sid = slot_id or rng(8)
    salt, nonce = rng(crypto.SALT_SIZE), rng(crypto.NONCE_SIZE)
    return Slot(kind, sid, salt, nonce, b"", cost if SLOT_KINDS[kind].kdf else None, extra)


def new_passphrase_slot(rng: Random, cost: KdfCost) -> Slot:
    """A passphrase slot with fresh salt, id and nonce; the key is wrapped by wrap_master."""
    return new_slot(rng, SLOT_PASSPHRASE, cost)


Renew = Callable[[Random, Slot], tuple[Slot, bytes]]


class Unlocked:
    """The key material from one successful unlock: the master key, the slot that gave it, its
    KEK, and (when the opener can) how to make that slot anew with fresh salt and nonce."""

    __slots__ = ("kek", "master", "renew", "slot")

    def __init__(
        self, master: bytearray, slot: Slot, kek: bytes, renew: Renew | None = None
    ) -> None:
        self.master = master
        self.slot = slot
        self.kek = kek
        self.renew = renew

    def forget(self) -> None:
        for i in range(len(self.master)):
            self.master[i] = 0


class Opener(Protocol):
    """A key the user holds, for the slot kinds it can open."""

    @property
    def what(self) -> str:
        """What the user gave, for messages: "passphrase", "recovery key", ..."""
        ...

    @property
    def kinds(self) -> tuple[int, ...]: ...

    def kek(self, header: Head, slot: Slot) -> bytes | None:
        """The slot's KEK, or None when this key cannot apply to this slot."""
        ...

    def renew(self, rng: Random, slot: Slot) -> tuple[Slot, bytes]:
        """The same slot (kind and id) with fresh salt and nonce, and its new KEK."""
        ...


class PassphraseOpener:
    """A passphrase, asked for only when a passphrase slot is tried; with a key file's
    secret it also opens passphrase+keyfile slots."""

    what = "passphrase"

    def __init__(
        self,
        passphrase: bytes | bytearray | Callable[[], bytes | bytearray],
        keyfile_secret: bytes | None = None,
    ) -> None:
        self._source = passphrase
        self._keyfile = keyfile_secret
        self.kinds: tuple[int, ...] = (SLOT_PASSPHRASE,)
        if keyfile_secret is not None:
            self.kinds += (SLOT_PASSPHRASE_KEYFILE,)

    def passphrase(self) -> bytes | bytearray:
        if callable(self._source):
            self._source = self._source()
        return self._source

    def kek(self, header: Head, slot: Slot) -> bytes | None:
        return self._kek(slot)

    def _kek(self, slot: Slot) -> bytes | None:
        if slot.kind == SLOT_PASSPHRASE_KEYFILE:
            if self._keyfile is None:
                return None
            return passphrase_keyfile_kek(self.passphrase(), self._keyfile, slot)
        return passphrase_kek(self.passphrase(), slot)

    def renew(self, rng: Random, slot: Slot) -> tuple[Slot, bytes]:
        fresh = new_slot(rng, slot.kind, slot.kdf, slot_id=slot.slot_id)
        kek = self._kek(fresh)
        if kek is None:
            raise BadKeyError("the key file is needed to renew this slot")
        return fresh, kek


class SecretOpener:
    """A high-entropy secret for one kind: a recovery key, a key file, a keyring secret.

    `slot_ids`, when given, limits it to those slots (a keyring secret belongs to one slot)."""

    def __init__(
        self, kind: int, secret: bytes | bytearray, slot_ids: frozenset[bytes] | None = None
    ) -> None:
        names = {SLOT_RECOVERY: "recovery key", SLOT_KEYFILE: "key file", SLOT_KEYRING: "keyring"}
        self.what = names[kind]
        self.kinds = (kind,)
        self._secret = bytes(secret)
        self._slot_ids = slot_ids

    def kek(self, header: Head, slot: Slot) -> bytes | None:
        if self._slot_ids is not None and slot.slot_id not in self._slot_ids:
            return None
        return secret_kek(self._secret, slot)

    def renew(self, rng: Random, slot: Slot) -> tuple[Slot, bytes]:
        fresh = new_slot(rng, slot.kind, slot_id=slot.slot_id)
        return fresh, secret_kek(self._secret, fresh)


def unlock(header: Head, openers: Sequence[Opener]) -> Unlocked:
    """Try each opener on its kinds' slots, in order; BadKeyError if none opens."""
    tried: list[str] = []
    for opener in openers:
        slots = [s for s in header.slots if s.kind in opener.kinds]
        applied = False
        for slot in slots:
            kek = opener.kek(header, slot)
            if kek is None:
                continue
            applied = True
            try:
                return Unlocked(unwrap_master(header, slot, kek), slot, kek, opener.renew)
            except AuthenticationError:
                continue
        if applied:
            tried.append(opener.what)
        elif slots or not tried:
            tried.append(f"{opener.what} (no slot of that kind)")
    raise _bad_key(header, openers, tried)


def _bad_key(header: Head, openers: Sequence[Opener], tried: list[str]) -> BadKeyError:
    if len(openers) == 1:
        what = openers[0].what
        wanted = SLOT_KINDS[openers[0].kinds[0]].name
        if not any(s.kind in openers[0].kinds for s in header.slots):
            kinds = sorted({SLOT_KINDS[s.kind].name for s in header.slots})
            return BadKeyError(
                f"this vault has no {wanted} slot",
                hint=f"its slots are: {', '.join(kinds)}; see 'locker info'",
            )
        if what == "passphrase":
            return BadKeyError(
                "wrong passphrase",
                hint="check the passphrase (and --passphrase-file); a damaged key slot looks "
                "the same: try another key or a backup",
            )
        return BadKeyError(f"wrong {what}: it opens none of this vault's {wanted} slots")
    return BadKeyError(
        "none of the keys given opens this vault (tried: " + ", ".join(tried) + ")",
        hint="check each key; 'locker info' lists the vault's slot kinds",
    )


def unlock_with_passphrase(header: Head, passphrase: bytes | bytearray) -> Unlocked:
    return unlock(header, [PassphraseOpener(passphrase)])
