"""Key files: any file of 32 bytes to 1 MiB whose SHA-256 is the slot secret.

`generate` writes a new one: 32 random bytes as 64 lower-case hex digits and a newline (text,
so it survives copy and paste). The fingerprint, shown when a key-file slot is added and in
`slot ls`, names the file without revealing the secret.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from locker.errors import ExistsError, LockerError, UsageError
from locker.store import safefs

MIN_SIZE = 32
MAX_SIZE = 1024 * 1024


def read_secret(path: Path) -> bytes:
    """SHA-256 of the key file's bytes; UsageError (exit 2) for a file that cannot be one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"key file {path} is not a regular file")
        data = f.read(MAX_SIZE + 1)
    if not MIN_SIZE <= len(data) <= MAX_SIZE:
        raise UsageError(
            f"key file {path} has {len(data)} bytes; a key file has 32 bytes to 1 MiB",
            hint="'locker slot add-keyfile PATH --generate' writes a new one",
        )
    return hashlib.sha256(data).digest()


def fingerprint(secret: bytes) -> str:
    """Sixteen hex digits in groups of four, from a hash of the secret (not the secret)."""
    digest = hashlib.sha256(b"locker key file fingerprint\x00" + secret).hexdigest()[:16]
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def generate(path: Path, random: bytes) -> None:
    """Write a new key file (mode 0600); never replaces an existing file."""
    if len(random) != 32:
        raise ValueError("a generated key file holds 32 random bytes")
    write_new_secret_file(path, random.hex().encode() + b"\n", "key file")


def write_new_secret_file(path: Path, data: bytes, what: str) -> None:
    """Create `path` (mode 0600, no symlink followed) holding `data`, synced; never replaces.
    The file gets its name only once complete: a failed write leaves nothing a later run could
    take for a whole key."""
    try:
        dir_fd = safefs.open_dir(path.parent, follow=True)
    except LockerError as exc:
        raise UsageError(f"cannot create {what} {path}: {exc}") from None
    try:
        if safefs.exists(dir_fd, path.name):
            raise ExistsError(f"{path} already exists", hint=f"choose a new path for the {what}")
        safefs.write_file(dir_fd, path.name, [data])
    except OSError as exc:
        raise UsageError(f"cannot create {what} {path}: {exc.strerror}") from None
    finally:
        os.close(dir_fd)
