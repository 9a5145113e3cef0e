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
