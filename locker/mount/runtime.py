"""Where mounts live: the user's private RAM-backed runtime directories.

A new mount goes under the first usable base ($XDG_RUNTIME_DIR, /dev/shm, the temp dir);
lookups search every base a mount of this user may be under, whatever this shell's environment
says. No vault, no crypto, no watchdog here.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from locker.errors import LockerError


@dataclass(frozen=True)
class RuntimeBase:
    """The per-user directory that holds mount directories and the journal."""

    path: Path
    ram_backed: bool

    @property
    def journal_dir(self) -> Path:
        return self.path / "journal"


# Where logind makes each user's runtime directory: a shell without $XDG_RUNTIME_DIR (su,
# sudo -u, cron) must still find the mounts made under it. A module attribute, for tests.
RUN_USER = Path("/run/user")


def _own_dir(path: str | Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def _candidates() -> list[RuntimeBase]:
    """Where new mounts go, in order of preference: $XDG_RUNTIME_DIR, /dev/shm, the temp dir."""
    uid = os.getuid()
    found = []
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and _own_dir(xdg):
        found.append(RuntimeBase(Path(xdg) / "locker", True))
    # A world-writable place: ensure_private_dir refuses a directory someone else made there.
    if os.path.isdir("/dev/shm"):  # noqa: S108
        found.append(RuntimeBase(Path(f"/dev/shm/locker-{uid}"), True))  # noqa: S108
    found.append(RuntimeBase(Path(tempfile.gettempdir()) / f"locker-{uid}", False))
    return found


def lookup_candidates() -> list[RuntimeBase]:
    """Every base a mount of this user may live under, whatever this shell's environment says:
    the creation candidates plus /run/user/UID (if it exists and is ours)."""
    found = _candidates()
    run_user = RUN_USER / str(os.getuid())
    if _own_dir(run_user):
        found.insert(1, RuntimeBase(run_user / "locker", True))
    return found


def runtime_base() -> RuntimeBase:
    """The first usable base ($XDG_RUNTIME_DIR, /dev/shm, temp dir), created 0700 if needed."""
    errors = []
    for base in _candidates():
        try:
            ensure_private_dir(base.path)
            ensure_private_dir(base.journal_dir)
            return base
        except LockerError as exc:
            errors.append(str(exc))
    raise LockerError("no private runtime directory is usable: " + "; ".join(errors))


def ensure_private_dir(path: Path) -> None:
    """Create `path` 0700, or accept it if it is a real directory of ours that nobody else can use."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise LockerError(f"cannot create {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise LockerError(f"{path} is not a directory (or is a symbolic link)")
    if st.st_uid != os.getuid():
        raise LockerError(f"{path} belongs to another user; refusing to use it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def filesystem_type(path: Path) -> str:
    """The file-system type holding `path` (from /proc/self/mounts), or '' if unknown."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return ""
    target = os.path.realpath(path)
    best, kind = "", ""
    for parts in mounts:
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


def is_ram_backed(path: Path) -> bool:
    return filesystem_type(path) in ("tmpfs", "ramfs")
