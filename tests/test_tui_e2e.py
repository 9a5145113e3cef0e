"""The real `locker --vault V tui` in a real terminal (tmux): type the passphrase, see the
entries, lock, quit. send-keys in, capture-pane out; every wait is on the screen's text."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PASSPHRASE, RunLocker, locker_env, require

WAIT = 60.0


class Tmux:
    """A private tmux server (its own socket) running one pane."""

    def __init__(self, socket: Path, env: dict[str, str]) -> None:
        self.base = ["tmux", "-S", str(socket), "-f", os.devnull]
        self.env = env

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [*self.base, *args], env=self.env, capture_output=True, text=True, timeout=30
        )
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "main")

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + WAIT
        while True:
            shown = self.screen()
            if text in shown:
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen:\n{shown}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return "main" in self.run("list-sessions", "-F", "#{session_name}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    require("tmux", "tmux runs the end-to-end TUI test (apt-get install tmux)")
    env = locker_env(tmp_path, {"TERM": "xterm-256color", "TMUX": None, "COLORTERM": "truecolor"})
    session = Tmux(tmp_path / "tmux.sock", env)
    try:
        yield session
    finally:
        session.run("kill-server")


def locker_command() -> str:
    script = Path(sys.executable).with_name("locker")
    return str(script) if script.exists() else shutil.which("locker") or "locker"


def test_real_tui_unlocks_lists_and_locks(tmux: Tmux, filled_vault: Path, tmp_path: Path) -> None:
    command = f"{locker_command()} --vault {filled_vault} tui"
    tmux.run(
        "new-session", "-d", "-s", "main", "-x", "100", "-y", "30", "-c", str(tmp_path), command
    )
    tmux.wait_for("passphrase")
    tmux.run("send-keys", "-t", "main", "-l", PASSPHRASE.decode())
    tmux.run("send-keys", "-t", "main", "Enter")
    tmux.wait_for("b.key")
    shown = tmux.wait_for("unlocked")
    for name in ("a.txt", "c.env", "d.txt", "deep/", "b.key"):
        assert name in shown
    assert PASSPHRASE.decode() not in shown
    tmux.run("send-keys", "-t", "main", "l")
    shown = tmux.wait_for("locked (locked from the TUI)")
    assert "b.key" not in shown
    tmux.run("send-keys", "-t", "main", "C-q")
    deadline = time.monotonic() + WAIT
    while tmux.alive():
        assert time.monotonic() < deadline, tmux.screen()
        time.sleep(0.05)


def test_real_tui_unlocks_with_the_keyring_first(
    filled_vault: Path, tmp_path: Path, cli: RunLocker, secret_service: dict[str, str | None]
) -> None:
    """`locker slot remember`, then `locker tui` opens the vault unasked (the CLI's unlock
    order); after a lock, only Enter on the empty passphrase opens it again."""
    require("tmux", "tmux runs the end-to-end TUI test (apt-get install tmux)")
    remembered = cli("slot", "remember", env=secret_service)
    assert remembered.returncode == 0, remembered.stderr
    env = locker_env(
        tmp_path,
        {"TERM": "xterm-256color", "TMUX": None, "COLORTERM": "truecolor", **secret_service},
    )
    tmux = Tmux(tmp_path / "tmux.sock", env)
    try:
        command = f"{locker_command()} --vault {filled_vault} tui"
        tmux.run("new-session", "-d", "-s", "main", "-x", "100", "-y", "30", command)
        tmux.wait_for("b.key")  # no passphrase was typed
        tmux.run("send-keys", "-t", "main", "l")
        tmux.wait_for("locked (locked from the TUI)")
        shown = tmux.wait_for("Enter with no passphrase unlocks with the keyring")
        assert "b.key" not in shown
        tmux.run("send-keys", "-t", "main", "Enter")
        tmux.wait_for("b.key")
        tmux.run("send-keys", "-t", "main", "C-q")
        deadline = time.monotonic() + WAIT
        while tmux.alive():
            assert time.monotonic() < deadline, tmux.screen()
            time.sleep(0.05)
    finally:
        tmux.run("kill-server")
