"""Every cryptographic primitive locker uses, and the only importer of `cryptography`/`argon2`.

Argon2id turns a passphrase into a key-encryption key; HKDF-SHA256 derives one subkey per
purpose from the master key; AES-256-GCM seals key slots, the index and entry chunks.
Entry data is a STREAM (Hoang, Reyhanitabar, Rogaway, Vizár) of 64 KiB chunks whose 12-byte
nonce is an 11-byte big-endian counter and a last-chunk flag, so truncation, extension and
reordering all fail authentication.

`cryptography` and Argon2 are imported on first use, not with this module: commands that
only read a header (`info`, `status`) import the store without paying for them. Both are
reached at the level that costs least to import (about 9 ms CPU less per unlock than through
`argon2.low_level` and `cryptography.hazmat.primitives.ciphers.aead`, docs/PERFORMANCE.md):
libargon2 through argon2-cffi's own bindings, AES-GCM as the class cryptography's `aead`
module re-exports; tests/test_crypto.py checks both against the public APIs.
"""

from __future__ import annotations

import functools
import hmac
from hashlib import sha256
from typing import TYPE_CHECKING, NamedTuple

from locker.errors import AuthenticationError, FormatError, LockerError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ARGON2_VERSION = 0x13  # RFC 9106's version 1.3, the only one format v1 uses

KEY_SIZE = 32
SALT_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
ID_SIZE = 16
CHUNK_SIZE = 64 * 1024
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
WRAPPED_KEY_SIZE = KEY_SIZE + TAG_SIZE
_COUNTER_LIMIT = 1 << 88

_LABEL = b"locker/v1/"


class KdfParams(NamedTuple):
    """Argon2id cost: memory in KiB, passes over memory, lanes."""

    memory_kib: int
    time_cost: int
    parallelism: int


def argon2id(passphrase: bytes | bytearray, salt: bytes, params: KdfParams) -> bytes:
    """Derive a 256-bit key-encryption key from a passphrase (RFC 9106 Argon2id, v1.3).

    The call `argon2.low_level.hash_secret_raw` makes, on argon2-cffi's bindings directly:
    importing the `argon2` package builds its password-hasher profiles and imports `platform`,
    which costs every unlock about 5 ms CPU for nothing used here."""
    from _argon2_cffi_bindings import ffi, lib

    out = ffi.new("uint8_t[]", KEY_SIZE)
    rc = lib.argon2_hash(
        params.time_cost,
        params.memory_kib,
        params.parallelism,
        ffi.new("uint8_t[]", bytes(passphrase)),
        len(passphrase),
        ffi.new("uint8_t[]", salt),
        len(salt),
        out,
        KEY_SIZE,
        ffi.NULL,
        0,
        lib.Argon2_id,
        ARGON2_VERSION,
    )
    if rc != lib.ARGON2_OK:  # "Memory allocation error" under ulimit -v or a cgroup cap
        why = ffi.string(lib.argon2_error_message(rc)).decode("ascii")
        raise LockerError(
            f"Argon2 could not run with {params.memory_kib // 1024} MiB of memory ({why})",
            hint="this process's memory is limited (ulimit -v, a container or cgroup limit): "
            "raise the limit, or open the vault where more memory is allowed",
        )
    return bytes(ffi.buffer(out, KEY_SIZE))


def _hkdf_sha256(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """RFC 5869 HKDF-SHA256 for one 32-byte block: extract, then T(1) = HMAC(PRK, info || 1).
    The standard library's HMAC: several times cheaper per call than an HKDF object, which
    counts when a mount derives one key per entry."""
    prk = hmac.digest(salt, ikm, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")


def _aesgcm(key: bytes) -> AESGCM:
    return _aesgcm_class()(key)


@functools.cache
def _aesgcm_class() -> type[AESGCM]:
    """cryptography's AESGCM, without importing the `ciphers` package around it (its cipher
    algorithms and their deprecation shims cost every unlock about 4 ms CPU). `aead` itself
    only re-exports this class; should a release move it, the public import still works."""
    try:
        from cryptography.hazmat.bindings._rust import openssl

        found: type[AESGCM] = openssl.aead.AESGCM
    except (ImportError, AttributeError):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        found = AESGCM
    return found


def hkdf(ikm: bytes | bytearray, salt: bytes, purpose: bytes, context: bytes = b"") -> bytes:
    """HKDF-SHA256 with info = "locker/v1/" + purpose + 0x00 + context."""
    return _hkdf_sha256(bytes(ikm), salt, _LABEL + purpose + b"\x00" + context)


def slot_kek(secret: bytes | bytearray, salt: bytes, kind: str) -> bytes:
    """Key-encryption key for slots whose secret is already high-entropy (recovery, key file,
    keyring); `kind` is the slot kind's name ("recovery", "keyfile", "keyring") in ASCII."""
    return hkdf(secret, salt, b"slot-kek", kind.encode("ascii"))


def age_x25519_wrap_key(shared: bytes, salt: bytes) -> bytes:
    """age's X25519 wrap key: HKDF-SHA256(ikm = shared secret, salt = ephemeral share ||
    recipient, info = "age-encryption.org/v1/X25519"); the secret of an x25519 slot."""
    return _hkdf_sha256(shared, salt, b"age-encryption.org/v1/X25519")


def index_key(master: bytes | bytearray, container_id: bytes) -> bytes:
    return hkdf(master, container_id, b"index")


def header_mac_key(master: bytes | bytearray, container_id: bytes) -> bytes:
    return hkdf(master, container_id, b"header-mac")


def deferred_log_key(master: bytes | bytearray, container_id: bytes) -> bytes:
    """Seals the audit events a reader leaves beside the vault for its next save."""
    return hkdf(master, container_id, b"deferred-log")


def entry_key(
    master: bytes | bytearray, container_id: bytes, entry_id: bytes, content_salt: bytes
) -> bytes:
    """A fresh key for each version of each entry's content."""
    return hkdf(master, content_salt, b"entry", container_id + entry_id)


def seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    return _aesgcm(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes, what: str) -> bytes:
    """AES-256-GCM open; every failure is the same AuthenticationError naming `what`."""
    from cryptography.exceptions import InvalidTag

    try:
        return _aesgcm(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise AuthenticationError(
            f"{what} failed authentication: it was changed or is corrupt"
        ) from None


def header_mac(key: bytes, header: bytes) -> bytes:
    return hmac.new(key, header, sha256).digest()


def header_mac_matches(key: bytes, message: bytes, tag: bytes) -> bool:
    """Whether `tag` is the header (v1) or commit record (v2) MAC of `message`, in constant time."""
    return hmac.compare_digest(header_mac(key, message), tag)


def chunk_nonce(counter: int, last: bool) -> bytes:
    if counter >= _COUNTER_LIMIT:
        raise FormatError("entry is too large for the STREAM counter")
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class StreamSealer:
    """Seals one entry chunk by chunk; the caller says which chunk is the last."""

    def __init__(self, key: bytes, aad: bytes) -> None:
        self._aead = _aesgcm(key)
        self._aad = aad
        self._counter = 0
        self._done = False

    def _nonce(self, length: int, last: bool) -> bytes:
        if self._done:
            raise ValueError("STREAM already finished")
        if length > CHUNK_SIZE or (not last and length != CHUNK_SIZE):
            raise ValueError("STREAM chunks other than the last must be full")
        if last and length == 0 and self._counter > 0:
            raise ValueError("an empty last chunk is only allowed for an empty entry")
        nonce = chunk_nonce(self._counter, last)
        self._counter += 1
        self._done = last
        return nonce

    def seal(self, chunk: bytes | memoryview, last: bool) -> bytes:
        return self._aead.encrypt(self._nonce(len(chunk), last), chunk, self._aad)

    def seal_into(self, chunk: bytes | memoryview, last: bool, out: memoryview) -> int:
        """Like seal, but into `out` (exactly len(chunk) + TAG_SIZE bytes); returns that length."""
        n: int = self._aead.encrypt_into(self._nonce(len(chunk), last), chunk, self._aad, out)
        return n


class StreamOpener:
    """Opens one entry chunk by chunk; any failure names the chunk and raises at once."""

    def __init__(self, key: bytes, aad: bytes, what: str) -> None:
        self._aead = _aesgcm(key)
        self._aad = aad
        self._what = what
        self._counter = 0

    def open(self, sealed: bytes | memoryview, last: bool) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            plain = self._aead.decrypt(chunk_nonce(self._counter, last), sealed, self._aad)
        except InvalidTag:
            raise AuthenticationError(
                f"{self._what}: chunk {self._counter} failed authentication: "
                "it was changed, reordered or truncated"
            ) from None
        self._counter += 1
        return plain
