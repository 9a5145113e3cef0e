"""Recognise what a file is: a key, certificate, CSR, PKCS#12, OpenSSH key, JWK or JWKS, env
file, kubeconfig, .netrc, .pgpass or AWS credentials file; anything else is a plain file.

`recognise(data, name)` returns the facts (see `locker.know.facts`) or None. Every fact has a
`type` and `secret` (whether the file holds something that must not lie around in plaintext:
a private key, a private JWK, credentials). Values are never part of the facts.
"""

from __future__ import annotations

from locker.know import jwk, pki, textfiles
from locker.know.facts import MAX_RECOGNISED_SIZE, Facts


def recognise(data: bytes, name: str) -> Facts | None:
    if not data or len(data) > MAX_RECOGNISED_SIZE:
        return None
    facts = _recognise(data, name)
    if facts is not None and "secret" not in facts:
        facts["secret"] = _holds_secret(facts)
    return facts


def _recognise(data: bytes, name: str) -> Facts | None:
    if b"-----BEGIN " in data:
        found = pki.from_pem(data)
        if found is not None:
            return found
    head = data[:64].lstrip()
    if head.startswith((b"ssh-", b"ecdsa-", b"sk-")):
        return pki.from_openssh_public(data)
    if head.startswith(b"{"):
        found = jwk.from_json(data)
        if found is not None:
            return found
    if data.startswith(b"\x30"):
        found = pki.from_der(data, name)
        if found is not None:
            return found
    return textfiles.from_text(data, name)


def _holds_secret(facts: Facts) -> bool:
    if facts["type"] == "pkcs12":
        return True
    keys = facts.get("keys") or []
    jwks = facts.get("jwks") or []
    return any(k.get("private") for k in keys) or any(k.get("private") for k in jwks)
