"""JSON Web Keys (RFC 7517/7518/8037): recognise them, build their keys with `cryptography`,
export public JWKs, and their RFC 7638 thumbprints."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from locker.know.facts import Facts
from locker.know.pki import key_facts

_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
    "secp256k1": ec.SECP256K1(),
}
_OKP: dict[str, Any] = {
    "Ed25519": ed25519.Ed25519PublicKey,
    "Ed448": ed448.Ed448PublicKey,
    "X25519": x25519.X25519PublicKey,
    "X448": x448.X448PublicKey,
}
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


def b64u_decode(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a base64url string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_key(jwk: dict[str, Any]) -> Any:
    """The cryptography public key of an RSA, EC or OKP JWK (ValueError if malformed)."""
    kty = jwk.get("kty")
    if kty == "RSA":
        n = int.from_bytes(b64u_decode(jwk["n"]), "big")
        e = int.from_bytes(b64u_decode(jwk["e"]), "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if kty == "EC":
        curve = _CURVES[jwk["crv"]]
        point = b"\x04" + b64u_decode(jwk["x"]) + b64u_decode(jwk["y"])
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    if kty == "OKP":
        return _OKP[jwk["crv"]].from_public_bytes(b64u_decode(jwk["x"]))
    raise ValueError(f"no public key in a JWK of kty {kty!r}")


def jwk_facts(jwk: dict[str, Any]) -> Facts:
    """kty, alg, kid, use, private or public, and the key's size and spki (not for `oct`)."""
    kty = jwk["kty"]
    facts: Facts = {"kty": kty}
    for member in ("alg", "kid", "use", "crv"):
        if isinstance(jwk.get(member), str):
            facts[member] = jwk[member]
    if kty == "oct":
        facts.update(private=True, algo="oct", bits=8 * len(b64u_decode(jwk["k"])))
        return facts
    key = key_facts(public_key(jwk), private=False)
    key["private"] = any(m in jwk for m in _PRIVATE_MEMBERS)
    facts.update(key)
    return facts


def from_json(data: bytes) -> Facts | None:
    """A JWK or a JWKS (`{"keys": [...]}`) in JSON, else None."""
    stripped = data.lstrip()
    if not stripped.startswith(b"{"):
        return None
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    try:
        if isinstance(obj.get("kty"), str):
            return {"type": "jwk", "jwks": [jwk_facts(obj)]}
        keys = obj.get("keys")
        if isinstance(keys, list) and keys and all(isinstance(k, dict) for k in keys):
            return {"type": "jwks", "jwks": [jwk_facts(k) for k in keys]}
    except (KeyError, ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return None


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members in lexical order, no whitespace."""
    required = {
        "RSA": ("e", "kty", "n"),
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
    }
    members = required.get(jwk["kty"], ("k", "kty"))
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(canonical.encode("utf-8")).digest())


def public_jwk(public: Any, alg: str | None = None) -> dict[str, Any]:
    """The public JWK of a cryptography public key, `kid` = its RFC 7638 thumbprint."""
    jwk: dict[str, Any]
    if isinstance(public, rsa.RSAPublicKey):
        nums = public.public_numbers()
        jwk = {"kty": "RSA", "n": b64u(_int_bytes(nums.n)), "e": b64u(_int_bytes(nums.e))}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        crv = next(k for k, v in _CURVES.items() if v.name == public.curve.name)
        size = (public.curve.key_size + 7) // 8
        point = public.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": crv,
            "x": b64u(point.x.to_bytes(size, "big")),
            "y": b64u(point.y.to_bytes(size, "big")),
        }
    else:
        crv = next(k for k, v in _OKP.items() if isinstance(public, v))
        raw = public.public_bytes_raw()
        jwk = {"kty": "OKP", "crv": crv, "x": b64u(raw)}
    if alg:
        jwk["alg"] = alg
        jwk["use"] = "sig"
    jwk["kid"] = thumbprint(jwk)
    return jwk


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
