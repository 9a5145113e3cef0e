"""Argon2 limits as a user meets them: usage errors for the user's own values, exact cap
messages, and memory limits (ulimit -v, cgroups) that give a clean error (issue 10, item 4)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import locker_env

from locker.errors import EXIT_USAGE, KdfTooCostlyError, UsageError
from locker.kdf_cost import calibrate_kdf
from locker.store import crypto
from locker.store.format import MAX_KDF_MEMORY_KIB, KdfCost, check_kdf_cost, machine_memory_kib

GIB_KIB = 1024 * 1024


def test_the_cap_message_says_exactly_what_it_means() -> None:
    with pytest.raises(
        KdfTooCostlyError, match=r"memory 4096 MiB \+ 1 KiB exceeds the cap of 4096 MiB"
    ):
        check_kdf_cost(KdfCost(MAX_KDF_MEMORY_KIB + 1, 1, 1), ram_kib=64 * GIB_KIB)
    with pytest.raises(
        KdfTooCostlyError, match=r"memory x time \(3072 MiB x 3\) exceeds the cap of 8192 MiB"
    ):
        check_kdf_cost(KdfCost(3 * GIB_KIB, 3, 1), ram_kib=64 * GIB_KIB)


def test_calibrating_a_large_memory_is_not_called_crafted() -> None:
    """3000 MiB x 3 calibration passes crossed the 8 GiB memory x time cap: 'crafted or
    corrupted' (exit 4) for a value the user typed. Now 2 passes are timed instead."""
    runs: list[int] = []
    ticks = iter([0.0, 1.0, 1.0, 3.0])

    def derive(secret: bytes, salt: bytes, params: crypto.KdfParams) -> bytes:
        runs.append(params.time_cost)
        return b""

    cost = calibrate_kdf(10.0, 3000 * 1024, 1, clock=lambda: next(ticks), derive=derive)
    assert runs == [1, 2]
    assert cost == KdfCost(3000 * 1024, 2, 1)  # the cap allows 2 passes of 3000 MiB


def test_calibrating_over_the_memory_cap_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="exceeds the cap") as caught:
        calibrate_kdf(1.0, MAX_KDF_MEMORY_KIB + 1024, 1, derive=lambda *a: b"")
    assert caught.value.exit_code == EXIT_USAGE


def test_the_memory_limit_of_this_process_lowers_the_cap() -> None:
    code = (
        "import resource; from locker.store.format import machine_memory_kib as m;"
        "resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, resource.RLIM_INFINITY));"
        "print(m())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert int(out.stdout) <= 3 * GIB_KIB
    assert machine_memory_kib() > 0


def test_an_allocation_failure_is_a_clean_error(tmp_path) -> None:
    """Under `ulimit -v` Argon2 cannot allocate: one line and a hint, no traceback."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (768 * 2**20, resource.RLIM_INFINITY))\n"
        "from locker.store import crypto\n"
        "from locker.errors import LockerError\n"
        "try:\n"
        "    crypto.argon2id(b'x', bytes(16), crypto.KdfParams(1024 * 1024, 1, 1))\n"
        "except LockerError as e:\n"
        "    print(e); print(e.hint)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        check=True,
        text=True,
        env=locker_env(tmp_path),
    )
    assert out.stdout.startswith("Argon2 could not run with 1024 MiB of memory"), out
    assert "ulimit -v" in out.stdout
