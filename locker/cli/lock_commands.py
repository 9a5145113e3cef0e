"""CLI handlers for `lock` and `status`: they read the mount journal and signal the mount
process, and import nothing of the vault, the crypto or watchdog (a `locker lock` is timed from
its exec until the mount has gone, so its start-up counts).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from locker.cli.prompts import warn
from locker.errors import EXIT_ERROR, EXIT_OK
from locker.mount import journal as jn
from locker.mount import process
from locker.text import duration, iso_time, plural

LOCK_WAIT = 10.0  # how long `locker lock` waits for each mount to sync, wipe and say so
LOCK_POLL = 0.02


def _explicit_vault(args: argparse.Namespace) -> str | None:
    """The vault the user named (--vault or $LOCKER_VAULT), absolute; None means 'all of them'."""
    given = getattr(args, "vault", None) or os.environ.get("LOCKER_VAULT")
    return str(Path(given).resolve()) if given else None


def _select(found: list[jn.Found], args: argparse.Namespace) -> list[jn.Found]:
    wanted = _explicit_vault(args)
    return [f for f in found if wanted is None or f.record.vault == wanted]


def _nothing_mounted(args: argparse.Namespace) -> str:
    wanted = _explicit_vault(args)
    return f"nothing is mounted for {wanted}" if wanted else "nothing is mounted"


def holder_text(pid: int, command: str, paths: list[str]) -> str:
    return (
        f"process {pid} ({command}) still had {', '.join(paths)} open; its files were wiped anyway"
    )


# -- lock and status -----------------------------------------------------------------------------


def cmd_lock(args: argparse.Namespace) -> int:
    """Signal every selected mount, then wait for each to report its outcome in the journal:
    'locked VAULT (DIR wiped)', the processes that still held files, or why it did not lock."""
    # A shell that runs `locker lock` from inside the mount directory holds it; this process
    # does not need to, and must not be named as a holder of the files it is locking.
    os.chdir("/")
    active = [f for f in _select(jn.all_mounts(), args) if f.running]
    if not active:
        print(_nothing_mounted(args))
        return EXIT_OK
    unverifiable = [f for f in active if not f.record.proc_start and os.path.isdir("/proc")]
    for found in unverifiable:  # a record locker wrote has its start time: never signal blind
        warn(f"not signalling PID {found.record.pid}: its journal record cannot be verified")
    active = [f for f in active if f not in unverifiable]
    for found in active:
        with contextlib.suppress(ProcessLookupError):
            os.kill(found.record.pid, jn.LOCK_SIGNAL)
            _continue_if_stopped(found.record)
    failed = sum(not _await_lock(f) for f in active)
    return EXIT_ERROR if failed or unverifiable else EXIT_OK


def _continue_if_stopped(r: jn.Record) -> None:
    """A stopped mount (SIGSTOP; it ignores Ctrl-Z) cannot lock: continue it, and say so."""
    if not process.is_stopped(r.pid):
        return
    try:
        os.kill(r.pid, signal.SIGCONT)
        warn(f"the mount at {r.dir} (PID {r.pid}) was stopped; sent it SIGCONT so that it locks")
    except PermissionError:
        warn(f"the mount at {r.dir} (PID {r.pid}) is stopped and not ours to continue")


def _await_lock(found: jn.Found) -> bool:
    """Wait (bounded) for one mount to lock; print the outcome. True if it locked."""
    waiter = process.ExitWaiter(found.record.pid)  # the poll below ends when the mount exits
    try:
        return _await(found, waiter)
    finally:
        waiter.close()


def _await(found: jn.Found, waiter: process.ExitWaiter) -> bool:
    r = found.record
    last = r
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        running = r.running()  # first: once the process is gone, the record read next is final
        current = found.journal.read(r.mount_id)
        if current is not None:
            last = current
        if current is None or current.state == jn.STATE_LOCKED or not running:
            break
        if time.monotonic() >= deadline:
            doing = "still saving and wiping" if last.state == jn.STATE_LOCKING else "not locking"
            sys.stderr.write(
                f"locker: error: the mount of {r.vault} at {r.dir} (PID {r.pid}) did not lock "
                f"within {LOCK_WAIT:g} s; it is {doing}\n"
                f"locker: hint: run 'locker lock' again, or 'kill {r.pid}' (it locks on SIGTERM)\n"
            )
            return False
        waiter.wait(LOCK_POLL)
    if current is not None and current.state == jn.STATE_WIPING and (current.kept or current.error):
        kept = ", ".join(repr(n) for n in current.kept)
        why = f"kept {plural(len(current.kept), 'file')} it could not save: {kept}" if kept else ""
        sys.stderr.write(
            f"locker: error: the mount of {r.vault} at {r.dir} (PID {r.pid}) locked but "
            f"{why or current.error}\n"
            "locker: hint: run 'locker recover' to save or discard what is left\n"
        )
        return False
    if current is not None and current.state == jn.STATE_WIPING:
        sys.stderr.write(
            f"locker: error: the mount of {r.vault} at {r.dir} (PID {r.pid}) stopped while "
            "wiping; its files were saved into the vault\n"
            "locker: hint: run 'locker recover' to finish the wipe\n"
        )
        return False
    if current is not None and current.state != jn.STATE_LOCKED:
        # The process is gone and its record stays: it stopped before wiping.
        why = f": {current.error}" if current.error else ""
        sys.stderr.write(
            f"locker: error: the mount of {r.vault} at {r.dir} (PID {r.pid}) stopped without "
            f"wiping its files{why}\n"
            "locker: hint: run 'locker recover' to save or discard them\n"
        )
        return False
    if current is not None:  # the outcome the mount left for us
        found.journal.remove(r.mount_id)
    for h in last.holders:
        with contextlib.suppress(KeyError, TypeError):
            warn(holder_text(int(h["pid"]), str(h["command"]), [str(p) for p in h["paths"]]))
    print(f"locked {r.vault} ({r.dir} wiped)")
    if current is not None and current.error:  # locked, but a file was not zeroed first
        warn(current.error)
        return False
    return True


def _status_row(found: jn.Found) -> dict[str, Any]:
    r = found.record
    return {
        "vault": r.vault,
        "dir": r.dir,
        "pid": r.pid,
        "state": _state(found),
        "since": iso_time(r.started),
        "idle_seconds": r.idle_seconds,
        "idle_deadline": iso_time(r.idle_deadline) if r.has_deadlines() else None,
        "hard_deadline": iso_time(r.hard_deadline) if r.has_deadlines() else None,
        "files": len(r.files),
    }


def _state(found: jn.Found) -> str:
    if not found.running:
        return "orphaned"
    return "stopped" if process.is_stopped(found.record.pid) else found.record.state


def cmd_status(args: argparse.Namespace) -> int:
    found = _select(jn.all_mounts(), args)
    if args.json:
        print(json.dumps([_status_row(f) for f in found], indent=2))
        return EXIT_OK
    if not found:
        print(_nothing_mounted(args))
        return EXIT_OK
    now = time.time()
    for f in found:
        r = f.record
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
        if not f.running:
            print(f"{r.vault}: ORPHANED mount at {r.dir} (PID {r.pid} is gone) since {since}")
            continue
        print(f"{r.vault}: mounted at {r.dir} by PID {r.pid} since {since}")
        if process.is_stopped(r.pid):
            print(
                f"  STOPPED: it cannot sync or lock until continued ('kill -CONT {r.pid}'); "
                "'locker lock' continues and locks it"
            )
        if not r.has_deadlines():
            print("  no deadline: wiped when its command ends ('locker lock' ends it now)")
            continue
        print(
            f"  locks in {duration(r.idle_deadline - now)} if idle, "
            f"in {duration(r.hard_deadline - now)} at the latest"
        )
    return EXIT_OK
