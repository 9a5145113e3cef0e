"""Recognition of keys, certificates, CSRs, PKCS#12, OpenSSH keys, JWKs, env files,
kubeconfigs and credential files, made with cryptography and with the openssl command."""

from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path

import pytest
from conftest import require
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from pki_factory import (
    DAY,
    cert,
    cert_pem,
    ec_key,
    ed_key,
    jwk_json,
    key_pem,
    openssl,
    openssl_cert,
    rsa_key,
)

from locker.know import jwk
from locker.know.recognise import recognise

NOW = time.time()


def test_rsa_ec_ed25519_private_keys_pem_and_der() -> None:
    r = recognise(key_pem(rsa_key(3072)), "a.key")
    assert r is not None and r["type"] == "private-key" and r["secret"] is True
    assert r["keys"][0]["algo"] == "rsa" and r["keys"][0]["bits"] == 3072
    e = recognise(key_pem(ec_key(ec.SECP384R1())), "b.key")
    assert e is not None and e["keys"][0]["curve"] == "secp384r1"
    key = ed_key()
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    d = recognise(der, "c.der")
    assert d is not None and d["format"] == "der" and d["keys"][0]["algo"] == "ed25519"


def test_encrypted_pem_is_noted() -> None:
    pem = rsa_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    r = recognise(pem, "enc.key")
    assert r is not None and r["keys"] == [{"private": True, "encrypted": True}]
    assert r["secret"] is True


def test_certificate_facts_and_chain() -> None:
    ca_key, leaf_key = ec_key(), rsa_key()
    ca = cert(ca_key, "Test CA", NOW, 3000, ca=True)
    leaf = cert(
        leaf_key,
        "api.example",
        NOW,
        5,
        issuer_key=ca_key,
        issuer_cn="Test CA",
        sans=("api.example", "www.api.example"),
    )
    r = recognise(cert_pem(leaf, ca), "chain.pem")
    assert r is not None and r["type"] == "certificate-chain" and r["secret"] is False
    first, second = r["certs"]
    assert first["subject"] == "CN=api.example" and first["issuer"] == "CN=Test CA"
    assert first["sans"] == ["api.example", "www.api.example"]
    assert abs(first["not_after"] - (NOW + 5 * DAY)) < 2
    assert first["self_signed"] is False and first["ca"] is False
    assert second["self_signed"] is True and second["ca"] is True
    assert len(first["sha256"]) == 64
    assert first["spki"] == recognise(key_pem(leaf_key), "k")["keys"][0]["spki"]  # type: ignore[index]


def test_key_and_certificate_in_one_file() -> None:
    key = ec_key()
    r = recognise(key_pem(key) + cert_pem(cert(key, "x", NOW, 400)), "both.pem")
    assert r is not None and r["type"] == "private-key" and len(r["certs"]) == 1
    assert r["keys"][0]["spki"] == r["certs"][0]["spki"]


def test_openssl_made_keys_certs_csrs(tmp_path: Path) -> None:
    require("openssl", "the openssl command makes the keys")
    start = int(time.time())
    openssl_cert(tmp_path, "rsa", 400, ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"))
    openssl_cert(tmp_path, "ec", 5, ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"))
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-out", "trad.key", cwd=tmp_path)
    openssl(
        "req", "-new", "-key", "ec.key", "-subj", "/CN=csr.example", "-out", "ec.csr", cwd=tmp_path
    )
    openssl("x509", "-in", "rsa.crt", "-outform", "der", "-out", "rsa.der", cwd=tmp_path)
    openssl(
        "pkcs12", "-export", "-inkey", "rsa.key", "-in", "rsa.crt", "-passout", "pass:", "-out", "open.p12",
        cwd=tmp_path,
    )  # fmt: skip
    openssl(
        "pkcs12", "-export", "-inkey", "rsa.key", "-in", "rsa.crt", "-passout", "pass:pw", "-out", "closed.p12",
        cwd=tmp_path,
    )  # fmt: skip

    end = int(time.time()) + 1

    def made_for(not_after: int, days: int) -> bool:  # openssl counts from when it ran
        return start + days * DAY <= not_after <= end + days * DAY

    def facts(name: str) -> dict:  # type: ignore[type-arg]
        found = recognise((tmp_path / name).read_bytes(), name)
        assert found is not None, name
        return found

    assert facts("rsa.key")["keys"][0]["bits"] == 2048
    rsa_crt = facts("rsa.crt")["certs"][0]
    assert rsa_crt["self_signed"] and rsa_crt["sans"] == ["rsa.example"]
    assert made_for(rsa_crt["not_after"], 400)
    assert made_for(facts("ec.crt")["certs"][0]["not_after"], 5)
    assert facts("trad.key")["keys"][0]["curve"] == "secp256r1"  # EC PARAMETERS block first
    csr = facts("ec.csr")
    assert csr["type"] == "csr" and csr["csrs"][0]["spki"] == facts("ec.key")["keys"][0]["spki"]
    assert facts("rsa.der")["certs"][0]["sha256"] == rsa_crt["sha256"]
    p12 = facts("open.p12")
    assert (
        p12["type"] == "pkcs12"
        and p12["keys"][0]["private"]
        and p12["certs"][0]["sha256"] == rsa_crt["sha256"]
    )
    closed = facts("closed.p12")
    assert closed["type"] == "pkcs12" and closed["encrypted"] is True and closed["secret"] is True


def test_pkcs12_made_with_cryptography() -> None:
    key = rsa_key()
    c = cert(key, "p12", NOW, 100)
    data = pkcs12.serialize_key_and_certificates(
        b"p", key, c, None, serialization.BestAvailableEncryption(b"secret")
    )
    assert recognise(data, "x.bin") is None  # no password, no .p12 name: nothing to go on
    r = recognise(data, "x.pfx")
    assert r is not None and r["encrypted"] is True


def test_openssh_keys(tmp_path: Path) -> None:
    ssh_keygen = require("ssh-keygen", "ssh-keygen makes OpenSSH keys")
    for name, args in (("plain", ["-N", ""]), ("locked", ["-N", "pw"])):
        subprocess.run(
            [ssh_keygen, "-q", "-t", "ed25519", *args, "-f", str(tmp_path / name), "-C", "t@h"],
            check=True,
            timeout=60,
        )
    plain = recognise((tmp_path / "plain").read_bytes(), "plain")
    assert plain is not None and plain["type"] == "ssh-private-key"
    assert plain["keys"][0]["algo"] == "ed25519" and plain["secret"] is True
    locked = recognise((tmp_path / "locked").read_bytes(), "locked")
    assert locked is not None and locked["keys"][0]["encrypted"] is True
    pub = recognise((tmp_path / "plain.pub").read_bytes(), "plain.pub")
    assert pub is not None and pub["type"] == "ssh-public-key" and pub["secret"] is False
    assert pub["keys"][0]["spki"] == plain["keys"][0]["spki"]


def _b64(n: int) -> str:
    return jwk.b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@pytest.mark.parametrize("kty", ["RSA", "EC", "OKP", "oct"])
def test_jwk_of_each_kty(kty: str) -> None:
    if kty == "RSA":
        key = rsa_key()
        public = jwk.public_jwk(key.public_key(), "RS256")
        private = dict(public, d=_b64(key.private_numbers().d))
    elif kty == "EC":
        eck = ec_key()
        public = jwk.public_jwk(eck.public_key(), "ES256")
        private = dict(public, d=_b64(eck.private_numbers().private_value))
    elif kty == "OKP":
        edk = ed_key()
        public = jwk.public_jwk(edk.public_key(), "EdDSA")
        raw = edk.private_bytes_raw()
        private = dict(public, d=jwk.b64u(raw))
    else:
        public = private = {"kty": "oct", "k": jwk.b64u(b"k" * 32), "alg": "HS256", "kid": "h1"}
    priv = recognise(jwk_json(private), "key.jwk")
    assert priv is not None and priv["type"] == "jwk" and priv["secret"] is True
    assert priv["jwks"][0]["kty"] == kty and priv["jwks"][0]["private"] is True
    if kty != "oct":
        pub = recognise(jwk_json(public), "pub.jwk")
        assert pub is not None and pub["secret"] is False
        assert pub["jwks"][0]["kid"] == public["kid"] and pub["jwks"][0]["private"] is False
        jwks = recognise(jwk_json({"keys": [public]}), "jwks.json")
        assert jwks is not None and jwks["type"] == "jwks" and jwks["secret"] is False


def test_rfc7638_thumbprint_example() -> None:
    # RFC 7638, section 3.1
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    assert jwk.thumbprint({"kty": "RSA", "n": n, "e": "AQAB"}) == (
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    )


ENV = (
    b"# deploy settings\r\n"
    b"export DB_PASSWORD='s3cr3t'\r\n"
    b'API_TOKEN="abc"\r\n'
    b"DEBUG=true\r\n"
    b"PUBLIC_KEY_PATH=/etc/k.pub\r\n"
    b'TLS_KEY="-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----"\r\n'
    b"DATABASE_URL=postgres://app:hunter2@db/app\r\n"
)


def test_env_file_names_never_values() -> None:
    r = recognise(ENV, "prod.env")
    assert r is not None and r["type"] == "env" and r["count"] == 6
    assert r["credentials"] == ["API_TOKEN", "DATABASE_URL", "DB_PASSWORD", "TLS_KEY"]
    assert b"s3cr3t" not in repr(r).encode() and b"hunter2" not in repr(r).encode()


def test_env_without_credentials_is_not_secret() -> None:
    r = recognise(b"DEBUG=1\nLOG_LEVEL=info\nTOKEN=\n", ".env")
    assert r is not None and r["secret"] is False


@pytest.mark.parametrize(
    "text",
    [b"# Title\n\nSome prose here.\n", b"[section]\nkey=value\n", b"def f():\n    return 1\n"],
)
def test_prose_ini_and_source_are_plain(text: bytes) -> None:
    assert recognise(text, "README.md") is None


def _kubeconfig(embed_key: bool) -> bytes:
    key = ec_key()
    crt = base64.b64encode(cert_pem(cert(key, "admin", NOW, 300))).decode()
    user = f"    client-certificate-data: {crt}\n"
    if embed_key:
        user += f"    client-key-data: {base64.b64encode(key_pem(key)).decode()}\n"
    return (
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n"
        "    server: https://k8s.example:6443\ncontexts:\n- name: prod-admin\n  context:\n"
        "    cluster: prod\n    user: admin\ncurrent-context: prod-admin\nusers:\n- name: admin\n"
        "  user:\n" + user
    ).encode()


def test_kubeconfig() -> None:
    r = recognise(_kubeconfig(True), "config")
    assert r is not None and r["type"] == "kubeconfig" and r["secret"] is True
    assert r["clusters"] == ["prod"] and r["current_context"] == "prod-admin"
    assert r["users"] == [
        {"name": "admin", "embedded": ["client-certificate-data", "client-key-data"]}
    ]
    assert abs(r["certs"][0]["not_after"] - (NOW + 300 * DAY)) < 2
    bare = recognise(_kubeconfig(False), "config")
    assert bare is not None and bare["secret"] is False


def test_netrc_pgpass_aws() -> None:
    n = recognise(b"machine api.example login bob password pw\n", "home/.netrc")
    assert (
        n is not None and n["type"] == "netrc" and n["machines"] == ["api.example"] and n["secret"]
    )
    p = recognise(b"db.example:5432:app:app:pw\n", ".pgpass")
    assert p is not None and p["type"] == "pgpass" and p["secret"]
    a = recognise(
        b"[default]\naws_access_key_id = AKIA\naws_secret_access_key = abc\n", "credentials"
    )
    assert a is not None and a["type"] == "aws-credentials" and a["profiles"] == ["default"]


def test_public_material_is_not_secret() -> None:
    key = rsa_key()
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    r = recognise(pub, "k.pub")
    assert r is not None and r["type"] == "public-key" and r["secret"] is False
    c = recognise(cert_pem(cert(key, "pub", NOW, 10)), "c.pem")
    assert c is not None and c["secret"] is False


def test_garbage_and_huge_are_plain() -> None:
    assert (
        recognise(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "x")
        is None
    )
    assert recognise(b"\x30\x82garbage", "x.der") is None
    assert recognise(b"A=1\n" * 400_000, "big.env") is None
