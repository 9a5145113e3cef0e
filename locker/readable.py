"""Random secrets a person can read aloud and type: recovery keys and generated bundle
passphrases share one alphabet without look-alikes (no 0/O, no 1/I) and groups of four.

Randomness comes in from outside; nothing here knows what the secret unlocks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols: 5 bits each
BITS_PER_SYMBOL = 5
GROUP = 4


def symbols(data: bytes, count: int) -> str:
    """The first `count` 5-bit symbols of `data`, most significant bits first."""
    number = int.from_bytes(data, "big")
    bits = len(data) * 8
    return "".join(ALPHABET[(number >> (bits - 5 * (i + 1))) & 31] for i in range(count))


def grouped(text: str) -> str:
    """'ABCDEFGH' -> 'ABCD-EFGH'."""
    return "-".join(text[i : i + GROUP] for i in range(0, len(text), GROUP))


def readable_secret(bits: int = 128, rng: Callable[[int], bytes] = os.urandom) -> str:
    """At least `bits` random bits as 'XXXX-XXXX-...' (whole groups, so often a few more)."""
    if bits <= 0:
        raise ValueError("bits must be positive")
    count = math.ceil(math.ceil(bits / BITS_PER_SYMBOL) / GROUP) * GROUP
    return grouped(symbols(rng(math.ceil(count * BITS_PER_SYMBOL / 8)), count))
