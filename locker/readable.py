"""Random secrets a person can read aloud and type: bundle passphrases, recovery keys.

Crockford's base32 alphabet (digits and upper-case letters without I, L, O and U, so no two
characters look alike), in dash-separated groups of four. Randomness comes in from outside.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BITS_PER_CHAR = 5
GROUP = 4


def readable_secret(
    bits: int = 128, rng: Callable[[int], bytes] = os.urandom, group: int = GROUP
) -> str:
    """At least `bits` random bits as 'XXXX-XXXX-...' (whole groups, so often a few more)."""
    if bits <= 0:
        raise ValueError("bits must be positive")
    chars = math.ceil(bits / BITS_PER_CHAR)
    chars = math.ceil(chars / group) * group
    value = int.from_bytes(rng(math.ceil(chars * BITS_PER_CHAR / 8)), "big")
    symbols = []
    for _ in range(chars):
        symbols.append(ALPHABET[value & 31])
        value >>= BITS_PER_CHAR
    text = "".join(symbols)
    return "-".join(text[i : i + group] for i in range(0, chars, group))
