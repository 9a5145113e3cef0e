"""CLI handler for `mount` (`lock` and `status` are in lock_commands.py). The mount session
itself lives in locker.mount.session; watchdog is imported only when `mount` starts watching.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from locker.cli.commands import open_vault
from locker.cli.durations import parse_duration
from locker.cli.lock_commands import holder_text
from locker.cli.progress import Progress
from locker.cli.prompts import warn
from locker.errors import EXIT_ERROR, EXIT_OK
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import runtime as rt
from locker.mount import session as m
from locker.mount import sync, tracker
from locker.mount.drive_watch import mount_note
from locker.mount.locking import LockResult
from locker.mount.process import harden_process
from locker.text import duration, plural

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
    session: m.Session,
    ready: Callable[[], None] | None = None,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Start the mount, with a bar on stderr (a terminal) while a large vault is written out."""
    total = sum(entry.size for entry in session.vault.entries())
    with Progress("mounting", total, stream=stream, counter=None, clock=clock) as bar:
        session.start(progress=bar.advance, ready=ready)


def cmd_mount(args: argparse.Namespace) -> int:
    # The process ends when the mount does, and nothing it made needs collecting then: frozen
    # at exit, its heap is spared the interpreter's final garbage collections (10 to 20 ms
    # for the mount's 230 modules, between the wipe and the exit `locker lock` waits for).
    atexit.register(gc.freeze)
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
            announced = False

            def ready() -> None:
                nonlocal announced
                line.write(f"{root}\n")
                announced = True

            try:
                start_session(session, ready)
            except BaseException:
                if announced:  # files may have been changed: lock (sync, then wipe)
                    session.lock(m.REASON_NOT_RECORDED)
                else:
                    session.abort()
                raise
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
            warn(holder_text(holder.pid, holder.command, holder.paths))
        summary = lock_summary(session.saved, session.syncs, result.wiped, len(result.kept))
        line.event(f"locked ({result.reason}): {summary}")
        if session.start_error:
            sys.stderr.write(f"locker: error: {session.start_error}\n")
            if session.start_hint:
                sys.stderr.write(f"locker: hint: {session.start_hint}\n")
            _report_left(root, result)
            return EXIT_ERROR
        return _report_left(root, result)
    return EXIT_ERROR if result.kept or result.not_wiped or result.unzeroed else EXIT_OK


def _report_left(root: Path, result: LockResult) -> int:
    """What the lock left in the directory, and why: files the vault could not take (kept for
    `locker recover`) and names the wipe could not remove; and the files it deleted without
    zeroing them (exit 1: the lock is done, but the disk may hold their content)."""
    if result.unzeroed:
        warn(result.unzeroed)
    if not result.kept and not result.not_wiped:
        return EXIT_ERROR if result.unzeroed else EXIT_OK
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
