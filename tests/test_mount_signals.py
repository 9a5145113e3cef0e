"""What a new user hit with a real `locker mount` process: Ctrl-Z, a stopped mount, `locker lock`
run from inside the mount directory, and $LOCKER_VAULT naming another vault at `recover`."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import test_mount_e2e as e2e
from conftest import LOCKER, locker_env, require
from test_mount_e2e import Mount, Run, contents

from locker.mount import process

# The end-to-end fixtures: a runtime dir, the filled vault, `locker` bound to both, a real mount.
runtime, env, vault, lk, mount = e2e.runtime, e2e.env, e2e.vault, e2e.lk, e2e.mount
residue = e2e.residue  # autouse: the residue check after every test here too


def wait_state(pid: int, stopped: bool, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.is_stopped(pid) == stopped:
            return True
        time.sleep(0.02)
    return process.is_stopped(pid) == stopped


def test_ctrl_z_does_not_stop_the_mount(mount: Callable[..., Mount], lk: Run) -> None:
    """Issue 8.6: SIGTSTP is ignored (a stopped mount never locks), and the mount says so."""
    mnt = mount()
    mnt.proc.send_signal(signal.SIGTSTP)
    (mnt.dir / "a.txt").write_bytes(b"after ctrl-z\n")
    locked = lk("lock")  # would wait in vain for a stopped mount
    assert locked.returncode == 0, locked.stderr
    code, out, err = mnt.wait()
    assert code == 0, err
    assert "Ctrl-Z is ignored" in out


def test_lock_and_status_see_a_stopped_mount_and_continue_it(
    mount: Callable[..., Mount], lk: Run, vault: Path
) -> None:
    """Issue 8.6: SIGSTOP cannot be ignored: `status` says the mount is stopped, `lock` sends
    it SIGCONT, says so, and the mount locks."""
    mnt = mount()
    (mnt.dir / "a.txt").write_bytes(b"before the stop\n")
    mnt.proc.send_signal(signal.SIGSTOP)
    assert wait_state(mnt.proc.pid, stopped=True)
    status = lk("status")
    assert b"STOPPED" in status.stdout and f"kill -CONT {mnt.proc.pid}".encode() in status.stdout
    assert json.loads(lk("status", "--json").stdout)[0]["state"] == "stopped"
    locked = lk("lock")
    assert locked.returncode == 0, locked.stderr
    assert b"sent it SIGCONT" in locked.stderr
    code, _, err = mnt.wait()
    assert code == 0, err
    assert not mnt.dir.exists()
    assert contents(vault)["a.txt"] == b"before the stop\n"


def test_lock_run_inside_the_mount_dir_is_not_a_holder(
    mount: Callable[..., Mount], lk: Run
) -> None:
    """Issue 8.8: `cd MOUNT && locker lock` must not report itself as holding the files."""
    mnt = mount()
    locked = lk("lock", cwd=mnt.dir / "sub")
    assert locked.returncode == 0, (locked.stderr, mnt.wait())
    assert b"still had" not in locked.stderr
    code, _, err = mnt.wait()
    assert code == 0 and "still had" not in err, err


def test_recover_names_locker_vault_when_it_selects_another_vault(
    mount: Callable[..., Mount], lk: Run, run_locker: Run, runtime: Path, tmp_path: Path
) -> None:
    """Issue 8.10: with $LOCKER_VAULT (not --vault) naming another vault, the hint says so."""
    mnt = mount()
    mnt.proc.send_signal(signal.SIGKILL)
    mnt.proc.wait()
    other = str(tmp_path / "other.locker")
    result = run_locker("recover", env={"LOCKER_VAULT": other, "XDG_RUNTIME_DIR": str(runtime)})
    assert b"unset LOCKER_VAULT" in result.stdout and b"--vault" not in result.stdout
    assert lk("recover", "--discard").returncode == 0


def test_orphan_notice_names_the_vault_when_locker_vault_selects_another(
    mount: Callable[..., Mount],
    lk: Run,
    run_locker: Run,
    runtime: Path,
    tmp_path: Path,
    vault: Path,
) -> None:
    """Issue 8.10: the notice's hint must be a command that finds the orphan."""
    mnt = mount()
    mnt.proc.send_signal(signal.SIGKILL)
    mnt.proc.wait()
    other = str(tmp_path / "other.locker")
    listed = run_locker("ls", env={"LOCKER_VAULT": other, "XDG_RUNTIME_DIR": str(runtime)})
    assert f"run 'locker recover --vault {vault}'".encode() in listed.stderr, listed.stderr
    assert lk("recover", "--discard").returncode == 0


def test_unreadable_files_and_dirs_are_kept_at_lock_and_discard_wipes_them(
    mount: Callable[..., Mount], lk: Run, vault: Path, env: dict[str, str | None], tmp_path: Path
) -> None:
    """Issue 9.8, with root's DAC override dropped so that modes bind: a mode-000 file and a
    mode-000 directory make no sync fail; the lock saves the rest, keeps those two and says
    so; `recover --discard` wipes them too."""
    setpriv = require("setpriv", "setpriv (util-linux) to drop root's DAC override")
    no_override = (setpriv, "--bounding-set=-dac_override,-dac_read_search", "--")
    mnt = mount(command=(*no_override, *LOCKER))
    (mnt.dir / "closed").mkdir()
    (mnt.dir / "closed" / "inside.txt").write_bytes(b"behind a closed door\n")
    (mnt.dir / "closed").chmod(0)
    (mnt.dir / "sealed.txt").write_bytes(b"mode 000\n")
    (mnt.dir / "sealed.txt").chmod(0)
    (mnt.dir / "a.txt").write_bytes(b"saved next to them\n")
    locked = lk("lock")
    assert locked.returncode == 1 and b"locked but kept 2 files" in locked.stderr, locked.stderr
    code, _, err = mnt.wait()
    assert code == 1 and "closed" in err and "sealed.txt" in err, err
    assert contents(vault)["a.txt"] == b"saved next to them\n"
    assert sorted(p.name for p in mnt.dir.iterdir()) == ["closed", "sealed.txt"]
    done = subprocess.run(
        [*no_override, *LOCKER, "--vault", str(vault), "recover", "--discard"],
        env=locker_env(tmp_path, env),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not mnt.dir.exists()
