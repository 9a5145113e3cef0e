"""One writer at a time: a second writer gets exit 5 ("in use by PID ... on HOST"), readers
keep working, and after everyone finishes nothing is lost."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

from conftest import LOCKER, OTHER_PASSPHRASE, PASSPHRASE, RunLocker, locker_env

from locker.errors import EXIT_BUSY
from locker.store.lockfile import lock_path
from locker.vault import Vault

HOST = socket.gethostname()
NEW_FROM_STDIN = ("--new-passphrase-file", "-")


def contents(path: Path, passphrase: bytes = PASSPHRASE) -> dict[str, bytes]:
    with Vault.open(path, passphrase) as v:
        return {e.name: v.read_bytes(e.name) for e in v.entries()}


def assert_busy(proc: subprocess.CompletedProcess[bytes], pid: int) -> None:
    assert proc.returncode == EXIT_BUSY, proc.stderr
    first = proc.stderr.decode().splitlines()[0]
    pattern = rf"^locker: error: .*in use by PID {pid} on {re.escape(HOST)}\b"
    assert re.match(pattern, first), proc.stderr
    assert b"Traceback" not in proc.stderr


def test_writer_held_in_process(cli: RunLocker, vault_path: Path, tmp_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("existing", b"committed")
        v.commit()
    new = tmp_path / "new.txt"
    new.write_bytes(b"second writer")
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("staged", b"first writer")
        before = vault_path.read_bytes()
        assert_busy(cli("add", new), os.getpid())
        assert_busy(cli("rm", "existing"), os.getpid())
        assert_busy(cli("mv", "existing", "x"), os.getpid())
        assert_busy(cli("rekey"), os.getpid())
        assert vault_path.read_bytes() == before
        # Readers do not need the lock.
        assert cli("ls").stdout == b"existing\n"
        assert cli("cat", "existing").stdout == b"committed"
        assert cli("verify").returncode == 0
        v.commit()
    assert cli("add", new).returncode == 0
    assert contents(vault_path) == {
        "existing": b"committed",
        "staged": b"first writer",
        "new.txt": b"second writer",
    }


def test_writer_held_by_a_blocked_locker_process(
    cli: RunLocker, run_locker: RunLocker, vault_path: Path, pwfile: Path, tmp_path: Path
) -> None:
    """`locker passwd --new-passphrase-file -` takes the writer lock, then waits on stdin: a real
    locker process holding the lock for exactly as long as the test wants."""
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"1")
        v.commit()
    holder = subprocess.Popen(
        [*LOCKER, "passwd", "--vault", vault_path, "--passphrase-file", pwfile, *NEW_FROM_STDIN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=locker_env(tmp_path),
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if json.loads(lock_path(vault_path).read_bytes() or b"{}").get("pid") == holder.pid:
                    break
            except (OSError, ValueError):
                pass
            assert holder.poll() is None, holder.communicate()
            time.sleep(0.01)
        else:
            raise AssertionError("passwd never took the writer lock")
        new = tmp_path / "b"
        new.write_bytes(b"2")
        assert_busy(cli("add", new), holder.pid)
        assert_busy(cli("rm", "a"), holder.pid)
        assert cli("cat", "a").stdout == b"1"
        assert cli("ls").stdout == b"a\n"
        _, err = holder.communicate(OTHER_PASSPHRASE + b"\n", timeout=60)
        assert holder.returncode == 0, err
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    newpw = tmp_path / "newpw"
    newpw.write_bytes(OTHER_PASSPHRASE)
    proc = run_locker("add", new, "--vault", vault_path, "--passphrase-file", newpw)
    assert proc.returncode == 0, proc.stderr
    assert contents(vault_path, OTHER_PASSPHRASE) == {"a": b"1", "b": b"2"}


def test_writers_racing(
    vault_path: Path, pwfile: Path, tmp_path: Path, run_locker: RunLocker
) -> None:
    """Eight `locker add` processes started together: each exits 0 or 5; every 0 is in the
    vault, every 5 is not; retrying the busy ones then loses nothing."""
    sources = []
    for i in range(8):
        f = tmp_path / f"file{i}"
        f.write_bytes(os.urandom(300_000 + i))
        sources.append(f)
    env = locker_env(tmp_path)
    procs = [
        subprocess.Popen(
            [*LOCKER, "add", f, "--vault", vault_path, "--passphrase-file", pwfile],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        for f in sources
    ]
    results = [(p, *p.communicate(timeout=120)) for p in procs]
    codes = [p.returncode for p, _, _ in results]
    assert set(codes) <= {0, EXIT_BUSY}, [err for _, _, err in results]
    assert 0 in codes
    pids = {p.pid for p in procs}
    for p, _, err in results:
        if p.returncode == EXIT_BUSY:
            # Named the racing writer that held the lock, never "PID ?" or a stale holder.
            found = re.search(rf"in use by PID (\d+) on {re.escape(HOST)}\b", err.decode())
            assert found and int(found.group(1)) in pids - {p.pid}, err
    added = {f.name for f, code in zip(sources, codes, strict=True) if code == 0}
    assert set(contents(vault_path)) == added
    for f, code in zip(sources, codes, strict=True):
        if code == EXIT_BUSY:
            proc = run_locker("add", f, "--vault", vault_path, "--passphrase-file", pwfile)
            assert proc.returncode == 0, proc.stderr
    assert contents(vault_path) == {f.name: f.read_bytes() for f in sources}
    print(f"racing writers: {codes.count(0)} succeeded, {codes.count(EXIT_BUSY)} got exit 5")
