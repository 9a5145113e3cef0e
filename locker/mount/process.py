"""The processes a mount deals with: whether a mount's owner is alive, who holds its files,
and hardening this process while secrets are in memory; its I/O counters for progress. Everything
comes from /proc.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple


def _proc_stat(pid: int) -> list[bytes]:
    """Fields 3.. of /proc/PID/stat (state first), or [] if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return []
    return data[data.rfind(b")") + 2 :].split()


def io_bytes() -> int:
    """Bytes this process has read and written through system calls so far (0 if unknown):
    what the CLI's progress bar and the TUI's export progress measure."""
    try:
        with open("/proc/self/io", "rb") as f:
            fields = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
        return int(fields[b"rchar"]) + int(fields[b"wchar"])
    except (OSError, KeyError, ValueError):
        return 0


def process_start(pid: int) -> str:
    """The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or ''."""
    fields = _proc_stat(pid)
    return fields[19].decode() if len(fields) > 19 else ""


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def is_running(pid: int, start: str, boot: str) -> bool:
    """True if `pid` is still the process that wrote the record (same boot, same start time)."""
    if boot and boot_id() and boot != boot_id():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _proc_stat(pid)
    if fields and fields[0] in (b"Z", b"X"):  # exited, not yet reaped by its parent
        return False
    now = fields[19].decode() if len(fields) > 19 else ""
    return not (start and now and now != start)


def is_stopped(pid: int) -> bool:
    """True if `pid` is stopped (Ctrl-Z, SIGSTOP, or stopped under a tracer)."""
    fields = _proc_stat(pid)
    return bool(fields) and fields[0] in (b"T", b"t")


def process_name(pid: int) -> str:
    """The command of `pid`, from /proc/PID/cmdline (else /proc/PID/comm)."""
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        if args:
            text = " ".join([os.path.basename(args[0]), *args[1:]])
            return text if len(text) <= 100 else text[:97] + "..."
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text(errors="replace").strip()
    return "?"


class Holder(NamedTuple):
    pid: int
    command: str
    paths: list[str]


class ExitWaiter:
    """Sleeps that end early when a process exits: a pidfd (Linux 5.3+) polled with the
    timeout, else a plain sleep. `locker lock` waits with it for the mount it signalled."""

    def __init__(self, pid: int) -> None:
        self._fd: int | None = None
        with contextlib.suppress(OSError, AttributeError):  # gone already, or no pidfd here
            self._fd = os.pidfd_open(pid)

    def wait(self, seconds: float) -> None:
        if self._fd is None:
            time.sleep(seconds)
            return
        import select

        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.poll(seconds * 1000)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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
            holders.append(Holder(pid, process_name(pid), sorted(set(paths))))
    return holders


def harden_process() -> None:
    """No core dumps and no ptrace by other users' processes while secrets are in memory."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_dumpable = 4
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)
