"""Campaigns against the lock (issue 9.14, 9.15): short in CI, long with LOCKER_STRESS=1. Each
prints its trial count and results.

- kill-during-lock: a real `locker mount` SIGKILLs itself at a random point of the lock (the
  final sync, each journal write, each file zeroed, unlinked or removed), on a normal runtime
  dir, one whose journal can no longer be written (full tmpfs), and with a vault that cannot
  take the final sync (full disk); then `locker recover --yes`. Every edit, addition and
  deletion made in the mount is in the vault, no entry the mount did not delete is gone, no
  zeroed file was imported, and nothing is left behind.
- lock-race: writers by path (atomic replace and append), by a held descriptor, renames,
  deletes and a growing file run while `locker lock`, SIGTERM, SIGHUP or the idle timer lock
  the mount: every byte written before the lock request is in the vault, and the directory
  is gone.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import test_mount_e2e as e2e
from conftest import LOCKER, PASSPHRASE
from test_mount_e2e import Mount, Run, contents

from locker.vault import Vault

runtime, env, vault, lk, mount = e2e.runtime, e2e.env, e2e.vault, e2e.lk, e2e.mount
residue = e2e.residue  # autouse: the residue check after every trial's test

STRESS = os.environ.get("LOCKER_STRESS") == "1"
SEED = int(os.environ.get("LOCKER_SEED", str(time.time_ns() % 1_000_000)))

# `locker mount` that counts the steps of its own lock and SIGKILLs itself at step
# $LOCKER_TEST_KILL_AT (0: never; the count is then written to $LOCKER_TEST_COUNT). With
# $LOCKER_TEST_FULL_JOURNAL=1 no journal record can be written once the lock starts (a full
# tmpfs: the empty marker still can); with $LOCKER_TEST_FAIL_SYNC=1 the vault cannot take the
# final sync (a full disk).
KILLING_MOUNT = (
    *LOCKER[:1],
    "-c",
    """
import errno, os, signal, sys
from locker.cli import main as cli
from locker.mount import directory as mountdir, journal as jn, session as m, sync
from locker.vault import Vault

kill_at = int(os.environ.get("LOCKER_TEST_KILL_AT", "0"))
state = {"armed": False, "n": 0}

def step():
    if state["armed"]:
        state["n"] += 1
        if state["n"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

def counted(owner, name, fail=None):
    real = getattr(owner, name)
    def wrapper(*args, **kwargs):
        step()
        if fail and state["armed"] and os.environ.get(fail) == "1":
            raise OSError(errno.ENOSPC, "No space left on device")
        result = real(*args, **kwargs)
        step()
        return result
    setattr(owner, name, wrapper)

real_lock = m.Session.lock
def lock(self, reason):
    state["armed"] = True
    return real_lock(self, reason)
m.Session.lock = lock
counted(sync.Syncer, "commit")
counted(Vault, "commit", "LOCKER_TEST_FAIL_SYNC")
counted(jn.Journal, "write", "LOCKER_TEST_FULL_JOURNAL")
counted(jn.Journal, "mark_wiping")
counted(mountdir, "_zero_fd")
counted(os, "unlink")
counted(os, "rmdir")
sys.argv[0] = "locker"
code = cli.main()
if os.environ.get("LOCKER_TEST_COUNT"):
    with open(os.environ["LOCKER_TEST_COUNT"], "w") as f:
        f.write(str(state["n"]))
sys.exit(code)
""",
)
MODES = ("normal", "full journal", "failed sync")
LONG = pytest.mark.timeout(3000 if STRESS else 300)


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n{text}")


def fill(vault: Path, n: int) -> dict[str, bytes]:
    files = {f"f/{i:04d}.txt": f"entry {i}\n".encode() * 3 for i in range(n)}
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        for name, data in files.items():
            v.add_bytes(name, data)
        v.commit()
    return contents(vault)


def edit(root: Path, start: dict[str, bytes], rnd: random.Random) -> dict[str, bytes]:
    """Edit, add and delete a few files in the mount; return what the vault should hold."""
    want = dict(start)
    names = sorted(n for n in start if n.startswith("f/"))
    for name in rnd.sample(names, 3):
        want[name] = b"edited " + name.encode() + b"\n"
        (root / name).write_bytes(want[name])
    for name in rnd.sample([n for n in names if want[n] == start[n]], 2):
        del want[name]
        (root / name).unlink()
    for i in range(2):  # as many added as deleted: the campaign never runs out of files
        name = f"f/new-{rnd.randrange(10**9)}-{i}.txt"
        want[name] = b"added\n"
        (root / name).write_bytes(want[name])
    return want


@LONG
def test_kill_during_lock_then_recover_loses_nothing(
    mount: Callable[..., Mount],
    lk: Run,
    vault: Path,
    runtime: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rnd = random.Random(SEED)
    files = 300 if STRESS else 12
    trials = 90 if STRESS else 2 * len(MODES)
    start = fill(vault, files)
    count_file = tmp_path / "steps"
    results = {mode: [0, 0] for mode in MODES}  # trials, killed
    steps: dict[str, int] = {}
    for trial in range(trials):
        mode = MODES[trial % len(MODES)]
        extra = {
            "LOCKER_TEST_FULL_JOURNAL": "1" if mode == "full journal" else "0",
            "LOCKER_TEST_FAIL_SYNC": "1" if mode == "failed sync" else "0",
        }
        if mode in steps:
            kill_at = rnd.randint(1, steps[mode])
            extra["LOCKER_TEST_KILL_AT"] = str(kill_at)
        else:  # the first run of each mode counts the steps of its lock
            kill_at = 0
            extra["LOCKER_TEST_COUNT"] = str(count_file)
        mnt = mount(command=KILLING_MOUNT, env_override=extra)
        want = edit(mnt.dir, contents(vault), rnd)
        mnt.proc.send_signal(signal.SIGTERM)
        mnt.wait(timeout=60)
        if mode not in steps:
            steps[mode] = max(int(count_file.read_text()), 1)
        results[mode][0] += 1
        results[mode][1] += mnt.proc.returncode == -signal.SIGKILL
        done = lk("recover", "--yes")
        assert done.returncode == 0, (mode, kill_at, done.stdout, done.stderr)
        got = contents(vault)
        lost = sorted(n for n in start if n in want and n not in got)
        assert not lost, f"{mode}, killed at step {kill_at}: entries lost {lost}"
        assert got == want, f"{mode}, killed at step {kill_at}: {set(got) ^ set(want)}"
        assert not any(d and not d.strip(b"\0") for d in got.values()), "a zeroed file imported"
        assert not mnt.dir.exists()
        assert list((runtime / "locker" / "journal").iterdir()) == []
    report(
        capsys,
        f"kill-during-lock (seed {SEED}, {files} files): {trials} trials, "
        + ", ".join(f"{m}: {t} ({k} killed)" for m, (t, k) in results.items())
        + f"; lock steps {steps}; 0 entries lost, 0 zeroed files imported, 0 directories left",
    )


TRIGGERS = ("locker lock", "SIGTERM", "SIGHUP", "idle")


class Writers:
    """Threads writing into a mount until stopped or the directory is gone; `done` holds, for
    each, the last write that completed (what must be in the vault if it came before the lock
    request)."""

    def __init__(self, root: Path, grow_to: int) -> None:
        self.root, self.grow_to = root, grow_to
        self.stop = threading.Event()
        self.done: dict[str, int] = {}
        self.lock = threading.Lock()
        (root / "held.txt").write_bytes(b"")
        (root / "grow.bin").write_bytes(b"")  # each trial grows it from nothing to grow_to
        (root / "r-a.txt").write_bytes(b"renamed back and forth\n")
        self.held = os.open(root / "held.txt", os.O_RDWR)
        jobs = (self._replace, self._append, self._pwrite, self._rename, self._churn, self._grow)
        self.threads = [threading.Thread(target=self._run, args=(job,)) for job in jobs]
        for t in self.threads:
            t.start()

    def _run(self, job: Callable[[int], str | None]) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                key = job(i)
            except OSError:
                return  # the directory was wiped under it
            if key is None:
                return
            with self.lock:
                self.done[key] = i
            i += 1

    def _replace(self, i: int) -> str:  # an editor's save: write a temp file, rename over
        tmp = self.root / "pw.txt~"
        tmp.write_bytes(f"version {i:08d}\n".encode())
        os.replace(tmp, self.root / "pw.txt")
        return "pw"

    def _append(self, i: int) -> str:
        with open(self.root / "app.log", "ab") as f:
            f.write(f"line {i:08d}\n".encode())
        return "log"

    def _pwrite(self, i: int) -> str:  # a process that keeps its file open
        os.pwrite(self.held, f"{i:08d}\n".encode() * 64, 0)
        return "held"

    def _rename(self, i: int) -> str:
        a, b = self.root / "r-a.txt", self.root / "r-b.txt"
        os.rename(a, b) if i % 2 == 0 else os.rename(b, a)
        return "rename"

    def _churn(self, i: int) -> str:
        path = self.root / f"churn-{i % 5}.txt"
        path.write_bytes(b"short-lived\n")
        path.unlink()
        return "churn"

    def _grow(self, i: int) -> str | None:
        size = (i + 1) * 256 * 1024
        if size > self.grow_to:
            return None
        with open(self.root / "grow.bin", "ab") as f:
            f.write(b"g" * 256 * 1024)
        return "grow"

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.done)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
        os.close(self.held)


@LONG
def test_writers_racing_the_lock_lose_no_byte_written_before_it(
    mount: Callable[..., Mount],
    lk: Run,
    vault: Path,
    runtime: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rnd = random.Random(SEED)
    trials = 40 if STRESS else len(TRIGGERS)
    grow_to = 80 * 1024 * 1024 if STRESS else 3 * 1024 * 1024
    kept_then_recovered = 0
    for trial in range(trials):
        trigger = TRIGGERS[trial % len(TRIGGERS)]
        mnt = mount("--idle", "2") if trigger == "idle" else mount()
        writers = Writers(mnt.dir, grow_to)
        try:
            time.sleep(rnd.uniform(0.2, 1.0))  # let them run: the lock comes at a random moment
            if trigger == "idle":
                writers.finish()
            before = writers.snapshot()
            if trigger == "locker lock":
                lk("lock")
            elif trigger != "idle":
                mnt.proc.send_signal(getattr(signal, trigger))
            code, _, err = mnt.wait(timeout=120)
        finally:
            writers.finish() if not writers.stop.is_set() else None
        if code != 0:  # a file still being written, or one a writer keeps recreating, is left
            assert "kept" in err or "could not wipe" in err, err
            kept_then_recovered += 1
            done = lk("recover", "--yes")
            assert done.returncode == 0, done.stderr
        got = contents(vault)
        what = f"trigger {trigger}, trial {trial}, before the lock: {before}"
        if "pw" in before:
            assert int(got["pw.txt"].split()[1]) >= before["pw"], what
        if "log" in before:
            assert got["app.log"].count(b"\n") >= before["log"] + 1, what
        if "held" in before:
            versions = {int(v) for v in got["held.txt"].split()}
            assert versions and min(versions) >= before["held"], what
        assert [n for n in ("r-a.txt", "r-b.txt") if n in got], what
        if "grow" in before:
            assert len(got["grow.bin"]) >= (before["grow"] + 1) * 256 * 1024, what
        assert not mnt.dir.exists(), what
        assert list((runtime / "locker" / "journal").iterdir()) == [], what
    report(
        capsys,
        f"lock-race (seed {SEED}): {trials} trials over {', '.join(TRIGGERS)}; growing file up "
        f"to {grow_to // 2**20} MiB; {kept_then_recovered} locks left a file being "
        "written (kept or refilled) and recover took it; 0 bytes written before a lock request lost, 0 "
        "directories left",
    )
