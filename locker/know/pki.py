"""Facts about keys, certificates and CSRs, read with `cryptography` (no ASN.1 or PEM by hand).

Every key, certificate and CSR is described by the SHA-256 of its public key's
SubjectPublicKeyInfo (`spki`): pairing a certificate with its key is comparing those.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.serialization import pkcs12

from locker.know.facts import Facts

_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_PRIVATE_LABELS = {
    b"PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
    b"DSA PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
}
_CSR_LABELS = {b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"}
_PUBLIC_LABELS = {b"PUBLIC KEY", b"RSA PUBLIC KEY"}
_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm)


def spki(public_key: Any) -> str:
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def key_facts(key: Any, private: bool) -> Facts:
    """Algorithm, size or curve, and the public key hash of a private or public key."""
    public = key.public_key() if private else key
    facts: Facts = {"private": private}
    if isinstance(public, rsa.RSAPublicKey):
        facts.update(algo="rsa", bits=public.key_size)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        facts.update(algo="ec", curve=public.curve.name, bits=public.key_size)
    elif isinstance(public, dsa.DSAPublicKey):
        facts.update(algo="dsa", bits=public.key_size)
    else:
        names = {
            ed25519.Ed25519PublicKey: "ed25519",
            ed448.Ed448PublicKey: "ed448",
            x25519.X25519PublicKey: "x25519",
            x448.X448PublicKey: "x448",
        }
        facts["algo"] = next((v for k, v in names.items() if isinstance(public, k)), "other")
    facts["spki"] = spki(public)
    return facts


def _sans(ext_value: Any) -> list[str]:
    out = []
    for general_name in ext_value:
        value = general_name.value
        out.append(value if isinstance(value, str) else str(value))
    return out


def cert_facts(cert: x509.Certificate) -> Facts:
    try:
        sans = _sans(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (x509.ExtensionNotFound, ValueError):
        sans = []
    try:
        ca = bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        ca = False
    self_signed = False
    if cert.issuer == cert.subject:
        try:
            cert.verify_directly_issued_by(cert)
            self_signed = True
        except (InvalidSignature, *_ERRORS):
            pass
    public = cert.public_key()
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sans": sans,
        "not_before": int(cert.not_valid_before_utc.timestamp()),
        "not_after": int(cert.not_valid_after_utc.timestamp()),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "self_signed": self_signed,
        "ca": ca,
        "serial": format(cert.serial_number, "x"),
        "key": key_facts(public, private=False),
        "spki": spki(public),
    }


def csr_facts(csr: x509.CertificateSigningRequest) -> Facts:
    try:
        sans = _sans(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (x509.ExtensionNotFound, ValueError):
        sans = []
    public = csr.public_key()
    return {
        "subject": csr.subject.rfc4514_string(),
        "sans": sans,
        "key": key_facts(public, private=False),
        "spki": spki(public),
    }


def _private_pem(data: bytes) -> Facts:
    try:
        return key_facts(serialization.load_pem_private_key(data, password=None), private=True)
    except TypeError:  # "password was not given but private key is encrypted"
        return {"private": True, "encrypted": True}


def from_pem(data: bytes) -> Facts | None:
    """Keys, certificates and CSRs in PEM text, in any mix (a key next to its chain)."""
    labels = set(_PEM_LABEL.findall(data))
    if not labels:
        return None
    out: Facts = {}
    try:
        if labels & _PRIVATE_LABELS:
            out["keys"] = [_private_pem(data)]
        elif b"OPENSSH PRIVATE KEY" in labels:
            ssh = from_openssh_private(data)
            if ssh is not None:
                out["keys"] = ssh["keys"]
        elif labels & _PUBLIC_LABELS:
            out["keys"] = [key_facts(serialization.load_pem_public_key(data), private=False)]
        if b"CERTIFICATE" in labels:
            out["certs"] = [cert_facts(c) for c in x509.load_pem_x509_certificates(data)]
        if labels & _CSR_LABELS:
            out["csrs"] = [csr_facts(x509.load_pem_x509_csr(data))]
    except _ERRORS:
        if not out:
            return None
    if not out:
        return None
    openssh = b"OPENSSH PRIVATE KEY" in labels and not labels & _PRIVATE_LABELS
    out["type"] = "ssh-private-key" if openssh else _pem_type(out)
    out["format"] = "openssh" if openssh else "pem"
    return out


def _pem_type(out: Facts) -> str:
    keys = out.get("keys") or []
    if keys and keys[0].get("private"):
        return "private-key"
    if out.get("certs"):
        return "certificate" if len(out["certs"]) == 1 else "certificate-chain"
    if out.get("csrs"):
        return "csr"
    return "public-key"


def from_der(data: bytes, name: str) -> Facts | None:
    """A DER private key, public key, certificate, CSR, or a PKCS#12 file."""
    if not data.startswith(b"\x30"):  # every one of them is an ASN.1 SEQUENCE
        return None
    loaders: list[tuple[Callable[[bytes], Facts], str]] = [
        (lambda d: key_facts(serialization.load_der_private_key(d, None), True), "private-key"),
        (lambda d: cert_facts(x509.load_der_x509_certificate(d)), "certificate"),
        (lambda d: key_facts(serialization.load_der_public_key(d), False), "public-key"),
        (lambda d: csr_facts(x509.load_der_x509_csr(d)), "csr"),
    ]
    for load, kind in loaders:
        try:
            item = load(data)
        except _ERRORS:
            continue
        field = {"certificate": "certs", "csr": "csrs"}.get(kind, "keys")
        return {"type": kind, "format": "der", field: [item]}
    return from_pkcs12(data, name)


def from_pkcs12(data: bytes, name: str) -> Facts | None:
    """What a PKCS#12 file shows without its password: everything if it has an empty one."""
    for password in (None, b""):
        try:
            p12 = pkcs12.load_pkcs12(data, password)
        except _ERRORS:
            continue
        facts: Facts = {"type": "pkcs12", "format": "pkcs12", "encrypted": False}
        if p12.key is not None:
            facts["keys"] = [key_facts(p12.key, private=True)]
        certs = ([p12.cert.certificate] if p12.cert else []) + [
            c.certificate for c in p12.additional_certs
        ]
        if certs:
            facts["certs"] = [cert_facts(c) for c in certs]
        return facts
    if name.lower().endswith((".p12", ".pfx")):
        return {"type": "pkcs12", "format": "pkcs12", "encrypted": True, "keys": []}
    return None


def from_openssh_private(data: bytes) -> Facts | None:
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except TypeError:  # encrypted: the password is needed to read anything
        return {"type": "ssh-private-key", "keys": [{"private": True, "encrypted": True}]}
    except _ERRORS:
        return None
    return {"type": "ssh-private-key", "keys": [key_facts(key, private=True)]}


_SSH_PUBLIC = re.compile(rb"^(ssh-(rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp\d+|sk-\S+) AAAA")


def from_openssh_public(data: bytes) -> Facts | None:
    """An OpenSSH public key line (`id_ed25519.pub`, one line of authorized_keys)."""
    lines = [ln.strip() for ln in data.splitlines() if ln.strip()]
    if not lines or not all(_SSH_PUBLIC.match(ln) for ln in lines):
        return None
    keys = []
    for line in lines:
        try:
            key = serialization.load_ssh_public_key(line)
        except _ERRORS:
            return None
        keys.append(key_facts(key, private=False))
    return {"type": "ssh-public-key", "keys": keys}
