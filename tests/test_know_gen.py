"""`locker gen jwt|tls|secret`: keys made in memory, sealed into the vault, public halves printed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from conftest import PASSPHRASE, RunLocker
from cryptography import x509

from locker.know import jwk
from locker.know.facts import decode
from locker.know.pki import spki
from locker.vault import Vault


def _facts(vault_path: Path, name: str) -> dict:  # type: ignore[type-arg]
    with Vault.open(vault_path, PASSPHRASE) as v:
        found = decode(v.entry(name).attrs)
    assert found is not None
    return found


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA", "RS256"])
def test_gen_jwt_stores_the_key_and_prints_the_public_jwk(
    cli: RunLocker, vault_path: Path, tmp_path: Path, alg: str
) -> None:
    before = set(tmp_path.rglob("*"))
    out = cli("gen", "jwt", "auth/signing", "--alg", alg)
    assert out.returncode == 0, out.stderr
    public = json.loads(out.stdout)
    assert public["alg"] == alg and public["use"] == "sig" and "d" not in public
    assert public["kid"] == jwk.thumbprint(public)
    facts = _facts(vault_path, "auth/signing")
    assert facts["type"] == "jwk" and facts["jwks"][0]["private"] is True
    assert facts["jwks"][0]["spki"] == spki(jwk.public_key(public))
    assert set(tmp_path.rglob("*")) - before <= {
        tmp_path / "vault.locker.lock"
    }  # nothing else on disk


def test_gen_jwt_jwks_lists_every_public_signing_key(cli: RunLocker) -> None:
    kids = {
        json.loads(cli("gen", "jwt", f"k{i}", "--alg", a).stdout)["kid"]
        for i, a in enumerate(["ES256", "RS256"])
    }
    assert cli("gen", "secret", "hmac").returncode == 0
    jwks = json.loads(cli("gen", "jwt", "--jwks").stdout)
    assert {k["kid"] for k in jwks["keys"]} == kids
    assert all("d" not in k for k in jwks["keys"])
    again = cli("gen", "jwt", "k0")
    assert again.returncode == 1 and b"already exists" in again.stderr


def test_gen_tls_writes_a_csr_for_the_stored_key(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    out = cli(
        "gen",
        "tls",
        "web/server.key",
        "--cn",
        "web.example",
        "--san",
        "web.example",
        "--san",
        "10.1.2.3",
        "--key",
        "rsa",
    )
    assert out.returncode == 0, out.stderr
    csr = x509.load_pem_x509_csr(out.stdout)
    assert csr.is_signature_valid
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in sans] == ["web.example", "10.1.2.3"]
    facts = _facts(vault_path, "web/server.key")
    assert facts["type"] == "private-key" and facts["keys"][0]["bits"] == 3072
    assert facts["keys"][0]["spki"] == spki(csr.public_key())
    csr_file = tmp_path / "req.csr"
    out = cli("gen", "tls", "api/server.key", "--cn", "api.example", "--csr", csr_file)
    assert out.returncode == 0 and out.stdout == b""
    assert (
        x509.load_pem_x509_csr(csr_file.read_bytes()).subject.rfc4514_string() == "CN=api.example"
    )


def test_gen_secret(cli: RunLocker, vault_path: Path) -> None:
    assert cli("gen", "secret", "hmac/webhook", "--bytes", "48").returncode == 0
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert len(base64.b64decode(v.read_bytes("hmac/webhook"))) == 48
    assert _facts(vault_path, "hmac/webhook") == {"type": "secret", "bits": 384, "secret": True}
    bad = cli("gen", "secret", "x", "--bytes", "4")
    assert bad.returncode == 2 and b"--bytes must be between 16 and 1024" in bad.stderr


def test_add_shred_removes_sources_only_after_they_are_stored(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    src = tmp_path / "certs"
    (src / "sub").mkdir(parents=True)
    (src / "a.key").write_bytes(b"A" * 100_000)
    (src / "sub" / "b.env").write_bytes(b"TOKEN=b\n")
    keep = tmp_path / "keep.txt"
    keep.write_bytes(b"kept")
    assert cli("add", keep).returncode == 0
    assert keep.read_bytes() == b"kept"  # without --shred nothing is removed
    out = cli("add", src, "--shred")
    assert out.returncode == 0, out.stderr
    assert b"shredded" in out.stdout
    assert not (src / "a.key").exists() and not (src / "sub" / "b.env").exists()
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert v.read_bytes("certs/a.key") == b"A" * 100_000
        assert v.read_bytes("certs/sub/b.env") == b"TOKEN=b\n"
