"""The vectors' `key:` lines: each slot kind's vector opens with its key through the library
(and the CLI's unlock options), a wrong key of each kind is a bad key, and the library's own
`add_slot` writes the `success_recovery_added` vector byte for byte."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_vectors import VECTOR_DIR, load, load_generator, place, read_all, run_cli

from locker.errors import EXIT_BAD_KEY, EXIT_OK, BadKeyError
from locker.slots import recovery
from locker.store import keys
from locker.store.format import (
    SLOT_KEYFILE,
    SLOT_KEYRING,
    SLOT_KINDS,
    SLOT_PKCS11,
    SLOT_RECOVERY,
    Header,
    KdfCost,
    Slot,
)
from locker.store.keys import Opener, PassphraseOpener, SecretOpener
from locker.vault import Vault, create

KIND_CODES = {kind.name: code for code, kind in SLOT_KINDS.items()}


def keyed_vectors() -> list[str]:
    return sorted(
        p.name for p in VECTOR_DIR.iterdir() if b"\nkey: " in p.read_bytes().split(b"\n\n")[0]
    )


def key_lines(name: str) -> list[tuple[str, str]]:
    head = (VECTOR_DIR / name).read_bytes().split(b"\n\n", 1)[0].decode()
    return [
        tuple(line.removeprefix("key: ").split(" ", 1))  # type: ignore[misc]
        for line in head.splitlines()
        if line.startswith("key: ")
    ]


class SoftwareToken:
    """A stand-in for a token whose private key the vector gives: the same ECDH in software."""

    what = "token"
    kinds = (SLOT_PKCS11,)

    def __init__(self, scalar: int) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key = ec.derive_private_key(scalar, ec.SECP256R1())

    def kek(self, header: Header, slot: Slot) -> bytes | None:
        from cryptography.hazmat.primitives.asymmetric import ec

        point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), slot.extra)
        return keys.secret_kek(self._key.exchange(ec.ECDH(), point), slot)

    def renew(self, rng: keys.Random, slot: Slot) -> tuple[Slot, bytes]:
        raise AssertionError("not used")


def opener(kind: str, key: str, passphrase: bytes) -> Opener:
    if kind == "recovery":
        return SecretOpener(SLOT_RECOVERY, recovery.decode(key))
    if kind == "keyfile":
        return SecretOpener(SLOT_KEYFILE, hashlib.sha256(bytes.fromhex(key)).digest())
    if kind == "keyring":
        return SecretOpener(SLOT_KEYRING, bytes.fromhex(key))
    if kind == "pkcs11-p256":
        return SoftwareToken(int(key, 16))
    if kind == "x25519":
        from locker.slots.recipient import IdentityOpener, bech32_decode

        decoded = bech32_decode(key)
        assert decoded is not None
        return IdentityOpener(decoded[1])
    if kind == "passphrase+keyfile":
        return PassphraseOpener(passphrase, hashlib.sha256(bytes.fromhex(key)).digest())
    raise AssertionError(f"no opener for {kind}")


def test_every_slot_kind_has_a_success_and_the_secret_kinds_a_bad_key_vector() -> None:
    kinds = {kind for name in keyed_vectors() for kind, _ in key_lines(name)}
    assert kinds == set(KIND_CODES) - {"passphrase"}
    bad = {
        "bad_key_recovery_wrong",
        "bad_key_keyfile_wrong",
        "bad_key_x25519_wrong",
        "bad_key_pkcs11_wrong",
    }
    assert bad <= set(keyed_vectors())


@pytest.mark.parametrize("name", keyed_vectors())
def test_key_lines_open_their_slot(name: str, tmp_path: Path) -> None:
    v = load(name)
    path = place(v, tmp_path)
    for kind, key in key_lines(name):
        openers: Sequence[Opener] = [opener(kind, key, v.passphrase)]
        if v.expect == "bad key":
            with pytest.raises(BadKeyError):
                Vault.open(path, openers)
            continue
        assert v.expect == "success"
        with Vault.open(path, openers) as vault:
            assert vault.unlocked_slot.kind == KIND_CODES[kind]
            assert read_all(vault) == v.entries


@pytest.mark.parametrize(
    ("name", "option"),
    [
        ("success_recovery_slot", "--recovery-key-file"),
        ("success_keyfile_slot", "--keyfile"),
        ("bad_key_recovery_wrong", "--recovery-key-file"),
        ("bad_key_keyfile_wrong", "--keyfile"),
        ("success_x25519_slot", "--identity"),
        ("bad_key_x25519_wrong", "--identity"),
    ],
)
def test_key_lines_through_the_cli(name: str, option: str, tmp_path: Path) -> None:
    v = load(name)
    path = place(v, tmp_path)
    ((kind, key),) = key_lines(name)
    keyfile = tmp_path / "key"
    keyfile.write_bytes(bytes.fromhex(key) if kind == "keyfile" else key.encode() + b"\n")
    keyfile.chmod(0o600)
    proc = run_cli(path, v.passphrase, "ls", option, str(keyfile))
    if v.expect == "success":
        assert proc.returncode == EXIT_OK, proc.stderr
        assert proc.stdout.decode().splitlines() == sorted(v.entries)
    else:
        assert proc.returncode == EXIT_BAD_KEY, proc.stderr


def test_library_add_slot_reproduces_the_recovery_vector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = load_generator()
    monkeypatch.setattr("getpass.getuser", lambda: gen.USER)  # vault imports it on first use
    monkeypatch.setattr("socket.gethostname", lambda: gen.HOST)
    name = "v2_success_recovery_added"  # the library writes version 2
    rng, clock = gen.Drbg(name), lambda: float(gen.CLOCK)
    path = tmp_path / "v.locker"
    passphrase = load(name).passphrase
    create(path, passphrase, KdfCost(*gen.KDF), rng=rng, clock=clock)
    with Vault.open(path, passphrase, write=True, rng=rng, clock=clock) as v:
        secret = rng(recovery.SECRET_SIZE)
        slot = keys.new_slot(rng, SLOT_RECOVERY)
        v.add_slot(slot, keys.secret_kek(secret, slot), "recovery key")
        v.commit()
    assert path.read_bytes() == load(name).container
    assert key_lines(name) == [("recovery", recovery.encode(secret))]
