"""Hardware token slots through PKCS#11 (python-pkcs11): a P-256 key on a token (a YubiKey
PIV slot, a smart card, an HSM, SoftHSM) opens the vault; its private key never leaves it.

Adding a slot reads the token's public key, draws a one-time P-256 key pair in software and
stores its public point in the slot; the slot secret is the ECDH shared secret (the x
coordinate). Unlocking asks the token to do the same ECDH (CKM_ECDH1_DERIVE with the stored
point) after logging in with the PIN; nothing else about the token is stored in the vault.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from locker.errors import BadKeyError, FormatError, LockerError, UsageError
from locker.store.format import SLOT_PKCS11, Head, Slot
from locker.store.keys import Random, new_slot, secret_kek

POINT_SIZE = 65  # an uncompressed P-256 point: 0x04 || x || y
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True)
class TokenSpec:
    """Which module, token and key; the PIN is asked for (or read) only when needed."""

    module: str
    token: str | None
    key: str
    pin: Callable[[], bytes | bytearray]

    def describe(self) -> str:
        return f"token {self.token!r}" if self.token else f"the token of {self.module}"


def _pkcs11() -> Any:
    import pkcs11

    return pkcs11


@contextmanager
def session(spec: TokenSpec, write: bool = False) -> Iterator[Any]:
    """A logged-in session on the token; every PKCS#11 failure becomes a one-line error."""
    pkcs11 = _pkcs11()
    from pkcs11 import exceptions as p11

    try:
        lib = pkcs11.lib(spec.module)
    except Exception as exc:  # the loader raises RuntimeError or OSError for a bad path
        raise UsageError(
            f"cannot load the PKCS#11 module {spec.module}: {type(exc).__name__}",
            hint="--pkcs11-module takes the path of the module's .so file",
        ) from None
    try:
        token = lib.get_token(token_label=spec.token) if spec.token else lib.get_token()
    except p11.NoSuchToken:
        raise UsageError(f"no {spec.describe()} is present") from None
    except p11.MultipleTokensReturned:
        raise UsageError(
            f"{spec.module} has more than one token", hint="name one with --pkcs11-token LABEL"
        ) from None
    pin = bytes(spec.pin()).decode("utf-8", "replace")
    try:
        with token.open(user_pin=pin, rw=write) as opened:
            yield opened
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
        raise BadKeyError(f"wrong PIN for {spec.describe()}") from None
    except p11.PinLocked:
        raise LockerError(
            f"the PIN of {spec.describe()} is locked", hint="unblock it with the token's own tool"
        ) from None
    except p11.PKCS11Error as exc:
        raise LockerError(f"{spec.describe()} failed: {type(exc).__name__}") from None


def _private_key(opened: Any, spec: TokenSpec) -> Any:
    from pkcs11 import KeyType, ObjectClass
    from pkcs11 import exceptions as p11

    try:
        return opened.get_key(
            object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label=spec.key
        )
    except p11.NoSuchKey:
        raise UsageError(
            f"{spec.describe()} has no EC private key labelled {spec.key!r}",
            hint="choose the key with --pkcs11-key LABEL",
        ) from None


def generate_key(spec: TokenSpec) -> None:
    """Make a P-256 key pair labelled spec.key on the token: ECDH allowed, the private key
    sensitive and never extractable. Refuses when a key of that label exists."""
    from pkcs11 import Attribute, KeyType, ObjectClass
    from pkcs11 import exceptions as p11
    from pkcs11.util.ec import encode_named_curve_parameters

    with session(spec, write=True) as opened:
        try:
            opened.get_key(object_class=ObjectClass.PRIVATE_KEY, label=spec.key)
        except p11.NoSuchKey:
            pass
        except p11.MultipleObjectsReturned:
            raise UsageError(f"{spec.describe()} already has keys labelled {spec.key!r}") from None
        else:
            raise UsageError(
                f"{spec.describe()} already has a key labelled {spec.key!r}",
                hint="drop --generate to use it, or choose another --pkcs11-key",
            )
        params = opened.create_domain_parameters(
            KeyType.EC,
            {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            local=True,
        )
        params.generate_keypair(
            store=True,
            label=spec.key,
            private_template={
                Attribute.DERIVE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
            },
        )


def public_point(spec: TokenSpec) -> bytes:
    """The token key's public point, uncompressed (65 bytes); UsageError if not P-256."""
    from pkcs11 import Attribute, KeyType, ObjectClass
    from pkcs11 import exceptions as p11

    with session(spec) as opened:
        _private_key(opened, spec)
        try:
            public = opened.get_key(
                object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC, label=spec.key
            )
        except p11.NoSuchKey:
            raise UsageError(f"{spec.describe()} has no public key labelled {spec.key!r}") from None
        point = bytes(public[Attribute.EC_POINT])
    if len(point) == POINT_SIZE + 2 and point[:2] == b"\x04\x41":  # DER OCTET STRING
        point = point[2:]
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise UsageError(f"the key {spec.key!r} is not a P-256 key") from None
    return point


def new_token_slot(rng: Random, point: bytes, slot_id: bytes = b"") -> tuple[Slot, bytes]:
    """A new pkcs11-p256 slot for the token key at `point`, and its KEK. Draws the one-time
    secret (32), then the slot id (8, unless given), salt (16) and nonce (12)."""
    scalar = int.from_bytes(rng(32), "big") % (_P256_ORDER - 1) + 1
    ephemeral = ec.derive_private_key(scalar, ec.SECP256R1())
    share = ephemeral.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    token_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    shared = ephemeral.exchange(ec.ECDH(), token_key)
    slot = new_slot(rng, SLOT_PKCS11, extra=share, slot_id=slot_id)
    return slot, secret_kek(shared, slot)


def token_kek(spec: TokenSpec, slot: Slot) -> bytes:
    """The slot's KEK, with the ECDH done on the token. The share in the header is checked to
    be a point on P-256 first: a crafted off-curve point must never reach a token that might
    not check it (an invalid-curve attack would leak its key through unlock attempts)."""
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), slot.extra)
    except ValueError:
        raise FormatError("the token slot's key share is not a P-256 point") from None
    from pkcs11 import KDF, Attribute, KeyType

    with session(spec) as opened:
        key = _private_key(opened, spec)
        try:
            derived = key.derive_key(
                KeyType.GENERIC_SECRET,
                256,
                mechanism_param=(KDF.NULL, None, slot.extra),
                template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
                store=False,
            )
            shared = bytes(derived[Attribute.VALUE])
        except Exception as exc:
            raise LockerError(
                f"{spec.describe()} could not derive with key {spec.key!r}: {type(exc).__name__}",
                hint="the key needs the DERIVE usage (ECDH) on the token",
            ) from None
    return secret_kek(shared, slot)


class TokenOpener:
    """Opens pkcs11-p256 slots with the key on a token."""

    what = "token"
    kinds = (SLOT_PKCS11,)

    def __init__(self, spec: TokenSpec) -> None:
        self.spec = spec
        self._point: bytes | None = None

    def kek(self, header: Head, slot: Slot) -> bytes | None:
        return token_kek(self.spec, slot)

    def renew(self, rng: Random, slot: Slot) -> tuple[Slot, bytes]:
        if self._point is None:
            self._point = public_point(self.spec)
        return new_token_slot(rng, self._point, slot.slot_id)
