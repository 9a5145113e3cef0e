"""Crash safety of the version 2 append-and-switch save (docs/FORMAT.md, sections 21 and 22).

A real `locker` writer in a subprocess is `kill -9`ed at every step of an append: before and
after each system call of `store/generations.py` (so between the data's `fsync` and the
record's write, and between the record's write and its `fsync`). Then its commit record is torn:
only the first or only the last n of its 68 bytes written, or zeros. Every time the vault opens
at exactly the old or exactly the new generation, the outcome is the one the write order
promises (old until the record was written, new from then on), and the next save works and
lands in the right record (after a torn record, once `recover --generation` has decided:
the torn record is passed over, section 20).
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PASSPHRASE, TINY_KDF, locker_env

from locker.errors import IntegrityError
from locker.store.format import RECORD_OFFSETS, RECORD_SIZE
from locker.vault import Vault, create

# The writer: an append that adds one entry and replaces another. `os` inside
# store/generations.py is wrapped: each call is named before and after it runs, and in "kill"
# mode the process SIGKILLs itself at the chosen point; in "torn" mode the commit record's
# `pwrite` writes only part of the record (or zeros) and then the process SIGKILLs itself.
WRITER = r"""
import os, signal, sys
from pathlib import Path
from locker.store import generations
from locker.vault import Vault

path, passphrase, mode, arg = Path(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], sys.argv[4]
calls = []

def step(name):
    calls.append(name)
    if mode == "kill" and len(calls) - 1 == int(arg):
        os.kill(os.getpid(), signal.SIGKILL)

def torn_pwrite(fd, data, offset):
    how, n = arg.split(":")
    n = int(n)
    if how == "head":
        os.pwrite(fd, data[:n], offset)
    elif how == "tail":
        os.pwrite(fd, data[n:], offset + n)
    else:
        os.pwrite(fd, bytes(len(data)), offset)
    os.kill(os.getpid(), signal.SIGKILL)

class Os:
    def __getattr__(self, name):
        real = getattr(os, name)
        if not callable(real):
            return real
        if name == "pwrite" and mode == "torn":
            return torn_pwrite
        def call(*args, **kwargs):
            step("before " + name)
            result = real(*args, **kwargs)
            step("after " + name)
            return result
        return call

generations.os = Os()
with Vault.open(path, passphrase, write=True) as v:
    v.add_bytes("new/entry.env", b"B=2\n")
    v.add_bytes("keep/two.pem", b"replaced content\n" * 100, force=True)
    v.commit()
print("\n".join(calls))
"""


def state(path: Path) -> tuple[int, dict[str, str]]:
    """(generation in force, entry name -> SHA-256), every chunk verified."""
    with Vault.open(path, PASSPHRASE) as v:
        out = {}
        for e in v.entries():
            digest = hashlib.sha256()
            for chunk in v.chunks(e.name):
                digest.update(chunk)
            out[e.name] = digest.hexdigest()
        return v._container.record.generation, out


def run_writer(vault: Path, mode: str, arg: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WRITER, str(vault), PASSPHRASE.decode(), mode, arg],
        capture_output=True,
        text=True,
        env=locker_env(vault.parent),  # the test's places, data dir and no machine keyring
        timeout=120,
    )


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A v2 vault with both records in use: generation 1 (empty) in A, 2 in B. Its large
    entry keeps the garbage an append leaves under half, so the save is an append."""
    path = tmp_path / "base.locker"
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("keep/one.env", b"A=1\n")
        v.add_bytes("keep/two.pem", b"original\n" * 100)
        v.add_bytes("big.bin", bytes(range(256)) * 1200)
        v.add_bytes("empty", b"")
        v.commit()
    return path


def next_save_works(vault: Path, before: tuple[int, dict[str, str]]) -> None:
    """The next writer saves over whatever the kill left, one generation on."""
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_bytes("after/kill.txt", b"saved after the crash\n")
        v.commit()
    generation, entries = state(vault)
    assert generation == before[0] + 1
    assert set(entries) == set(before[1]) | {"after/kill.txt"}
    assert {k: entries[k] for k in before[1]} == before[1]


def test_kill_9_at_every_step_of_an_append(base: Path, tmp_path: Path) -> None:
    old = state(base)
    assert old[0] == 2
    dry = tmp_path / "dry.locker"
    shutil.copyfile(base, dry)
    proc = run_writer(dry, "list", "")
    assert proc.returncode == 0, proc.stderr
    calls = proc.stdout.split()
    calls = [f"{a} {b}" for a, b in zip(calls[::2], calls[1::2], strict=True)]
    new = state(dry)
    assert new[0] == 3 and new[1] != old[1]
    record_write = calls.index("before pwrite")
    fsyncs = [i for i, c in enumerate(calls) if c == "before fsync"]
    assert len(fsyncs) == 2 and fsyncs[0] < record_write < fsyncs[1], calls

    vault = tmp_path / "v.locker"
    outcomes = {"old": 0, "new": 0}
    for point, call in enumerate(calls):
        shutil.copyfile(base, vault)
        proc = run_writer(vault, "kill", str(point))
        assert proc.returncode == -signal.SIGKILL, (call, proc.stderr)
        got = state(vault)
        expected = new if point > record_write else old
        assert got == expected, f"killed at {call} (point {point})"
        outcomes["new" if got == new else "old"] += 1
        next_save_works(vault, got)
    print(f"\nkill -9 at {len(calls)} points of an append {calls}: {outcomes}")
    assert outcomes["old"] and outcomes["new"]


TEARS = [f"head:{n}" for n in (1, 7, 8, 9, 24, 35, 36, 37, 67)]
# (a tail tear from n <= 7 is the whole new record: its first 7 bytes are the old ones)
TEARS += [f"tail:{n}" for n in (8, 24, 36, 67)] + ["zeros:0"]


@pytest.mark.parametrize("tear", TEARS)
def test_a_torn_record_write_leaves_the_generation_before(
    tear: str, base: Path, tmp_path: Path
) -> None:
    """The record not in force (A, generation 1) is being overwritten with generation 3 when
    the write tears: part new and part old, or zeros. Generation 2 stays in force."""
    old = state(base)
    vault = tmp_path / "v.locker"
    shutil.copyfile(base, vault)
    before = vault.read_bytes()[RECORD_OFFSETS[0] : RECORD_OFFSETS[0] + RECORD_SIZE]
    proc = run_writer(vault, "torn", tear)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    after = vault.read_bytes()[RECORD_OFFSETS[0] : RECORD_OFFSETS[0] + RECORD_SIZE]
    how, n = tear.split(":")
    if how == "head":  # the old record's bytes from n on (the first n may equal the new ones)
        assert after[int(n) :] == before[int(n) :]
    elif how == "tail":
        assert after[: int(n)] == before[: int(n)] and after[int(n) :] != before[int(n) :]
    else:
        assert after == bytes(RECORD_SIZE)
    assert state(vault) == old
    with Vault.open(vault, PASSPHRASE) as v:
        assert v._container.position == 1  # record B, generation 2
        passed = v.passed_over()
    if after == before:  # nothing of the new record
        assert passed == ()
    else:
        # Torn, or read back as zeros (an empty record A, which no save leaves): it cannot be
        # told from a damaged newer record (FORMAT.md section 20), so no save overwrites it
        # until the user decides; restorable when its fields are whole.
        [p] = passed
        # whole new fields: the first 36 bytes written (head), or all but the generation
        # (tail from 8); old fields name generation 1's index, before the one in force
        whole = how != "zeros" and (int(n) >= 36 if how == "head" else int(n) <= 8)
        assert p.position == 0 and p.restorable == whole
        with Vault.open(vault, PASSPHRASE, write=True) as v:
            with pytest.raises(IntegrityError, match="commit record A"):
                v.commit()
            v.recover_generation(3 if p.restorable else 2)
            v.commit()
        got = state(vault)
        assert got[0] == (4 if p.restorable else 3)  # generation 3 restored, then saved
        assert ("new/entry.env" in got[1]) == p.restorable
        old = got
    with Vault.open(vault, PASSPHRASE) as v:
        assert v.passed_over() == ()
    next_save_works(vault, old)
    with Vault.open(vault, PASSPHRASE) as v:
        assert v.generation == old[0] + 1


APPENDER = r"""
import sys
from pathlib import Path
from locker.vault import Vault

path, passphrase, count = Path(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
for k in range(1, count + 1):
    with Vault.open(path, passphrase, write=True) as v:
        v.add_bytes(f"e/{k}", str(k).encode() * 100)
        v.add_bytes("counter", str(k).encode(), force=True)
        v.commit()
"""


def consistent(entries: dict[str, bytes]) -> int:
    """The k of a state the appender made: counter k and exactly e/1 .. e/k."""
    k = int(entries["counter"])
    assert set(entries) == {"counter", "big.bin", *(f"e/{i}" for i in range(1, k + 1))}
    assert all(entries[f"e/{i}"] == str(i).encode() * 100 for i in range(1, k + 1))
    return k


def test_readers_without_locks_see_whole_generations(tmp_path: Path) -> None:
    """A reader opens and reads the whole vault again and again while another process appends
    30 generations: every read is one complete generation, never an error; and a vault opened
    before all of them still reads its own generation afterwards (nothing it uses was
    overwritten)."""
    path = tmp_path / "v.locker"
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("big.bin", bytes(range(256)) * 4000)  # keeps garbage under half
        v.add_bytes("counter", b"0")
        v.commit()
    early = Vault.open(path, PASSPHRASE)
    writer = subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(path), PASSPHRASE.decode(), "30"],
        stderr=subprocess.PIPE,
    )
    seen: list[int] = []
    try:
        while writer.poll() is None or not seen:
            with Vault.open(path, PASSPHRASE) as v:
                seen.append(consistent({e.name: v.read_bytes(e.name) for e in v.entries()}))
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        with Vault.open(path, PASSPHRASE) as v:
            assert consistent({e.name: v.read_bytes(e.name) for e in v.entries()}) == 30
            assert v.generation == 32
        assert consistent({e.name: early.read_bytes(e.name) for e in early.entries()}) == 0
    finally:
        early.close()
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert seen == sorted(seen)  # generations only move forward
    print(f"\nreaders without locks: {len(seen)} whole reads, generations {sorted(set(seen))}")
