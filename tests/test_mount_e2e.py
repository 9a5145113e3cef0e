"""`locker mount` end to end: a real mount process, the real watchdog on a real directory, real
short timeouts. The mount's first output line is its directory; the container is checked
through the library after each step."""

from __future__ import annotations

import json
import os
import re
import secrets
import selectors
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import LOCKER, PASSPHRASE, SMALL_KDF_FLAGS, Places, locker_env, require

from locker.store import deferred
from locker.vault import Vault

Run = Callable[..., "subprocess.CompletedProcess[bytes]"]
RESIDUE_READ_LIMIT = 64 * 1024 * 1024


@pytest.fixture
def runtime(places: Places) -> Path:
    """This test's $XDG_RUNTIME_DIR (RAM-backed; see conftest's `places`)."""
    return places.xdg


@pytest.fixture
def env(runtime: Path) -> dict[str, str | None]:
    return {"XDG_RUNTIME_DIR": str(runtime)}


# -- the residue check (issue 9.13): after every mount test, a sentinel secret that the vault
# held is in no file under the test's runtime bases, /dev/shm or the temp dir, and in no output.

SENTINEL_ENTRY = "residue/sentinel.key"


@dataclass
class Residue:
    sentinel: bytes
    since: float
    outputs: list[bytes] = field(default_factory=list)


@pytest.fixture(autouse=True)
def residue(places: Places) -> Iterator[Residue]:
    found = Residue(b"LOCKER-RESIDUE-" + secrets.token_hex(16).encode(), time.time() - 1)
    yield found
    roots = [*places.all(), Path("/dev/shm"), Path(tempfile.gettempdir())]
    left = files_holding(roots, found.sentinel, since=found.since)
    assert left == [], f"the vault's sentinel secret was left in {left}"
    assert [o for o in found.outputs if found.sentinel in o] == [], "a locker output showed it"


@pytest.fixture
def vault(filled_vault: Path, residue: Residue) -> Path:
    with Vault.open(filled_vault, PASSPHRASE, write=True) as v:
        v.add_bytes(SENTINEL_ENTRY, b"key=" + residue.sentinel + b"\n")
        v.commit()
    return filled_vault


@pytest.fixture
def lk(cli: Run, env: dict[str, str | None], vault: Path, residue: Residue) -> Run:
    """`locker ... --vault V --passphrase-file P` with this test's runtime dir."""

    def run(*args: str | os.PathLike[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        done = cli(*args, env={**env, **kwargs.pop("env", {})}, **kwargs)
        residue.outputs += [done.stdout, done.stderr]
        return done

    return run


class Mount:
    def __init__(
        self, proc: subprocess.Popen[bytes], directory: Path, outputs: list[bytes]
    ) -> None:
        self.proc = proc
        self.dir = directory
        self.outputs = outputs

    def wait(self, timeout: float = 15) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        self.outputs += [out, err]
        return self.proc.returncode, out.decode(), err.decode()

    def alive(self) -> bool:
        return self.proc.poll() is None


@pytest.fixture
def mount(
    tmp_path: Path, vault: Path, pwfile: Path, env: dict[str, str | None], residue: Residue
) -> Iterator[Callable[..., Mount]]:
    started: list[Mount] = []

    def start(
        *args: str,
        env_override: dict[str, str | None] | None = None,
        command: tuple[str, ...] = LOCKER,
    ) -> Mount:
        proc = subprocess.Popen(
            [*command, "--vault", str(vault), "--passphrase-file", str(pwfile), "mount", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=locker_env(tmp_path, {**env, **(env_override or {})}),
            cwd=tmp_path,
        )
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        line = b""
        deadline = time.monotonic() + 120  # a guard against a hang, not a time limit
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if sel.select(timeout=0.1):
                byte = os.read(proc.stdout.fileno(), 1)
                if not byte:
                    break
                line += byte
        sel.close()
        if not line.endswith(b"\n"):
            proc.kill()
            raise AssertionError(f"mount printed no directory: {proc.communicate()}")
        started.append(Mount(proc, Path(line.decode().strip()), residue.outputs))
        return started[-1]

    yield start
    for mnt in started:
        if mnt.alive():
            mnt.proc.send_signal(signal.SIGTERM)
            try:
                mnt.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                mnt.proc.kill()
                mnt.proc.communicate()


def contents(vault: Path) -> dict[str, bytes]:
    """The vault's entries (the residue sentinel left out)."""
    with Vault.open(vault, PASSPHRASE) as v:
        return {e.name: v.read_bytes(e.name) for e in v.entries() if e.name != SENTINEL_ENTRY}


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def log_events(lk: Run) -> list[dict[str, Any]]:
    result = lk("log", "--json")
    assert result.returncode == 0, result.stderr
    events: list[dict[str, Any]] = json.loads(result.stdout)
    return events


def test_sync_back_editor_patterns_and_lock_command(
    mount: Callable[..., Mount], lk: Run, vault: Path
) -> None:
    mnt = mount("--idle", "60")
    root = mnt.dir
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "sub" / "deep").stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "sub" / "deep" / "b.key").stat().st_mode) == 0o600
    assert (root / "a.txt").read_bytes() == b"alpha\n"

    (root / "a.txt").write_bytes(b"alpha 2\n")
    assert eventually(lambda: contents(vault)["a.txt"] == b"alpha 2\n", 3)

    (root / "c.env").unlink()
    (root / "d.txt").rename(root / "sub" / "d2.txt")
    (root / "new" / "dir").mkdir(parents=True)
    (root / "new" / "dir" / "n.pem").write_bytes(b"new key")
    # vim: swap file, backup by rename, writability probe, then the new file
    (root / "sub" / "deep" / ".b.key.swp").write_bytes(b"swap")
    (root / "sub" / "deep" / "4913").write_bytes(b"")
    (root / "sub" / "deep" / "4913").unlink()
    (root / "sub" / "deep" / "b.key").rename(root / "sub" / "deep" / "b.key~")
    (root / "sub" / "deep" / "b.key").write_bytes(b"-----BEGIN NEW KEY-----\n")
    (root / "sub" / "deep" / "b.key~").unlink()
    # emacs lock file, and a temp file renamed over the target
    (root / ".#a.txt").symlink_to("user@host.123")
    (root / ".a.txt.tmp").write_bytes(b"alpha 3\n")
    os.replace(root / ".a.txt.tmp", root / "a.txt")
    expected = {
        "a.txt": b"alpha 3\n",
        "new/dir/n.pem": b"new key",
        "sub/d2.txt": b"delta\n",
        "sub/deep/b.key": b"-----BEGIN NEW KEY-----\n",
    }
    assert eventually(lambda: contents(vault) == expected, 4), contents(vault)

    status = json.loads(lk("status", "--json").stdout)
    assert [(s["dir"], s["pid"], s["state"]) for s in status] == [
        (str(root), mnt.proc.pid, "mounted")
    ]
    assert {"vault", "since", "idle_deadline", "hard_deadline"} <= set(status[0])

    locked = lk("lock")
    assert locked.returncode == 0, locked.stderr
    assert locked.stdout.decode() == f"locked {vault} ({root} wiped)\n"  # the caller is told
    code, out, err = mnt.wait()
    assert code == 0, err
    assert "locked (locker lock)" in out
    assert not root.exists()
    assert contents(vault) == expected  # the swap file was never synced
    events = log_events(lk)
    assert events[-1]["event"] == "lock" and events[-1]["detail"] == "locker lock"
    assert any(e["event"] == "sync" for e in events)
    assert json.loads(lk("status", "--json").stdout) == []


def test_writing_commands_are_busy_while_reads_work(
    mount: Callable[..., Mount], lk: Run, tmp_path: Path
) -> None:
    mnt = mount()
    for args in (
        ("rm", "a.txt"),
        ("mv", "a.txt", "z.txt"),
        ("add", str(tmp_path / "vault.locker")),
    ):
        result = lk(*args)
        assert result.returncode == 5, (args, result.stderr)
        assert b"mount" in result.stderr and b"locker: hint:" in result.stderr
    assert lk("ls").stdout.split() == [
        b"a.txt",
        b"c.env",
        b"d.txt",
        b"residue/sentinel.key",
        b"sub/deep/b.key",
    ]
    assert lk("cat", "a.txt").stdout == b"alpha\n"
    assert lk("verify").returncode == 0
    assert lk("info").returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    assert lk("get", "c.env", "--to", out).returncode == 0
    assert (out / "c.env").read_bytes() == b"TOKEN=1\n"
    status = lk("status").stdout.decode()
    left = re.search(r"locks in (\d)m(\d\d)s if idle, in 7h5\dm at the latest", status)
    assert left, status
    assert 0 < int(left[1]) * 60 + int(left[2]) < 300, status  # counting down from 5 minutes
    assert mnt.alive()


def test_idle_lock_without_activity(mount: Callable[..., Mount], lk: Run) -> None:
    start = time.monotonic()
    mnt = mount("--idle", "1.5")
    code, out, _ = mnt.wait(timeout=10)
    assert code == 0
    assert 1.4 < time.monotonic() - start < 8
    assert "locked (idle): no changes; 5 files wiped" in out
    assert "mounted 5 files;" in out
    assert not mnt.dir.exists()
    assert log_events(lk)[-1]["detail"] == "idle"


def test_reading_keeps_the_mount_open_past_the_idle_time(
    mount: Callable[..., Mount], lk: Run
) -> None:
    mnt = mount("--idle", "2")
    start = time.monotonic()
    while time.monotonic() - start < 4.5:  # more than twice the idle time
        (mnt.dir / "a.txt").read_bytes()
        time.sleep(0.5)
        assert mnt.alive(), "locked although a file was read every 0.5 s"
    stopped = time.monotonic()
    code, out, _ = mnt.wait(timeout=10)
    assert code == 0 and "locked (idle)" in out
    assert 1.5 < time.monotonic() - stopped < 5


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_signals_sync_and_lock(
    mount: Callable[..., Mount], lk: Run, vault: Path, sig: signal.Signals
) -> None:
    mnt = mount()
    (mnt.dir / "a.txt").write_bytes(b"written just before the signal\n")
    mnt.proc.send_signal(sig)  # before the debounce: the final sync must save it
    code, out, err = mnt.wait()
    assert code == 0, err
    assert f"locked ({sig.name}): 1 changed saved in 1 sync; 5 files wiped" in out
    assert not mnt.dir.exists()
    assert contents(vault)["a.txt"] == b"written just before the signal\n"
    last = log_events(lk)[-1]
    assert (last["event"], last["detail"]) == ("lock", sig.name)


def test_process_holding_a_file_is_named_and_lock_goes_on(
    mount: Callable[..., Mount], lk: Run
) -> None:
    mnt = mount()
    code = "import sys, time; f = open(sys.argv[1]); print('ready', flush=True); time.sleep(60)"
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(mnt.dir / "c.env"), "holder-marker"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        locked = lk("lock")
        assert locked.returncode == 0, locked.stderr
        # `locker lock` names the holder itself: the mount's terminal may be far away
        told = locked.stderr.decode()
        assert f"locker: warning: process {holder.pid} (python" in told, told
        assert str(mnt.dir / "c.env") in told and "wiped anyway" in told
        assert b"locked " in locked.stdout
        rc, _, err = mnt.wait()
        assert rc == 0
        assert f"process {holder.pid} (python" in err and "c.env" in err
        assert not mnt.dir.exists()
        assert str(holder.pid) in log_events(lk)[-1]["detail"]
    finally:
        holder.kill()
        holder.wait()


def crash(mnt: Mount) -> None:
    mnt.proc.send_signal(signal.SIGKILL)
    mnt.proc.wait()


def test_kill9_then_recover_yes_saves_the_changes(
    mount: Callable[..., Mount], lk: Run, vault: Path, runtime: Path
) -> None:
    mnt = mount()
    (mnt.dir / "a.txt").write_bytes(b"unsaved edit\n")
    (mnt.dir / "fresh.txt").write_bytes(b"unsaved new file\n")
    crash(mnt)  # within the debounce: nothing was synced
    assert contents(vault)["a.txt"] == b"alpha\n"

    ls = lk("ls")
    assert ls.returncode == 0
    warning = ls.stderr.decode()
    assert "locker: warning:" in warning and str(mnt.dir) in warning
    assert "locker: hint: run 'locker recover'" in warning
    assert json.loads(lk("status", "--json").stdout)[0]["state"] == "orphaned"

    report = lk("recover")  # no terminal, no --yes/--discard: report only
    assert report.returncode == 1
    assert b"changed  a.txt" in report.stdout and b"added    fresh.txt" in report.stdout
    assert b"--yes" in report.stderr
    assert mnt.dir.exists()

    done = lk("recover", "--yes")
    assert done.returncode == 0, done.stderr
    assert not mnt.dir.exists()
    data = contents(vault)
    assert data["a.txt"] == b"unsaved edit\n" and data["fresh.txt"] == b"unsaved new file\n"
    assert log_events(lk)[-1]["event"] == "recover"
    assert b"warning" not in lk("ls").stderr
    assert list((runtime / "locker" / "journal").iterdir()) == []


# `locker mount`, SIGKILLed by itself in the middle of the lock's wipe: right after the second
# file was zeroed, before it was unlinked (kill -9, or systemd's SIGKILL at logout).
KILLED_IN_WIPE = (
    sys.executable,
    "-c",
    "import os, signal, sys\n"
    "from locker.cli import main as cli\n"
    "from locker.mount import directory as mountdir\n"
    "real, calls = mountdir._zero_fd, []\n"
    "def zero(fd, size):\n"
    "    real(fd, size)\n"
    "    calls.append(fd)\n"
    "    if len(calls) == 2:\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "mountdir._zero_fd = zero\n"
    "sys.argv[0] = 'locker'\n"
    "sys.exit(cli.main())\n",
)


def test_killed_while_wiping_then_recover_yes_imports_nothing(
    mount: Callable[..., Mount], lk: Run, vault: Path, runtime: Path
) -> None:
    """The final sync was committed before the wipe began: recover finishes the wipe and never
    saves the zeroed (or any) files into the vault."""
    mnt = mount(command=KILLED_IN_WIPE)
    (mnt.dir / "a.txt").write_bytes(b"saved by the final sync\n")
    mnt.proc.send_signal(signal.SIGTERM)
    mnt.proc.wait(timeout=15)
    assert mnt.proc.returncode == -signal.SIGKILL
    left = sorted(p.name for p in mnt.dir.rglob("*") if p.is_file())
    assert len(left) == 4  # one wiped, one zeroed in place, three untouched
    [record] = [json.loads(p.read_bytes()) for p in (runtime / "locker" / "journal").iterdir()]
    assert record["state"] == "wiping"
    expected = {
        "a.txt": b"saved by the final sync\n",
        "sub/deep/b.key": b"-----BEGIN KEY-----\n",
        "c.env": b"TOKEN=1\n",
        "d.txt": b"delta\n",
    }
    assert contents(vault) == expected
    done = lk("recover", "--yes")
    assert done.returncode == 0, done.stderr
    assert b"stopped while wiping" in done.stdout and b"finished the wipe" in done.stdout
    assert b"changed  " not in done.stdout and f"saved into {vault}".encode() not in done.stdout
    assert contents(vault) == expected  # no zeros imported
    assert not mnt.dir.exists()
    assert list((runtime / "locker" / "journal").iterdir()) == []


def test_kill9_then_recover_discard_drops_the_changes(
    mount: Callable[..., Mount], lk: Run, vault: Path
) -> None:
    mnt = mount()
    (mnt.dir / "a.txt").write_bytes(b"unwanted edit\n")
    crash(mnt)
    done = lk("recover", "--discard")
    assert done.returncode == 0, done.stderr
    assert b"changed  a.txt" in done.stdout
    assert not mnt.dir.exists()
    assert contents(vault)["a.txt"] == b"alpha\n"
    assert b"warning" not in lk("ls").stderr


def holds(path: Path, needle: bytes) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        tail = b""
        try:
            while block := f.read(4 * 1024 * 1024):
                if needle in tail + block:
                    return True
                tail = block[-len(needle) :]
        except OSError:
            return False
    return False


def files_holding(roots: list[Path], needle: bytes, since: float = 0.0) -> list[Path]:
    """Files under `roots` that hold `needle`; with `since`, only those changed since then
    (a shared /tmp holds much that no test of ours wrote)."""
    found = []
    for top in roots:
        for dirpath, _, filenames in os.walk(top, onerror=lambda e: None):
            for name in filenames:
                path = Path(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if since and (st.st_mtime < since or st.st_size > RESIDUE_READ_LIMIT):
                    continue
                if holds(path, needle):
                    found.append(path)
    return sorted(set(found))


def test_sentinel_is_nowhere_after_lock(
    mount: Callable[..., Mount], lk: Run, vault: Path, runtime: Path, places: Places
) -> None:
    sentinel = b"SENTINEL-" + secrets.token_hex(16).encode()
    mnt = mount()
    (mnt.dir / "secret.txt").write_bytes(b"key=" + sentinel + b"\n")
    (mnt.dir / ".secret.txt.swp").write_bytes(sentinel)  # editor litter holds it too
    (mnt.dir / "sub" / "copy~").write_bytes(sentinel)
    assert eventually(lambda: "secret.txt" in contents(vault), 3)
    roots = places.all()  # every runtime place this test has: its stand-ins for /dev/shm, /tmp
    assert files_holding([runtime], sentinel)  # the search does find it while mounted
    assert lk("lock").returncode == 0
    assert mnt.wait()[0] == 0
    assert files_holding(roots, sentinel) == []
    assert contents(vault)["secret.txt"] == b"key=" + sentinel + b"\n"


def test_lock_status_recover_with_nothing_mounted(lk: Run, vault: Path) -> None:
    named = f"nothing is mounted for {vault.resolve()}".encode()  # --vault is given: named
    for args, text in (
        (("lock",), named),
        (("status",), named),
        (("recover", "--yes"), b"nothing to recover"),
    ):
        result = lk(*args)
        assert (result.returncode, result.stdout.strip()) == (0, text), result.stderr
    assert lk("recover", "--yes", "--discard").returncode == 2


def test_cli_start_up_does_not_import_watchdog(lk: Run) -> None:
    result = lk("ls", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0
    assert b"locker.mount.runtime" in result.stderr  # the orphan check ran
    assert b"locker.mount.journal" not in result.stderr  # no journal directory: not needed
    for module in (b"watchdog", b"locker.mount.session", b"locker.cli.mount_commands"):
        assert module not in result.stderr


def test_terminal_hangup_locks_like_a_dropped_ssh_session(
    tmp_path: Path, vault: Path, pwfile: Path, env: dict[str, str | None], lk: Run
) -> None:
    """The mount runs on a terminal (the status line redraws with \\r); closing the terminal's
    master side sends SIGHUP, and every later write to the terminal fails: it still locks."""
    import pty

    argv = [*LOCKER, "--vault", str(vault), "--passphrase-file", str(pwfile), "mount"]
    child_env = locker_env(tmp_path, env)
    pid, master = pty.fork()
    if pid == 0:  # the child: exec at once
        os.chdir(tmp_path)
        os.execve(argv[0], argv, child_env)
    output = b""
    deadline = time.monotonic() + 120  # a guard against a hang
    while b"locks in" not in output and time.monotonic() < deadline:
        ready = selectors.DefaultSelector()
        ready.register(master, selectors.EVENT_READ)
        if ready.select(timeout=0.1):
            output += os.read(master, 4096)
        ready.close()
    assert b"locks in" in output and b"\r" in output, output
    # stdout and stderr share the terminal: a warning may come before the directory line
    root = Path(next(x for x in output.split(b"\r\n") if x.startswith(b"/")).decode().strip())
    (root / "a.txt").write_bytes(b"saved on hangup\n")
    os.close(master)
    status = None
    while time.monotonic() < deadline + 15:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError("the mount did not lock after its terminal hung up")
    assert status is not None and os.waitstatus_to_exitcode(status) == 0
    assert not root.exists()
    assert contents(vault)["a.txt"] == b"saved on hangup\n"
    assert log_events(lk)[-1]["detail"] == "SIGHUP"


def test_recover_never_overwrites_what_changed_in_the_vault_since(
    mount: Callable[..., Mount], lk: Run, vault: Path, tmp_path: Path
) -> None:
    """Edit in the mount, kill -9, then `locker add --force` newer content (the writer lock
    died with the mount), then `recover --yes`: the newer content stays, the orphan's edit is
    saved beside it, and the user is told, before and after."""
    mnt = mount()
    (mnt.dir / "a.txt").write_bytes(b"orphan's edit\n")
    (mnt.dir / "d.txt").unlink()
    crash(mnt)
    newer = tmp_path / "newer.txt"
    newer.write_bytes(b"newer, added after the crash\n")
    assert lk("add", newer, "--as", "a.txt", "--force").returncode == 0
    assert lk("add", newer, "--as", "d.txt", "--force").returncode == 0

    preview = lk("recover")  # no terminal: report only, with the conflicts
    assert preview.returncode == 1
    assert b"conflict a.txt: changed in the mount, but changed in the vault" in preview.stdout
    assert b"will keep the vault's version" in preview.stdout
    assert contents(vault)["a.txt"] == b"newer, added after the crash\n"

    done = lk("recover", "--yes")
    assert done.returncode == 0, done.stderr
    out, err = done.stdout.decode(), done.stderr.decode()
    assert out.index("conflict a.txt") < out.index("saved into")  # shown before acting
    assert "conflict d.txt: deleted in the mount, but changed in the vault" in out
    data = contents(vault)
    assert data["a.txt"] == b"newer, added after the crash\n"
    assert data["d.txt"] == b"newer, added after the crash\n"
    [saved] = [n for n in data if n.startswith("a.txt.recovered-")]
    assert re.fullmatch(r"a\.txt\.recovered-\d{8}-\d{6}", saved)
    assert data[saved] == b"orphan's edit\n"
    warnings = [line for line in err.splitlines() if line.startswith("locker: warning:")]
    assert len(warnings) == 2, err
    assert f"saved the mount's as {saved}" in warnings[0]
    assert "d.txt" in warnings[1] and "kept the vault's version" in warnings[1]
    event = log_events(lk)[-1]
    assert event["event"] == "recover" and f"a.txt -> {saved}" in event["detail"]
    assert "kept d.txt" in event["detail"]
    assert not mnt.dir.exists()


def test_mount_is_found_from_a_shell_with_another_runtime_dir(
    mount: Callable[..., Mount], lk: Run, vault: Path, places: Places
) -> None:
    """Mounted from a shell without $XDG_RUNTIME_DIR (cron, su): it lives under /dev/shm; a
    login shell with $XDG_RUNTIME_DIR set still sees it and locks it."""
    require(os.path.isdir("/dev/shm"), "/dev/shm is needed for the runtime-dir fallback")
    mnt = mount(env_override={"XDG_RUNTIME_DIR": None})
    assert mnt.dir.parent == places.shm / f"locker-{os.getuid()}"
    status = lk("status")  # this shell's $XDG_RUNTIME_DIR is the test's own runtime dir
    assert f"mounted at {mnt.dir} by PID {mnt.proc.pid}".encode() in status.stdout, status
    locked = lk("lock")
    assert (locked.returncode, locked.stdout.decode()) == (0, f"locked {vault} ({mnt.dir} wiped)\n")
    assert mnt.wait()[0] == 0
    assert not mnt.dir.exists()


def test_mount_process_cannot_dump_core(mount: Callable[..., Mount]) -> None:
    mnt = mount("--idle", "30")
    limits = Path(f"/proc/{mnt.proc.pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core


def test_hardening_makes_the_process_undumpable(tmp_path: Path) -> None:
    """prctl(PR_GET_DUMPABLE) can only be read by the process itself: ask a fresh one."""
    code = (
        "import ctypes, resource\n"
        "from locker.mount.process import harden_process\n"
        "libc = ctypes.CDLL(None)\n"
        "before = libc.prctl(3, 0, 0, 0, 0)\n"
        "harden_process()\n"
        "print(before, libc.prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, env=locker_env(tmp_path)
    ).stdout
    assert out.split(maxsplit=2) == [b"1", b"0", b"(0, 0)\n"]


def test_export_while_mounted_and_the_mounts_later_saves_lose_nothing(
    mount: Callable[..., Mount], lk: Run, vault: Path, tmp_path: Path
) -> None:
    """A USB backup taken while working in a mount (issue 13): the export reads the vault as
    the mount last saved it, does not wait for or rewrite it, and its audit event joins the
    log with the mount's next save."""
    mnt = mount("--idle", "60")
    (mnt.dir / "a.txt").write_bytes(b"alpha 2\n")
    assert eventually(lambda: contents(vault)["a.txt"] == b"alpha 2\n", 3)
    stick = tmp_path / "stick"
    stick.mkdir()
    bpw = tmp_path / "bundle-pw"
    bpw.write_bytes(b"a different bundle passphrase\n")
    bpw.chmod(0o600)
    done = lk("export", stick / "b.locker", "--bundle-passphrase-file", bpw, *SMALL_KDF_FLAGS)
    assert done.returncode == 0, done.stderr
    assert b"verified: 5 entries" in done.stdout
    with Vault.open(stick / "b.locker", b"a different bundle passphrase") as b:
        assert b.read_bytes("a.txt") == b"alpha 2\n"
    assert log_events(lk)[-1]["event"] == "export"  # shown before the mount saves again
    exported = [n for n in os.listdir(vault.parent) if deferred.is_event_of(vault, n)]

    (mnt.dir / "after.txt").write_bytes(b"written after the export\n")
    assert eventually(lambda: "after.txt" in contents(vault), 3)
    assert lk("lock").returncode == 0
    code, _, err = mnt.wait()
    assert code == 0, err
    assert contents(vault) == {
        "a.txt": b"alpha 2\n",
        "after.txt": b"written after the export\n",
        "c.env": b"TOKEN=1\n",
        "d.txt": b"delta\n",
        "sub/deep/b.key": b"-----BEGIN KEY-----\n",
    }
    kinds = [e["event"] for e in log_events(lk)]
    assert kinds.count("export") == 1 and kinds[-1] == "lock"
    # the export's event was merged by the mount's save; the lock saved nothing, so its event
    # waits beside the vault for the next save
    waiting = [n for n in os.listdir(vault.parent) if deferred.is_event_of(vault, n)]
    assert len(waiting) == 1 and waiting != exported


def recover_on_terminal(
    tmp_path: Path, env: dict[str, str | None], vault: Path, pwfile: Path, typed: bytes
) -> subprocess.CompletedProcess[bytes]:
    """`locker recover` with a real terminal as its standard input, `typed` typed ahead."""
    import pty

    master, slave = pty.openpty()
    try:
        os.write(master, typed)
        return subprocess.run(
            [*LOCKER, "--vault", str(vault), "--passphrase-file", str(pwfile), "recover"],
            stdin=slave,
            capture_output=True,
            env=locker_env(tmp_path, env),
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)


def test_recover_asks_on_a_terminal_leave_then_discard(
    mount: Callable[..., Mount],
    lk: Run,
    vault: Path,
    tmp_path: Path,
    env: dict[str, str | None],
    pwfile: Path,
) -> None:
    mnt = mount()
    (mnt.dir / "a.txt").write_bytes(b"unsaved edit\n")
    crash(mnt)
    before = contents(vault)
    question = b"save these changes into the vault [y], discard them [d], or leave [N]? "

    left = recover_on_terminal(tmp_path, env, vault, pwfile, b"\n")
    assert left.returncode == 0, left.stderr
    assert question in left.stderr
    assert b"changed  a.txt" in left.stdout and b"left as it is" in left.stdout
    assert (mnt.dir / "a.txt").read_bytes() == b"unsaved edit\n"

    dropped = recover_on_terminal(tmp_path, env, vault, pwfile, b"d\n")
    assert dropped.returncode == 0, dropped.stderr
    assert b"discarded: 1 changed" in dropped.stdout
    assert not mnt.dir.exists()
    assert contents(vault) == before
    assert b"nothing to recover" in lk("recover").stdout


def test_recover_asks_on_a_terminal_and_saves(
    mount: Callable[..., Mount],
    vault: Path,
    tmp_path: Path,
    env: dict[str, str | None],
    pwfile: Path,
) -> None:
    mnt = mount()
    (mnt.dir / "fresh.txt").write_bytes(b"unsaved new file\n")
    crash(mnt)
    done = recover_on_terminal(tmp_path, env, vault, pwfile, b"yes\n")
    assert done.returncode == 0, done.stderr
    assert b"saved into" in done.stdout
    assert contents(vault)["fresh.txt"] == b"unsaved new file\n"
    assert not mnt.dir.exists()


def test_recover_of_an_orphan_whose_directory_is_gone(
    mount: Callable[..., Mount], lk: Run, vault: Path
) -> None:
    """The directory was removed by hand (or a reboot cleared the runtime dir): the record
    goes, nothing is asked or touched, and the orphan warning stops."""
    mnt = mount()
    crash(mnt)
    assert b"locker recover" in lk("ls").stderr
    for path in sorted(mnt.dir.rglob("*"), reverse=True):
        path.unlink() if not path.is_dir() else path.rmdir()
    mnt.dir.rmdir()
    done = lk("recover")
    assert done.returncode == 0, done.stderr
    assert b"its directory is gone; nothing to recover" in done.stdout
    assert b"warning" not in lk("ls").stderr
    assert b"nothing to recover" in lk("recover").stdout
