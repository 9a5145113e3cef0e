"""What locker knows about an entry, as it is kept in the encrypted index.

An entry's facts are one JSON object stored as the string attribute `facts` of its index
entry (docs/FORMAT.md, section 7), written when the entry is added or changed, so that
`ls -l`, `inspect` and the TUI never decrypt an entry to describe it. This module is pure
data: it imports no cryptography. `recogniser()` hands the vault a callable that imports the
recogniser (and cryptography's x509) only when an entry is actually written.
"""

from __future__ import annotations

import json
from typing import Any

from locker.text import plural
from locker.vault import Vault
from locker.vault_edits import FACTS_ATTR, RECOGNISE_LIMIT, Recogniser

# Entries larger than this are plain files: no key, certificate or env file is this big, and
# recognising must not read a disk image into memory.
MAX_RECOGNISED_SIZE = RECOGNISE_LIMIT

Facts = dict[str, Any]


def encode(facts: Facts) -> str:
    return json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode(attrs: dict[str, str]) -> Facts | None:
    """The facts in an entry's attributes; None when it has none (or they do not parse)."""
    raw = attrs.get(FACTS_ATTR)
    if raw is None:
        return None
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("type"), str) else None


def recognise_to_attr(data: bytes, name: str) -> str | None:
    """The `facts` attribute for content `data` stored as `name`; None for a plain file."""
    from locker.know.recognise import recognise

    try:
        facts = recognise(data, name)
    except Exception:  # a parser bug must never stop a secret from being stored
        return None
    return encode(facts) if facts is not None else None


def recogniser() -> Recogniser:
    """The callable a writing vault is given (CLI, mount sync, recover, import)."""
    return recognise_to_attr


def refresh(vault: Vault) -> list[str]:
    """Recognise the saved entries that have no facts (added before locker recognised
    anything, or by a writer without a recogniser) and stage the facts found; returns their
    names. Only those entries are decrypted, and only those small enough to be recognised. A
    plain file has no facts either, so it is read again by each refresh: a refresh is asked
    for, never part of an ordinary save."""
    found = []
    for e in vault.entries():
        if FACTS_ATTR in e.attrs or e.size > MAX_RECOGNISED_SIZE:
            continue
        attr = recognise_to_attr(vault.read_bytes(e.name), e.name)
        if attr is not None:
            vault.set_attr(e.name, FACTS_ATTR, attr)
            found.append(e.name)
    return found


def summary(facts: Facts | None) -> str:
    """One short line for `ls -l`: 'certificate CN=a.example'; '' for a plain file."""
    if facts is None:
        return ""
    what = describe(facts)
    return f"{facts['type']} {what}" if what else str(facts["type"])


def describe(facts: Facts) -> str:
    """What an entry holds in a few words: 'CN=a.example +1 in chain', 'RSA 2048'."""
    certs = facts.get("certs") or []
    if certs and facts["type"] != "kubeconfig":
        leaf = certs[0]
        text = leaf["subject"] or "no subject"  # ls -l puts the summary in brackets
        if len(certs) > 1:
            text += f" +{len(certs) - 1} in chain"
        return text
    if facts["type"] == "env":
        creds = facts.get("credentials") or []
        count = plural(facts.get("count", 0), "variable")
        return f"{count}, {len(creds)} like credentials"
    if facts["type"] == "kubeconfig":
        users = facts.get("users") or []
        clusters = ", ".join(facts.get("clusters") or []) or "-"
        return f"clusters {clusters}; {plural(len(users), 'user')}"
    keys = (facts.get("keys") or []) + (facts.get("jwks") or [])
    if keys:
        label = key_label(keys[0])
        kid = keys[0].get("kid")
        return (
            label + (f" kid={kid}" if kid else "") + (f" +{len(keys) - 1}" if len(keys) > 1 else "")
        )
    if facts["type"] == "secret":
        return f"{facts.get('bits', '?')}-bit secret"
    return ""


def key_label(key: Facts) -> str:
    """'RSA 2048', 'EC secp256r1', 'Ed25519', 'encrypted'."""
    if key.get("encrypted") and not key.get("algo"):
        return "encrypted"
    algo = str(key.get("algo", "?"))
    if algo in ("rsa", "dsa"):
        return f"{algo.upper()} {key.get('bits', '?')}"
    if algo == "ec":
        return f"EC {key.get('curve', '?')}"
    if algo == "oct":
        return f"secret {key.get('bits', '?')} bits"
    return {"ed25519": "Ed25519", "ed448": "Ed448", "x25519": "X25519", "x448": "X448"}.get(
        algo, algo
    )
