"""Crash safety: `kill -9` a `locker add` of a large file at many random moments. Afterwards the
vault always opens to exactly the old or exactly the new state, and the temp files a killed
writer leaves behind never break a later write."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import LOCKER, PASSPHRASE, SMALL_KDF, locker_env, write_random_file

from locker.vault import Vault, create

TRIALS = 32
SEED = 20241128
TARGET_SECONDS = 0.6  # how long one complete `locker add` should take
MIN_SIZE, MAX_SIZE = 32 * 1024 * 1024, 200 * 1024 * 1024


def state(path: Path) -> dict[str, str]:
    """Entry name -> SHA-256 of its content, read (and so verified) through the library."""
    out = {}
    with Vault.open(path, PASSPHRASE) as v:
        for e in v.entries():
            digest = hashlib.sha256()
            for chunk in v.chunks(e.name):
                digest.update(chunk)
            out[e.name] = digest.hexdigest()
    return out


def temps(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.tmp-*"))


@pytest.mark.slow
def test_kill_9_during_add_leaves_old_or_new(
    big_file_dir: Path, tmp_path: Path, pwfile: Path
) -> None:
    # The vault and the big input both live in RAM (/dev/shm when there is one): a kill -9
    # does not drop the page cache, so the disk adds nothing but minutes of I/O to this test.
    vault = big_file_dir / "v.locker"
    create(vault, PASSPHRASE, SMALL_KDF)
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_bytes("keep/one.env", b"A=1\n")
        v.add_bytes("keep/two.pem", os.urandom(70_000))
        v.add_bytes("empty", b"")
        v.commit()
    old_image = vault.read_bytes()
    old_state = state(vault)
    big = big_file_dir / "big.bin"
    env = locker_env(tmp_path)
    cmd = [*LOCKER, "add", big, "--vault", vault, "--passphrase-file", pwfile]

    def add() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )

    def full_add() -> float:
        vault.write_bytes(old_image)
        start = time.monotonic()
        proc = add()
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        return time.monotonic() - start

    # Calibrate: a file size for which one complete add takes about TARGET_SECONDS
    # (after one warm-up run that fills the page and byte-code caches).
    size = 96 * 1024 * 1024
    digest = write_random_file(big, size, seed=1)
    full_add()
    duration = full_add()
    for _ in range(3):
        if 0.8 * TARGET_SECONDS < duration < 1.5 * TARGET_SECONDS:
            break
        factor = min(2.0, max(0.5, TARGET_SECONDS / max(duration, 0.01)))
        scaled = int(size * factor) // (1024 * 1024) * 1024 * 1024
        if max(MIN_SIZE, min(MAX_SIZE, scaled)) == size:
            break
        size = max(MIN_SIZE, min(MAX_SIZE, scaled))
        digest = write_random_file(big, size, seed=1)
        duration = full_add()
    duration = max(duration, full_add())  # the slower of two: the machine may be shared
    new_state = {**old_state, "big.bin": digest.hex()}
    assert state(vault) == new_state

    rnd = random.Random(SEED)
    outcomes: list[tuple[float, str, bool, int]] = []  # delay, outcome, finished, temps left

    def trial(delay: float) -> None:
        if vault.read_bytes() != old_image:
            vault.write_bytes(old_image)
        proc = add()
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stderr.close()
        assert b"Traceback" not in err, err
        got = state(vault)
        assert got in (old_state, new_state), f"kill after {delay:.3f} s: {sorted(got)}"
        outcome = "new" if got == new_state else "old"
        if finished:
            assert outcome == "new" and proc.returncode == 0, err
        outcomes.append((delay, outcome, finished, len(temps(vault))))

    # Delays span the add's duration and a little beyond. The estimate follows the machine:
    # an add that finished before its kill means adds got faster (a shared machine's load
    # varies), so the window shrinks a little; a kill mid-add lets it grow a little.
    estimate = duration
    for _ in range(TRIALS):
        trial(rnd.uniform(0.0, 1.2 * estimate))
        estimate *= 0.93 if outcomes[-1][2] else 1.02
    # Timing on a busy machine can skew one way; a few more kills aimed at the missing side.
    for _ in range(6):
        seen = {outcome for _, outcome, _, _ in outcomes}
        if seen == {"old", "new"}:
            break
        trial(rnd.uniform(0.1, 0.5) * duration if "old" not in seen else 2.0 * duration)

    old = sum(o == "old" for _, o, _, _ in outcomes)
    new_running = sum(o == "new" and not f for _, o, f, _ in outcomes)
    new_done = sum(o == "new" and f for _, o, f, _ in outcomes)
    with_temps = sum(t > 0 for _, _, _, t in outcomes)
    print(
        f"\ncrash: file {size >> 20} MiB, full add {duration:.2f} s (at the end {estimate:.2f} s), "
        f"{len(outcomes)} kills: "
        f"old {old}, new {new_running + new_done} (killed while running {new_running}, "
        f"after exit {new_done}); temp files left behind after {with_temps}"
    )
    assert len(outcomes) >= 30
    assert old >= 1 and new_running + new_done >= 1

    # Leftover temp files do not break later writes; the next writer removes them.
    leftover = vault.with_name(f".{vault.name}.tmp-000000000000")
    leftover.write_bytes(old_image[:100])
    vault.write_bytes(old_image)
    duration = full_add()
    assert temps(vault) == []
    assert state(vault) == new_state
