"""`locker edit NAME`: a private RAM copy in $EDITOR, saved only if changed, wiped on every way
out (editor failure, SIGTERM), found by `locker recover` after kill -9. Real subprocesses and a
fake editor script."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import LOCKER, PASSPHRASE, Places, RunLocker, locker_env

from locker.mount.edit import EditInterrupted, run_editor
from locker.vault import Vault


@pytest.fixture
def run_dir(places: Places) -> Path:
    """This test's $XDG_RUNTIME_DIR (conftest's `places`): the edit copy and journal go there."""
    return places.xdg


def editor(tmp_path: Path, body: str) -> Path:
    """A fake $EDITOR: a shell script run as `editor -- FILE`, with $1 set to FILE."""
    script = tmp_path / "fake-editor"
    script.write_text('#!/bin/sh\nfor f; do :; done; set -- "$f"\n' + body)  # $1: the file
    script.chmod(0o700)
    return script


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().endswith("\n"):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.02)
    return path.read_text()


def content(vault: Path, name: str) -> bytes:
    with Vault.open(vault, PASSPHRASE) as v:
        return v.read_bytes(name)


def events(vault: Path) -> list[str]:
    with Vault.open(vault, PASSPHRASE) as v:
        return [e.event for e in v.log()]


def test_changed_entry_is_saved_and_the_copy_wiped(
    cli: RunLocker, filled_vault: Path, tmp_path: Path, run_dir: Path
) -> None:
    seen = tmp_path / "seen"
    ed = editor(
        tmp_path,
        f'stat -c %a "$1" > {seen}; dirname "$1" >> {seen}; printf "beta\\n" >> "$1"\n',
    )
    r = cli("edit", "a.txt", env={"EDITOR": str(ed)})
    assert r.returncode == 0, r.stderr
    assert b"saved a.txt" in r.stdout
    assert content(filled_vault, "a.txt") == b"alpha\nbeta\n"
    assert events(filled_vault)[-1] == "edit"
    mode, where = seen.read_text().split()
    assert mode == "600"
    assert where.startswith(str(run_dir / "locker" / "mnt-"))
    assert not Path(where).exists()
    assert os.listdir(run_dir / "locker" / "journal") == []


def test_unchanged_entry_is_not_saved(
    cli: RunLocker, filled_vault: Path, tmp_path: Path, run_dir: Path
) -> None:
    before = events(filled_vault)
    r = cli("edit", "sub/deep/b.key", env={"EDITOR": "true"})
    assert r.returncode == 0, r.stderr
    assert b"sub/deep/b.key unchanged" in r.stdout
    assert events(filled_vault) == before
    assert [p.name for p in (run_dir / "locker").iterdir()] == ["journal"]


def test_failing_editor_saves_nothing(
    cli: RunLocker, filled_vault: Path, tmp_path: Path, run_dir: Path
) -> None:
    ed = editor(tmp_path, 'echo lost >> "$1"; exit 3\n')
    r = cli("edit", "a.txt", env={"EDITOR": str(ed)})
    assert r.returncode == 1
    assert b"locker: error: the editor exited with status 3" in r.stderr
    assert content(filled_vault, "a.txt") == b"alpha\n"
    assert [p.name for p in (run_dir / "locker").iterdir()] == ["journal"]


def test_missing_entry_and_missing_editor(
    cli: RunLocker, filled_vault: Path, run_dir: Path
) -> None:
    r = cli("edit", "nope", env={"EDITOR": "true"})
    assert r.returncode == 1
    assert b"locker: error: no entry named 'nope'" in r.stderr
    r = cli("edit", "a.txt", env={"EDITOR": "no-such-editor-x"})
    assert r.returncode == 2
    assert b"locker: error: editor not found: no-such-editor-x" in r.stderr


def _start_edit(
    tmp_path: Path, vault: Path, pwfile: Path, run_dir: Path, body: str
) -> subprocess.Popen[bytes]:
    ed = editor(tmp_path, body)
    env = locker_env(tmp_path, {"EDITOR": str(ed)})
    return subprocess.Popen(
        [*LOCKER, "--vault", str(vault), "--passphrase-file", str(pwfile), "edit", "a.txt"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigterm_wipes_the_copy_and_saves_nothing(
    filled_vault: Path, pwfile: Path, tmp_path: Path, run_dir: Path
) -> None:
    marker = tmp_path / "editing"
    proc = _start_edit(
        tmp_path,
        filled_vault,
        pwfile,
        run_dir,
        f'echo changed >> "$1"; echo "$1" > {marker}; exec sleep 600\n',
    )
    copy = Path(wait_for_file(marker, proc).strip())
    assert copy.exists()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert b"interrupted by SIGTERM; nothing was saved" in err
    assert not copy.exists() and not copy.parent.exists()
    assert os.listdir(run_dir / "locker" / "journal") == []
    assert content(filled_vault, "a.txt") == b"alpha\n"


def test_kill_9_leaves_a_journal_that_recover_saves(
    filled_vault: Path, pwfile: Path, tmp_path: Path, run_dir: Path, run_locker: RunLocker
) -> None:
    marker = tmp_path / "editing"
    proc = _start_edit(
        tmp_path,
        filled_vault,
        pwfile,
        run_dir,
        f'echo saved-by-recover > "$1"; echo "$$ $1" > {marker}; exec sleep 600\n',
    )
    editor_pid, copy = wait_for_file(marker, proc).split()
    proc.kill()
    proc.wait(timeout=60)
    os.kill(int(editor_pid), signal.SIGKILL)
    status = run_locker("--vault", filled_vault, "status")
    assert b"ORPHANED" in status.stdout
    r = run_locker("--vault", filled_vault, "--passphrase-file", pwfile, "recover", "--yes")
    assert r.returncode == 0, r.stderr
    assert b"changed  a.txt" in r.stdout or b"a.txt" in r.stdout
    assert content(filled_vault, "a.txt") == b"saved-by-recover\n"
    assert not Path(copy).exists()


def test_a_stop_signal_while_the_editor_starts_kills_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM that lands while `Popen()` is still starting the editor (under load the editor
    can be running by then) used to raise out of it and leave the editor running on the wiped
    copy, holding the terminal. Here the real Popen starts the real editor, and the signal
    comes the moment the child exists."""
    started: list[int] = []
    real = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def execute_then_signal(self: subprocess.Popen[bytes], *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        started.append(self.pid)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(subprocess.Popen, "_execute_child", execute_then_signal)
    target = tmp_path / "copy.txt"
    target.write_text("x\n")
    script = editor(tmp_path, "exec sleep 600\n")
    try:
        with pytest.raises(EditInterrupted, match="interrupted by SIGTERM; nothing was saved"):
            run_editor(target, str(script))
        assert len(started) == 1
        with pytest.raises(ChildProcessError):  # killed and reaped: no editor left running
            os.waitpid(started[0], os.WNOHANG)
    finally:
        for pid in started:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
