"""`locker lock` and `locker status` as their callers see them, run in-process (cli.main) so
that the runtime-dir list and the lock wait can be patched; the mounts they talk to are real
processes (a real `locker mount`, or a stand-in that ignores or dies of the lock signal)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, Places, RunLocker
from test_mount_e2e import Mount, env, mount, residue, runtime, vault  # noqa: F401 - fixtures

from locker.cli import lock_commands as cm
from locker.cli.main import main
from locker.know.run import RunDir
from locker.mount import directory as mountdir
from locker.mount import edit, process
from locker.mount import journal as jn
from locker.mount import runtime as rt
from locker.vault import Vault


@pytest.fixture
def xdg() -> jn.Journal:
    """The journal under this test's own $XDG_RUNTIME_DIR (see conftest's `places`)."""
    return jn.Journal(rt.runtime_base().journal_dir)


@pytest.fixture
def stand_in() -> Iterator[Callable[[bool], subprocess.Popen[str]]]:
    """A process standing in for a mount: it ignores the lock signal, or dies of it."""
    procs: list[subprocess.Popen[str]] = []

    def start(ignore_lock_signal: bool) -> subprocess.Popen[str]:
        code = (
            "import signal, time\n"
            f"if {ignore_lock_signal}: signal.signal(signal.SIGUSR1, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def record_for(vault_file: Path, tmp_path: Path, pid: int, **fields: object) -> jn.Record:
    record = jn.Record.new(
        vault_file,
        tmp_path / "mnt-stand-in",
        started=0.0,
        idle_seconds=300,
        idle_deadline=0.0,
        hard_deadline=0.0,
    )
    record.pid, record.proc_start, record.state = pid, process.process_start(pid), jn.STATE_MOUNTED
    for key, value in fields.items():
        setattr(record, key, value)
    return record


def test_lock_that_does_not_happen_in_time_is_an_error_naming_the_pid(
    xdg: jn.Journal,
    stand_in: Callable[[bool], subprocess.Popen[str]],
    vault_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proc = stand_in(True)
    xdg.write(record_for(vault_path, tmp_path, proc.pid))
    monkeypatch.setattr(cm, "LOCK_WAIT", 0.3)
    assert main(["lock", "--vault", str(vault_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"(PID {proc.pid}) did not lock within 0.3 s" in err
    assert f"kill {proc.pid}" in err
    assert proc.poll() is None


def test_mount_that_dies_while_locking_is_an_error_with_its_reason(
    xdg: jn.Journal,
    stand_in: Callable[[bool], subprocess.Popen[str]],
    vault_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proc = stand_in(False)
    xdg.write(
        record_for(
            vault_path, tmp_path, proc.pid, state=jn.STATE_LOCKING, error="No space left on device"
        )
    )
    assert main(["lock", "--vault", str(vault_path)]) == 1
    _, err = capsys.readouterr()
    assert "stopped without wiping its files: No space left on device" in err
    assert "locker: hint: run 'locker recover'" in err


def test_status_and_lock_find_a_mount_under_run_user_without_xdg_runtime_dir(
    mount: Callable[..., Mount],  # noqa: F811
    vault: Path,  # noqa: F811
    places: Places,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The reviewer's case: mounted from a login shell ($XDG_RUNTIME_DIR=/run/user/UID), then
    `locker status` and `locker lock` from `su`/`sudo -u`/cron, where it is unset."""
    run_user = places.run_user / str(os.getuid())
    run_user.mkdir(mode=0o700)
    mnt = mount(env_override={"XDG_RUNTIME_DIR": str(run_user)})
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("LOCKER_VAULT", raising=False)
    assert main(["status", "--vault", str(vault)]) == 0
    out, _ = capsys.readouterr()
    assert f"mounted at {mnt.dir} by PID {mnt.proc.pid}" in out
    assert main(["lock", "--vault", str(vault)]) == 0
    out, _ = capsys.readouterr()
    assert out == f"locked {vault} ({mnt.dir} wiped)\n"
    assert mnt.wait()[0] == 0 and not mnt.dir.exists()
    assert main(["status", "--vault", str(vault)]) == 0
    assert capsys.readouterr().out == f"nothing is mounted for {vault.resolve()}\n"


def test_status_names_an_orphan_once(
    xdg: jn.Journal, vault_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    xdg.write(record_for(vault_path, tmp_path, proc.pid))  # its process is gone
    assert main(["status", "--vault", str(vault_path)]) == 0
    out, err = capsys.readouterr()
    assert out.count("ORPHANED") == 1
    assert "left behind" not in err


def crafted_orphan(xdg: jn.Journal, vault_path: Path, directory: Path, state: str) -> jn.Record:
    """A journal record nobody's mount wrote: a dead pid and a `dir` of the crafter's choice."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    record = jn.Record.new(
        vault_path, directory, started=1.0, idle_seconds=1, idle_deadline=1, hard_deadline=1
    )
    record.pid, record.proc_start, record.state = proc.pid, "", state
    record.created_dir = False
    xdg.write(record)
    return record


def test_recover_refuses_to_wipe_a_directory_that_is_not_a_mount(
    xdg: jn.Journal,
    vault_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / ".bashrc").write_text("precious\n")
    monkeypatch.setenv("HOME", str(home))
    record = crafted_orphan(xdg, vault_path, home, jn.STATE_MATERIALISING)
    assert main(["recover", "--discard", "--vault", str(vault_path)]) == 1
    assert "refusing to recover or wipe" in capsys.readouterr().err
    assert (home / ".bashrc").read_text() == "precious\n"
    assert xdg.read(record.mount_id) is not None  # left for the user to look at


def test_recover_lists_a_materialising_dir_before_wiping_it(
    xdg: jn.Journal, vault_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = tmp_path / "given"  # a --dir mount, 0700 and ours
    given.mkdir(mode=0o700)
    (given / "a.txt").write_text("x")
    crafted_orphan(xdg, vault_path, given, jn.STATE_MATERIALISING)
    assert main(["recover", "--vault", str(vault_path)]) == 1  # no terminal: only the report
    captured = capsys.readouterr()
    assert "holds    a.txt" in captured.out and "--discard" in captured.err
    assert (given / "a.txt").exists()
    assert main(["recover", "--discard", "--vault", str(vault_path)]) == 0
    assert not (given / "a.txt").exists() and given.exists()  # not ours to remove


def test_lock_never_signals_a_process_its_record_cannot_vouch_for(
    xdg: jn.Journal,
    stand_in: Callable[[bool], subprocess.Popen[str]],
    vault_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A record without the process start time (not one locker wrote) could name any pid."""
    proc = stand_in(False)  # would die of the lock signal
    xdg.write(record_for(vault_path, tmp_path, proc.pid, proc_start=""))
    assert main(["lock", "--vault", str(vault_path)]) == 1
    _, err = capsys.readouterr()
    assert f"not signalling PID {proc.pid}" in err
    assert proc.poll() is None


def test_status_of_a_run_directory_names_no_deadline(
    xdg: jn.Journal, vault_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `locker run --file` directory has no idle or hard deadline: it lives as long as its
    command. Status says so instead of a made-up time ('locks in 875999h')."""
    run_dir = RunDir(vault_path)
    try:
        assert main(["status", "--vault", str(vault_path)]) == 0
        out = capsys.readouterr().out
        assert f"mounted at {run_dir.root} by PID {os.getpid()}" in out
        assert "locks in" not in out
        assert "no deadline: wiped when its command ends ('locker lock' ends it now)" in out
        assert main(["status", "--json", "--vault", str(vault_path)]) == 0
        row = json.loads(capsys.readouterr().out)[0]
        assert row["idle_deadline"] is None and row["hard_deadline"] is None
    finally:
        run_dir.wipe()


def test_recover_unlocks_with_the_unlock_options_it_is_given(
    cli: RunLocker, run_locker: RunLocker, xdg: jn.Journal, vault_path: Path, tmp_path: Path
) -> None:
    """`recover --keyfile` (or --identity, a token, the keyring) opens the vault with it, as
    every other command does, instead of asking for the passphrase regardless."""
    key = tmp_path / "key"
    assert cli("slot", "add-keyfile", key, "--generate").returncode == 0
    root = tmp_path / "mnt-keyfile"
    root.mkdir(mode=0o700)
    (root / "new.txt").write_bytes(b"made in the mount\n")
    crafted_orphan(xdg, vault_path, root, jn.STATE_MOUNTED)
    done = run_locker("recover", "--yes", "--vault", vault_path, "--keyfile", key)
    assert done.returncode == 0, done.stderr
    assert list(root.iterdir()) == []  # wiped (a --dir mount's directory itself stays)
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert v.read_bytes("new.txt") == b"made in the mount\n"


def test_lock_waits_for_the_mount_s_exit_not_a_fixed_sleep() -> None:
    """`locker lock` polls the journal between waits that end when the mount process exits
    (a pidfd): the wait below returns at the exit, long before its 60 s are up."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    waiter = process.ExitWaiter(proc.pid)
    try:
        assert proc.stdin is not None
        proc.stdin.close()  # it exits now
        start = time.monotonic()
        waiter.wait(60)
        assert time.monotonic() - start < 30
    finally:
        waiter.close()
        proc.wait()
    gone = process.ExitWaiter(proc.pid)  # reaped: no pidfd, a plain sleep
    gone.wait(0.01)
    gone.close()


# -- files the wipe deleted without zeroing them: said, and exit 1 -------------------------------


class _ZeroFails:
    """Stands in for `os` in mount/directory.py: writing zeros into a file named `name` fails
    with EIO, as a failing disk does."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(os, attr)

    def pwrite(self, fd: int, data: Any, offset: int) -> int:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name == self.name:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return os.pwrite(fd, data, offset)


def _unzeroed(name: str) -> str:
    return (
        f"could not zero 1 file before deleting it: {name} ({os.strerror(errno.EIO)}); its "
        "content may remain on the disk"
    )


def test_recover_says_which_files_it_deleted_without_zeroing_and_exits_1(
    xdg: jn.Journal,
    vault_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    given = tmp_path / "given"
    given.mkdir(mode=0o700)
    (given / "a.txt").write_text("secret")
    record = crafted_orphan(xdg, vault_path, given, jn.STATE_MATERIALISING)
    monkeypatch.setattr(mountdir, "os", _ZeroFails("a.txt"))
    assert main(["recover", "--discard", "--vault", str(vault_path)]) == 1
    out, err = capsys.readouterr()
    assert err == f"locker: warning: {_unzeroed('a.txt')}\n"
    assert "wiped 1 file" in out
    assert os.listdir(given) == [] and xdg.read(record.mount_id) is None  # done all the same


def test_lock_says_what_the_mount_could_not_zero_and_exits_1(
    xdg: jn.Journal, vault_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The mount (a stand-in) locks, and its record says what the wipe could not zero."""
    locked, where = xdg.directory / ".locked.tmp", tmp_path / "record-path"
    code = (
        "import os, signal, sys, time\n"
        "def locked(*_):\n"
        "    os.replace(sys.argv[1], open(sys.argv[2]).read())\n"
        "    os._exit(0)\n"
        "signal.signal(signal.SIGUSR1, locked)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, locked, where], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        record = record_for(vault_path, tmp_path, proc.pid)
        where.write_text(str(xdg.path_of(record.mount_id)))
        xdg.write(record)
        note = _unzeroed("k")
        done = record_for(vault_path, tmp_path, proc.pid, state=jn.STATE_LOCKED, error=note)
        done.mount_id = record.mount_id
        locked.write_text(json.dumps(done.to_json()))
        assert main(["lock", "--vault", str(vault_path)]) == 1
    finally:
        proc.kill()
        proc.wait()
    out, err = capsys.readouterr()
    assert out == f"locked {vault_path} ({tmp_path / 'mnt-stand-in'} wiped)\n"
    assert err == f"locker: warning: {note}\n"


def test_edit_and_run_say_what_their_wipe_could_not_zero(
    filled_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mountdir, "os", _ZeroFails("a.txt"))
    warned: list[str] = []
    with Vault.open(filled_vault, PASSPHRASE, write=True) as v:
        result = edit.edit_entry(v, "a.txt", lambda path: None, warned.append)
        assert not result.changed
        assert warned == [_unzeroed("a.txt")]
        run_dir = RunDir(v.path)
        run_dir.materialise(v, ["a.txt"])
        assert run_dir.wipe() == [_unzeroed("a.txt")]
        assert not run_dir.root.exists()
