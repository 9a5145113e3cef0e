"""Figures for the issue's closing note, with loose budgets: a vault of 500 files of 4 KiB.

- mount time without the KDF: materialise, the audit commit and starting the observer
  (the library's Session.start, timed after the vault is unlocked);
- sync latency of one changed file, median and worst of 20, from the write in the mount
  directory of a real `locker mount` process to the new container file being in place
  (its inode changes when a save renames over it), checked through the library at the end;
- lock time: from `locker lock`'s signal to the mount process having wiped and exited.

Run with `pytest -s tests/test_mount_perf.py` to see the figures.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import PASSPHRASE, Places
from test_mount_e2e import Mount, contents, env, mount, residue  # noqa: F401 - fixtures

from locker.mount import journal as jn
from locker.mount import runtime as rt
from locker.mount import session as m
from locker.vault import Vault

FILES = 500
SIZE = 4096


@pytest.fixture
def runtime(places: Places) -> Path:
    """A RAM-backed runtime dir where there is one, as $XDG_RUNTIME_DIR is in real use: the
    test's own (conftest's places), removed with it and by the next run if this one is killed."""
    return places.xdg


@pytest.fixture
def vault(vault_path: Path) -> Path:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        for i in range(FILES):
            v.add_bytes(f"dir{i % 10}/file{i:03d}.key", os.urandom(SIZE))
        v.commit()
    return vault_path


def test_mount_time_without_kdf(vault: Path, runtime: Path) -> None:
    journal_dir = runtime / "journal"
    rt.ensure_private_dir(journal_dir)
    root = runtime / "mnt-perf"
    root.mkdir(mode=0o700)
    with Vault.open(vault, PASSPHRASE, write=True, purpose="mount") as v:
        session = m.Session(v, root, journal=jn.Journal(journal_dir))
        start = time.perf_counter()
        session.start()
        mounted = time.perf_counter() - start
        start = time.perf_counter()
        session.lock("test")
        locked = time.perf_counter() - start
    print(f"\nmount (no KDF): {mounted * 1000:.0f} ms; lock (library): {locked * 1000:.0f} ms")
    assert len(session.known) == FILES
    assert mounted < 10 and locked < 10


def saved_state(vault: Path) -> tuple[int, int, int]:
    """What a save changes: the inode (a compaction) or the size and mtime (an append)."""
    st = os.stat(vault)
    return st.st_ino, st.st_size, st.st_mtime_ns


def test_sync_latency_and_lock_time(mount: Callable[..., Mount], vault: Path) -> None:  # noqa: F811
    mnt = mount()
    target = mnt.dir / "dir3" / "file123.key"
    latencies = []
    for i in range(20):
        before = saved_state(vault)
        payload = f"version {i}\n".encode() * 100
        start = time.perf_counter()
        target.write_bytes(payload)
        while saved_state(vault) == before:
            assert time.perf_counter() - start < 10, "change never reached the container"
            time.sleep(0.005)
        latencies.append(time.perf_counter() - start)
        time.sleep(0.1)
    assert contents(vault)["dir3/file123.key"] == payload
    start = time.perf_counter()
    mnt.proc.send_signal(signal.SIGUSR1)  # what `locker lock` sends
    code, _, err = mnt.wait()
    lock_time = time.perf_counter() - start
    assert code == 0, err
    median, worst = statistics.median(latencies), max(latencies)
    print(
        f"\nsync latency of one file: median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms"
        f" (of 20); lock (signal to exit): {lock_time * 1000:.0f} ms"
    )
    assert median < 1.5 and worst < 3 and lock_time < 10
