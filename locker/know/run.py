"""`locker run`: a child process with secrets in its environment and, for `--file`, in a
private 0700 directory in RAM that is wiped when the child exits or locker is signalled.

The directory is a small mount: made where mounts are made (never on disk), recorded in the
mount journal with the hash of every file, so that after a `kill -9` the next locker warns and
`locker recover` wipes it (or saves back a file the child changed). Signals locker receives
are passed on to the child, except those ignored when locker started (`nohup` ignores SIGHUP),
which stay ignored for both; the child's exit status is locker's (128 + N for signal N).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from locker.errors import LockerError, UsageError
from locker.know.textfiles import parse_env
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import runtime
from locker.store import safefs
from locker.vault import Vault

_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FORWARDED = (
    signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR2, signal.SIGWINCH,
)  # fmt: skip
LOCK_SIGNAL = signal.SIGUSR1  # what `locker lock` sends: the run ends (the child gets SIGTERM)


@dataclass(frozen=True)
class FileSpec:
    entry: str
    var: str


def parse_file_spec(text: str) -> FileSpec:
    entry, sep, var = text.rpartition(":")
    if not sep or not entry or not _VAR.match(var):
        raise UsageError(
            f"--file takes NAME:VAR (an entry and an environment variable), not {text!r}"
        )
    return FileSpec(entry, var)


def env_from_entry(vault: Vault, name: str) -> dict[str, str]:
    """The variables of an env entry, in python-dotenv's dialect (no `${VAR}` expansion)."""
    data = vault.read_bytes(name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LockerError(f"{name} is not UTF-8 text, so not an env file") from None
    values = parse_env(text)
    if values is None:
        raise LockerError(
            f"{name} is not an env file (a line is neither NAME=value, a comment nor blank)",
            hint="the dialect is python-dotenv's: export, quotes, multi-line quoted values, #",
        )
    for key in values:
        if not _VAR.match(key):
            raise LockerError(f"{name}: {key!r} is not a valid environment variable name")
    return {k: v for k, v in values.items() if v is not None}


class RunDir:
    """The private directory of one run, journalled like a mount."""

    def __init__(self, vault_path: Path) -> None:
        root, created, _ = mountdir.make_mount_dir(None)  # RAM-backed, 0700, never on disk
        self.root = root
        self.journal = jn.Journal(runtime.runtime_base().journal_dir)
        now = time.time()
        far = now + 100 * 365 * 86400.0  # no idle or hard deadline: the child decides
        self.record = jn.Record.new(
            vault_path,
            root,
            started=now,
            idle_seconds=0.0,
            idle_deadline=far,
            hard_deadline=far,
            created_dir=created,
        )
        st = os.lstat(root)
        self._id = (st.st_dev, st.st_ino)
        self.journal.write(self.record)

    def materialise(self, vault: Vault, names: list[str]) -> dict[str, Path]:
        """Write each entry under its own name; returns name -> path."""
        dir_fd = safefs.open_dir(self.root)
        try:
            for name in names:
                digest = hashlib.sha256()
                safefs.write_file(dir_fd, name, _hashing(vault, name, digest), durable=False)
                self.record.files[name] = digest.hexdigest()
        finally:
            os.close(dir_fd)
        self.record.state = jn.STATE_MOUNTED
        self.journal.write(self.record)
        return {n: self.root / n for n in names}

    def wipe(self) -> list[str]:
        """Wipe the files; what the wipe could not do (a name not removed, files removed
        without being zeroed), for the user."""
        self.record.state = jn.STATE_WIPING
        self.journal.write(self.record)
        wiped = mountdir.wipe_tree(self.root, remove_root=self.record.created_dir, expect=self._id)
        self.journal.remove(self.record.mount_id)
        return wiped.warnings()


def _hashing(vault: Vault, name: str, digest: hashlib._Hash) -> Iterator[bytes]:
    for chunk in vault.chunks(name):
        digest.update(chunk)
        yield chunk


class CannotRunError(LockerError):
    """The command could not be started (the shell's 127)."""

    exit_code = 127


class Interrupted(BaseException):
    """A signal arrived before the child started: unwind, wipe, exit 128 + N."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Forwarder:
    """Signal handlers that pass signals on to the child (or unwind before it runs)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self._previous: dict[int, object] = {}
        self._unwinding = False  # once set, a signal with no child to pass it to does nothing
        # Ctrl-C and Ctrl-\ from our terminal reach the child directly when it shares our
        # foreground process group: passing them on would deliver them twice.
        self._terminal_delivers = _in_foreground()

    def __enter__(self) -> Forwarder:
        for sig in (*FORWARDED, LOCK_SIGNAL):
            # A signal ignored when locker started stays ignored, for locker and the child:
            # `nohup locker run -- job` must survive the hang-up as `nohup job` would.
            if signal.getsignal(sig) != signal.SIG_IGN:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]

    def cleaning_up(self) -> None:
        """From here on no signal unwinds: a second SIGTERM must not stop the wipe."""
        self._unwinding = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        child = self.child
        if child is None:
            if not self._unwinding:
                self._unwinding = True  # unwind once; the cleanup it starts runs to the end
                raise Interrupted(signum)
            return
        if signum in (signal.SIGINT, signal.SIGQUIT) and self._terminal_delivers:
            return
        if child.poll() is None:
            child.send_signal(signal.SIGTERM if signum == LOCK_SIGNAL else signum)


def _in_foreground() -> bool:
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def run_child(argv: list[str], env: dict[str, str], forwarder: Forwarder) -> int:
    """Start the child with `env` (argv carries no secret), wait for it, return its status."""
    handled = {*FORWARDED, LOCK_SIGNAL}
    # A signal between the fork and `forwarder.child` being set must wait, not unwind past a
    # running child; the child itself starts with the mask we had.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    try:
        child = subprocess.Popen(
            argv, env=env, preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, old)
        )
        forwarder.child = child
    except OSError as exc:
        raise CannotRunError(f"cannot run {argv[0]}: {exc.strerror}") from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    code = child.wait()
    return 128 - code if code < 0 else code


def child_env(
    base: dict[str, str], values: dict[str, str], files: dict[str, Path]
) -> dict[str, str]:
    env = dict(base)
    env.update(values)
    env.update({var: str(path) for var, path in files.items()})
    return env
