"""Progress bars (issue 8 item 15): on stderr when it is a terminal and the work lasts more
than about a second, nothing otherwise. Time and the I/O counter are injected; the bar is
rich's, drawn on a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import LOCKER, PASSPHRASE, locker_env

from locker.cli import progress
from locker.cli.mount_commands import start_session
from locker.cli.progress import Progress
from locker.mount import journal as jn
from locker.mount import runtime as rt
from locker.mount.session import Session
from locker.vault import Vault


class Counter:
    def __init__(self) -> None:
        self.value = 1000

    def __call__(self) -> int:
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_no_bar_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress("adding", 100, stream=stream) as bar:
        assert bar._thread is None  # no thread, no rich import, no output
    assert stream.getvalue() == ""


def test_no_bar_on_a_dumb_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            monkeypatch.setenv("TERM", "dumb")
            with Progress("adding", 100, stream=tty) as bar:
                assert bar._thread is None
    finally:
        os.close(master)
        os.close(slave)


def test_bar_only_after_a_second_and_it_follows_the_counter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            counter, clock = Counter(), Clock()
            bar = Progress("adding", 1 << 20, stream=tty, counter=counter, clock=clock)
            bar.tick()
            assert bar.bar is None  # quick work shows nothing
            clock.now = progress.SHOW_AFTER + 0.1
            counter.value += 1 << 19
            bar.tick()
            assert bar.bar is not None
            task = bar.bar.tasks[0]
            assert (task.description, task.completed, task.total) == ("adding", 1 << 19, 1 << 20)
            counter.value += 1 << 30  # more I/O than expected: the bar stops at its end
            bar.tick()
            assert bar.bar.tasks[0].completed == 1 << 20
            bar.bar.refresh()
            bar.__exit__(None, None, None)
            tty.flush()
        drawn = os.read(master, 65536).decode(errors="replace")
        assert "adding" in drawn
    finally:
        os.close(master)
        os.close(slave)


def test_io_counter_moves_with_reads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"x" * 100_000)
    before = progress.io_bytes()
    data.read_bytes()
    assert progress.io_bytes() - before >= 100_000


def test_commands_write_no_bar_to_a_pipe(tmp_path: Path, vault_path: Path, pwfile: Path) -> None:
    """The real commands with stderr a pipe: not a byte of progress output."""
    big = tmp_path / "big"
    big.write_bytes(os.urandom(4 << 20))
    for args in (
        ["add", big],
        ["verify"],
        ["get", "big", "--to", tmp_path / "out"],
        ["rekey"],
        ["mv", "big", "moved"],
        ["rm", "moved"],
    ):
        proc = subprocess.run(
            [*LOCKER, *args, "--vault", vault_path, "--passphrase-file", pwfile],
            capture_output=True,
            env=locker_env(tmp_path),
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == b"", proc.stderr


class Ticking:
    """A clock that moves a quarter second every time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


def test_mount_of_a_large_vault_draws_a_bar_from_the_session_hook(
    vault_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`locker mount`'s start: a real session writing a real vault out, its progress hook
    moving a bar on a real pseudo-terminal (the clock is injected; no thread ticks)."""
    monkeypatch.setenv("TERM", "xterm")
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        for i in range(3):
            v.add_bytes(f"big-{i}.bin", os.urandom(3 << 20))
        v.commit()
    journal_dir = tmp_path / "journal"
    rt.ensure_private_dir(journal_dir)
    root = tmp_path / "mnt"
    root.mkdir(mode=0o700)
    master, slave = pty.openpty()
    drawn = bytearray()
    reader = threading.Thread(target=_drain, args=(master, drawn))
    reader.start()
    try:
        with Vault.open(vault_path, PASSPHRASE, write=True, purpose="mount") as vault:
            session = Session(vault, root, journal=jn.Journal(journal_dir))
            with os.fdopen(slave, "w", closefd=False) as tty:
                start_session(session, stream=tty, clock=Ticking())
                tty.flush()
            session.lock("test")
    finally:
        os.close(slave)
        reader.join()
        os.close(master)
    text = drawn.decode(errors="replace")
    assert "mounting" in text
    assert "9.0/9.0 MiB" in text  # the bar reached the vault's size
    assert not root.exists()


def _drain(fd: int, into: bytearray) -> None:
    """Read the terminal's output until its other end is closed."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the slave side is closed
            return
        if not data:
            return
        into += data


def test_every_save_of_a_writing_command_is_under_a_saving_bar(
    tmp_path: Path, vault_path: Path, pwfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8 item 15, "every save of a large vault": the slot, gen and sweep commands save
    under the same "saving" bar as rm and mv (it shows only on a terminal, after a second)."""
    from locker.cli import commands
    from locker.cli.main import main

    labels: list[str] = []

    class Recorded(Progress):
        def __init__(self, label: str, total: int) -> None:
            labels.append(label)
            super().__init__(label, total, stream=io.StringIO())

    monkeypatch.setattr(commands, "Progress", Recorded)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    newpw = tmp_path / "new.txt"
    newpw.write_bytes(b"another long passphrase for a second slot\n")
    secrets = tmp_path / "app"
    secrets.mkdir()
    (secrets / ".env").write_text("DB_PASSWORD=hunter2hunter2\n")
    unlock = ["--vault", str(vault_path), "--passphrase-file", str(pwfile), "--no-keyring"]
    for args in (
        ["slot", "add-recovery"],
        ["slot", "add-passphrase", "--new-passphrase-file", str(newpw)],
        ["gen", "secret", "api-token"],
        ["sweep", str(secrets), "--import", "--yes"],
    ):
        labels.clear()
        assert main([*args, *unlock]) in (0, 6), args
        assert "saving" in labels, args
