"""Crash campaign (issue 10, item 8): `kill -9` at random moments of every command that saves.

For each of add, add --force, rm, mv, passwd and rekey, a fresh copy of one vault is changed
by the real CLI, killed at a moment drawn over the command's own measured duration, and then
opened: it must hold exactly the old or exactly the new state (passwd: the old or the new
passphrase opens it, the content unchanged). In format 2, add, add --force and mv are appends
(a kill before the record switch leaves new bytes no record names: the old state) and rm,
passwd and rekey compactions (docs/FORMAT.md, section 21). 40 trials per command in CI (240
in all); LOCKER_STRESS=1 runs 200 per command (1,200). The old/new counts are printed.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import LOCKER, OTHER_PASSPHRASE, PASSPHRASE, TINY_KDF, locker_env

from locker.errors import BadKeyError
from locker.vault import Vault, create

STRESS = os.environ.get("LOCKER_STRESS") == "1"
TRIALS = 200 if STRESS else 40
SEED = 20261130
BIG = 12 * 1024 * 1024

State = tuple[bytes, dict[str, str]]


def state(path: Path) -> State:
    """(the passphrase that opens it, entry name -> SHA-256), every chunk verified."""
    for passphrase in (PASSPHRASE, OTHER_PASSPHRASE):
        try:
            v = Vault.open(path, passphrase)
        except BadKeyError:
            continue
        with v:
            out = {}
            for e in v.entries():
                digest = hashlib.sha256()
                for chunk in v.chunks(e.name):
                    digest.update(chunk)
                out[e.name] = digest.hexdigest()
        return passphrase, out
    raise AssertionError("neither passphrase opens the vault")


COMMANDS = {
    "add": ("add", "{src}", "--as", "added.bin"),
    "add --force": ("add", "{src}", "--as", "keep/two.pem", "--force"),
    "rm": ("rm", "keep/one.env"),
    "mv": ("mv", "keep/two.pem", "moved.pem"),
    "passwd": ("passwd", "--new-passphrase-file", "{newpw}"),
    "rekey": ("rekey",),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_kill_9_at_random_moments_leaves_old_or_new(
    command: str, big_file_dir: Path, tmp_path: Path, pwfile: Path
) -> None:
    base = big_file_dir / "base.locker"
    create(base, PASSPHRASE, TINY_KDF)
    with Vault.open(base, PASSPHRASE, write=True) as v:
        v.add_bytes("keep/one.env", b"A=1\n")
        v.add_bytes("keep/two.pem", os.urandom(70_000))
        v.add_bytes("big.bin", os.urandom(BIG))
        v.add_bytes("empty", b"")
        v.commit()
    src, newpw = big_file_dir / "src.bin", tmp_path / "new.pw"
    src.write_bytes(os.urandom(BIG))
    newpw.write_bytes(OTHER_PASSPHRASE + b"\n")
    newpw.chmod(0o600)
    vault = big_file_dir / "v.locker"
    args = [a.format(src=src, newpw=newpw) for a in COMMANDS[command]]
    cmd = [*LOCKER, *args, "--vault", str(vault), "--passphrase-file", str(pwfile)]
    env = locker_env(tmp_path)
    old = state(base)

    def start() -> subprocess.Popen[bytes]:
        shutil.copyfile(base, vault)
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )

    def full_run() -> float:
        t0 = time.monotonic()
        proc = start()
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        return time.monotonic() - t0

    full_run()  # warm the caches
    duration = max(full_run(), full_run())
    new = state(vault)
    old_image = base.read_bytes()
    assert vault.read_bytes() != old_image

    rnd = random.Random(f"{SEED}:{command}")
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        delay = rnd.uniform(0.0, 1.1 * duration)
        proc = start()
        time.sleep(delay)  # the random moment itself; nothing waits on it being "right"
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        assert b"Traceback" not in err, err
        got = state(vault)
        where = f"{command}, trial {trial}, kill after {delay:.3f} s"
        assert got in (old, new), where
        if old == new:  # rekey keeps passphrase and content: the bytes tell
            outcome = "new" if vault.read_bytes() != old_image else "old"
        else:
            outcome = "new" if got == new else "old"
        outcomes[f"{outcome} ({'exited' if finished else 'killed'})"] += 1
        if finished:
            assert outcome == "new" and proc.returncode == 0, err
    # the next writer cleans up whatever the last kill left, and saves
    proc = start()
    assert proc.wait(timeout=120) == 0
    assert not list(vault.parent.glob(f".{vault.name}.tmp-*"))
    print(
        f"\ncrash campaign: {command}: {TRIALS} kills over a {duration:.2f} s run: "
        f"{dict(sorted(outcomes.items()))}, 0 broken"
    )
    assert sum(outcomes.values()) == TRIALS
