"""A vault on a removable drive: notice when the drive holding a mounted vault goes away, and
say before mounting how syncs behave on a FAT or removable drive.

The session asks `gone()` on every poll (it looks at most every CHECK_EVERY seconds) and calls
`check()` before every sync, so nothing is ever written where the vault used to be.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from locker.errors import LockerError
from locker.store import drives
from locker.text import size_text
from locker.vault import Vault

REASON_DRIVE_GONE = "the vault's drive went away"
CHECK_EVERY = 0.5  # seconds: well inside the 2 s in which a pulled drive must be noticed


class DriveGoneError(LockerError):
    """The file the vault was opened from is no longer reachable at its path."""


class DriveWatch:
    """Watches that the vault's file is still where it was opened; once gone, stays gone."""

    def __init__(self, vault: Vault, monotonic: Callable[[], float]) -> None:
        self.vault = vault
        self._monotonic = monotonic
        self._next = 0.0
        self._gone = False

    def gone(self) -> bool:
        now = self._monotonic()
        if not self._gone and now >= self._next:
            self._next = now + CHECK_EVERY
            self._gone = not self.vault.on_disk()
        return self._gone

    def check(self) -> None:
        """Raise DriveGoneError unless the vault's file is reachable now."""
        if self._gone or not self.vault.on_disk():
            self._gone = True
            raise DriveGoneError(f"the drive holding {self.vault.path} went away")


def _how_syncs_write(drive: drives.Drive) -> str:
    """FORMAT.md section 21, rule 6: FAT and the like get the whole file every time."""
    if drive.fstype in drives.APPEND_TYPES:
        return "writes what changed there (a removal rewrites the whole vault)"
    return "rewrites the whole vault there"


def mount_note(vault: Path, size: int) -> str | None:
    """What to expect when mounting a vault on a FAT or removable drive (None elsewhere)."""
    drive = drives.drive_of(vault.parent)
    if drive is None or not (drive.fat_like or drive.removable):
        return None
    return (
        f"{vault} is on a {drive.describe()}: each sync {_how_syncs_write(drive)} "
        f"({size_text(size)}) and waits for the drive to confirm it; if the drive goes "
        "away, the mount locks within 2 s, wipes what is saved, and keeps unsaved changes "
        "for 'locker recover' once the drive is back"
    )
