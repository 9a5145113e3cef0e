"""`get` never leaves plaintext behind: a hang-up, SIGTERM or `kill -9` mid-write, or a chunk
that fails authentication, leaves the target directory as it was (issue 10, item 2)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LOCKER, PASSPHRASE, TINY_KDF, locker_env, write_random_file

from locker.errors import AuthenticationError
from locker.signals import Terminated, exit_cleanly
from locker.store import safefs
from locker.vault import Vault, create

BIG = 96 * 1024 * 1024


def _hangup_default() -> None:
    """In the child before it runs: SIGHUP's default action. Under `nohup` the test run ignores
    SIGHUP and every child inherits that; `get` rightly keeps an ignored hang-up ignored
    (`exit_cleanly`), so a test of what a hang-up does starts its child as a terminal would."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture
def hangup_default() -> Iterator[None]:
    """SIGHUP's default action in this process for the test (see `_hangup_default`)."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.fixture
def big_vault(tmp_path: Path, big_file_dir: Path) -> Path:
    src = big_file_dir / "big.bin"
    write_random_file(src, BIG)
    path = big_file_dir / "v.locker"
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_file("big", src)
        v.commit()
    src.unlink()
    return path


def _writing_into(pid: int, target: Path) -> bool:
    """Whether process `pid` holds a file in `target` open (named or O_TMPFILE)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        links = [os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir)]
    except OSError:
        return False
    return any(link.startswith(f"{target}/") for link in links)


def _stop_mid_write(tmp_path: Path, vault: Path, target: Path) -> subprocess.Popen[bytes] | None:
    """Start `locker get`, and SIGSTOP it while it is writing; None if it finished first."""
    pwfile = tmp_path / "pw"
    pwfile.write_bytes(PASSPHRASE + b"\n")
    pwfile.chmod(0o600)
    args = ("get", "big", "--to", target, "--vault", vault, "--passphrase-file", pwfile)
    proc = subprocess.Popen(
        [*LOCKER, *map(os.fspath, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=locker_env(tmp_path),
        preexec_fn=_hangup_default,
    )
    while proc.poll() is None:
        if _writing_into(proc.pid, target):
            os.kill(proc.pid, signal.SIGSTOP)
            if _writing_into(proc.pid, target):
                return proc
            os.kill(proc.pid, signal.SIGCONT)
    proc.communicate()
    return None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_a_signal_mid_get_leaves_nothing_in_the_target(
    tmp_path: Path, big_vault: Path, signum: signal.Signals
) -> None:
    for attempt in range(5):
        target = tmp_path / f"out{attempt}"
        target.mkdir()
        proc = _stop_mid_write(tmp_path, big_vault, target)
        if proc is not None:
            break
        print(f"attempt {attempt}: get finished before it could be stopped")
    else:
        pytest.fail("get always finished before it could be stopped mid-write")
    os.kill(proc.pid, signum)
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate()
    assert os.listdir(target) == []
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + signum, err
        assert err.decode() == f"locker: terminated by {signum.name}\n"


def _chunks_then(exc: BaseException) -> Iterator[bytes]:
    yield b"secret " * 1000
    raise exc


@pytest.mark.parametrize("anonymous", [True, False], ids=["O_TMPFILE", "named temp"])
@pytest.mark.parametrize("force", [False, True])
def test_a_failed_write_leaves_no_file_and_no_temp(
    tmp_path: Path, anonymous: bool, force: bool
) -> None:
    tmp_path = tmp_path / "target"
    tmp_path.mkdir()
    root = safefs.open_dir(tmp_path)
    try:
        with pytest.raises(AuthenticationError):
            safefs.write_file(
                root,
                "x",
                _chunks_then(AuthenticationError("chunk 1 failed")),
                force=force,
                anonymous=anonymous,
            )
    finally:
        os.close(root)
    assert os.listdir(tmp_path) == []


def _signal_self_midway(signum: int) -> Iterator[bytes]:
    yield b"secret " * 1000
    os.kill(os.getpid(), signum)
    yield b"never written"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.usefixtures("hangup_default")
def test_exit_cleanly_unwinds_a_named_temp_write(tmp_path: Path, signum: int) -> None:
    tmp_path = tmp_path / "target"
    tmp_path.mkdir()
    root = safefs.open_dir(tmp_path)
    try:
        with pytest.raises(Terminated) as caught, exit_cleanly():
            safefs.write_file(root, "x", _signal_self_midway(signum), anonymous=False)
    finally:
        os.close(root)
    assert caught.value.exit_code == 128 + signum
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signum) is signal.SIG_DFL


def test_exit_cleanly_keeps_an_ignored_hangup_ignored() -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with exit_cleanly():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_get_with_o_tmpfile_still_refuses_to_overwrite(tmp_path: Path) -> None:
    tmp_path = tmp_path / "target"
    tmp_path.mkdir()
    root = safefs.open_dir(tmp_path)
    try:
        safefs.write_file(root, "x", [b"one"])
        with pytest.raises(Exception, match="already exists"):
            safefs.write_file(root, "x", [b"two"])
        safefs.write_file(root, "x", [b"three"], force=True)
    finally:
        os.close(root)
    assert (tmp_path / "x").read_bytes() == b"three"
    assert (tmp_path / "x").stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["x"]
