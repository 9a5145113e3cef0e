"""The mount directory itself: where it is made, who still holds files in it, and wiping it.

Plain files in a private 0700 directory (no FUSE, no root): RAM-backed where the system offers
one. Wiping zeroes every file in place before unlinking, so the plaintext does not linger in
freed pages of a disk-backed fallback.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from locker import journal as jn
from locker.errors import UsageError


@dataclass
class Holder:
    pid: int
    command: str
    paths: list[str]


def make_mount_dir(requested: str | None) -> tuple[Path, bool, str | None]:
    """(directory, created by us, warning). A given --dir must be missing or an empty directory."""
    if requested:
        path = Path(requested).absolute()
        created = False
        try:
            os.mkdir(path, 0o700)
            created = True
        except FileNotFoundError:
            raise UsageError(f"the parent of {path} does not exist") from None
        except FileExistsError:
            pass
        if not created:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                raise UsageError(f"{path} is not a directory of yours")
            if os.listdir(path):
                raise UsageError(f"{path} is not empty", hint="mount into a new or empty directory")
            os.chmod(path, 0o700)
        warning = None if jn.is_ram_backed(path) else f"{path} is not RAM-backed (tmpfs)"
        return path, created, warning
    base = jn.runtime_base()
    path = base.path / f"mnt-{secrets.token_hex(8)}"
    os.mkdir(path, 0o700)
    warning = None
    if not base.ram_backed or not jn.is_ram_backed(path):
        warning = f"no RAM-backed runtime directory; {path} is on disk"
    return path, True, warning


def find_holders(root: Path) -> list[Holder]:
    """Processes (other than this one) with a file or their working directory in `root`."""
    prefix = str(root).rstrip("/") + "/"
    holders = []
    for pid_name in os.listdir("/proc"):
        if not pid_name.isdigit() or int(pid_name) == os.getpid():
            continue
        paths = []
        with contextlib.suppress(OSError):
            cwd = os.readlink(f"/proc/{pid_name}/cwd")
            if cwd == str(root) or cwd.startswith(prefix):
                paths.append(cwd + " (working directory)")
        try:
            fds = os.listdir(f"/proc/{pid_name}/fd")
        except OSError:
            fds = []
        for fd in fds:
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid_name}/fd/{fd}")
                if target.startswith(prefix):
                    paths.append(target)
        if paths:
            pid = int(pid_name)
            holders.append(Holder(pid, jn.process_name(pid), sorted(set(paths))))
    return holders


def zero_file(path: Path) -> None:
    """Overwrite a regular file with zeros, in place, at its full size (never via a symlink)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size if stat.S_ISREG(os.fstat(fd).st_mode) else 0
            zeros = bytes(min(size, 1024 * 1024))
            done = 0
            while done < size:
                done += os.pwrite(fd, zeros[: size - done], done)
        finally:
            os.close(fd)


def wipe_tree(root: Path, remove_root: bool) -> int:
    """Zero every file under `root` (editor litter included), then unlink them all and remove
    the directories. On a disk the zeros are flushed before any block is freed."""
    if not os.path.isdir(root) or os.path.islink(root):
        return 0
    for dirpath, _, _ in os.walk(root, followlinks=False):
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o700)
    files = [Path(d, n) for d, _, names in os.walk(root, followlinks=False) for n in names]
    for path in files:
        zero_file(path)
    if files and not jn.is_ram_backed(root):
        os.sync()
    for dirpath, dirnames, filenames in os.walk(root, topdown=False, followlinks=False):
        for name in filenames:
            Path(dirpath, name).unlink()
        for name in dirnames:
            path = Path(dirpath, name)
            if path.is_symlink():
                path.unlink()
            else:
                path.rmdir()
    if remove_root:
        root.rmdir()
    return len(files)
