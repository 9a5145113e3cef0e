"""CLI handlers for `mount`, `lock`, `status` and `recover`, and the orphan notice every
command prints. The mount session itself lives in locker.mount.session; watchdog is imported only
when `mount` starts watching.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from locker.cli.commands import open_vault
from locker.cli.durations import parse_duration
from locker.cli.progress import Progress
from locker.cli.prompts import warn
from locker.errors import EXIT_ERROR, EXIT_OK
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import process, sync, tracker
from locker.mount import runtime as rt
from locker.mount import session as m
from locker.mount.drive_watch import mount_note
from locker.mount.locking import LockResult
from locker.mount.process import harden_process
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


# -- mount ---------------------------------------------------------------------------------------


class StatusLine:
    """First line: the directory. Then a live status line on a terminal, event lines otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.shown = ""

    def write(self, text: str) -> None:
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):  # the terminal went away (SIGHUP): keep locking
            pass

    def event(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        if self.tty:
            self.write(f"\r\x1b[K{stamp} {message}\n{self.shown}")
        else:
            self.write(f"{stamp} {message}\n")

    def status(self, session: m.Session) -> None:
        if not self.tty:
            return
        left, which = session.left()
        text = (
            f"locks in {duration(left)} ({'idle' if which == tracker.REASON_IDLE else 'max time'})"
            f" · {session.saved.total} saved · Ctrl-C or 'locker lock' locks now"
            " (Ctrl-Z is ignored)"
        )
        if text != self.shown:
            self.shown = text
            self.write(f"\r\x1b[K{text}")

    def clear(self) -> None:
        if self.tty and self.shown:
            self.write("\r\x1b[K")
            self.shown = ""


def start_session(
    session: m.Session, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic
) -> None:
    """Start the mount, with a bar on stderr (a terminal) while a large vault is written out."""
    total = sum(entry.size for entry in session.vault.entries())
    with Progress("mounting", total, stream=stream, counter=None, clock=clock) as bar:
        session.start(progress=bar.advance)


def cmd_mount(args: argparse.Namespace) -> int:
    idle = parse_duration(str(args.idle), "--idle")
    max_time = parse_duration(str(args.max_time), "--max-time")
    vault = open_vault(args, write=True, purpose="mount")
    harden_process()
    with vault:
        note = mount_note(vault.path, os.path.getsize(vault.path))
        if note:
            sys.stderr.write(f"locker: note: {note}\n")
        root, created, warning = mountdir.make_mount_dir(args.dir)
        if warning:
            warn(warning)
        line = StatusLine(sys.stdout)
        base = rt.runtime_base()
        session = m.Session(
            vault,
            root,
            journal=jn.Journal(base.journal_dir),
            created_dir=created,
            idle=idle,
            max_time=max_time,
            notify=line.event,
        )
        restore = m.install_signal_handlers(session)
        try:
            try:
                start_session(session)
            except BaseException:
                session.abort()
                raise
            line.write(f"{root}\n")
            if not line.tty:
                line.event(
                    f"mounted {plural(len(session.known), 'file')}; locks after {idle:g} s idle, "
                    f"at {time.strftime('%H:%M:%S', time.localtime(session.record.hard_deadline))} at the latest; "
                    "Ctrl-Z is ignored"
                )
            reason = session.run(tick=lambda: line.status(session))
            line.clear()
            line.event(f"locking ({reason})")
            result = session.lock(reason)
        finally:
            restore()
    with contextlib.suppress(OSError):  # no terminal any more after SIGHUP
        for holder in result.holders:
            warn(_holder_text(holder.pid, holder.command, holder.paths))
        summary = lock_summary(session.saved, session.syncs, result.wiped, len(result.kept))
        line.event(f"locked ({result.reason}): {summary}")
        return _report_left(root, result)
    return EXIT_ERROR if result.kept or result.not_wiped else EXIT_OK


def _report_left(root: Path, result: LockResult) -> int:
    """What the lock left in the directory, and why: files the vault could not take (kept for
    `locker recover`) and names the wipe could not remove."""
    if not result.kept and not result.not_wiped:
        return EXIT_OK
    if result.kept:
        names = ", ".join(f"{n!r} ({why})" for n, why in sorted(result.kept.items()))
        sys.stderr.write(
            f"locker: error: {plural(len(result.kept), 'file')} in {root} could not be saved and "
            f"{'were' if len(result.kept) > 1 else 'was'} kept: {names}\n"
        )
    if result.not_wiped:
        sys.stderr.write(f"locker: error: could not wipe {'; '.join(result.not_wiped)}\n")
    sys.stderr.write(
        "locker: hint: run 'locker recover' to save them (under valid names) or discard them\n"
    )
    return EXIT_ERROR


def lock_summary(saved: sync.SavedCounts, syncs: int, wiped: int, kept: int = 0) -> str:
    """'3 changed, 1 added, 1 deleted saved in 3 syncs; 5 files wiped' (and '; 1 file kept
    unsaved' when the vault could not take one)."""
    head = f"{saved.summary()} saved in {plural(syncs, 'sync')}" if saved.total else "no changes"
    tail = f"; {plural(kept, 'file')} kept unsaved" if kept else ""
    return f"{head}; {plural(wiped, 'file')} wiped{tail}"


def _holder_text(pid: int, command: str, paths: list[str]) -> str:
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
            os.kill(found.record.pid, m.LOCK_SIGNAL)
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
        time.sleep(LOCK_POLL)
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
            warn(_holder_text(int(h["pid"]), str(h["command"]), [str(p) for p in h["paths"]]))
    print(f"locked {r.vault} ({r.dir} wiped)")
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
