"""`locker run`: env entries in python-dotenv's dialect, the child's exit code, and the --file
directory wiped when the child exits, when locker gets SIGTERM, and by recover after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import LOCKER, PASSPHRASE, RunLocker, locker_env

from locker.vault import Vault

ENV = (
    b"# production\r\n"
    b"export DB_PASSWORD='s3cr3t \"quoted\" #not a comment'\r\n"
    b'API_TOKEN="tok en"\r\n'
    b"PLAIN=value # a comment\r\n"
    b'TLS_KEY="-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----"\r\n'
    b"EMPTY=\r\n"
)
KEY = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
PRINT_ENV = "import json, os, sys; print(json.dumps(dict(os.environ))); sys.exit(7)"


@pytest.fixture
def cli(run_locker: RunLocker, vault_path: Path, pwfile: Path) -> RunLocker:
    """Vault options first: everything after `--` belongs to the child."""

    def run(*args: str | os.PathLike[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        return run_locker("--vault", vault_path, "--passphrase-file", pwfile, *args, **kwargs)

    return run


def _fill(path: Path) -> None:
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("prod.env", ENV)
        v.add_bytes("tls/server.key", KEY)
        v.add_bytes("notenv.txt", b"just some prose\n")
        v.commit()


def test_run_sets_env_and_exits_with_the_child_code(cli: RunLocker, vault_path: Path) -> None:
    _fill(vault_path)
    out = cli("run", "--env", "prod.env", "--", sys.executable, "-c", PRINT_ENV)
    assert out.returncode == 7, out.stderr
    env = json.loads(out.stdout)
    assert env["DB_PASSWORD"] == 's3cr3t "quoted" #not a comment'
    assert env["API_TOKEN"] == "tok en"
    assert env["PLAIN"] == "value"
    assert env["TLS_KEY"] == KEY.decode().rstrip("\n")
    assert env["EMPTY"] == ""
    assert "PATH" in env  # the rest of locker's environment is passed on


def test_run_refuses_a_non_env_entry_and_a_bad_file_spec(cli: RunLocker, vault_path: Path) -> None:
    _fill(vault_path)
    out = cli("run", "--env", "notenv.txt", "--", "true")
    assert out.returncode == 1 and b"notenv.txt is not an env file" in out.stderr
    out = cli("run", "--file", "tls/server.key", "--", "true")
    assert out.returncode == 2 and b"--file takes NAME:VAR" in out.stderr
    out = cli("run", "--env", "prod.env")
    assert out.returncode == 2 and b"no command to run" in out.stderr
    out = cli("run", "--file", "missing:X", "--", "true")
    assert out.returncode == 1 and b"no entry named 'missing'" in out.stderr
    out = cli("run", "--", "/nonexistent/command")
    assert out.returncode == 127 and out.stderr.startswith(b"locker: error: cannot run")


def test_file_dir_is_private_and_gone_after_the_child_exits(
    cli: RunLocker, vault_path: Path
) -> None:
    _fill(vault_path)
    code = (
        "import os, stat, sys; p = os.environ['KEY_FILE']; d = os.path.dirname(p)\n"
        "print(p); print(oct(stat.S_IMODE(os.stat(os.path.dirname(d)).st_mode)))\n"
        "print(open(p).read().splitlines()[0]); sys.exit(3)\n"
    )
    out = cli("run", "--file", "tls/server.key:KEY_FILE", "--", sys.executable, "-c", code)
    assert out.returncode == 3, out.stderr
    path, mode, first = out.stdout.decode().splitlines()
    assert path.endswith("/tls/server.key") and mode == "0o700"
    assert first == "-----BEGIN PRIVATE KEY-----"
    assert not Path(path).exists() and not Path(path).parent.parent.exists()
    assert b"nothing to recover" in cli("recover").stdout


def _start(
    vault_path: Path, pwfile: Path, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], str, int]:
    """locker run with a child that prints its file's path and its pid, then waits."""
    child = "import os, sys, time; print(os.environ['F'], os.getpid(), flush=True); time.sleep(120)"
    proc = subprocess.Popen(
        [*LOCKER, "run", "--vault", str(vault_path), "--passphrase-file", str(pwfile),
         "--file", "tls/server.key:F", "--", sys.executable, "-c", child],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=locker_env(tmp_path),
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    assert line, proc.stderr.read() if proc.stderr else b""
    path, pid = line[0], int(line[1])
    assert Path(path).read_bytes() == KEY
    return proc, path, pid


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_file_dir_is_wiped_when_locker_is_signalled(
    vault_path: Path, pwfile: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    _fill(vault_path)
    proc, path, child = _start(vault_path, pwfile, tmp_path)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 128 + sig  # the child got it and died of it
    assert not Path(path).exists() and not Path(path).parent.parent.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_signals_ignored_at_start_stay_ignored_for_locker_and_the_child(
    vault_path: Path, pwfile: Path, tmp_path: Path
) -> None:
    """`nohup locker run -- job` (SIGHUP ignored) and a job started with `&` by a script
    (SIGINT, SIGQUIT ignored): the child keeps those dispositions, as it would without
    locker, and a SIGHUP sent to locker neither ends the run nor reaches the child."""
    _fill(vault_path)
    ignored = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT)
    code = (
        "import os, signal, sys, time\n"
        "os.kill(os.getppid(), signal.SIGHUP); time.sleep(0.2)\n"
        f"print([signal.getsignal(s) == signal.SIG_IGN for s in {[int(s) for s in ignored]}])\n"
    )

    def ignore() -> None:
        for sig in ignored:
            signal.signal(sig, signal.SIG_IGN)

    out = subprocess.run(
        [*LOCKER, "run", "--vault", str(vault_path), "--passphrase-file", str(pwfile),
         "--env", "prod.env", "--", sys.executable, "-c", code],
        capture_output=True, stdin=subprocess.DEVNULL, env=locker_env(tmp_path),
        preexec_fn=ignore, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"[True, True, True]\n"


def test_file_dir_is_found_and_wiped_by_recover_after_kill_9(
    cli: RunLocker, vault_path: Path, pwfile: Path, tmp_path: Path
) -> None:
    _fill(vault_path)
    proc, path, child = _start(vault_path, pwfile, tmp_path)
    proc.kill()
    proc.wait(timeout=60)
    os.kill(child, signal.SIGKILL)
    assert Path(path).exists()  # nothing could wipe it
    status = cli("status")
    assert b"left behind" in status.stderr or b"orphan" in status.stdout.lower()
    out = cli("recover")
    assert out.returncode == 0, out.stderr
    assert b"no changes since the last sync" in out.stdout
    assert not Path(path).exists() and not Path(path).parent.parent.exists()
    assert b"nothing to recover" in cli("recover").stdout


def test_a_second_signal_does_not_stop_the_wipe(
    vault_path: Path, pwfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM before the child starts unwinds into the wipe; another SIGTERM arriving as the
    wipe begins must not unwind out of it and leave the secret file behind (in-process: the
    second signal is sent from inside the wipe, so it lands there every time)."""
    from locker.cli.main import main
    from locker.know import run as kr
    from locker.mount import directory as mountdir

    _fill(vault_path)
    real_wipe = mountdir.wipe_tree
    roots: list[Path] = []

    def signalled_wipe(root: Path, **kwargs: Any) -> mountdir.Wiped:
        roots.append(root)
        os.kill(os.getpid(), signal.SIGTERM)
        return real_wipe(root, **kwargs)

    def signalled_start(*args: Any) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the first SIGTERM unwinds before the child starts")

    monkeypatch.setattr("locker.mount.process.harden_process", lambda: None)
    monkeypatch.setattr(kr, "run_child", signalled_start)
    monkeypatch.setattr(mountdir, "wipe_tree", signalled_wipe)
    code = main(
        ["run", "--vault", str(vault_path), "--passphrase-file", str(pwfile),
         "--file", "tls/server.key:F", "--", "true"]
    )  # fmt: skip
    assert code == 128 + signal.SIGTERM
    assert len(roots) == 1 and not roots[0].exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back
