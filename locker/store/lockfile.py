"""The one-writer lock: an exclusive flock on `<vault>.lock`, which records its holder (pid,
host, purpose) so that a second writer can say who is in the way; and the names of the
files kept beside a vault (its lock, its save's temp file), short enough for any vault name."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path

from locker.errors import BusyError, LockerError

NAME_MAX = 255  # bytes in one file name (Linux file systems)
_DIGEST_HEX = 16
_PROC_LOCKS = Path("/proc/locks")  # the kernel's table of file locks (tests give their own)


def stem_beside(path: Path, added: int) -> str:
    """`path`'s name, to be used in a sibling's name with `added` more bytes around it.

    Where the sibling's name would pass NAME_MAX (a vault name of 238+ bytes had a temp file
    name that no file system takes, so it could never be saved), the name's first bytes and
    "~" and 16 hex digits of its SHA-256 stand for it: distinct for distinct vault names.
    """
    raw = os.fsencode(path.name)
    if len(raw) + added <= NAME_MAX:
        return path.name
    digest = hashlib.sha256(raw).hexdigest()[:_DIGEST_HEX]
    return os.fsdecode(raw[: NAME_MAX - added - 1 - _DIGEST_HEX]) + "~" + digest


def lock_path(path: Path) -> Path:
    return path.with_name(stem_beside(path, len(".lock")) + ".lock")


class WriterLock:
    """An exclusive flock on `<vault>.lock`: the holder is the vault's one writer."""

    def __init__(self, path: Path, purpose: str = "write") -> None:
        self.path = lock_path(path)
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LockerError(f"cannot create lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _wait_for_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise busy_error(holder) from None
            raise LockerError(f"cannot lock {self.path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": os.uname().nodename, "purpose": self.purpose}
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def check_free(self) -> None:
        """Raise BusyError now if another process holds the lock (a courtesy pre-check).

        Reads /proc/locks instead of trying the lock: even a brief trial lock could make a
        real writer starting at that instant fail. Where /proc/locks is missing, says nothing.
        An empty lock file is free without asking /proc/locks (whose first read costs 5 to 15
        ms on some kernels): a holder records itself just after it takes the lock, and
        empties the file as it lets go; one killed leaves its record, and /proc/locks decides.
        """
        try:
            st = os.stat(self.path, follow_symlinks=False)
            if st.st_size == 0:
                return
            with open(_PROC_LOCKS, encoding="ascii", errors="replace") as f:
                table = f.read()
        except OSError:
            return
        inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        for line in table.splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
                try:
                    fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                except OSError:
                    return
                try:
                    holder = _wait_for_holder(fd)
                finally:
                    os.close(fd)
                if "pid" not in holder:  # it let go meanwhile; /proc/locks still names it
                    holder = {"pid": fields[4], "host": os.uname().nodename}
                raise busy_error(holder)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # no later contender may read a stale holder
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _wait_for_holder(fd: int) -> dict[str, object]:
    """The holder records itself just after it takes the lock: give it up to 200 ms."""
    holder = _read_holder(fd)
    for _ in range(200):
        if "pid" in holder:
            break
        time.sleep(0.001)
        holder = _read_holder(fd)
    return holder


def _read_holder(fd: int) -> dict[str, object]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def busy_error(holder: dict[str, object]) -> BusyError:
    pid, host = holder.get("pid", "?"), holder.get("host", "?")
    if holder.get("purpose") == "mount":
        return BusyError(
            f"vault is mounted by PID {pid} on {host}",
            hint="change the files in the mount directory instead, or run 'locker lock' first",
        )
    return BusyError(
        f"vault is in use by PID {pid} on {host}",
        hint="wait for that command to finish and try again",
    )


def lock_vault_file(fd: int, path: Path) -> None:
    """Hold an exclusive flock on the open vault file itself, for as long as `fd` is open.

    The lock file is per name, and a hard link gives the same vault a second name: this lock
    is per (device, inode), so two writers can never hold one vault file through two names.
    Where `flock` is not supported (some network file systems) the name lock and the check
    before the rename (`container.write_container`'s `expect`) are what remain.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise BusyError(
                f"{path} is in use under another name (a hard link to the same file)",
                hint="wait for that command or mount to finish and try again",
            ) from None
        if exc.errno in (errno.ENOLCK, errno.EBADF, errno.EOPNOTSUPP, errno.EINVAL):
            return
        raise LockerError(f"cannot lock {path}: {exc.strerror}") from None
