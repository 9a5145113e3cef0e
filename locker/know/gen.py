"""`locker gen`: new keys made in memory and sealed straight into the vault (never on disk).

- `jwt_key(alg)`: a JWT signing key, stored as a private JWK (kid = RFC 7638 thumbprint);
- `tls_key(kind)` and `csr(...)`: a TLS key stored as PKCS#8 PEM, and its CSR (public);
- `secret(n)`: n random bytes for HMAC, stored base64 encoded;
- `public_jwks(...)`: the public half of every JWT signing key held, as a JWKS;
- `make(kind, ...)` and `store(vault, name, made)`: one of those, into a vault open for
  writing with its "gen" audit event (what `locker gen` and the TUI's gen dialog both call).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from locker.errors import UsageError
from locker.know import jwk
from locker.know.facts import encode

if TYPE_CHECKING:
    from locker.vault import Vault

JWT_ALGS = ("ES256", "ES384", "EdDSA", "RS256")
TLS_KEYS = ("ec", "rsa", "ed25519")


def _new_key(alg: str) -> Any:
    if alg in ("ES256", "ec"):
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg in ("EdDSA", "ed25519"):
        return ed25519.Ed25519PrivateKey.generate()
    if alg in ("RS256", "rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise UsageError(f"unknown key type {alg!r}")


def _private_members(key: Any) -> dict[str, str]:
    def b(n: int) -> str:
        return jwk.b64u(n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big"))

    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        return {"d": jwk.b64u(key.private_numbers().private_value.to_bytes(size, "big"))}
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return {"d": jwk.b64u(key.private_bytes_raw())}
    nums = key.private_numbers()
    return {
        "d": b(nums.d), "p": b(nums.p), "q": b(nums.q),
        "dp": b(nums.dmp1), "dq": b(nums.dmq1), "qi": b(nums.iqmp),
    }  # fmt: skip


def jwt_key(alg: str) -> tuple[bytes, dict[str, Any]]:
    """(the private JWK to store, as JSON bytes; the public JWK to print)."""
    if alg not in JWT_ALGS:
        raise UsageError(f"--alg must be one of {', '.join(JWT_ALGS)}")
    key = _new_key(alg)
    public = jwk.public_jwk(key.public_key(), alg)
    private = dict(public, **_private_members(key))
    return json.dumps(private, indent=2).encode() + b"\n", public


def tls_key(kind: str) -> tuple[Any, bytes]:
    """(the key, its PKCS#8 PEM to store)."""
    if kind not in TLS_KEYS:
        raise UsageError(f"--key must be one of {', '.join(TLS_KEYS)}")
    key = _new_key(kind)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key, pem


def csr(key: Any, cn: str, sans: list[str]) -> bytes:
    """A PEM CSR for `key` with subject CN and the SANs (DNS names or IP addresses)."""
    if not cn:
        raise UsageError("--cn must not be empty")
    names: list[x509.GeneralName] = []
    for san in sans or [cn]:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    try:
        return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)
    except ValueError as exc:
        raise UsageError(f"cannot make a CSR with these names: {exc}") from None


def secret(size: int) -> bytes:
    if not 16 <= size <= 1024:
        raise UsageError("--bytes must be between 16 and 1024")
    return base64.b64encode(os.urandom(size))


@dataclass
class Made:
    """Something generated, ready to store: the entry's content, the audit detail, the facts
    when the recogniser cannot tell (a random secret), and what to show (public only)."""

    data: bytes
    detail: str
    shown: str
    facts: str | None = None


def make(
    kind: str, *, alg: str = "ES256", cn: str = "", sans: Sequence[str] = (), size: int = 32
) -> Made:
    """A new `kind` ("jwt", "tls" or "secret"); shown: the public JWK, the CSR, or nothing."""
    if kind == "jwt":
        private, public = jwt_key(alg)
        return Made(private, f"jwt {alg} kid={public['kid']}", json.dumps(public, indent=2))
    if kind == "tls":
        key, pem = tls_key(alg)
        return Made(pem, f"tls {alg} CN={cn}", csr(key, cn, list(sans)).decode("ascii"))
    if kind == "secret":
        facts = encode({"type": "secret", "bits": 8 * size, "secret": True})
        return Made(secret(size), f"secret {size} bytes", "", facts)
    raise UsageError(f"unknown kind {kind!r}: jwt, tls or secret")


def store(vault: Vault, name: str, made: Made, force: bool = False) -> None:
    """Stage what was made as `name`, record the "gen" event and commit."""
    saved = vault.recogniser
    if made.facts is not None:
        facts = made.facts
        vault.recogniser = lambda _data, _name: facts
    try:
        vault.add_bytes(name, made.data, force=force)
    finally:
        vault.recogniser = saved
    vault.record("gen", (name,), detail=made.detail)
    vault.commit()


def public_jwks(documents: list[bytes]) -> dict[str, Any]:
    """The public signing keys (RSA, EC, OKP) in JWK/JWKS documents, private parts dropped."""
    keys: list[dict[str, Any]] = []
    for data in documents:
        try:
            obj = json.loads(data)
        except ValueError:
            continue
        found = obj.get("keys") if isinstance(obj, dict) and "keys" in obj else [obj]
        for item in found if isinstance(found, list) else []:
            if not isinstance(item, dict) or item.get("kty") not in ("RSA", "EC", "OKP"):
                continue
            if item.get("use", "sig") != "sig":
                continue
            public = jwk.public_jwk(jwk.public_key(item), item.get("alg"))
            if isinstance(item.get("kid"), str):
                public["kid"] = item["kid"]
            if public not in keys:
                keys.append(public)
    return {"keys": keys}
