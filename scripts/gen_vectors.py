#!/usr/bin/env python3
"""Generate the known-answer vectors of formats 1 and 2 in tests/vectors/, deterministically.

This is a second, independent writer of formats 1 and 2, built from docs/FORMAT.md with
`cryptography` and `argon2` directly: it imports nothing from `locker`. The tests check that
the library reads every vector as its `expect:` line says, and that the library's own writer,
fed the same deterministic randomness, produces the success vectors byte for byte.

Randomness is SHA-256 in counter mode over a fixed seed and the vector's name, drawn in the
same order as `locker.vault.create` + `Vault.add_bytes` + `Vault.commit` draw it from their
`rng=` hook; time is a fixed clock. Running the script twice gives identical files.

A vector file is UTF-8 header lines, a blank line, then the container bytes:

    expect: success | bad key | header failure | index failure | payload failure
            | format error | kdf too costly | unknown version
    passphrase: <the rest of the line, UTF-8>
    key: <slot kind> <key>                      (zero or more: another key that opens it)
    comment: <free text>                        (any number)
    entry: <name> sha256=<hex> size=<n>         (success only, one per entry, name order)

Usage: scripts/gen_vectors.py [--out DIR] [--explain]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEED = b"locker format v1 test vectors"
CLOCK = 1_700_000_000  # 2023-11-14T22:13:20Z
USER = "vectors"
HOST = "vectors.example"
PASSPHRASE = "correct horse battery staple"
KDF = (8192, 1, 1)  # Argon2id memory KiB, time, parallelism: small so the tests stay fast

MAGIC = b"\x89LKR\r\n\x1a\n"
VERSION = 1
SLOT_PASSPHRASE, SLOT_RECOVERY, SLOT_KEYFILE, SLOT_KEYRING = 1, 2, 3, 4
SLOT_PASSPHRASE_KEYFILE = 5
SLOT_X25519 = 6
SLOT_PKCS11 = 7
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
RECOVERY_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CHUNK = 64 * 1024
TAG = 16
MAC_SIZE = 32

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "vectors"


# -- deterministic randomness --------------------------------------------------------------------


class Drbg:
    """rng(n) -> n bytes: SHA-256(key || counter64be) blocks, key = SHA-256(SEED 0x00 label)."""

    def __init__(self, label: str) -> None:
        self._key = hashlib.sha256(SEED + b"\x00" + label.encode()).digest()
        self._counter = 0
        self._buf = b""

    def __call__(self, n: int) -> bytes:
        while len(self._buf) < n:
            block = self._key + self._counter.to_bytes(8, "big")
            self._buf += hashlib.sha256(block).digest()
            self._counter += 1
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def filler(label: str, n: int) -> bytes:
    """Deterministic entry content that does not consume the vector's rng."""
    return Drbg("content/" + label)(n)


# -- primitives (docs/FORMAT.md, "Keys") ------------------------------------------------------------


def argon2id(passphrase: bytes, salt: bytes, kdf: tuple[int, int, int]) -> bytes:
    m, t, p = kdf
    return hash_secret_raw(
        passphrase, salt, time_cost=t, memory_cost=m, parallelism=p, hash_len=32, type=Type.ID
    )


def hkdf(ikm: bytes, salt: bytes, purpose: str, context: bytes = b"") -> bytes:
    info = b"locker/v1/" + purpose.encode() + b"\x00" + context
    return HKDF(algorithm=SHA256(), length=32, salt=salt, info=info).derive(ikm)


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sealed_length(size: int) -> int:
    return size + max(1, -(-size // CHUNK)) * TAG


def chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def seal_chunks(key: bytes, aad: bytes, data: bytes) -> list[bytes]:
    """The STREAM of `data`: full 64 KiB chunks, the last one flagged; empty data = one chunk."""
    pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    aead = AESGCM(key)
    return [
        aead.encrypt(chunk_nonce(i, i == len(pieces) - 1), piece, aad)
        for i, piece in enumerate(pieces)
    ]


# -- the container model -----------------------------------------------------------------------------


@dataclass
class SlotSpec:
    kind: int
    slot_id: bytes
    salt: bytes
    nonce: bytes
    kdf: tuple[int, int, int] | None
    wrapped: bytes = b""
    extra: bytes = b""  # public kind-specific data after the Argon2 parameters
    reserved: int = 0
    salt_len: int | None = None  # override of the salt length byte
    body_len: int | None = None  # override of the body length field

    def without_key(self) -> bytes:
        body = bytes([len(self.salt) if self.salt_len is None else self.salt_len]) + self.salt
        if self.kdf is not None:
            body += struct.pack(">III", *self.kdf)
        body += self.extra + self.nonce
        length = len(body) + 48 if self.body_len is None else self.body_len
        return struct.pack(">BB8sH", self.kind, self.reserved, self.slot_id, length) + body

    def encode(self) -> bytes:
        return self.without_key() + self.wrapped

    def binding(self, container_id: bytes) -> bytes:
        return MAGIC + struct.pack(">H", VERSION) + container_id + self.without_key()


@dataclass
class EntrySpec:
    name: str
    data: bytes
    entry_id: bytes
    salt: bytes
    created: int = CLOCK
    modified: int = CLOCK
    stream: bytes | None = None  # ciphertext override (tampering with the key at hand)
    size: int | None = None  # declared size override

    @property
    def declared_size(self) -> int:
        return len(self.data) if self.size is None else self.size


@dataclass
class VaultSpec:
    container_id: bytes
    master: bytes
    slots: list[SlotSpec]
    entries: list[EntrySpec]
    log: list[dict[str, Any]]
    index_nonce: bytes
    rng: Drbg
    version: int = VERSION
    flags: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)

    def entry_key(self, e: EntrySpec) -> bytes:
        return hkdf(self.master, e.salt, "entry", self.container_id + e.entry_id)

    def stream(self, e: EntrySpec) -> bytes:
        if e.stream is not None:
            return e.stream
        return b"".join(seal_chunks(self.entry_key(e), self.container_id + e.entry_id, e.data))

    def sorted_entries(self) -> list[EntrySpec]:
        return sorted(self.entries, key=lambda e: e.name)

    def index_object(self) -> dict[str, Any]:
        rows, offset = [], 0
        for e in self.sorted_entries():
            length = len(self.stream(e))
            rows.append(
                {
                    "id": e.entry_id.hex(),
                    "name": e.name,
                    "kind": "file",
                    "size": e.declared_size,
                    "created": e.created,
                    "modified": e.modified,
                    "salt": e.salt.hex(),
                    "offset": offset,
                    "length": length,
                    "attrs": {},
                }
            )
            offset += length
        return {"entries": rows, "log": self.log, "slots": self.labels, "settings": self.settings}


def init_event() -> dict[str, Any]:
    return {"time": CLOCK, "event": "init", "names": [], "user": USER, "host": HOST, "detail": ""}


def passphrase_slot(rng: Drbg, kdf: tuple[int, int, int] = KDF) -> SlotSpec:
    """Same draws as locker's new_passphrase_slot: slot id (8), salt (16), nonce (12)."""
    return SlotSpec(SLOT_PASSPHRASE, rng(8), rng(16), rng(12), kdf)


def wrap(slot: SlotSpec, kek: bytes, container_id: bytes, master: bytes) -> SlotSpec:
    wrapped = AESGCM(kek).encrypt(slot.nonce, master, slot.binding(container_id))
    return replace(slot, wrapped=wrapped)


def wrap_passphrase(
    slot: SlotSpec, passphrase: str, container_id: bytes, master: bytes
) -> SlotSpec:
    if slot.kdf is None:
        raise ValueError("not a passphrase slot")
    return wrap(slot, argon2id(passphrase.encode(), slot.salt, slot.kdf), container_id, master)


def make_vault(
    label: str, entries: list[tuple[str, bytes]], passphrase: str = PASSPHRASE
) -> VaultSpec:
    """A vault as `create(...)` then one `add_bytes` per entry and `commit()` leave it."""
    rng = Drbg(label)
    container_id, master = rng(16), rng(32)
    slot = wrap_passphrase(passphrase_slot(rng), passphrase, container_id, master)
    index_nonce = rng(12)
    rng(6)  # the library's temp-file name for the first save
    vault = VaultSpec(container_id, master, [slot], [], [init_event()], index_nonce, rng)
    if entries:
        for name, data in entries:
            vault.entries.append(EntrySpec(name, data, rng(16), rng(16)))
        vault.index_nonce = rng(12)
        rng(6)  # temp-file name of the second save
    return vault


@dataclass
class Layout:
    """Where things ended up in the assembled container."""

    header_size: int
    index_length: int
    data_start: int
    entries: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (start, length)
    slot_starts: list[int] = field(default_factory=list)


def assemble(
    v: VaultSpec, index_plain: bytes | None = None, slot_count: int | None = None
) -> tuple[bytes, Layout]:
    if index_plain is None:
        index_plain = canonical(v.index_object())
    index_ct = AESGCM(hkdf(v.master, v.container_id, "index")).encrypt(
        v.index_nonce, index_plain, v.container_id
    )
    count = len(v.slots) if slot_count is None else slot_count
    head = struct.pack(">8sHH16sB", MAGIC, v.version, v.flags, v.container_id, count)
    starts = []
    for s in v.slots:
        starts.append(len(head))
        head += s.encode()
    head += struct.pack(">12sQ", v.index_nonce, len(index_ct))
    mac = hmac.new(hkdf(v.master, v.container_id, "header-mac"), head, hashlib.sha256).digest()
    header = head + mac
    layout = Layout(len(header), len(index_ct), len(header) + len(index_ct), slot_starts=starts)
    data = b""
    for e in v.sorted_entries():
        stream = v.stream(e)
        layout.entries[e.name] = (layout.data_start + len(data), len(stream))
        data += stream
    return header + index_ct + data, layout


# -- vectors ---------------------------------------------------------------------------------------


@dataclass
class Vector:
    expect: str
    container: bytes
    passphrase: str = PASSPHRASE
    comments: list[str] = field(default_factory=list)
    entries: list[tuple[str, bytes]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # "<slot kind> <key>"

    def encode(self) -> bytes:
        lines = [f"expect: {self.expect}", f"passphrase: {self.passphrase}"]
        lines += [f"key: {k}" for k in self.keys]
        lines += [f"comment: {c}" for c in self.comments]
        for name, data in sorted(self.entries):
            digest = hashlib.sha256(data).hexdigest()
            lines.append(f"entry: {name} sha256={digest} size={len(data)}")
        return "\n".join(lines).encode() + b"\n\n" + self.container


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]


def put(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


SMALL = [
    ("env/prod.env", b"DATABASE_URL=postgres://app@db.internal/app\nAPI_TOKEN=not-a-real-token\n"),
    ("certs/example.com/tls.crt", b"not a real certificate, just test bytes\n"),
]
WITH_EMPTY = [*SMALL, ("empty", b"")]
BIG = 2 * CHUNK + 100  # three chunks: two full, one of 100 bytes

BASIC = [
    *SMALL,
    ("empty", b""),
    ("big.bin", filler("big.bin", BIG)),
    ("notes/café.txt", "naïve UTF-8 name and content: ✓\n".encode()),
]

VECTORS: dict[str, Callable[[], Vector]] = {}


def vector(fn: Callable[[], Vector]) -> Callable[[], Vector]:
    VECTORS[fn.__name__] = fn
    return fn


# Vectors the library's writer reproduces byte for byte: create(), then add_bytes() in this
# order and commit(), with rng=Drbg(name) and clock=CLOCK (tests/test_vectors.py checks it).
LIBRARY_FLOW: dict[str, list[tuple[str, bytes]]] = {
    "success_basic": BASIC,
    "success_empty_vault": [],
    "success_exact_chunks": [("one-chunk", filler("one", CHUNK))],
    # FORMAT.md section 9: allowed code points next to forbidden ones, and U+13439 (a format
    # character only from Unicode 15: allowed, the list is pinned to Unicode 14.0).
    "success_name_edges": [
        ("nbsp\u00a0after-c1", b"U+00A0 follows the C1 controls"),
        ("after-soft-hyphen\u00ae", b"U+00AE follows U+00AD"),
        ("gap\u2065", b"U+2065 lies between two forbidden ranges"),
        ("hieroglyph\U00013439", b"U+13439, a format character from Unicode 15 on"),
        ("tag\U000e0080", b"U+E0080 follows the tag characters"),
    ],
}


def success(label: str, comment: str) -> Vector:
    entries = LIBRARY_FLOW[label]
    data, _ = assemble(make_vault(label, entries))
    return Vector("success", data, comments=[comment], entries=entries)


# Each vector builds its own vault from its own name, so keys and nonces never repeat.

# success


@vector
def success_basic() -> Vector:
    return success(
        "success_basic",
        "five entries: empty, a 3-chunk file (2 x 64 KiB + 100), nested and non-ASCII names",
    )


@vector
def success_empty_vault() -> Vector:
    return success("success_empty_vault", "a new vault: no entries, empty data section")


@vector
def success_name_edges() -> Vector:
    return success(
        "success_name_edges", "names with the allowed code points next to forbidden ones"
    )


@vector
def success_exact_chunks() -> Vector:
    return success(
        "success_exact_chunks", "a 64 KiB entry is one full last chunk, no empty chunk after"
    )


@vector
def success_second_slot() -> Vector:
    v = make_vault("success_second_slot", SMALL, passphrase="first slot passphrase")
    second = "Grüße, Jürgen ❤"
    v.slots.append(wrap_passphrase(passphrase_slot(v.rng), second, v.container_id, v.master))
    data, _ = assemble(v)
    return Vector(
        "success",
        data,
        passphrase=second,
        comments=[
            "two passphrase slots; this non-ASCII passphrase (raw UTF-8, NFC: each ü is U+00FC) "
            "opens the second"
        ],
        entries=SMALL,
    )


# slots other than the passphrase (docs/FORMAT.md, section 3)


def recovery_text(secret: bytes) -> str:
    """The printed recovery key: 32 symbols of the secret, 4 of checksum, in groups of 4."""

    def symbols(data: bytes, count: int) -> str:
        bits = "".join(f"{b:08b}" for b in data)
        return "".join(RECOVERY_ALPHABET[int(bits[5 * i : 5 * i + 5], 2)] for i in range(count))

    check = hashlib.sha256(b"locker recovery key\x00" + secret).digest()[:3]
    text = symbols(secret, 32) + symbols(check, 4)
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def keyfile_text(rng: Drbg) -> bytes:
    """A key file as `slot add-keyfile --generate` writes it: 64 hex digits and a newline."""
    return rng(32).hex().encode() + b"\n"


def secret_slot(v: VaultSpec, kind: int, name: str, secret: bytes) -> SlotSpec:
    rng = v.rng
    slot = SlotSpec(kind, rng(8), rng(16), rng(12), None)
    return wrap(slot, hkdf(secret, slot.salt, "slot-kek", name.encode()), v.container_id, v.master)


def _slot_vector(label: str, kind: int, name: str, secret: bytes, key: str, what: str) -> Vector:
    v = make_vault(label, SMALL)
    v.slots.insert(0, secret_slot(v, kind, name, secret))
    data, _ = assemble(v)
    return Vector(
        "success",
        data,
        keys=[f"{name} {key}"],
        comments=[f"a {name} slot (77-byte body) before the passphrase slot; {what}"],
        entries=SMALL,
    )


@vector
def success_recovery_slot() -> Vector:
    secret = Drbg("success_recovery_slot/key")(20)
    return _slot_vector(
        "success_recovery_slot",
        SLOT_RECOVERY,
        "recovery",
        secret,
        recovery_text(secret),
        "slot secret = the 20 bytes the recovery key spells",
    )


@vector
def success_keyfile_slot() -> Vector:
    content = keyfile_text(Drbg("success_keyfile_slot/key"))
    return _slot_vector(
        "success_keyfile_slot",
        SLOT_KEYFILE,
        "keyfile",
        hashlib.sha256(content).digest(),
        content.hex(),
        "slot secret = SHA-256 of the key file's bytes (given here in hex)",
    )


@vector
def success_keyring_slot() -> Vector:
    secret = Drbg("success_keyring_slot/key")(32)
    return _slot_vector(
        "success_keyring_slot",
        SLOT_KEYRING,
        "keyring",
        secret,
        secret.hex(),
        "slot secret = the 32 bytes the OS keyring holds (as 64 hex digits)",
    )


@vector
def success_passphrase_keyfile_slot() -> Vector:
    v = make_vault("success_passphrase_keyfile_slot", SMALL)
    content = keyfile_text(Drbg("success_passphrase_keyfile_slot/key"))
    rng = v.rng
    slot = SlotSpec(SLOT_PASSPHRASE_KEYFILE, rng(8), rng(16), rng(12), KDF)
    stretched = argon2id(PASSPHRASE.encode(), slot.salt, KDF)
    ikm = stretched + hashlib.sha256(content).digest()
    kek = hkdf(ikm, slot.salt, "slot-kek", b"passphrase+keyfile")
    v.slots.insert(0, wrap(slot, kek, v.container_id, v.master))
    data, _ = assemble(v)
    return Vector(
        "success",
        data,
        keys=[f"passphrase+keyfile {content.hex()}"],
        comments=[
            "the first slot needs the passphrase and the key file together: KEK = "
            "HKDF(Argon2id(passphrase) || SHA-256(key file), salt, slot-kek, passphrase+keyfile)"
            "; the second, a passphrase slot, opens with the passphrase alone"
        ],
        entries=SMALL,
    )


BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def bech32(hrp: str, data: bytes) -> str:
    """BIP 173 Bech32 (age's key encoding, without the 90-character limit)."""

    def polymod(values: list[int]) -> int:
        gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
        chk = 1
        for v in values:
            b = chk >> 25
            chk = (chk & 0x1FFFFFF) << 5 ^ v
            for i in range(5):
                chk ^= gen[i] if (b >> i) & 1 else 0
        return chk

    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    words = [int(bits[i : i + 5], 2) for i in range(0, len(bits), 5)]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    check = polymod(expanded + words + [0] * 6) ^ 1
    words += [(check >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32[w] for w in words)


def x25519_slot(v: VaultSpec, identity: bytes) -> SlotSpec:
    """age's X25519 stanza derivation, wrapped like every other slot."""
    rng = v.rng
    recipient = X25519PrivateKey.from_private_bytes(identity).public_key().public_bytes_raw()
    ephemeral = X25519PrivateKey.from_private_bytes(rng(32))
    share = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    wrap_key = HKDF(
        algorithm=SHA256(), length=32, salt=share + recipient, info=b"age-encryption.org/v1/X25519"
    ).derive(shared)
    slot = SlotSpec(SLOT_X25519, rng(8), rng(16), rng(12), None, extra=share)
    kek = hkdf(wrap_key, slot.salt, "slot-kek", b"x25519")
    return wrap(slot, kek, v.container_id, v.master)


def _x25519_vector(label: str, identity: bytes, given: bytes, expect: str) -> Vector:
    v = make_vault(label, SMALL)
    v.slots.insert(0, x25519_slot(v, identity))
    data, _ = assemble(v)
    key = bech32("age-secret-key-", given).upper()
    public = X25519PrivateKey.from_private_bytes(identity).public_key().public_bytes_raw()
    comment = (
        f"an x25519 slot (109-byte body) for {bech32('age', public)} before the passphrase "
        "slot; slot secret = age's X25519 wrap key"
    )
    if expect == "success":
        return Vector(expect, data, keys=[f"x25519 {key}"], comments=[comment], entries=SMALL)
    comment += "; the identity given is another one"
    return Vector(expect, data, "not the passphrase", [comment], keys=[f"x25519 {key}"])


@vector
def success_x25519_slot() -> Vector:
    identity = Drbg("success_x25519_slot/key")(32)
    return _x25519_vector("success_x25519_slot", identity, identity, "success")


@vector
def bad_key_x25519_wrong() -> Vector:
    identity = Drbg("bad_key_x25519_wrong/key")(32)
    other = Drbg("bad_key_x25519_wrong/other")(32)
    return _x25519_vector("bad_key_x25519_wrong", identity, other, "bad key")


def p256_scalar(random: bytes) -> int:
    return int.from_bytes(random, "big") % (P256_ORDER - 1) + 1


def _pkcs11_vector(label: str, token: int, given: int, expect: str) -> Vector:
    """A pkcs11-p256 slot: ECDH between a one-time P-256 key and the token's key; the key
    line holds the token's private scalar in hex (a real token never gives it out)."""
    v = make_vault(label, SMALL)
    rng = v.rng
    token_public = ec.derive_private_key(token, ec.SECP256R1()).public_key()
    ephemeral = ec.derive_private_key(p256_scalar(rng(32)), ec.SECP256R1())
    share = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    shared = ephemeral.exchange(ec.ECDH(), token_public)
    slot = SlotSpec(SLOT_PKCS11, rng(8), rng(16), rng(12), None, extra=share)
    v.slots.insert(
        0, wrap(slot, hkdf(shared, slot.salt, "slot-kek", b"pkcs11-p256"), v.container_id, v.master)
    )
    data, _ = assemble(v)
    comment = (
        "a pkcs11-p256 slot (142-byte body: a 65-byte uncompressed P-256 point) before the "
        "passphrase slot; slot secret = the ECDH x coordinate"
    )
    key = f"pkcs11-p256 {given:064x}"
    if expect == "success":
        return Vector(expect, data, keys=[key], comments=[comment], entries=SMALL)
    return Vector(expect, data, "not the passphrase", [comment + "; another token key"], keys=[key])


@vector
def success_pkcs11_slot() -> Vector:
    token = p256_scalar(Drbg("success_pkcs11_slot/key")(32))
    return _pkcs11_vector("success_pkcs11_slot", token, token, "success")


@vector
def bad_key_pkcs11_wrong() -> Vector:
    token = p256_scalar(Drbg("bad_key_pkcs11_wrong/key")(32))
    other = p256_scalar(Drbg("bad_key_pkcs11_wrong/other")(32))
    return _pkcs11_vector("bad_key_pkcs11_wrong", token, other, "bad key")


def slot_added_event(kind: str, slot_id: bytes, label: str) -> dict[str, Any]:
    detail = f"{kind} slot {slot_id.hex()} ({label})"
    return {**init_event(), "event": "slot-add", "detail": detail}


def _add_recovery_slot(v: VaultSpec) -> bytes:
    """A recovery slot added to `v` as `add_slot` and `commit()` leave it, in either version
    (its label, its creation time and the unlocking slot's last use, a slot-add event, a new
    index nonce and the save's 6-byte temp-file name drawn); returns the recovery secret."""
    rng = v.rng
    secret = rng(20)
    slot = SlotSpec(SLOT_RECOVERY, rng(8), rng(16), rng(12), None)
    kek = hkdf(secret, slot.salt, "slot-kek", b"recovery")
    v.slots.append(wrap(slot, kek, v.container_id, v.master))
    v.labels = {slot.slot_id.hex(): "recovery key"}
    v.settings = {
        f"slot.{slot.slot_id.hex()}.created": str(CLOCK),
        f"slot.{v.slots[0].slot_id.hex()}.used": str(CLOCK),
    }
    v.log.append(slot_added_event("recovery", slot.slot_id, "recovery key"))
    v.index_nonce = rng(12)
    rng(6)  # the save's temp-file name
    return secret


@vector
def success_recovery_added() -> Vector:
    """As `create()`, then `add_slot` of a recovery slot and `commit()` leave it (the library
    reproduces this one: tests/test_slot_vectors.py)."""
    v = make_vault("success_recovery_added", [])
    secret = _add_recovery_slot(v)
    data, _ = assemble(v)
    return Vector(
        "success",
        data,
        keys=[f"recovery {recovery_text(secret)}"],
        comments=[
            "a new vault and then a recovery slot added: its label in the index's slots, its "
            "creation time and the unlocking slot's last use in settings, a slot-add event"
        ],
    )


@vector
def bad_key_recovery_wrong() -> Vector:
    secret = Drbg("bad_key_recovery_wrong/key")(20)
    v = _slot_vector(
        "bad_key_recovery_wrong",
        SLOT_RECOVERY,
        "recovery",
        secret,
        recovery_text(bytes(20)),
        "the key given is another valid recovery key",
    )
    return Vector("bad key", v.container, "not the passphrase", v.comments, keys=v.keys)


@vector
def bad_key_keyfile_wrong() -> Vector:
    content = keyfile_text(Drbg("bad_key_keyfile_wrong/key"))
    v = _slot_vector(
        "bad_key_keyfile_wrong",
        SLOT_KEYFILE,
        "keyfile",
        hashlib.sha256(content).digest(),
        (b"0" * 64 + b"\n").hex(),
        "the key given is another key file",
    )
    return Vector("bad key", v.container, "not the passphrase", v.comments, keys=v.keys)


# bad key


@vector
def bad_key_wrong_passphrase() -> Vector:
    data, _ = assemble(make_vault("bad_key_wrong_passphrase", SMALL))
    return Vector("bad key", data, passphrase="correct horse battery stapler")


def _slot_tamper(name: str, field_offset: int, what: str, mask: int = 0x01) -> Vector:
    data, lay = assemble(make_vault(name, SMALL))
    at = lay.slot_starts[0] + field_offset
    return Vector(
        "bad key",
        flip(data, at, mask),
        comments=[
            f"{what} flipped (byte {at}); the slot's key wrap fails, which cannot be told "
            "apart from a wrong passphrase"
        ],
    )


@vector
def bad_key_container_id_tampered() -> Vector:
    data, _ = assemble(make_vault("bad_key_container_id_tampered", SMALL))
    return Vector(
        "bad key",
        flip(data, 20),
        comments=[
            "container id byte 20 flipped; the id is in every slot's key-wrap AAD, so this is "
            "detected by the key unwrap, before the header MAC, and reads as a wrong passphrase"
        ],
    )


@vector
def bad_key_salt_tampered() -> Vector:
    return _slot_tamper("bad_key_salt_tampered", 12 + 1, "first byte of the Argon2 salt")


@vector
def bad_key_kdf_time_tampered() -> Vector:
    return _slot_tamper(
        "bad_key_kdf_time_tampered", 12 + 17 + 4 + 3, "Argon2 time cost 1 -> 3", mask=0x02
    )


@vector
def bad_key_wrapped_key_tampered() -> Vector:
    return _slot_tamper("bad_key_wrapped_key_tampered", 12 + 89 - 1, "last byte of the wrapped key")


# header failure (the slot opens, the header MAC does not verify)


@vector
def header_index_length_tampered() -> Vector:
    data, lay = assemble(make_vault("header_index_length_tampered", BASIC[:3]))
    at = lay.header_size - MAC_SIZE - 1
    return Vector(
        "header failure",
        flip(data, at),
        comments=[
            f"low byte of the index length (byte {at}) flipped: off by one, still in the file"
        ],
    )


@vector
def header_index_nonce_tampered() -> Vector:
    data, lay = assemble(make_vault("header_index_nonce_tampered", SMALL))
    at = lay.header_size - MAC_SIZE - 8 - 12
    return Vector("header failure", flip(data, at), comments=[f"index nonce byte {at} flipped"])


@vector
def header_mac_tampered() -> Vector:
    data, lay = assemble(make_vault("header_mac_tampered", SMALL))
    at = lay.header_size - 1
    return Vector("header failure", flip(data, at), comments=[f"last MAC byte ({at}) flipped"])


# index failure (header verified, the index does not decrypt)


@vector
def index_ciphertext_tampered() -> Vector:
    data, lay = assemble(make_vault("index_ciphertext_tampered", SMALL))
    at = lay.header_size + 5
    return Vector("index failure", flip(data, at), comments=[f"index ciphertext byte {at} flipped"])


@vector
def index_tag_tampered() -> Vector:
    data, lay = assemble(make_vault("index_tag_tampered", SMALL))
    at = lay.data_start - 1
    return Vector("index failure", flip(data, at), comments=[f"last byte of the index tag ({at})"])


@vector
def index_from_previous_save() -> Vector:
    v = make_vault("index_from_previous_save", SMALL)
    old, _ = assemble(v)
    v.index_nonce = v.rng(12)  # a later save with the same content (as after `passwd`)
    new, lay = assemble(v)
    spliced = new[: lay.header_size] + old[lay.header_size : lay.data_start] + new[lay.data_start :]
    return Vector(
        "index failure",
        spliced,
        comments=["header (and MAC) of a later save, index ciphertext of the save before it"],
    )


# payload failure (the vault opens; reading an entry fails)


def _big_vault(label: str) -> VaultSpec:
    return make_vault(label, [SMALL[0], ("big.bin", filler("big.bin", BIG)), ("empty", b"")])


@vector
def payload_chunk_tampered() -> Vector:
    data, lay = assemble(_big_vault("payload_chunk_tampered"))
    start, _ = lay.entries["big.bin"]
    at = start + CHUNK + TAG + 1000
    return Vector(
        "payload failure", flip(data, at), comments=[f"big.bin chunk 1, byte {at}, flipped"]
    )


@vector
def payload_chunks_swapped() -> Vector:
    data, lay = assemble(_big_vault("payload_chunks_swapped"))
    start, _ = lay.entries["big.bin"]
    c0 = data[start : start + CHUNK + TAG]
    c1 = data[start + CHUNK + TAG : start + 2 * (CHUNK + TAG)]
    return Vector(
        "payload failure",
        put(data, start, c1 + c0),
        comments=["big.bin chunks 0 and 1 (both full) swapped"],
    )


@vector
def payload_empty_entry_tag_tampered() -> Vector:
    data, lay = assemble(make_vault("payload_empty_entry_tag_tampered", WITH_EMPTY))
    start, length = lay.entries["empty"]
    return Vector(
        "payload failure",
        flip(data, start + length - 1),
        comments=["the empty entry's only chunk (a bare 16-byte tag) tampered"],
    )


@vector
def payload_entries_spliced() -> Vector:
    a = ("a.key", b"first 32-byte secret value......")
    b = ("b.key", b"second 32-byte secret value.....")
    data, lay = assemble(make_vault("payload_entries_spliced", [a, b]))
    (sa, la), (sb, lb) = lay.entries["a.key"], lay.entries["b.key"]
    ca, cb = data[sa : sa + la], data[sb : sb + lb]
    return Vector(
        "payload failure",
        put(put(data, sa, cb), sb, ca),
        comments=["the ciphertexts of two equal-size entries swapped: entry ids are bound"],
    )


@vector
def payload_entry_rollback() -> Vector:
    name = "api.token"
    v = make_vault("payload_entry_rollback", [(name, b"token version 1: aaaaaaaaaaaaaaa")])
    old, old_lay = assemble(v)
    e = v.entries[0]
    e.data, e.salt, e.modified = b"token version 2: bbbbbbbbbbbbbbb", v.rng(16), CLOCK + 60
    v.index_nonce = v.rng(12)
    new, lay = assemble(v)
    s, _ = lay.entries[name]
    old_start, old_length = old_lay.entries[name]
    return Vector(
        "payload failure",
        put(new, s, old[old_start : old_start + old_length]),
        comments=[
            "entry replaced by its previous ciphertext (same entry id, older content salt): "
            "the per-version content salt catches single-entry rollback"
        ],
    )


@vector
def payload_last_chunk_dropped() -> Vector:
    v = make_vault("payload_last_chunk_dropped", [("big.bin", filler("2 chunks", CHUNK + 100))])
    big = v.entries[0]
    chunks = seal_chunks(v.entry_key(big), v.container_id + big.entry_id, big.data)
    big.stream, big.size = chunks[0], CHUNK
    data, _ = assemble(v)
    return Vector(
        "payload failure",
        data,
        comments=[
            "made with the master key: a 2-chunk big.bin cut after chunk 0 and the index "
            "rewritten to match (size 65536), so only the STREAM last-chunk flag can catch it"
        ],
    )


@vector
def payload_data_after_final_chunk() -> Vector:
    v = _big_vault("payload_data_after_final_chunk")
    big = next(e for e in v.entries if e.name == "big.bin")
    aead, aad = AESGCM(v.entry_key(big)), v.container_id + big.entry_id
    first = aead.encrypt(chunk_nonce(0, True), big.data[:CHUNK], aad)
    more = aead.encrypt(chunk_nonce(1, True), big.data[CHUNK : CHUNK + 100], aad)
    big.stream, big.size = first + more, CHUNK + 100
    data, _ = assemble(v)
    return Vector(
        "payload failure",
        data,
        comments=[
            "made with the master key: chunk 0 sealed as the last chunk, then another chunk; "
            "index consistent (size 65636)"
        ],
    )


# format error: framing and bounds (no key needed)


def _small(label: str) -> tuple[bytes, Layout]:
    return assemble(make_vault(label, SMALL))


@vector
def format_empty_file() -> Vector:
    return Vector("format error", b"", comments=["zero bytes"])


@vector
def format_bad_magic() -> Vector:
    data, _ = _small("format_bad_magic")
    return Vector("format error", flip(data, 1), comments=["magic byte 1 flipped"])


@vector
def format_flags_nonzero() -> Vector:
    v = make_vault("format_flags_nonzero", SMALL)
    v.flags = 0x0001
    data, _ = assemble(v)
    return Vector("format error", data, comments=["flags = 0x0001 (header MAC valid)"])


@vector
def format_slot_count_zero() -> Vector:
    data, _ = _small("format_slot_count_zero")
    return Vector("format error", put(data, 28, b"\x00"), comments=["slot count 0"])


@vector
def format_slot_count_too_large() -> Vector:
    v = make_vault("format_slot_count_too_large", SMALL)
    base = v.slots[0]
    v.slots = [replace(base, slot_id=bytes([i]) * 8) for i in range(17)]
    data, _ = assemble(v)
    return Vector("format error", data, comments=["17 well-formed slots (at most 16)"])


@vector
def format_slot_unknown_kind() -> Vector:
    data, lay = _small("format_slot_unknown_kind")
    return Vector(
        "format error", put(data, lay.slot_starts[0], b"\xff"), comments=["slot kind 255"]
    )


@vector
def format_slot_reserved_nonzero() -> Vector:
    data, lay = _small("format_slot_reserved_nonzero")
    at = lay.slot_starts[0] + 1
    return Vector("format error", put(data, at, b"\x01"), comments=["slot reserved byte 1"])


@vector
def format_slot_length_wrong() -> Vector:
    v = make_vault("format_slot_length_wrong", SMALL)
    v.slots[0] = replace(v.slots[0], body_len=88)
    data, _ = assemble(v)
    return Vector("format error", data, comments=["passphrase slot body length 88 (must be 89)"])


@vector
def format_slot_salt_length() -> Vector:
    v = make_vault("format_slot_salt_length", SMALL)
    v.slots[0] = replace(v.slots[0], salt_len=15)
    data, _ = assemble(v)
    return Vector("format error", data, comments=["salt length byte 15 (must be 16)"])


@vector
def format_duplicate_slot_id() -> Vector:
    v = make_vault("format_duplicate_slot_id", SMALL)
    v.slots.append(v.slots[0])
    data, _ = assemble(v)
    return Vector("format error", data, comments=["the same passphrase slot twice"])


@vector
def format_index_length_too_small() -> Vector:
    data, lay = _small("format_index_length_too_small")
    at = lay.header_size - MAC_SIZE - 8
    return Vector(
        "format error",
        put(data, at, struct.pack(">Q", 16)),
        comments=["index length 16 (must exceed the 16-byte tag)"],
    )


@vector
def format_index_length_too_large() -> Vector:
    data, lay = _small("format_index_length_too_large")
    at = lay.header_size - MAC_SIZE - 8
    return Vector(
        "format error",
        put(data, at, struct.pack(">Q", 64 * 1024 * 1024 + 17)),
        comments=["index length 64 MiB + 17 (cap 64 MiB + 16)"],
    )


@vector
def format_index_past_end_of_file() -> Vector:
    data, lay = _small("format_index_past_end_of_file")
    at = lay.header_size - MAC_SIZE - 8
    new_len = len(data) - lay.header_size + 1
    return Vector(
        "format error",
        put(data, at, struct.pack(">Q", new_len)),
        comments=["index length one byte past the end of the file"],
    )


@vector
def format_truncated_in_header() -> Vector:
    data, _ = _small("format_truncated_in_header")
    return Vector("format error", data[:100], comments=["the first 100 bytes only"])


@vector
def format_truncated_in_index() -> Vector:
    data, lay = _small("format_truncated_in_index")
    return Vector(
        "format error",
        data[: lay.header_size + lay.index_length // 2],
        comments=["cut in the middle of the index"],
    )


@vector
def format_truncated_last_chunk() -> Vector:
    data, lay = assemble(make_vault("format_truncated_last_chunk", WITH_EMPTY))
    # Name order: certs/..., empty, env/prod.env. Cut the final chunk of the last entry.
    start, length = lay.entries["env/prod.env"]
    if start + length != len(data):
        raise RuntimeError("env/prod.env is not the last entry")
    return Vector(
        "format error",
        data[:start],
        comments=[
            "the last entry's only chunk cut off: the data section is shorter than the index says"
        ],
    )


@vector
def format_truncated_one_byte() -> Vector:
    data, _ = assemble(make_vault("format_truncated_one_byte", WITH_EMPTY))
    return Vector("format error", data[:-1], comments=["the final byte cut off"])


@vector
def format_extended_trailing_bytes() -> Vector:
    data, _ = _small("format_extended_trailing_bytes")
    return Vector(
        "format error",
        data + b"\x00" * 16,
        comments=["16 zero bytes appended after the last entry"],
    )


@vector
def format_extended_sealed_chunk() -> Vector:
    v = make_vault("format_extended_sealed_chunk", [("only", b"x" * 10)])
    data, _ = assemble(v)
    e = v.entries[0]
    extra = AESGCM(v.entry_key(e)).encrypt(
        chunk_nonce(1, True), b"more", v.container_id + e.entry_id
    )
    return Vector(
        "format error",
        data + extra,
        comments=["made with the master key: an authentic chunk 1 appended after the last chunk"],
    )


# format error: an index that decrypts but is not valid (made with the master key)


def _index_vector(label: str, edit: Callable[[dict[str, Any]], Any], comment: str) -> Vector:
    """Encrypt and MAC an edited index; `edit` returns the new object or raw bytes."""
    v = make_vault(label, SMALL)
    obj = v.index_object()
    new = edit(obj)
    plain = new if isinstance(new, bytes) else canonical(obj if new is None else new)
    data, _ = assemble(v, index_plain=plain)
    return Vector("format error", data, comments=["made with the master key: " + comment])


def _rename_first(obj: dict[str, Any], name: str) -> None:
    obj["entries"][0]["name"] = name


@vector
def format_index_noncanonical_whitespace() -> Vector:
    return _index_vector(
        "format_index_noncanonical_whitespace",
        lambda o: json.dumps(o, sort_keys=True, ensure_ascii=False).encode(),
        "index JSON with spaces after ',' and ':'",
    )


@vector
def format_index_noncanonical_key_order() -> Vector:
    def edit(o: dict[str, Any]) -> bytes:
        c = canonical(o)
        return c.replace(b'{"entries":', b'{"slots":{},"entries":', 1).replace(
            b',"slots":{}}', b"}"
        )

    return _index_vector(
        "format_index_noncanonical_key_order", edit, "top-level keys not in sorted order"
    )


@vector
def format_index_noncanonical_escape() -> Vector:
    def edit(o: dict[str, Any]) -> bytes:
        o["entries"][0]["attrs"] = {"note": "café"}
        return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    return _index_vector(
        "format_index_noncanonical_escape", edit, 'non-ASCII written as "\\u00e9", not raw UTF-8'
    )


@vector
def format_index_not_json() -> Vector:
    return _index_vector(
        "format_index_not_json", lambda o: b"not json at all", "plaintext not JSON"
    )


@vector
def format_index_invalid_utf8() -> Vector:
    def edit(o: dict[str, Any]) -> bytes:
        return canonical(o).replace(b'"settings":{}', b'"settings":{"a":"\xff"}')

    return _index_vector("format_index_invalid_utf8", edit, "a 0xFF byte inside a string")


@vector
def format_index_lone_surrogate() -> Vector:
    def edit(o: dict[str, Any]) -> bytes:
        return canonical(o).replace(b'"settings":{}', b'"settings":{"a":"\\ud800"}')

    return _index_vector(
        "format_index_lone_surrogate", edit, 'a settings value "\\ud800" (a lone surrogate)'
    )


def _name_vector(label: str, name: str, what: str) -> Vector:
    return _index_vector(label, lambda o: _rename_first(o, name), f"entry name {what}")


@vector
def format_index_name_dotdot() -> Vector:
    return _name_vector("format_index_name_dotdot", "../x", '"../x"')


@vector
def format_index_name_absolute() -> Vector:
    return _name_vector("format_index_name_absolute", "/etc/x", '"/etc/x"')


@vector
def format_index_name_backslash() -> Vector:
    return _name_vector("format_index_name_backslash", "a\\b", '"a\\\\b" (a backslash)')


@vector
def format_index_name_nul() -> Vector:
    return _name_vector("format_index_name_nul", "a\x00b", "with a NUL")


@vector
def format_index_name_empty_component() -> Vector:
    return _name_vector("format_index_name_empty_component", "a//b", '"a//b"')


@vector
def format_index_name_control() -> Vector:
    return _name_vector("format_index_name_control", "a\nb", "with a newline")


@vector
def format_index_name_bidi_override() -> Vector:
    return _name_vector("format_index_name_bidi_override", "a\u202eb", "with U+202E")


@vector
def format_index_name_soft_hyphen() -> Vector:
    return _name_vector("format_index_name_soft_hyphen", "a\u00adb", "with U+00AD")


@vector
def format_index_name_last_tag() -> Vector:
    return _name_vector("format_index_name_last_tag", "a\U000e007fb", "with U+E007F")


@vector
def format_index_slot_label_key_not_hex() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        o["slots"]["0011AABBCCDDEEFF"] = "upper-case slot id"

    return _index_vector(
        "format_index_slot_label_key_not_hex", edit, "a slot label keyed by upper-case hex"
    )


@vector
def format_index_names_unsorted() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        o["entries"][0]["name"] = "zz-last"

    return _index_vector("format_index_names_unsorted", edit, "entries not in name order")


@vector
def format_index_duplicate_name() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        o["entries"][1]["name"] = o["entries"][0]["name"]

    return _index_vector("format_index_duplicate_name", edit, "two entries with one name")


@vector
def format_index_file_and_directory() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        o["entries"][0]["name"] = "certs"
        o["entries"][1]["name"] = "certs/x"

    return _index_vector(
        "format_index_file_and_directory", edit, '"certs" and "certs/x" (file and directory)'
    )


@vector
def format_index_duplicate_id() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        o["entries"][1]["id"] = o["entries"][0]["id"]

    return _index_vector("format_index_duplicate_id", edit, "two entries with one id")


@vector
def format_index_offset_gap() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        o["entries"][1]["offset"] += 1

    return _index_vector("format_index_offset_gap", edit, "second entry's offset one too high")


@vector
def format_index_length_mismatch() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        o["entries"][0]["size"] -= 1

    return _index_vector(
        "format_index_length_mismatch", edit, "size one less: length != sealed_length(size)"
    )


@vector
def format_index_empty_final_chunk() -> Vector:
    v = make_vault("format_index_empty_final_chunk", [("full", filler("full", CHUNK))])
    e = v.entries[0]
    aead, aad = AESGCM(v.entry_key(e)), v.container_id + e.entry_id
    e.stream = aead.encrypt(chunk_nonce(0, False), e.data, aad) + aead.encrypt(
        chunk_nonce(1, True), b"", aad
    )
    data, _ = assemble(v)
    return Vector(
        "format error",
        data,
        comments=[
            "made with the master key: a 64 KiB entry sealed as a full chunk plus an empty "
            "last chunk (length 65568 != sealed_length(65536) = 65552)"
        ],
    )


@vector
def format_index_unknown_field() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        o["entries"][0]["mode"] = 384

    return _index_vector("format_index_unknown_field", edit, 'an entry with an extra "mode" field')


@vector
def format_index_missing_field() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        del o["entries"][0]["attrs"]

    return _index_vector("format_index_missing_field", edit, 'an entry without "attrs"')


@vector
def format_index_uppercase_hex() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        o["entries"][0]["id"] = o["entries"][0]["id"].upper()

    return _index_vector("format_index_uppercase_hex", edit, "entry id in upper-case hex")


@vector
def format_index_hex_with_spaces() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        h = o["entries"][0]["id"]
        o["entries"][0]["id"] = f"{h[0:2]} {h[2:4]} {h[4:30]}"  # 32 characters, 15 bytes

    return _index_vector(
        "format_index_hex_with_spaces", edit, 'entry id "xx xx xxxx...": 32 characters but 15 bytes'
    )


@vector
def format_index_float_size() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        o["entries"][0]["size"] = float(o["entries"][0]["size"])

    return _index_vector("format_index_float_size", edit, "size written as a float (40.0)")


@vector
def format_index_log_too_long() -> Vector:
    def edit(o: dict[str, Any]) -> None:
        event = {"time": CLOCK, "event": "x", "names": [], "user": "", "host": "", "detail": ""}
        o["log"] = [event] * 1001

    return _index_vector("format_index_log_too_long", edit, "1001 log events (at most 1000)")


# kdf too costly: refused while parsing, before any derivation


def _kdf_vector(label: str, slots_kdf: list[tuple[int, int, int]], comment: str) -> Vector:
    v = make_vault(label, SMALL)
    base = v.slots[0]
    v.slots = [replace(base, slot_id=bytes([i + 1]) * 8, kdf=k) for i, k in enumerate(slots_kdf)]
    data, _ = assemble(v)
    return Vector(
        "kdf too costly",
        data,
        comments=[comment + "; the rest of the file is valid (the key was wrapped at 8 MiB, t=1)"],
    )


@vector
def kdf_memory_over_cap() -> Vector:
    return _kdf_vector(
        "kdf_memory_over_cap", [(0xFFFFFFFF, 1, 1)], "memory 0xFFFFFFFF KiB (~4 TiB; cap 4 GiB)"
    )


@vector
def kdf_time_over_cap() -> Vector:
    return _kdf_vector("kdf_time_over_cap", [(8192, 17, 1)], "time 17 (cap 16)")


@vector
def kdf_parallelism_over_cap() -> Vector:
    return _kdf_vector("kdf_parallelism_over_cap", [(8192, 1, 17)], "parallelism 17 (cap 16)")


@vector
def kdf_memory_time_over_cap() -> Vector:
    return _kdf_vector(
        "kdf_memory_time_over_cap", [(1024 * 1024, 9, 1)], "1 GiB x 9 passes (cap 8 GiB)"
    )


@vector
def kdf_total_work_over_cap() -> Vector:
    return _kdf_vector(
        "kdf_total_work_over_cap",
        [(1024 * 1024, 6, 1)] * 3,
        "three slots of 1 GiB x 6 passes: each within its cap, 18 GiB together (cap 16 GiB)",
    )


@vector
def kdf_zero_memory() -> Vector:
    return _kdf_vector("kdf_zero_memory", [(0, 1, 1)], "memory 0")


@vector
def kdf_zero_parallelism() -> Vector:
    return _kdf_vector("kdf_zero_parallelism", [(8192, 1, 0)], "parallelism 0")


@vector
def kdf_memory_below_lanes() -> Vector:
    return _kdf_vector(
        "kdf_memory_below_lanes", [(15, 1, 2)], "15 KiB for 2 lanes (Argon2 needs 8 KiB a lane)"
    )


# unknown version


@vector
def unknown_version_0() -> Vector:
    data, _ = _small("unknown_version_0")
    return Vector("unknown version", put(data, 8, b"\x00\x00"), comments=["version 0"])


# -- version 2 (docs/FORMAT.md, sections 17 to 22) -----------------------------------------------

HEAD_SIZE = 4096
RECORD_OFFSETS = (4096, 8192)
DATA_AREA = 12288
RECORD_FIELDS = struct.Struct(">QQQ12s")  # generation, index offset, index length, index nonce
RECORD_SIZE = RECORD_FIELDS.size + MAC_SIZE  # 68


def v2_head(v: VaultSpec) -> bytes:
    """Magic, version 2, flags, container id, slot count, the slots, zero padding to 4096."""
    head = struct.pack(">8sHH16sB", MAGIC, 2, v.flags, v.container_id, len(v.slots))
    head += b"".join(s.encode() for s in v.slots)
    return head + bytes(HEAD_SIZE - len(head))


def v2_record(
    v: VaultSpec, head: bytes, generation: int, offset: int, length: int, nonce: bytes
) -> bytes:
    fields = RECORD_FIELDS.pack(generation, offset, length, nonce)
    key = hkdf(v.master, v.container_id, "header-mac")
    return fields + hmac.new(key, head + fields, hashlib.sha256).digest()


@dataclass
class V2File:
    """A version 2 file as a writer builds it, generation by generation: `place` maps each
    entry in force to its absolute offset; `records` holds the 68 bytes of record A and B."""

    v: VaultSpec
    body: bytearray = field(default_factory=bytearray)
    place: dict[str, int] = field(default_factory=dict)
    records: list[bytes] = field(default_factory=lambda: [bytes(RECORD_SIZE)] * 2)
    generation: int = 0
    in_force: int = 1  # so that the first save that is not a compaction writes record B
    index_at: tuple[int, int] = (0, 0)  # offset and length of the index in force

    def index_object(self) -> dict[str, Any]:
        rows = []
        for e in self.v.sorted_entries():
            rows.append(
                {
                    "id": e.entry_id.hex(),
                    "name": e.name,
                    "kind": "file",
                    "size": e.declared_size,
                    "created": e.created,
                    "modified": e.modified,
                    "salt": e.salt.hex(),
                    "offset": self.place[e.name],
                    "length": len(self.v.stream(e)),
                    "attrs": {},
                }
            )
        v = self.v
        return {"entries": rows, "log": v.log, "slots": v.labels, "settings": v.settings}

    def _index(self, plain: bytes | None) -> bytes:
        plain = canonical(self.index_object()) if plain is None else plain
        key = hkdf(self.v.master, self.v.container_id, "index")
        return AESGCM(key).encrypt(self.v.index_nonce, plain, self.v.container_id)

    def _commit(self, record: int, index_plain: bytes | None) -> None:
        at = DATA_AREA + len(self.body)
        index = self._index(index_plain)
        self.body += index
        self.generation += 1
        self.index_at = (at, len(index))
        head = v2_head(self.v)
        self.records[record] = v2_record(
            self.v, head, self.generation, at, len(index), self.v.index_nonce
        )
        self.in_force = record

    def compact(self, index_plain: bytes | None = None) -> None:
        """A whole new file: entries in name order from 12288, the index after them, record A
        with the next generation, record B empty."""
        self.body = bytearray()
        self.place = {}
        for e in self.v.sorted_entries():
            self.place[e.name] = DATA_AREA + len(self.body)
            self.body += self.v.stream(e)
        self.records = [bytes(RECORD_SIZE)] * 2
        self._commit(0, index_plain)

    def append(self, index_plain: bytes | None = None, switch: bool = True) -> None:
        """New STREAMs (entries not yet placed) at the end in name order, then the index, then
        (with `switch`) the next generation in the record not in force."""
        for e in self.v.sorted_entries():
            if e.name not in self.place:
                self.place[e.name] = DATA_AREA + len(self.body)
                self.body += self.v.stream(e)
        if switch:
            self._commit(1 - self.in_force, index_plain)
        else:
            self.body += self._index(index_plain)

    def bytes(self) -> bytes:
        head = v2_head(self.v)
        blocks = [r + bytes(HEAD_SIZE - RECORD_SIZE) for r in self.records]
        return head + blocks[0] + blocks[1] + bytes(self.body)


def v2_create(label: str, passphrase: str = PASSPHRASE) -> V2File:
    """`create(...)` in version 2: the draws of make_vault's first save, one compaction."""
    rng = Drbg(label)
    container_id, master = rng(16), rng(32)
    slot = wrap_passphrase(passphrase_slot(rng), passphrase, container_id, master)
    vault = VaultSpec(container_id, master, [slot], [], [init_event()], rng(12), rng)
    rng(6)  # the temp-file name of the first save (a compaction)
    f = V2File(vault)
    f.compact()
    return f


def v2_add(f: V2File, entries: list[tuple[str, bytes]]) -> None:
    """add_bytes() for each entry (id and salt drawn in that order), then commit(): an append."""
    for name, data in entries:
        f.v.entries.append(EntrySpec(name, data, f.v.rng(16), f.v.rng(16)))
    f.v.index_nonce = f.v.rng(12)
    f.append()


def v2_remove(f: V2File, names: list[str]) -> None:
    """remove() for each name, then commit(): a compaction (index nonce and temp name drawn)."""
    f.v.entries = [e for e in f.v.entries if e.name not in names]
    f.v.index_nonce = f.v.rng(12)
    f.v.rng(6)
    f.compact()


# Version 2 vectors the library's writer reproduces byte for byte: create(), then for each
# step its add_bytes() or remove() calls and one commit(), with rng=Drbg(name), clock=CLOCK.
V2_LIBRARY_FLOW: dict[str, list[tuple[str, list[tuple[str, bytes]]]]] = {
    "v2_success_empty_vault": [],
    "v2_success_basic": [("add", BASIC)],
    "v2_success_three_generations": [
        ("add", SMALL),
        ("add", [("later/added.txt", b"added by the third save\n")]),
    ],
    "v2_success_compacted": [("add", WITH_EMPTY), ("rm", [("empty", b"")])],
}


def v2_flow(label: str) -> tuple[V2File, list[tuple[str, bytes]]]:
    f = v2_create(label)
    kept: dict[str, bytes] = {}
    for step, items in V2_LIBRARY_FLOW[label]:
        if step == "add":
            v2_add(f, items)
            kept.update(items)
        else:
            v2_remove(f, [name for name, _ in items])
            for name, _ in items:
                del kept[name]
    return f, sorted(kept.items())


def _v2_success(label: str, comment: str) -> Vector:
    f, entries = v2_flow(label)
    return Vector("success", f.bytes(), comments=[comment], entries=entries)


@vector
def v2_success_empty_vault() -> Vector:
    return _v2_success(
        "v2_success_empty_vault",
        "a new vault: generation 1 in record A (index at 12288), record B empty",
    )


@vector
def v2_success_basic() -> Vector:
    return _v2_success(
        "v2_success_basic",
        "generation 1 (empty) in record A, then an append: five entries and the index of "
        "generation 2 after the first index, generation 2 in record B",
    )


@vector
def v2_success_three_generations() -> Vector:
    return _v2_success(
        "v2_success_three_generations",
        "three saves: generation 3 in record A is in force, generation 2 in record B; two "
        "older indexes are garbage",
    )


@vector
def v2_success_compacted() -> Vector:
    return _v2_success(
        "v2_success_compacted",
        "an append of three entries, then rm of one: a compaction, generation 3 in record A, "
        "record B empty, no garbage",
    )


@vector
def v2_success_upgraded_from_v1() -> Vector:
    """success_basic (version 1) as the library's first save rewrites it: every slot and every
    entry's ciphertext copied unchanged; index offsets absolute; generation 1."""
    v = make_vault("success_basic", BASIC)
    v.rng = Drbg("v2_success_upgraded_from_v1")
    v.index_nonce = v.rng(12)
    v.rng(6)
    f = V2File(v)
    f.compact()
    return Vector(
        "success",
        f.bytes(),
        comments=[
            "tests/vectors/success_basic opened with rng Drbg('v2_success_upgraded_from_v1') "
            "and saved with no change: the upgrade is a compaction"
        ],
        entries=BASIC,
    )


@vector
def v2_success_recovery_added() -> Vector:
    """success_recovery_added in version 2: a slot added is a compaction (generation 2 in
    record A, record B empty); the library reproduces it (tests/test_slot_vectors.py)."""
    f = v2_create("v2_success_recovery_added")
    secret = _add_recovery_slot(f.v)
    f.compact()
    return Vector(
        "success",
        f.bytes(),
        keys=[f"recovery {recovery_text(secret)}"],
        comments=[
            "a new vault and then a recovery slot added (a compaction: generation 2 in record "
            "A, record B empty): its label, creation time and the unlocking slot's last use"
        ],
    )


def _three_generations(label: str) -> tuple[V2File, bytes, bytes]:
    """Generation 1 with SMALL, generation 2 adding one entry; returns the file and the
    states before and after the second save."""
    f = v2_create(label)
    v2_add(f, SMALL)
    before = f.bytes()
    v2_add(f, [("later/added.txt", b"added by the third save\n")])
    return f, before, f.bytes()


@vector
def v2_success_torn_record() -> Vector:
    f, before, after = _three_generations("v2_success_torn_record")
    at = RECORD_OFFSETS[f.in_force]
    torn = after[: at + 34] + before[at + 34 : at + RECORD_SIZE] + after[at + RECORD_SIZE :]
    return Vector(
        "success",
        torn,
        comments=[
            f"the third save's record (record A at {at}) torn: bytes 0..33 new, 34..67 old; it "
            "fails its MAC and generation 2 (record B) is in force, without later/added.txt"
        ],
        entries=SMALL,
    )


@vector
def v2_success_damaged_record_in_force() -> Vector:
    f, _, after = _three_generations("v2_success_damaged_record_in_force")
    at = RECORD_OFFSETS[f.in_force] + RECORD_SIZE - 1
    return Vector(
        "success",
        flip(after, at),
        comments=[
            f"last MAC byte of record A ({at}, generation 3) flipped: generation 2 in record B "
            "is in force (a rollback by one generation, FORMAT.md section 14)"
        ],
        entries=SMALL,
    )


@vector
def v2_success_newest_index_cut_off() -> Vector:
    _, _, after = _three_generations("v2_success_newest_index_cut_off")
    return Vector(
        "success",
        after[:-1],
        comments=[
            "the last byte of the file cut off: generation 3's index (record A) ends past the "
            "end of the file, so record A is unusable and generation 2 (record B) is in force"
        ],
        entries=SMALL,
    )


def _third_save_damaged(label: str, at: Callable[[V2File], int], comment: str) -> Vector:
    """_three_generations with bit 0 of the byte `at` gives flipped: generation 2 opens."""
    f, _, after = _three_generations(label)
    offset = at(f)
    return Vector("success", flip(after, offset), comments=[comment.format(offset)], entries=SMALL)


@vector
def v2_success_newest_index_damaged() -> Vector:
    return _third_save_damaged(
        "v2_success_newest_index_damaged",
        lambda f: f.index_at[0] + 5,
        "byte {}, inside generation 3's index (record A, whose MAC still verifies), flipped: "
        "that index fails, so generation 2 (record B) is in force, and the record is passed "
        "over (FORMAT.md section 20)",
    )


@vector
def v2_success_tie_damaged_record() -> Vector:
    return _third_save_damaged(
        "v2_success_tie_damaged_record",
        lambda f: RECORD_OFFSETS[f.in_force] + 7,
        "bit 0 of byte {}, the lowest byte of record A's generation, flipped: 3 becomes 2, a "
        "tie with record B; record A fails its MAC, so record B (generation 2) is in force and "
        "record A is passed over (a tie is decided after the MACs)",
    )


@vector
def v2_success_uncommitted_tail() -> Vector:
    f = v2_create("v2_success_uncommitted_tail")
    v2_add(f, SMALL)
    f.v.entries.append(
        EntrySpec("never/committed", b"killed before the switch\n", f.v.rng(16), f.v.rng(16))
    )
    f.v.index_nonce = f.v.rng(12)
    f.append(switch=False)
    return Vector(
        "success",
        f.bytes(),
        comments=[
            "an append killed before its record was written: a STREAM and an index at the end "
            "of the file that no record names (garbage); generation 2 is in force"
        ],
        entries=SMALL,
    )


def _v2_small(label: str) -> V2File:
    f = v2_create(label)
    v2_add(f, SMALL)
    return f


def _only_record(label: str) -> tuple[V2File, bytes]:
    """SMALL compacted into one generation: record A alone, record B empty."""
    f = _v2_small(label)
    f.v.index_nonce = f.v.rng(12)
    f.compact()
    return f, f.bytes()


@vector
def v2_format_no_committed_generation() -> Vector:
    _f, data = _only_record("v2_format_no_committed_generation")
    data = put(data, RECORD_OFFSETS[0], bytes(RECORD_SIZE))
    return Vector("format error", data, comments=["both records empty (68 zero bytes each)"])


@vector
def v2_format_generation_tie() -> Vector:
    f = _v2_small("v2_format_generation_tie")
    data = f.bytes()
    a, _b = f.records
    off, length = f.index_at
    head = v2_head(f.v)
    gen_a = RECORD_FIELDS.unpack(a[: RECORD_FIELDS.size])[0]
    tie = v2_record(f.v, head, gen_a, off, length, f.v.index_nonce)
    data = put(data, RECORD_OFFSETS[1], tie)
    return Vector(
        "format error",
        data,
        comments=[
            f"made with the master key: record B rewritten with record A's generation {gen_a} "
            "and a valid MAC: two records of one generation that both verify, which no writer "
            "makes (refused after the MACs, FORMAT.md section 20)"
        ],
    )


def _record_edit(
    label: str,
    comment: str,
    fields: Callable[[tuple[int, int, int, bytes]], tuple[int, int, int, bytes]],
    expect: str,
    remac: bool,
) -> Vector:
    f, data = _only_record(label)
    rec = f.records[0]
    old = RECORD_FIELDS.unpack(rec[: RECORD_FIELDS.size])
    new = fields(old)
    if remac:
        rec = v2_record(f.v, v2_head(f.v), *new)
    else:
        rec = RECORD_FIELDS.pack(*new) + rec[RECORD_FIELDS.size :]
    prefix = "made with the master key: " if remac else ""
    return Vector(expect, put(data, RECORD_OFFSETS[0], rec), comments=[prefix + comment])


@vector
def v2_format_index_outside_file() -> Vector:
    return _record_edit(
        "v2_format_index_outside_file",
        "record A's index length made to end one byte past the end of the file; record B is empty",
        lambda r: (r[0], r[1], r[2] + 1, r[3]),
        "format error",
        remac=True,
    )


@vector
def v2_format_index_in_record_area() -> Vector:
    return _record_edit(
        "v2_format_index_in_record_area",
        "record A's index offset 8192 (record B's block); record B is empty",
        lambda r: (r[0], 8192, r[2], r[3]),
        "format error",
        remac=True,
    )


@vector
def v2_format_generation_zero() -> Vector:
    return _record_edit(
        "v2_format_generation_zero",
        "record A's generation 0 in a record that is not all zero; record B is empty",
        lambda r: (0, r[1], r[2], r[3]),
        "format error",
        remac=True,
    )


@vector
def v2_header_record_generation_tampered() -> Vector:
    return _record_edit(
        "v2_header_record_generation_tampered",
        "record A's generation + 1, MAC unchanged; record B is empty",
        lambda r: (r[0] + 1, r[1], r[2], r[3]),
        "header failure",
        remac=False,
    )


@vector
def v2_header_record_index_offset_tampered() -> Vector:
    return _record_edit(
        "v2_header_record_index_offset_tampered",
        "record A's index offset - 1 (still inside the file), MAC unchanged; record B is empty",
        lambda r: (r[0], r[1] - 1, r[2], r[3]),
        "header failure",
        remac=False,
    )


@vector
def v2_header_record_index_length_tampered() -> Vector:
    return _record_edit(
        "v2_header_record_index_length_tampered",
        "record A's index length - 1, MAC unchanged; record B is empty",
        lambda r: (r[0], r[1], r[2] - 1, r[3]),
        "header failure",
        remac=False,
    )


@vector
def v2_header_record_nonce_tampered() -> Vector:
    return _record_edit(
        "v2_header_record_nonce_tampered",
        "record A's index nonce, first byte flipped, MAC unchanged; record B is empty",
        lambda r: (r[0], r[1], r[2], bytes([r[3][0] ^ 1]) + r[3][1:]),
        "header failure",
        remac=False,
    )


@vector
def v2_header_record_mac_tampered() -> Vector:
    _f, data = _only_record("v2_header_record_mac_tampered")
    at = RECORD_OFFSETS[0] + RECORD_FIELDS.size
    return Vector(
        "header failure",
        flip(data, at),
        comments=[f"first byte of record A's MAC ({at}) flipped; record B is empty"],
    )


@vector
def v2_header_both_records_tampered() -> Vector:
    f = _v2_small("v2_header_both_records_tampered")
    data = f.bytes()
    for at in RECORD_OFFSETS:
        data = flip(data, at + RECORD_SIZE - 1)
    return Vector(
        "header failure",
        data,
        comments=["the last MAC byte of both records (generations 1 and 2) flipped"],
    )


@vector
def v2_format_head_padding_nonzero() -> Vector:
    _f, data = _only_record("v2_format_head_padding_nonzero")
    return Vector(
        "format error", flip(data, HEAD_SIZE - 1), comments=["last byte of the head (4095) is 1"]
    )


@vector
def v2_format_truncated_in_records() -> Vector:
    f = v2_create("v2_format_truncated_in_records")
    data = f.bytes()[:DATA_AREA]
    data = data[: DATA_AREA - 1]
    return Vector(
        "format error", data, comments=["a file of 12287 bytes: shorter than head and records"]
    )


@vector
def v2_bad_key_head_salt_tampered() -> Vector:
    _f, data = _only_record("v2_bad_key_head_salt_tampered")
    at = 29 + 12 + 1
    return Vector("bad key", flip(data, at), comments=[f"first byte of the slot's salt ({at})"])


@vector
def v2_index_ciphertext_tampered() -> Vector:
    f, data = _only_record("v2_index_ciphertext_tampered")
    at = f.index_at[0] + 5
    return Vector("index failure", flip(data, at), comments=[f"index ciphertext byte {at}"])


@vector
def v2_payload_chunk_tampered() -> Vector:
    f, data = _only_record("v2_payload_chunk_tampered")
    at = f.place[SMALL[0][0]] + 3
    return Vector(
        "payload failure", flip(data, at), comments=[f"byte {at} of {SMALL[0][0]!r}'s STREAM"]
    )


def _v2_index_vector(
    label: str, edit: Callable[[dict[str, Any], V2File], None], comment: str
) -> Vector:
    f, _ = _only_record(label)
    obj = f.index_object()
    edit(obj, f)
    f.v.index_nonce = f.v.rng(12)
    f.compact(index_plain=canonical(obj))
    return Vector("format error", f.bytes(), comments=["made with the master key: " + comment])


def _rows(obj: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = obj["entries"]
    return rows


@vector
def v2_format_entries_overlap() -> Vector:
    def edit(o: dict[str, Any], f: V2File) -> None:
        rows = sorted(_rows(o), key=lambda r: r["offset"])
        rows[1]["offset"] = rows[0]["offset"] + rows[0]["length"] - 1

    return _v2_index_vector(
        "v2_format_entries_overlap",
        edit,
        "the second entry's STREAM starts on the first's last byte",
    )


@vector
def v2_format_entry_overlaps_index() -> Vector:
    def edit(o: dict[str, Any], f: V2File) -> None:
        rows = sorted(_rows(o), key=lambda r: r["offset"])
        rows[-1]["offset"] = rows[-1]["offset"] + 1  # its last byte is the index's first

    return _v2_index_vector(
        "v2_format_entry_overlaps_index",
        edit,
        "the last entry's STREAM moved one byte on, onto the index's first byte",
    )


@vector
def v2_format_entry_outside_file() -> Vector:
    def edit(o: dict[str, Any], f: V2File) -> None:
        _rows(o)[0]["offset"] = 2**40

    return _v2_index_vector(
        "v2_format_entry_outside_file", edit, "an entry's offset 2^40, past the end of the file"
    )


@vector
def v2_format_entry_in_record_area() -> Vector:
    def edit(o: dict[str, Any], f: V2File) -> None:
        _rows(o)[0]["offset"] = 4096

    return _v2_index_vector(
        "v2_format_entry_in_record_area", edit, "an entry's offset 4096, in record A's block"
    )


@vector
def v2_format_entry_offset_relative() -> Vector:
    def edit(o: dict[str, Any], f: V2File) -> None:
        for r in _rows(o):
            r["offset"] -= DATA_AREA

    return _v2_index_vector(
        "v2_format_entry_offset_relative",
        edit,
        "offsets relative to the data area, as version 1 counts them (the first is 0)",
    )


@vector
def unknown_version_3() -> Vector:
    _f, data = _only_record("unknown_version_3")
    return Vector(
        "unknown version",
        put(data, 8, b"\x00\x03"),
        comments=["version 3, otherwise a valid v2 file"],
    )


# -- worked example for docs/FORMAT.md -------------------------------------------------------------


def worked_example() -> str:
    """The annotated dump in docs/FORMAT.md (a test keeps the two identical)."""
    v = make_vault("success_empty_vault", [])
    data, lay = assemble(v)
    slot = v.slots[0]
    kek = argon2id(PASSPHRASE.encode(), slot.salt, slot.kdf or KDF)
    fields = [
        (0, 8, "magic"),
        (8, 2, "version (u16 BE) = 1"),
        (10, 2, "flags (u16 BE) = 0"),
        (12, 16, "container id"),
        (28, 1, "slot count = 1"),
        (29, 1, "slot 0 kind = 1 (passphrase)"),
        (30, 1, "slot 0 reserved = 0"),
        (31, 8, "slot 0 id"),
        (39, 2, "slot 0 body length (u16 BE) = 89"),
        (41, 1, "salt length = 16"),
        (42, 16, "Argon2id salt"),
        (58, 4, "Argon2id memory KiB (u32 BE) = 8192"),
        (62, 4, "Argon2id time (u32 BE) = 1"),
        (66, 4, "Argon2id parallelism (u32 BE) = 1"),
        (70, 12, "key-wrap nonce"),
        (82, 48, "wrapped master key (32) + GCM tag (16)"),
        (130, 12, "index nonce"),
        (142, 8, f"index length (u64 BE) = {lay.index_length}"),
        (150, 32, "header MAC = HMAC-SHA256(header-mac key, bytes 0..149)"),
        (182, lay.index_length, "index: AES-256-GCM ciphertext + tag (first 16 bytes shown)"),
    ]
    out = [
        f"tests/vectors/success_empty_vault: {len(data)} bytes, "
        f"passphrase {PASSPHRASE!r}, no entries",
        "",
        "offset  len  field",
    ]
    for off, n, what in fields:
        out.append(f"{off:>6} {n:>4}  {what}")
        out.append(" " * 13 + (data[off : off + n] if n <= 48 else data[off : off + 16]).hex())
    out += [
        f"{len(data):>6}       end of file: the data section is empty",
        "",
        f"KEK = Argon2id(passphrase, salt) {kek.hex()}",
        f"master key (unwrapped)           {v.master.hex()}",
        f"header-mac key                   {hkdf(v.master, v.container_id, 'header-mac').hex()}",
        f"index key                        {hkdf(v.master, v.container_id, 'index').hex()}",
        "index plaintext:",
        canonical(v.index_object()).decode(),
    ]
    b = make_vault("success_basic", BASIC)
    data, lay = assemble(b)
    name = "env/prod.env"
    e = next(x for x in b.entries if x.name == name)
    start, length = lay.entries[name]
    row = next(r for r in b.index_object()["entries"] if r["name"] == name)
    out += [
        "",
        f"tests/vectors/success_basic, entry {name!r} ({len(e.data)} bytes, one chunk)",
        "index entry:",
        canonical(row).decode(),
        f"master key        {b.master.hex()}",
        f"container id      {b.container_id.hex()}",
        f"entry key         {b.entry_key(e).hex()}",
        f"STREAM AAD        {(b.container_id + e.entry_id).hex()}",
        f"chunk 0 nonce     {chunk_nonce(0, True).hex()}",
        f"at file offset    {start} = data start {lay.data_start} + offset {row['offset']}",
        f"sealed chunk 0    {data[start : start + length].hex()}",
    ]
    return "\n".join(out + v2_worked_example())


def v2_worked_example() -> list[str]:
    """tests/vectors/v2_success_empty_vault: the head's first bytes, record A, the index."""
    f = v2_create("v2_success_empty_vault")
    data = f.bytes()
    head_end = 29 + len(f.v.slots[0].encode())
    at, n = f.index_at
    a = RECORD_OFFSETS[0]
    fields = [
        (0, 8, "magic"),
        (8, 2, "version (u16 BE) = 2"),
        (10, 2, "flags (u16 BE) = 0"),
        (12, 16, "container id"),
        (28, 1, "slot count = 1"),
        (29, head_end - 29, "slot 0: as in version 1 (101 bytes, first 16 shown)"),
        (head_end, HEAD_SIZE - head_end, f"zero padding to 4096 ({HEAD_SIZE - head_end} bytes)"),
        (a, 8, "record A: generation (u64 BE) = 1"),
        (a + 8, 8, f"record A: index offset (u64 BE) = {at}"),
        (a + 16, 8, f"record A: index length (u64 BE) = {n}"),
        (a + 24, 12, "record A: index nonce"),
        (
            a + 36,
            32,
            "record A: MAC = HMAC-SHA256(header-mac key, head 0..4095 || bytes 4096..4131)",
        ),
        (a + RECORD_SIZE, RECORD_OFFSETS[1] - a - RECORD_SIZE, "zero padding (unread)"),
        (RECORD_OFFSETS[1], 4096, "record B: empty (68 zero bytes) and padding"),
        (at, n, "index: AES-256-GCM ciphertext + tag (first 16 bytes shown)"),
    ]
    out = [
        "",
        f"tests/vectors/v2_success_empty_vault: {len(data)} bytes, "
        f"passphrase {PASSPHRASE!r}, no entries",
        "",
        "offset  len  field",
    ]
    for off, length, what in fields:
        out.append(f"{off:>6} {length:>4}  {what}")
        shown = data[off : off + length] if length <= 48 else data[off : off + 16]
        out.append(" " * 13 + shown.hex())
    out += [
        f"{len(data):>6}       end of file",
        "",
        f"master key       {f.v.master.hex()}",
        f"header-mac key   {hkdf(f.v.master, f.v.container_id, 'header-mac').hex()}",
        "index plaintext:",
        canonical(f.index_object()).decode(),
    ]
    return out


# -- main ----------------------------------------------------------------------------------------------


def generate(out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in VECTORS.items():
        (out / name).write_bytes(build().encode())
        written.append(name)
    for stale in sorted(set(p.name for p in out.iterdir() if p.is_file()) - set(written)):
        (out / stale).unlink()
        print(f"removed stale vector {stale}", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--explain", action="store_true", help="print the worked example of docs/FORMAT.md"
    )
    args = parser.parse_args(argv)
    if args.explain:
        print(worked_example())
        return 0
    names = generate(args.out)
    print(f"wrote {len(names)} vectors to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
