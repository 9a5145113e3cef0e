"""CLI handlers for `mount`, `lock`, `status` and `recover`, and the orphan notice every
command prints. The mount session itself lives in locker.mount; watchdog is imported only
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

from locker import journal as jn
from locker import mount as m
from locker import mountdir
from locker.commands import passphrase, vault_path
from locker.errors import EXIT_ERROR, EXIT_OK, NotFoundError, UsageError
from locker.prompts import harden_process, warn
from locker.vault import Vault

LOCK_WAIT = 30.0
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


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


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
            f"locks in {_clock(left)} ({'idle' if which == m.REASON_IDLE else 'max time'})"
            f" · {session.synced_files} synced · Ctrl-C or 'locker lock' locks now"
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
    path = vault_path(args)
    if not os.path.lexists(path):
        raise NotFoundError(
            f"no vault at {path}", hint="create one with 'locker init' or pass --vault PATH"
        )
    vault = Vault.open(path, passphrase(args), write=True, purpose="mount")
    harden_process()
    with vault:
        root, created, warning = mountdir.make_mount_dir(args.dir)
        if warning:
            warn(f"{warning}: plaintext may reach the disk")
        line = StatusLine(sys.stdout)
        base = jn.runtime_base()
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
                    f"mounted {len(session.known)} files; locks after {idle:g} s idle, "
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
            warn(
                f"process {holder.pid} ({holder.command}) still had "
                f"{', '.join(holder.paths)} open; its files were wiped anyway"
            )
    line.event(
        f"locked ({result.reason}): {session.synced_files} file changes saved in "
        f"{session.syncs} syncs, {result.wiped} files wiped"
    )
    return EXIT_OK


# -- lock and status -----------------------------------------------------------------------------


def cmd_lock(args: argparse.Namespace) -> int:
    active = [f for f in _select(jn.all_mounts(), args) if f.running]
    if not active:
        print("nothing is mounted")
        return EXIT_OK
    for found in active:
        os.kill(found.record.pid, m.LOCK_SIGNAL)
    failed = 0
    for found in active:
        deadline = time.monotonic() + LOCK_WAIT
        path = found.journal.path_of(found.record.mount_id)
        while time.monotonic() < deadline and path.exists() and found.record.running():
            time.sleep(0.05)
        if not path.exists():
            print(f"locked {found.record.dir} ({found.record.vault})")
        elif found.record.running():
            failed += 1
            sys.stderr.write(
                f"locker: error: mount {found.record.dir} (PID {found.record.pid}) "
                f"did not lock within {LOCK_WAIT:g} s\n"
            )
        else:
            failed += 1
            sys.stderr.write(
                f"locker: error: mount {found.record.dir} stopped without wiping its files\n"
                "locker: hint: run 'locker recover'\n"
            )
    return EXIT_ERROR if failed else EXIT_OK


def _status_row(found: jn.Found) -> dict[str, Any]:
    r = found.record
    return {
        "vault": r.vault,
        "dir": r.dir,
        "pid": r.pid,
        "state": ("orphaned" if not found.running else r.state),
        "since": _iso(r.started),
        "idle_seconds": r.idle_seconds,
        "idle_deadline": _iso(r.idle_deadline),
        "hard_deadline": _iso(r.hard_deadline),
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
            f"  locks in {_clock(r.idle_deadline - now)} if idle, "
            f"in {_clock(r.hard_deadline - now)} at the latest"
        )
    return EXIT_OK


# -- recover -------------------------------------------------------------------------------------


def orphan_notice() -> None:
    """One warning line (and a hint) if a mount was left behind by a dead process."""
    left = jn.orphans()
    if not left:
        return
    if len(left) == 1:
        r = left[0].record
        warn(f"a mount of {r.vault} at {r.dir} was left behind by PID {r.pid}, which is gone")
    else:
        warn(f"{len(left)} mounts were left behind by processes that are gone")
    sys.stderr.write("locker: hint: run 'locker recover' to save or discard their files\n")


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
            print(f"({len(others)} orphaned mount(s) of other vaults: run without --vault)")
        return EXIT_OK
    harden_process()
    status = EXIT_OK
    for found in left:
        status = max(status, _recover_one(found, args))
    return status


def _recover_one(found: jn.Found, args: argparse.Namespace) -> int:
    r = found.record
    root = Path(r.dir)
    print(f"orphaned mount of {r.vault} at {r.dir} (PID {r.pid}, since {_iso(r.started)})")
    if not os.path.isdir(root) or os.path.islink(root):
        print("  its directory is gone; nothing to recover")
        found.journal.remove(r.mount_id)
        return EXIT_OK
    if r.state == jn.STATE_MATERIALISING:
        changes = jn.Changes()
        print("  it stopped while materialising, before anyone could change a file")
    else:
        changes = jn.diff(root, r.files)
        for text in changes.lines():
            print(f"  {text}")
        if not changes:
            print("  no changes since the last sync")
    mode = "yes" if args.yes else "discard" if args.discard else None
    if changes and mode is None:
        if not sys.stdin.isatty():
            sys.stderr.write(
                "locker: error: the mount directory holds changes that are not in the vault\n"
                "locker: hint: 'locker recover --yes' saves them into the vault, "
                "'locker recover --discard' drops them\n"
            )
            return EXIT_ERROR
        answer = _ask("save these changes into the vault [y], discard them [d], or leave [N]? ")
        mode = {"y": "yes", "yes": "yes", "d": "discard", "discard": "discard"}.get(answer)
        if mode is None:
            print("  left as it is")
            return EXIT_OK
    if changes and mode == "yes":
        vault_file = Path(r.vault)
        with Vault.open(vault_file, passphrase(args), write=True, purpose="recover") as v:
            m.recover(v, r, changes)
        print(f"  saved into {r.vault}: {changes.summary()}")
    elif changes:
        print(f"  discarded: {changes.summary()}")
    wiped = mountdir.wipe_tree(root, remove_root=r.created_dir)
    found.journal.remove(r.mount_id)
    print(f"  wiped {wiped} files and removed {r.dir}")
    return EXIT_OK
