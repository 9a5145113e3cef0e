"""crypto.py: KDF, subkeys, AEAD and the chunked STREAM with its last-chunk flag."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locker.errors import EXIT_INTEGRITY, AuthenticationError, FormatError, LockerError
from locker.store import crypto
from locker.store.crypto import CHUNK_SIZE, KdfParams, StreamOpener, StreamSealer, chunk_nonce

KEY = bytes(range(32))
AAD = b"C" * 16 + b"E" * 16
TINY = KdfParams(memory_kib=8, time_cost=1, parallelism=1)


def seal_all(data: bytes, key: bytes = KEY, aad: bytes = AAD) -> list[bytes]:
    sealer = StreamSealer(key, aad)
    chunks = [data[i : i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)] or [b""]
    return [sealer.seal(c, last=i == len(chunks) - 1) for i, c in enumerate(chunks)]


def open_all(sealed: list[bytes], key: bytes = KEY, aad: bytes = AAD) -> bytes:
    opener = StreamOpener(key, aad, "entry 'x'")
    return b"".join(opener.open(c, last=i == len(sealed) - 1) for i, c in enumerate(sealed))


def test_argon2id_is_deterministic_and_salted() -> None:
    a = crypto.argon2id(b"pw", b"s" * 16, TINY)
    assert a == crypto.argon2id(bytearray(b"pw"), b"s" * 16, TINY)
    assert len(a) == 32
    assert a != crypto.argon2id(b"pw", b"t" * 16, TINY)
    assert a != crypto.argon2id(b"pX", b"s" * 16, TINY)
    assert a != crypto.argon2id(b"pw", b"s" * 16, KdfParams(16, 1, 1))
    assert a != crypto.argon2id(b"pw", b"s" * 16, KdfParams(8, 2, 1))


def test_argon2id_on_the_bindings_is_argon2_cffis_hash_secret_raw() -> None:
    # crypto calls libargon2 through argon2-cffi's bindings (cheaper to import): the same
    # output as the package's public function, and its error for a cost libargon2 refuses.
    from argon2.low_level import Type, hash_secret_raw

    cases = [(b"pw", TINY), (b"", TINY), ("pässwörd".encode(), KdfParams(64, 2, 2))]
    for secret, p in cases:
        want = hash_secret_raw(
            secret, b"s" * 16, p.time_cost, p.memory_kib, p.parallelism, 32, Type.ID
        )
        assert crypto.argon2id(bytearray(secret), b"s" * 16, p) == want
    with pytest.raises(LockerError, match=r"Argon2 could not run .*\(Memory cost is too small\)"):
        crypto.argon2id(b"pw", b"s" * 16, KdfParams(1, 1, 1))


def test_aesgcm_is_cryptographys_public_class() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    assert crypto._aesgcm_class() is AESGCM


def test_subkeys_are_separated_by_purpose_and_context() -> None:
    cid = b"c" * 16
    keys = {
        crypto.index_key(KEY, cid),
        crypto.header_mac_key(KEY, cid),
        crypto.entry_key(KEY, cid, b"e" * 16, b"s" * 16),
        crypto.entry_key(KEY, cid, b"f" * 16, b"s" * 16),
        crypto.entry_key(KEY, cid, b"e" * 16, b"t" * 16),
        crypto.entry_key(KEY, b"d" * 16, b"e" * 16, b"s" * 16),
        crypto.slot_kek(KEY, b"s" * 16, "recovery"),
        crypto.slot_kek(KEY, b"s" * 16, "keyfile"),
        crypto.index_key(bytes(32), cid),
    }
    assert len(keys) == 9
    assert all(len(k) == 32 for k in keys)
    assert crypto.index_key(bytearray(KEY), cid) == crypto.index_key(KEY, cid)


def test_hkdf_is_rfc5869() -> None:
    # RFC 5869 appendix A.3 (SHA-256, empty salt and info), its first 32 bytes; then
    # cryptography's HKDF on our label layout, with the salts and lengths locker uses.
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    okm = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
    assert crypto._hkdf_sha256(bytes([0x0B] * 22), b"", b"") == bytes.fromhex(okm)
    for salt in (b"", b"s" * 16, bytes(range(32))):
        want = HKDF(SHA256(), 32, salt, b"locker/v1/entry\x00ctx").derive(KEY)
        assert crypto.hkdf(KEY, salt, b"entry", b"ctx") == want


def test_open_sealed_failure_is_one_authentication_error() -> None:
    nonce = b"n" * 12
    sealed = crypto.seal(KEY, nonce, b"secret", b"aad")
    assert crypto.open_sealed(KEY, nonce, sealed, b"aad", "index") == b"secret"
    for key, n, ct, aad in [
        (bytes(32), nonce, sealed, b"aad"),
        (KEY, b"m" * 12, sealed, b"aad"),
        (KEY, nonce, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"aad"),
        (KEY, nonce, sealed, b"aaX"),
        (KEY, nonce, sealed[:10], b"aad"),
    ]:
        with pytest.raises(AuthenticationError, match="index failed authentication") as e:
            crypto.open_sealed(key, n, ct, aad, "index")
        assert e.value.exit_code == EXIT_INTEGRITY
        assert e.value.__cause__ is None and e.value.__suppress_context__


def test_header_mac() -> None:
    tag = crypto.header_mac(KEY, b"header")
    assert len(tag) == 32
    assert crypto.header_mac_matches(KEY, b"header", tag)
    assert not crypto.header_mac_matches(KEY, b"headeR", tag)
    assert not crypto.header_mac_matches(bytes(32), b"header", tag)


def test_chunk_nonce_layout() -> None:
    assert chunk_nonce(0, False) == bytes(12)
    assert chunk_nonce(0, True) == bytes(11) + b"\x01"
    assert chunk_nonce(258, False) == bytes(9) + b"\x01\x02\x00"
    assert chunk_nonce(2**88 - 1, True) == b"\xff" * 11 + b"\x01"
    with pytest.raises(FormatError):
        chunk_nonce(2**88, False)


@settings(max_examples=40, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=1000),
        st.sampled_from([0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE]).map(
            lambda n: bytes(i % 251 for i in range(n))
        ),
    )
)
def test_stream_round_trip(data: bytes) -> None:
    sealed = seal_all(data)
    assert [len(c) for c in sealed[:-1]] == [CHUNK_SIZE + 16] * (len(sealed) - 1)
    assert sum(len(c) for c in sealed) == len(data) + 16 * len(sealed)
    assert open_all(sealed) == data


DATA = bytes(i % 253 for i in range(3 * CHUNK_SIZE + 100))


@pytest.mark.parametrize(
    "attack",
    [
        "truncate-last",
        "truncate-to-one",
        "swap",
        "duplicate",
        "extend",
        "flip",
        "cut-tail-bytes",
        "other-aad",
        "other-key",
    ],
)
def test_stream_detects(attack: str) -> None:
    sealed = seal_all(DATA)
    key, aad = KEY, AAD
    if attack == "truncate-last":
        sealed = sealed[:-1]
    elif attack == "truncate-to-one":
        sealed = sealed[:1]
    elif attack == "swap":
        sealed[0], sealed[1] = sealed[1], sealed[0]
    elif attack == "duplicate":
        sealed = [sealed[0], *sealed]
    elif attack == "extend":
        sealed = [*sealed, sealed[-1]]
    elif attack == "flip":
        sealed[2] = sealed[2][:5] + bytes([sealed[2][5] ^ 1]) + sealed[2][6:]
    elif attack == "cut-tail-bytes":
        sealed[-1] = sealed[-1][:-1]
    elif attack == "other-aad":
        aad = b"C" * 16 + b"F" * 16
    elif attack == "other-key":
        key = bytes(32)
    with pytest.raises(AuthenticationError, match=r"entry 'x': chunk \d+ failed authentication"):
        open_all(sealed, key, aad)


def test_stream_opener_releases_only_verified_prefix() -> None:
    sealed = seal_all(DATA)
    sealed[2] = bytes([sealed[2][0] ^ 0xFF]) + sealed[2][1:]
    opener = StreamOpener(KEY, AAD, "entry 'x'")
    released = b""
    with pytest.raises(AuthenticationError, match="chunk 2"):
        for i, c in enumerate(sealed):
            released += opener.open(c, last=i == len(sealed) - 1)
    assert released == DATA[: 2 * CHUNK_SIZE]


def test_stream_sealer_rules() -> None:
    sealer = StreamSealer(KEY, AAD)
    with pytest.raises(ValueError, match="must be full"):
        sealer.seal(b"short", last=False)
    with pytest.raises(ValueError):
        sealer.seal(bytes(CHUNK_SIZE + 1), last=True)
    sealer.seal(bytes(CHUNK_SIZE), last=False)
    with pytest.raises(ValueError, match="empty last chunk"):
        sealer.seal(b"", last=True)
    sealer.seal(b"end", last=True)
    with pytest.raises(ValueError, match="already finished"):
        sealer.seal(b"more", last=True)


def test_empty_entry_is_one_authenticated_chunk() -> None:
    sealed = seal_all(b"")
    assert len(sealed) == 1 and len(sealed[0]) == 16
    assert open_all(sealed) == b""
    # An empty chunk not flagged last (a truncated stream) must not verify.
    with pytest.raises(AuthenticationError):
        StreamOpener(KEY, AAD, "x").open(sealed[0], last=False)
