"""Interrupted exports: the temporary bundle an export writes beside its target is noted in the
runtime directory while it runs; one whose writer is gone (killed, its drive pulled) is removed
by the next export into that directory or by `locker recover`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from locker.errors import BusyError, LockerError
from locker.mount.runtime import ensure_private_dir, lookup_candidates, runtime_base
from locker.store.lockfile import WriterLock, lock_path

TEMP_PREFIX = ".locker-export-"
_TEMP_NAME = re.compile(r"^\.?\.locker-export-([0-9a-f]{16})(?:$|\.)")


def _exports_dir() -> Path:
    directory = runtime_base().path / "exports"
    ensure_private_dir(directory)
    return directory


def record_export(temp: Path) -> Path:
    """Note the temporary bundle in the runtime directory, for `recover` to find."""
    record = _exports_dir() / temp.name
    record.write_text(json.dumps({"temp": str(temp), "pid": os.getpid()}), encoding="utf-8")
    return record


def remove_export(temp: Path, dir_fd: int | None = None) -> None:
    """Remove a temporary bundle and everything beside it that its writer made: in the
    directory `temp` names and, if given, in the directory `dir_fd` (they differ when the
    drive went away during the export)."""
    for where in (None, dir_fd) if dir_fd is not None else (None,):
        with contextlib.suppress(OSError):
            for name in os.listdir(temp.parent if where is None else where):
                if name in (temp.name, lock_path(temp).name) or name.startswith(
                    f".{temp.name}.tmp-"
                ):
                    with contextlib.suppress(OSError):
                        os.unlink(temp.parent / name if where is None else name, dir_fd=where)


def clean_stale_exports(directory: Path) -> list[Path]:
    """Remove the temporaries of exports into `directory` whose writer is gone; return them.

    An export holds the writer lock of its temporary name while it runs, so a lock that can
    be taken means nobody is writing that bundle any more.
    """
    try:
        listing = os.listdir(directory)
    except OSError:
        return []
    ids = sorted({m.group(1) for m in map(_TEMP_NAME.match, listing) if m})
    removed = []
    for ident in ids:
        temp = directory / (TEMP_PREFIX + ident)
        try:
            lock = WriterLock(temp, "cleanup").acquire()
        except (BusyError, LockerError):
            continue
        try:
            remove_export(temp)
        finally:
            lock.release()
            with contextlib.suppress(OSError):
                os.unlink(lock_path(temp))
        removed.append(temp)
    return removed


def recover_exports() -> list[Path]:
    """What `recover` does for exports: clean up after every interrupted one it knows of whose
    drive is reachable; the record of one on a drive that is away is kept for next time."""
    removed: list[Path] = []
    for base in lookup_candidates():
        records = base.path / "exports"
        try:
            listing = sorted(os.listdir(records))
        except OSError:
            continue
        for name in listing:
            try:
                temp = Path(json.loads((records / name).read_text(encoding="utf-8"))["temp"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if not temp.parent.is_dir():
                continue
            removed.extend(clean_stale_exports(temp.parent))
            if not os.path.lexists(temp) or temp in removed:
                with contextlib.suppress(OSError):
                    os.unlink(records / name)
    return removed
