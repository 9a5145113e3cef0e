"""Large files stream: adding and reading a big entry keeps the process's peak memory within
32 MiB of a trivial locker command's, measured on real subprocesses.

Linux starts a child's ru_maxrss at the RSS of the process it was forked from (the high-water
mark of the old address space is kept across exec), so measuring the locker child of a large
pytest process directly would report pytest's size. A tiny wrapper process runs locker and
reports RUSAGE_CHILDREN.ru_maxrss: the peak of exactly that one locker process (the wrapper's
own few MiB at fork are below any locker command's peak).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LOCKER, PASSPHRASE, SMALL_KDF, locker_env, write_random_file

from locker.vault import Vault, create

SIZE = 256 * 1024 * 1024
LIMIT_MIB = 32
WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(rc)\n"
)


def peak_rss_mib(
    args: list[str | os.PathLike[str]], env: dict[str, str], report: Path, stdout: int | None = None
) -> float:
    """Run locker with `args` under the wrapper; return its peak RSS in MiB (it must exit 0)."""
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, report, *LOCKER, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL if stdout is None else stdout,
        stderr=subprocess.PIPE,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return int(report.read_text()) / 1024  # ru_maxrss is in KiB on Linux


@pytest.mark.slow
def test_add_and_cat_of_a_large_file_stream(
    big_file_dir: Path, tmp_path: Path, pwfile: Path
) -> None:
    vault = big_file_dir / "v.locker"
    create(vault, PASSPHRASE, SMALL_KDF)
    big = big_file_dir / "big.bin"
    digest = write_random_file(big, SIZE, seed=5)
    env = locker_env(tmp_path)
    common: list[str | os.PathLike[str]] = ["--vault", vault, "--passphrase-file", pwfile]
    report = tmp_path / "maxrss"

    # The meter itself: a child that touches 64 MiB must show it.
    control = subprocess.run(
        [sys.executable, "-c", WRAPPER, report, sys.executable, "-c", "b = b'x' * (64 << 20)"],
        check=True,
    )
    assert control.returncode == 0 and int(report.read_text()) / 1024 > 64

    peak_rss_mib(["info", "--vault", vault], env, report)  # warm the byte-code cache
    baseline = min(peak_rss_mib(["info", "--vault", vault], env, report) for _ in range(2))
    # Unlocking costs the KDF's memory (8 MiB here) on top; `ls` shows that part alone.
    unlocked = peak_rss_mib(["ls", *common], env, report)
    added = peak_rss_mib(["add", big, *common], env, report)
    with (tmp_path / "out.bin").open("wb") as out:
        catted = peak_rss_mib(["cat", "big.bin", *common], env, report, stdout=out.fileno())

    assert hashlib.sha256((tmp_path / "out.bin").read_bytes()).digest() == digest
    (tmp_path / "out.bin").unlink()
    with Vault.open(vault, PASSPHRASE) as v:
        assert v.entry("big.bin").size == SIZE
    print(
        f"\npeak RSS: info {baseline:.1f} MiB, ls {unlocked:.1f} MiB, "
        f"add {SIZE >> 20} MiB {added:.1f} MiB (+{added - baseline:.1f}), "
        f"cat {catted:.1f} MiB (+{catted - baseline:.1f})"
    )
    assert added - baseline < LIMIT_MIB
    assert catted - baseline < LIMIT_MIB


MOVED_FILES = 16
MOVED_SIZE = 60_000_000
SYNC_LIMIT_MIB = 48


def _mount_peak_mib(
    vault: Path, pwfile: Path, env: dict[str, str], report: Path, move_in: list[Path]
) -> tuple[float, str]:
    """Run `locker mount` under the wrapper, move `move_in` into its directory at once, wait
    until a sync has saved every one of them, lock it (SIGTERM); return its peak RSS in MiB and
    what it printed."""
    command = [*LOCKER, "--vault", vault, "--passphrase-file", pwfile, "mount"]
    proc = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, report, *command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        printed = [proc.stdout.readline().decode()]
        root = Path(printed[0].rstrip("\n"))
        assert root.is_dir(), printed
        for path in move_in:
            path.rename(root / path.name)
        waiting = {path.name for path in move_in}
        while waiting:
            line = proc.stdout.readline().decode()
            assert line, f"the mount ended before it saved {sorted(waiting)}: {printed}"
            printed.append(line)
            if " synced: " in line:
                waiting -= {n for n in waiting if f"added {n}" in line}
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        os.kill(int(children[0]), signal.SIGTERM)  # the mount under the wrapper: lock
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        return int(report.read_text()) / 1024, "".join(printed) + out.decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_a_sync_of_many_large_files_moved_in_at_once_streams(
    big_file_dir: Path, tmp_path: Path, pwfile: Path
) -> None:
    """Issue 9.12: 16 files of 60 MB moved into the mount at once took 948 MiB in their sync
    (each read whole); the mount's peak now stays within SYNC_LIMIT_MIB of an idle mount's."""
    vault = big_file_dir / "v.locker"
    create(vault, PASSPHRASE, SMALL_KDF)
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_bytes("small.txt", b"small\n")
        v.commit()
    env = locker_env(tmp_path)
    report = tmp_path / "maxrss"
    idle, _ = _mount_peak_mib(vault, pwfile, env, report, [])
    outside = big_file_dir / "outside"
    outside.mkdir()
    digests = {
        f"big-{i:02d}.bin": write_random_file(outside / f"big-{i:02d}.bin", MOVED_SIZE, seed=i)
        for i in range(MOVED_FILES)
    }
    peak, printed = _mount_peak_mib(vault, pwfile, env, report, sorted(outside.iterdir()))

    with Vault.open(vault, PASSPHRASE) as v:
        for name, digest in digests.items():
            got = hashlib.sha256()
            for chunk in v.chunks(name):
                got.update(chunk)
            assert got.digest() == digest, name
    syncs = printed.count(" synced: ")
    print(
        f"\npeak RSS of a mount: idle {idle:.1f} MiB; {MOVED_FILES} x {MOVED_SIZE // 10**6} MB "
        f"moved in at once, saved in {syncs} sync(s): {peak:.1f} MiB (+{peak - idle:.1f})"
    )
    assert peak - idle < SYNC_LIMIT_MIB
