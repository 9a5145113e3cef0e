"""Keys, certificates, chains and JWKs made in the tests, with `cryptography` and with the
`openssl` command, at validity times relative to an injected `now`."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

DAY = 86400


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def key_pem(key: Any) -> bytes:
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem


def cert(
    key: Any,
    cn: str,
    now: float,
    days_left: float,
    *,
    issuer_key: Any = None,
    issuer_cn: str | None = None,
    ca: bool = False,
    sans: tuple[str, ...] = (),
) -> x509.Certificate:
    """A certificate for `key` valid from 30 days before `now` until `days_left` after it."""
    start = dt.datetime.fromtimestamp(now - 30 * DAY, dt.UTC)
    end = dt.datetime.fromtimestamp(now + days_left * DAY, dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or cn)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    signer = issuer_key or key
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def openssl_cert(cwd: Path, stem: str, days: int, key_args: tuple[str, ...]) -> None:
    """`stem.key` and a self-signed `stem.crt` valid for `days` days, made by openssl."""
    openssl("genpkey", *key_args, "-out", f"{stem}.key", cwd=cwd)
    openssl(
        "req", "-x509", "-key", f"{stem}.key", "-out", f"{stem}.crt", "-days", str(days),
        "-subj", f"/CN={stem}.example", "-addext", f"subjectAltName=DNS:{stem}.example",
        cwd=cwd,
    )  # fmt: skip


def jwk_json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, indent=2).encode()
