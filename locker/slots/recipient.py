"""Recipient slots: an X25519 public key opens the vault with its private key, in age's text
encoding (`age1...` recipients, `AGE-SECRET-KEY-1...` identities, Bech32), so an identity made
by age-keygen works, and `locker gen identity` makes one age can use.

Adding a slot draws an ephemeral X25519 key; its public share is stored in the slot. The slot
secret is age's X25519 wrap key: HKDF-SHA256(ikm = X25519(ephemeral, recipient), salt =
share || recipient, info = "age-encryption.org/v1/X25519"), and the slot's KEK comes from it
like every other kind's (docs/FORMAT.md, section 3).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from locker.errors import UsageError
from locker.store import crypto
from locker.store.format import SLOT_X25519, Head, Slot
from locker.store.keys import Random, new_slot, secret_kek

PUBLIC_HRP = "age"
SECRET_HRP = "age-secret-key-"  # noqa: S105 (a Bech32 prefix, not a secret)
KEY_SIZE = 32

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


# -- Bech32 (BIP 173), as age uses it: no length limit, one case throughout -----------------------


def _polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            check ^= _GENERATOR[i] if (top >> i) & 1 else 0
    return check


def _expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _regroup(data: bytes | list[int], source: int, target: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out = []
    for value in data:
        acc = acc << source | value
        bits += source
        while bits >= target:
            bits -= target
            out.append(acc >> bits & (1 << target) - 1)
    if pad and bits:
        out.append(acc << (target - bits) & (1 << target) - 1)
    elif not pad and (bits >= source or acc & (1 << bits) - 1):
        return None
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    words = _regroup(data, 8, 5, pad=True) or []
    check = _polymod([*_expand(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    words += [check >> 5 * (5 - i) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words)


def bech32_decode(text: str) -> tuple[str, bytes] | None:
    """(human-readable part, data), or None for anything that is not valid Bech32."""
    if text.lower() != text and text.upper() != text:
        return None
    text = text.lower()
    hrp, sep, rest = text.rpartition("1")
    if not sep or not hrp or len(rest) < 6 or any(c not in _CHARSET for c in rest):
        return None
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        return None
    words = [_CHARSET.index(c) for c in rest]
    if _polymod([*_expand(hrp), *words]) != 1:
        return None
    data = _regroup(words[:-6], 5, 8, pad=False)
    return None if data is None else (hrp, bytes(data))


# -- keys -------------------------------------------------------------------------------------------


def parse_recipient(text: str) -> bytes:
    """The 32-byte X25519 public key of an `age1...` recipient; UsageError otherwise."""
    decoded = bech32_decode(text.strip())
    if decoded is None or decoded[0] != PUBLIC_HRP or len(decoded[1]) != KEY_SIZE:
        raise UsageError(
            f"not an age X25519 recipient: {text.strip()[:20]!r}",
            hint="a recipient looks like age1... ('locker gen identity' or age-keygen makes one)",
        )
    return decoded[1]


def format_recipient(public: bytes) -> str:
    return bech32_encode(PUBLIC_HRP, public)


def format_identity(secret: bytes) -> str:
    return bech32_encode(SECRET_HRP, secret).upper()


def public_key(identity: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(identity).public_key().public_bytes_raw()


def read_identities(path: Path) -> list[bytes]:
    """The X25519 identities in an age identity file (comments and blank lines skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise UsageError(f"cannot read identity file {path}: {reason}") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        decoded = bech32_decode(line)
        if decoded is None or decoded[0] != SECRET_HRP or len(decoded[1]) != KEY_SIZE:
            raise UsageError(
                f"identity file {path}, line {number}: not an age X25519 identity",
                hint="locker reads AGE-SECRET-KEY-1... lines (plugin and SSH identities are not supported)",
            )
        found.append(decoded[1])
    if not found:
        raise UsageError(f"identity file {path} holds no AGE-SECRET-KEY-1... line")
    return found


def identity_file(identity: bytes, created: str) -> str:
    """An identity file as age-keygen writes it."""
    return (
        f"# created: {created}\n"
        f"# public key: {format_recipient(public_key(identity))}\n"
        f"{format_identity(identity)}\n"
    )


# -- the slot ----------------------------------------------------------------------------------------


def _wrap_secret(shared: bytes, share: bytes, recipient: bytes) -> bytes:
    return crypto.age_x25519_wrap_key(shared, share + recipient)


def new_recipient_slot(rng: Random, recipient: bytes, slot_id: bytes = b"") -> tuple[Slot, bytes]:
    """A new x25519 slot for `recipient` and its KEK. Draws the ephemeral secret (32), then
    the slot id (8, unless given), salt (16) and nonce (12)."""
    ephemeral = X25519PrivateKey.from_private_bytes(rng(KEY_SIZE))
    share = ephemeral.public_key().public_bytes_raw()
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    except ValueError:
        shared = bytes(KEY_SIZE)
    if not any(shared):
        raise UsageError("that recipient is not a usable X25519 public key (a low-order point)")
    slot = new_slot(rng, SLOT_X25519, extra=share, slot_id=slot_id)
    return slot, secret_kek(_wrap_secret(shared, share, recipient), slot)


class IdentityOpener:
    """Opens x25519 slots with one X25519 identity (a private key)."""

    what = "identity"
    kinds = (SLOT_X25519,)

    def __init__(self, identity: bytes) -> None:
        self._identity = X25519PrivateKey.from_private_bytes(identity)
        self._public = self._identity.public_key().public_bytes_raw()

    def kek(self, header: Head, slot: Slot) -> bytes | None:
        try:
            shared = self._identity.exchange(X25519PublicKey.from_public_bytes(slot.extra))
        except ValueError:  # a low-order share: the all-zero shared secret
            return None
        if not any(shared):
            return None
        return secret_kek(_wrap_secret(shared, slot.extra, self._public), slot)

    def renew(self, rng: Random, slot: Slot) -> tuple[Slot, bytes]:
        return new_recipient_slot(rng, self._public, slot.slot_id)


def new_identity(random: Callable[[int], bytes] = os.urandom) -> bytes:
    return random(KEY_SIZE)
