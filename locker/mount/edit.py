"""Editing one entry in $EDITOR (`locker edit NAME`, and the TUI's edit key).

The entry goes to a private 0600 file in a new mount directory under the RAM-backed runtime
base, recorded in the mount journal like a mount of that one file, so that `locker recover`
finds it after a crash. The editor runs; the result is saved only if its content changed; the
file is wiped (zeroed, unlinked) and the directory removed on every way out: a normal exit, an
editor that fails, SIGTERM, SIGHUP and `locker lock` (SIGUSR1). Ctrl-C belongs to the editor
while it runs (as with git): one that dies of it saves nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from locker.errors import LockerError, UsageError
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import runtime
from locker.mount import scan as sc
from locker.mount.editor import private_editor
from locker.store import safefs
from locker.vault import Vault

Editor = Callable[[Path], None]
STOP_SIGNALS = {
    signal.SIGTERM: "SIGTERM",
    signal.SIGHUP: "SIGHUP",
    signal.SIGUSR1: "locker lock",
}


class EditInterrupted(LockerError):
    """A signal stopped the edit; the file was wiped and nothing was saved."""


@dataclass
class EditResult:
    name: str
    changed: bool
    size: int


def editor_command(environ: dict[str, str] | None = None) -> str:
    """$VISUAL, else $EDITOR, else vi, checked to split as a shell would (`code --wait`)."""
    env = os.environ if environ is None else environ
    spec = env.get("VISUAL") or env.get("EDITOR") or "vi"
    try:
        words = shlex.split(spec)
    except ValueError:
        raise UsageError(f"cannot parse the editor command {spec!r} ($EDITOR)") from None
    if not words:
        raise UsageError("$EDITOR is empty", hint="set EDITOR to your editor, e.g. EDITOR=nano")
    return spec


def run_editor(path: Path, command: str | None = None) -> None:
    """Run the editor on `path` and wait (vim without viminfo or undo files: see
    `editor.private_editor`). A non-zero exit or death by a signal is an error (nothing is
    saved); a missing editor says which command it tried. A stop signal kills the editor, even
    one that lands while it is being started."""
    argv = private_editor(command or editor_command(), str(path))
    with _stop_signals_end_the_editor() as stop:
        try:
            stop.editor = subprocess.Popen(argv)
        except FileNotFoundError:
            raise UsageError(
                f"editor not found: {argv[0]}", hint="set EDITOR to an installed editor"
            ) from None
        if stop.reason:
            stop.editor.kill()
        status = stop.editor.wait()
    if stop.reason:
        raise EditInterrupted(f"interrupted by {stop.reason}; nothing was saved")
    if status < 0:
        raise LockerError(f"the editor was stopped by {signal.Signals(-status).name}")
    if status:
        raise LockerError(f"the editor exited with status {status}")


@dataclass
class _Stop:
    reason: str = ""
    editor: subprocess.Popen[bytes] | None = None


@contextlib.contextmanager
def _stop_signals_end_the_editor() -> Iterator[_Stop]:
    """While the editor runs, SIGINT reaches it and not us (a Python handler, unlike SIG_IGN,
    is reset to the default in the child); a stop signal is noted and kills the editor. The
    handler raises nothing: an exception inside `Popen()` would leave the editor running."""
    stop = _Stop()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.reason = stop.reason or STOP_SIGNALS.get(signal.Signals(signum), str(signum))
        if stop.editor is not None:
            stop.editor.kill()

    try:
        previous = {signal.SIGINT: signal.signal(signal.SIGINT, lambda s, f: None)}
        previous |= {sig: signal.signal(sig, on_stop) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread: leave the signals as they are
        previous = {}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def edit_entry(vault: Vault, name: str, editor: Editor, warn: Callable[[str], None]) -> EditResult:
    """Put `name` in a private file, run `editor` on it, save it into `vault` (opened for
    writing) if its content changed; always wipe it after, telling `warn` what the wipe could
    not do (a file not removed, or removed without being zeroed)."""
    vault.entry(name)  # NotFoundError before anything is made
    root, _, _ = mountdir.make_mount_dir(None)  # RAM-backed: no warning to give
    journal = jn.Journal(runtime.runtime_base().journal_dir)
    now = time.time()
    record = jn.Record.new(
        vault.path, root, started=now, idle_seconds=0.0, idle_deadline=now, hard_deadline=now
    )
    st = os.lstat(root)
    expect = (st.st_dev, st.st_ino)
    try:
        journal.write(record)
        root_fd = safefs.open_dir(root)
        try:
            safefs.write_file(root_fd, name, vault.chunks(name), durable=False)
        finally:
            os.close(root_fd)
        record.files = {name: sc.sha256_file(root / name)}
        record.state = jn.STATE_MOUNTED
        journal.write(record)
        editor(root / name)
        return _save_if_changed(vault, name, root / name, record.files[name])
    finally:
        for line in mountdir.wipe_tree(root, remove_root=True, expect=expect).warnings():
            warn(line)
        journal.remove(record.mount_id)


def _save_if_changed(vault: Vault, name: str, path: Path, before: str) -> EditResult:
    try:
        data, _ = sc.read_regular(path)
    except FileNotFoundError:
        raise LockerError(f"{name} was deleted in the editor; the entry is unchanged") from None
    if hashlib.sha256(data).hexdigest() == before:
        return EditResult(name, False, len(data))
    vault.add_bytes(name, data, force=True)
    vault.record("edit", (name,))
    vault.commit()
    return EditResult(name, True, len(data))
