"""Recovery keys: 160 random bits written as nine groups of four characters, the last group a
checksum, in an alphabet without look-alikes (no 0/O, no 1/I), e.g.
`7KQW-M3XD-...-HT4C`. Typing is forgiving (any case, any spaces or dashes); a typo is caught
by the checksum before any key is derived.
"""

from __future__ import annotations

import hashlib

from locker.errors import BadKeyError
from locker.readable import ALPHABET, grouped, symbols

SECRET_SIZE = 20  # 160 bits: 32 symbols
_CHECK_SYMBOLS = 4  # 20 bits of SHA-256 over the secret


def _checksum(secret: bytes) -> str:
    return symbols(hashlib.sha256(b"locker recovery key\x00" + secret).digest()[:3], 4)


def encode(secret: bytes) -> str:
    """The printed form of a 20-byte recovery secret."""
    if len(secret) != SECRET_SIZE:
        raise ValueError("a recovery secret is 20 bytes")
    return grouped(symbols(secret, 32) + _checksum(secret))


def decode(text: str) -> bytes:
    """The secret from a typed recovery key; BadKeyError (exit 3) for anything that is not one."""
    clean = "".join(c for c in text.upper() if c not in " -\t\r\n")
    wrong = sorted({c for c in clean if c not in ALPHABET})
    if wrong:
        raise BadKeyError(
            f"not a recovery key: it contains {', '.join(repr(c) for c in wrong)}",
            hint="recovery keys use 2-9 and A-Z without I and O, in groups like XXXX-XXXX",
        )
    if len(clean) != 32 + _CHECK_SYMBOLS:
        raise BadKeyError(
            f"not a recovery key: {len(clean)} characters instead of {32 + _CHECK_SYMBOLS}",
            hint="a recovery key is nine groups of four characters",
        )
    number = 0
    for c in clean[:32]:
        number = number << 5 | ALPHABET.index(c)
    secret = number.to_bytes(SECRET_SIZE, "big")
    if _checksum(secret) != clean[32:]:
        raise BadKeyError(
            "the recovery key has a typo: its last group does not match the rest",
            hint="compare it with the printed copy, character by character",
        )
    return secret
