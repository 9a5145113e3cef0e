"""Where mounts live: the user's private RAM-backed runtime directories.

A mount directory is made only under a RAM-backed base: $XDG_RUNTIME_DIR/locker when that is
RAM-backed, else a directory of ours under /dev/shm (`locker-UID`, or a fresh unpredictable
`locker-UID-XXXXXXXX` when someone else holds that name). With no RAM-backed base, mounting is
refused (`mount --dir` puts plaintext where the user says). The journal (names and hashes, no
plaintext) may fall back to an on-disk base. Lookups search every base a mount of this user may
be under, whatever this shell's environment says.

The system directories (/run/user, /dev/shm, the temp dir) come from `places()`, the one
injectable place: `$LOCKER_RUNTIME_PLACES` (JSON: `run_user`, `shm`, `tmp`) replaces them, so
that each test has bases of its own. No vault, no crypto, no watchdog here.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import NamedTuple

from locker.errors import LockerError

PLACES_ENV = "LOCKER_RUNTIME_PLACES"


class RuntimeBase(NamedTuple):
    """The per-user directory that holds mount directories and the journal."""

    path: Path
    ram_backed: bool

    @property
    def journal_dir(self) -> Path:
        return self.path / "journal"


class Places(NamedTuple):
    """The system directories the bases live in: logind's per-user dirs, shared memory, temp."""

    run_user: Path
    shm: Path
    tmp: Path


def places() -> Places:
    """The system places, or those $LOCKER_RUNTIME_PLACES names (tests give each test its own)."""
    raw = os.environ.get(PLACES_ENV)
    if not raw:
        return Places(Path("/run/user"), Path("/dev/shm"), Path(_temp_dir()))  # noqa: S108
    import json

    try:
        given = json.loads(raw)
        paths = {key: Path(given[key]) for key in ("run_user", "shm", "tmp")}
    except (ValueError, TypeError, KeyError):
        raise LockerError(
            f"${PLACES_ENV} is not a JSON object with run_user, shm and tmp"
        ) from None
    if not all(p.is_absolute() for p in paths.values()):
        raise LockerError(f"${PLACES_ENV} must name absolute paths")
    return Places(**paths)


def _temp_dir() -> str:
    """tempfile.gettempdir()'s choice ($TMPDIR, $TEMP, $TMP, /tmp, /var/tmp, /usr/tmp: the
    first writable directory), without importing tempfile on every command's orphan check."""
    for candidate in [os.environ.get(v) for v in ("TMPDIR", "TEMP", "TMP")] + [
        "/tmp",  # noqa: S108
        "/var/tmp",  # noqa: S108
        "/usr/tmp",
    ]:
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return os.path.abspath(candidate)
    return os.getcwd()


def _own_dir(path: str | Path) -> bool:
    """A real directory (not a symlink) of this user that nobody else may write to."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _xdg() -> Path | None:
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and _own_dir(xdg):
        return Path(xdg)
    return None


def _ours_in(parent: Path) -> list[Path]:
    """Our bases in a shared directory: `locker-UID` and any `locker-UID-*` that is ours."""
    prefix = f"locker-{os.getuid()}"
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return []
    return [
        parent / n
        for n in names
        if (n == prefix or n.startswith(prefix + "-")) and _own_dir(parent / n)
    ]


def _claim_in(parent: Path) -> Path:
    """A base of ours in the shared directory `parent`, made if needed: `locker-UID` if that is
    ours or free, else one we made before, else a fresh unpredictable name (a squatted name
    never sends us elsewhere, least of all to disk)."""
    fixed = parent / f"locker-{os.getuid()}"
    try:
        ensure_private_dir(fixed)
        return fixed
    except LockerError:
        pass
    for path in _ours_in(parent):
        if path != fixed:
            return path
    import tempfile

    try:
        return Path(tempfile.mkdtemp(prefix=f"{fixed.name}-", dir=parent))
    except OSError as exc:
        raise LockerError(f"cannot create a directory in {parent}: {exc.strerror}") from None


def _creation_order() -> list[tuple[Path, bool]]:
    """(shared or private parent, is it RAM-backed), RAM-backed first: where new bases go."""
    found: list[tuple[Path, bool]] = []
    where = places()
    xdg = _xdg()
    if xdg is not None:
        found.append((xdg, is_ram_backed(xdg)))
    if where.shm.is_dir():
        found.append((where.shm, is_ram_backed(where.shm)))
    found.append((where.tmp, is_ram_backed(where.tmp)))
    return sorted(found, key=lambda item: not item[1])  # stable: RAM-backed first, else in order


def _make_base(parent: Path, ram: bool) -> RuntimeBase:
    xdg = _xdg()
    path = parent / "locker" if parent == xdg else _claim_in(parent)
    ensure_private_dir(path)
    ensure_private_dir(path / "journal")
    return RuntimeBase(path, ram and is_ram_backed(path))


def runtime_base() -> RuntimeBase:
    """The first usable base, RAM-backed ones first, created 0700 if needed: where the journal
    goes. An on-disk base is acceptable here (no plaintext); see `ram_base` for mounts."""
    errors = []
    for parent, ram in _creation_order():
        try:
            return _make_base(parent, ram)
        except LockerError as exc:
            errors.append(str(exc))
    raise LockerError("no private runtime directory is usable: " + "; ".join(errors))


def ram_base() -> RuntimeBase:
    """The first usable RAM-backed base: where mount directories (plaintext) are made. Never
    one on disk: with none, mounting is refused with a hint to name a directory."""
    errors = []
    for parent, ram in _creation_order():
        if not ram:
            errors.append(f"{parent} is not RAM-backed")
            continue
        try:
            base = _make_base(parent, ram)
        except LockerError as exc:
            errors.append(str(exc))
            continue
        if base.ram_backed:
            return base
        errors.append(f"{base.path} is not RAM-backed")
    raise LockerError(
        "no RAM-backed runtime directory is usable, and plaintext must not go to disk ("
        + "; ".join(errors)
        + ")",
        hint="'locker mount --dir DIR' mounts into a directory you choose (a tmpfs is best)",
    )


def lookup_candidates() -> list[RuntimeBase]:
    """Every base a mount of this user may live under, whatever this shell's environment says:
    $XDG_RUNTIME_DIR/locker, /run/user/UID/locker, and our bases in /dev/shm and the temp dir."""
    where = places()
    paths: list[Path] = []
    xdg = _xdg()
    if xdg is not None:
        paths.append(xdg / "locker")
    run_user = where.run_user / str(os.getuid())
    if _own_dir(run_user):
        paths.append(run_user / "locker")
    for parent in (where.shm, where.tmp):
        fixed = parent / f"locker-{os.getuid()}"
        paths += [fixed] + [p for p in _ours_in(parent) if p != fixed]
    found, seen = [], set()
    for path in paths:
        if path not in seen:
            seen.add(path)
            found.append(RuntimeBase(path, is_ram_backed(path)))
    return found


def journal_dirs() -> list[Path]:
    """Every journal directory of this user that exists, each once: all the bases a mount may
    live under are searched, not only the one this shell's environment points at."""
    found, seen = [], set()
    for base in lookup_candidates():
        try:
            st = os.lstat(base.journal_dir)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            continue
        if (st.st_dev, st.st_ino) not in seen:  # $XDG_RUNTIME_DIR is usually /run/user/UID
            seen.add((st.st_dev, st.st_ino))
            found.append(base.journal_dir)
    return found


def ensure_private_dir(path: Path) -> None:
    """Create `path` 0700, or accept it if it is a real directory of ours that nobody else can use."""
    with contextlib.suppress(FileExistsError):
        try:
            os.mkdir(path, 0o700)
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            raise LockerError(f"cannot create {path}: {exc.strerror}") from None
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
