"""The OS keyring slot through the real CLI, against a real Secret Service (gnome-keyring in a
private dbus-run-session), and keyring's fail backend for a machine without one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import RunLocker

from locker.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE

FAIL = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def ok(proc: subprocess.CompletedProcess[bytes]) -> str:
    assert proc.returncode == EXIT_OK, proc.stderr.decode()
    return proc.stdout.decode()


def test_remember_unlocks_without_a_prompt_until_forget(
    run_locker: RunLocker,
    cli: RunLocker,
    vault_path: Path,
    tmp_path: Path,
    secret_service: dict[str, str | None],
) -> None:
    (tmp_path / "s.txt").write_bytes(b"secret\n")
    ok(cli("add", tmp_path / "s.txt"))
    out = ok(cli("slot", "remember", env=secret_service))
    assert "keyring.backends.SecretService.Keyring" in out
    # no --passphrase-file and no terminal: only the keyring can open it
    assert ok(run_locker("cat", "s.txt", "--vault", vault_path, env=secret_service)) == "secret\n"
    rows = json.loads(
        ok(run_locker("slot", "ls", "--json", "--vault", vault_path, env=secret_service))
    )
    assert [(r["kind"], r["unlocked_this_time"]) for r in rows] == [
        ("passphrase", False),
        ("keyring", True),
    ]
    again = ok(cli("slot", "remember", env=secret_service))
    assert "already remembered" in again
    # forget unlocks through the keyring itself, then removes slot and secret
    out = ok(run_locker("slot", "forget", "--vault", vault_path, env=secret_service))
    assert "removed keyring slot" in out
    proc = run_locker("ls", "--vault", vault_path, env=secret_service)
    assert proc.returncode == EXIT_USAGE
    assert b"no terminal to ask for the passphrase" in proc.stderr
    rows = json.loads(ok(cli("slot", "ls", "--json", env=secret_service)))
    assert [r["kind"] for r in rows] == ["passphrase"]


def test_fail_backend_remember_says_so_in_one_line(cli: RunLocker) -> None:
    proc = cli("slot", "remember", env=FAIL)
    assert proc.returncode == EXIT_ERROR
    lines = proc.stderr.decode().splitlines()
    assert lines[0].startswith("locker: error: the OS keyring cannot be used")
    assert "keyring.backends.fail.Keyring" in lines[0]
    assert all(line.startswith("locker: hint: ") for line in lines[1:])
    rows = json.loads(ok(cli("slot", "ls", "--json", env=FAIL)))
    assert [r["kind"] for r in rows] == ["passphrase"]


def test_fail_backend_falls_back_to_the_passphrase(
    cli: RunLocker, secret_service: dict[str, str | None]
) -> None:
    ok(cli("slot", "remember", env=secret_service))
    proc = cli("ls", env=FAIL)
    assert proc.returncode == EXIT_OK, proc.stderr
    warnings = proc.stderr.decode().splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith("locker: warning: the OS keyring cannot be used")
    assert "keyring.backends.fail.Keyring" in warnings[0]
    assert warnings[0].endswith("asking for the passphrase")
    # and with the keyring unreachable, --no-keyring skips it quietly
    proc = cli("ls", "--no-keyring", env=FAIL)
    assert proc.returncode == EXIT_OK and proc.stderr == b""


def test_no_session_bus_is_an_unusable_keyring(cli: RunLocker, tmp_path: Path) -> None:
    env = {
        "PYTHON_KEYRING_BACKEND": None,
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/none",
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
    }
    proc = cli("slot", "remember", env=env)
    assert proc.returncode == EXIT_ERROR, proc.stderr
    assert proc.stderr.decode().startswith("locker: error: the OS keyring ")
