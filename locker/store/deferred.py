"""Audit events recorded without rewriting the vault (docs/FORMAT.md, section 12).

A command that only reads the vault but must still be in its audit log (`export`, which runs
beside a mount that holds the writer lock) seals its event into a small file beside the
vault, `.<vault name>.event-<16 hex digits>`, under a key derived from the master key. The
next save of the vault, by whichever writer, merges every such event into the log and then
removes the files; until then `locker log` shows them too. A file that does not open under
the vault's key (damaged, forged, or sealed under a master key a rekey has since replaced)
is ignored and left in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from locker.errors import LockerError
from locker.store import crypto
from locker.store.index import LogEvent, decode_log_event, encode_log_event
from locker.store.lockfile import stem_beside
from locker.store.safefs import open_dir, write_file

MAGIC = b"LOCKEREV1\n"
MAX_SIZE = 64 * 1024  # an event names at most 100 entries: far below this
_TOKEN_HEX = 16
_CLOCK_HEX = 13


def _prefix(vault: Path) -> str:
    return f".{stem_beside(vault, len('..event-') + _TOKEN_HEX)}.event-"


def is_event_of(vault: Path, name: str) -> bool:
    """Whether `name` is exactly one of `vault`'s deferred event files."""
    token = name[len(_prefix(vault)) :]
    return (
        name.startswith(_prefix(vault))
        and len(token) == _TOKEN_HEX
        and all(c in "0123456789abcdef" for c in token)
    )


def _aad(container_id: bytes, name: str) -> bytes:
    # The file's name is authenticated: an event renamed (to be merged twice) fails to open.
    return container_id + name.encode("utf-8", "surrogateescape")


def write(
    vault: Path,
    container_id: bytes,
    master: bytes | bytearray,
    event: LogEvent,
    rng: Callable[[int], bytes],
) -> Path:
    """Seal `event` into a new file beside `vault`; it appears only complete and synced.

    The name's 16 digits are the clock in units of 1024 ns (13 digits, good for 146 years)
    and 3 random ones: readers list the files by name and then order the events by their time
    in whole seconds (stable), so events written in the same second (a mount's and its lock's)
    keep the order they were written in.
    """
    ticks = (time.time_ns() >> 10) & (16**_CLOCK_HEX - 1)
    name = f"{_prefix(vault)}{ticks:0{_CLOCK_HEX}x}{rng(2).hex()[: _TOKEN_HEX - _CLOCK_HEX]}"
    nonce = rng(crypto.NONCE_SIZE)
    key = crypto.deferred_log_key(master, container_id)
    sealed = crypto.seal(key, nonce, encode_log_event(event), _aad(container_id, name))
    dir_fd = open_dir(vault.parent, follow=True)
    try:
        write_file(dir_fd, name, [MAGIC + nonce + sealed])
    finally:
        os.close(dir_fd)
    return vault.with_name(name)


class Pending:
    """The deferred events found beside a vault, oldest first, and the files holding them."""

    __slots__ = ("events", "files")

    def __init__(
        self, events: list[LogEvent] | None = None, files: list[str] | None = None
    ) -> None:
        self.events: list[LogEvent] = [] if events is None else events
        self.files: list[str] = [] if files is None else files

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pending):
            return NotImplemented
        return (self.events, self.files) == (other.events, other.files)


def read(vault: Path, container_id: bytes, master: bytes | bytearray) -> Pending:
    """Every deferred event of `vault` that opens under its key; the rest are skipped."""
    try:
        listing = sorted(n for n in os.listdir(vault.parent) if is_event_of(vault, n))
    except OSError:
        return Pending()
    key = crypto.deferred_log_key(master, container_id)
    found: list[tuple[LogEvent, str]] = []
    for name in listing:
        event = _open(vault.with_name(name), key, _aad(container_id, name))
        if event is not None:
            found.append((event, name))
    found.sort(key=lambda item: item[0].time)
    return Pending([e for e, _ in found], [n for _, n in found])


def _open(path: Path, key: bytes, aad: bytes) -> LogEvent | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    with open(fd, "rb") as f:
        blob = f.read(MAX_SIZE + 1)
    head = len(MAGIC) + crypto.NONCE_SIZE
    if len(blob) > MAX_SIZE or not blob.startswith(MAGIC):
        return None
    try:
        plain = crypto.open_sealed(key, blob[len(MAGIC) : head], blob[head:], aad, "event")
        return decode_log_event(json.loads(plain))
    except (LockerError, ValueError):
        return None


def remove(vault: Path, files: list[str]) -> None:
    """Remove merged event files. One left behind (the save was killed just after the rename)
    is merged again by the next save, which drops it as a duplicate of what the log holds."""
    for name in files:
        with contextlib.suppress(OSError):
            os.unlink(vault.with_name(name))
