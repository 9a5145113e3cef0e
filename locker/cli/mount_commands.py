"""CLI handlers for `mount`, `lock`, `status` and `recover`, and the orphan notice every
command prints. The mount session itself lives in locker.mount.session; watchdog is imported only
when `mount` starts watching.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from locker.cli.commands import open_vault, passphrase
from locker.cli.prompts import warn
from locker.errors import EXIT_ERROR, EXIT_OK, LockerError, UsageError
from locker.know.facts import recogniser
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import recovery, sync, tracker
from locker.mount import runtime as rt
from locker.mount import scan as sc
from locker.mount import session as m
from locker.mount.process import harden_process
from locker.text import iso_time, plural
from locker.vault import Vault

LOCK_WAIT = 10.0  # how long `locker lock` waits for each mount to sync, wipe and say so
LOCK_POLL = 0.02
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, what: str) -> float:
    """'90', '90s', '5m', '1h30m', '2.5h' -> seconds (> 0)."""
    spec = text.strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd]?)", spec)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([smhd]?)", "", spec).strip():
        raise UsageError(
            f"{what} {text!r} is not a duration", hint="use e.g. 300, 90s, 5m, 8h, 1h30m"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"{what} must be more than zero")
    return seconds


def duration(seconds: float) -> str:
    """A time left that cannot be misread: '42s', '59m57s', '7h59m'."""
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m_, s_ = divmod(rest, 60)
    if h:
        return f"{h}h{m_:02d}m"
    return f"{m_}m{s_:02d}s" if m_ else f"{s_}s"


def _explicit_vault(args: argparse.Namespace) -> str | None:
    """The vault the user named (--vault or $LOCKER_VAULT), absolute; None means 'all of them'."""
    given = getattr(args, "vault", None) or os.environ.get("LOCKER_VAULT")
    return str(Path(given).resolve()) if given else None


def _select(found: list[jn.Found], args: argparse.Namespace) -> list[jn.Found]:
    wanted = _explicit_vault(args)
    return [f for f in found if wanted is None or f.record.vault == wanted]


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
        )
        if text != self.shown:
            self.shown = text
            self.write(f"\r\x1b[K{text}")

    def clear(self) -> None:
        if self.tty and self.shown:
            self.write("\r\x1b[K")
            self.shown = ""


def cmd_mount(args: argparse.Namespace) -> int:
    idle = parse_duration(str(args.idle), "--idle")
    max_time = parse_duration(str(args.max_time), "--max-time")
    vault = open_vault(args, write=True, purpose="mount")
    harden_process()
    with vault:
        root, created, warning = mountdir.make_mount_dir(args.dir)
        if warning:
            warn(f"{warning}: plaintext may reach the disk")
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
                session.start()
            except BaseException:
                session.abort()
                raise
            line.write(f"{root}\n")
            if not line.tty:
                line.event(
                    f"mounted {plural(len(session.known), 'file')}; locks after {idle:g} s idle, "
                    f"at {time.strftime('%H:%M:%S', time.localtime(session.record.hard_deadline))} at the latest"
                )
            reason = session.run(tick=lambda: line.status(session))
            line.clear()
            line.event(f"locking ({reason})")
            result = session.lock(reason)
        finally:
            restore()
    for holder in result.holders:
        with contextlib.suppress(OSError):  # no terminal any more after SIGHUP
            warn(_holder_text(holder.pid, holder.command, holder.paths))
    line.event(
        f"locked ({result.reason}): {lock_summary(session.saved, session.syncs, result.wiped)}"
    )
    return EXIT_OK


def lock_summary(saved: sync.SavedCounts, syncs: int, wiped: int) -> str:
    """'3 changed, 1 added, 1 deleted saved in 3 syncs; 5 files wiped'."""
    head = f"{saved.summary()} saved in {plural(syncs, 'sync')}" if saved.total else "no changes"
    return f"{head}; {plural(wiped, 'file')} wiped"


def _holder_text(pid: int, command: str, paths: list[str]) -> str:
    return (
        f"process {pid} ({command}) still had {', '.join(paths)} open; its files were wiped anyway"
    )


# -- lock and status -----------------------------------------------------------------------------


def cmd_lock(args: argparse.Namespace) -> int:
    """Signal every selected mount, then wait for each to report its outcome in the journal:
    'locked VAULT (DIR wiped)', the processes that still held files, or why it did not lock."""
    active = [f for f in _select(jn.all_mounts(), args) if f.running]
    if not active:
        print("nothing is mounted")
        return EXIT_OK
    unverifiable = [f for f in active if not f.record.proc_start and os.path.isdir("/proc")]
    for found in unverifiable:  # a record locker wrote has its start time: never signal blind
        warn(f"not signalling PID {found.record.pid}: its journal record cannot be verified")
    active = [f for f in active if f not in unverifiable]
    for found in active:
        with contextlib.suppress(ProcessLookupError):
            os.kill(found.record.pid, m.LOCK_SIGNAL)
    failed = sum(not _await_lock(f) for f in active)
    return EXIT_ERROR if failed or unverifiable else EXIT_OK


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
        "state": ("orphaned" if not found.running else r.state),
        "since": iso_time(r.started),
        "idle_seconds": r.idle_seconds,
        "idle_deadline": iso_time(r.idle_deadline),
        "hard_deadline": iso_time(r.hard_deadline),
        "files": len(r.files),
    }


def cmd_status(args: argparse.Namespace) -> int:
    found = _select(jn.all_mounts(), args)
    if args.json:
        print(json.dumps([_status_row(f) for f in found], indent=2))
        return EXIT_OK
    if not found:
        print("nothing is mounted")
        return EXIT_OK
    now = time.time()
    for f in found:
        r = f.record
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
        if not f.running:
            print(f"{r.vault}: ORPHANED mount at {r.dir} (PID {r.pid} is gone) since {since}")
            continue
        print(f"{r.vault}: mounted at {r.dir} by PID {r.pid} since {since}")
        print(
            f"  locks in {duration(r.idle_deadline - now)} if idle, "
            f"in {duration(r.hard_deadline - now)} at the latest"
        )
    return EXIT_OK


# -- recover -------------------------------------------------------------------------------------


def _ask(question: str) -> str:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower()


def cmd_recover(args: argparse.Namespace) -> int:
    if args.yes and args.discard:
        raise UsageError("--yes and --discard cannot be used together")
    left = _select(jn.orphans(), args)
    if not left:
        others = jn.orphans()
        print("nothing to recover")
        if others:
            print(f"({plural(len(others), 'orphaned mount')} of other vaults: run without --vault)")
        return EXIT_OK
    harden_process()
    status = EXIT_OK
    for found in left:
        status = max(status, _recover_one(found, args))
    return status


def _recover_one(found: jn.Found, args: argparse.Namespace) -> int:
    r = found.record
    root = Path(r.dir)
    print(f"orphaned mount of {r.vault} at {r.dir} (PID {r.pid}, since {iso_time(r.started)})")
    if not os.path.lexists(root):
        print("  its directory is gone; nothing to recover")
        found.journal.remove(r.mount_id)
        return EXIT_OK
    try:
        st = jn.check_mount_dir(r)
    except (LockerError, OSError) as exc:
        sys.stderr.write(
            f"locker: error: refusing to recover or wipe {r.dir}: {exc}\n"
            f"locker: hint: if this record is not yours, remove "
            f"{found.journal.path_of(r.mount_id)}\n"
        )
        return EXIT_ERROR
    expect = (st.st_dev, st.st_ino)
    if r.state == jn.STATE_WIPING:
        # The final sync was committed before the wipe began: nothing here is to be imported
        # (a file already zeroed would otherwise overwrite its entry with zeros).
        print("  it stopped while wiping, after its files were saved into the vault")
        wiped = mountdir.wipe_tree(root, remove_root=r.created_dir, expect=expect)
        found.journal.remove(r.mount_id)
        print(f"  finished the wipe: wiped {plural(wiped, 'file')} and removed {r.dir}")
        return EXIT_OK
    if r.state == jn.STATE_MATERIALISING:
        changes = sc.Changes()
        print("  it stopped while materialising, before anyone could change a file")
        scan = sc.scan_tree(root, r.files)
        left = sorted([*scan.files, *scan.skipped])
        for name in left:
            print(f"  holds    {name}")
    else:
        changes = sc.diff(root, r.files)
        for text in changes.lines():
            print(f"  {text}")
        if not changes:
            print("  no changes since the last sync")
    mode = "yes" if args.yes else "discard" if args.discard else None
    if r.state == jn.STATE_MATERIALISING and left and mode is None:
        if not sys.stdin.isatty():
            sys.stderr.write(
                "locker: error: the directory is not empty; it is wiped only on request\n"
                "locker: hint: 'locker recover --discard' (or --yes) wipes it\n"
            )
            return EXIT_ERROR
        if _ask("wipe these files [y/N]? ") not in ("y", "yes"):
            print("  left as it is")
            return EXIT_OK
    if changes and mode != "discard":
        if mode is None and not sys.stdin.isatty():
            if getattr(args, "passphrase_file", None):  # a script can preview the conflicts
                with Vault.open(Path(r.vault), passphrase(args)) as v:
                    _show_conflicts(recovery.plan_recovery(v, r, changes))
            sys.stderr.write(
                "locker: error: the mount directory holds changes that are not in the vault\n"
                "locker: hint: 'locker recover --yes' saves them into the vault, "
                "'locker recover --discard' drops them\n"
            )
            return EXIT_ERROR
        with Vault.open(Path(r.vault), passphrase(args), write=True, purpose="recover") as v:
            v.recogniser = recogniser()
            plan = recovery.plan_recovery(v, r, changes)
            _show_conflicts(plan)
            if mode is None:
                answer = _ask(
                    "save these changes into the vault [y], discard them [d], or leave [N]? "
                )
                mode = {"y": "yes", "yes": "yes", "d": "discard", "discard": "discard"}.get(answer)
                if mode is None:
                    print("  left as it is")
                    return EXIT_OK
            if mode == "yes":
                recovery.recover(v, r, changes, plan)
                n = len(plan.conflicts)
                note = f"; {plural(n, 'conflict')} (see the warnings)" if n else ""
                print(f"  saved into {r.vault}: {changes.summary()}{note}")
                for conflict in plan.conflicts:
                    warn(conflict.message())
    if changes and mode == "discard":
        print(f"  discarded: {changes.summary()}")
    wiped = mountdir.wipe_tree(root, remove_root=r.created_dir, expect=expect)
    found.journal.remove(r.mount_id)
    print(f"  wiped {plural(wiped, 'file')} and removed {r.dir}")
    return EXIT_OK


def _show_conflicts(plan: recovery.RecoveryPlan) -> None:
    """Before anything is saved: where the vault changed too, and what will be done instead."""
    for conflict in plan.conflicts:
        print(f"  conflict {conflict.message(done=False)}")
