"""What opening a container may cost is bounded by its format, not by what a crafted file
claims: an index of a million empty objects is refused before json.loads builds them, and a
sparse file claiming 2^62 bytes is refused at open (issue 10, item 4)."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, RunLocker

from locker.errors import FormatError, LockerError
from locker.store import container as ct
from locker.store.format import SLOT_PASSPHRASE
from locker.store.index import (
    MAX_LOG_EVENTS,
    Entry,
    Index,
    LogEvent,
    decode_index,
    encode_index,
    max_containers,
    sealed_length,
)
from locker.vault import Vault


def _peak_while(data: bytes) -> tuple[int, str]:
    tracemalloc.start()
    try:
        with pytest.raises(FormatError) as caught:
            decode_index(data, 0)
        return tracemalloc.get_traced_memory()[1], str(caught.value)
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("unit", [b"{}", b"[]", b"[[]]"])
def test_an_index_of_empty_containers_is_refused_before_it_is_parsed(unit: bytes) -> None:
    """4 MiB of `{},{},...` made json.loads build 1.4 million dicts (over 90 MiB; a 64 MiB
    index, over 1.4 GiB) before the schema check refused the first one."""
    body = b",".join([unit] * (4 * 2**20 // (len(unit) + 1)))
    data = b'{"entries":[' + body + b'],"log":[],"settings":{},"slots":{}}'
    peak, message = _peak_while(data)
    assert "objects and lists" in message
    assert peak < 4 * len(data)  # json.loads of it: over 20 times its size


def _entry(i: int, name: str, offset: int) -> Entry:
    return Entry(i.to_bytes(16, "big"), name, 0, 0, 0, bytes(16), "file", offset=offset, length=16)


def test_brackets_inside_names_do_not_count() -> None:
    """A valid index whose names are full of brackets passes the cheap count's recount."""
    names = sorted(f"{'[{' * 100}{i:05d}" for i in range(300))
    entries = [_entry(i, n, 16 * i) for i, n in enumerate(names)]
    data = encode_index(Index(entries=entries))
    assert data.count(b"[") + data.count(b"{") > max_containers(len(data))
    assert [e.name for e in decode_index(data, 16 * len(entries)).entries] == names


def test_the_smallest_valid_index_per_byte_fits_the_bound() -> None:
    """Shortest names and the longest log: the densest valid index is still under the bound
    (the bound is computed from the shortest possible entry, so it never refuses a valid one)."""
    names = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    entries = [_entry(i, n, 16 * i) for i, n in enumerate(names)]
    entries[0].kind = ""
    log = [LogEvent(0, "") for _ in range(MAX_LOG_EVENTS)]
    data = encode_index(Index(entries=entries, log=log))
    outside = data.count(b"[") + data.count(b"{")
    assert outside == 5 + 2 * len(entries) + 2 * MAX_LOG_EVENTS <= max_containers(len(data))
    assert len(decode_index(data, 16 * len(entries)).entries) == len(entries)
    assert sealed_length(0) == 16
    assert max_containers(0) == 5 + 2 * MAX_LOG_EVENTS
    assert max_containers(173) - max_containers(172) == 2  # the 173 docs/FORMAT.md states


def _vault(tmp_path: Path, vault_path: Path) -> bytes:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"alpha" * 1000)
        v.commit()
    return vault_path.read_bytes()


def _has_hole(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_HOLE) < os.fstat(fd).st_size
    finally:
        os.close(fd)


def test_a_sparse_tail_is_refused_at_open(tmp_path: Path, vault_path: Path) -> None:
    """The file claims far more data than it holds: refused before any key is tried."""
    _vault(tmp_path, vault_path)
    size = vault_path.stat().st_size
    for claim in (2**62, 2**40, 2**32):  # what the test's file system allows
        try:
            os.truncate(vault_path, claim)
            break
        except OSError:
            continue
    assert _has_hole(vault_path)
    with pytest.raises(FormatError, match=r"a hole at byte \d+ of \d+ \(a sparse file\)") as caught:
        ct.Sealed.read(vault_path)
    assert size <= int(str(caught.value).split()[6]) < size + 2**20


def test_a_hole_inside_the_data_section_is_refused(tmp_path: Path, vault_path: Path) -> None:
    good = _vault(tmp_path, vault_path)
    with open(vault_path, "wb") as f:  # the container, a 1 MiB hole, and its last bytes again
        f.write(good)
        f.seek(len(good) + 2**20)
        f.write(good[-4096:])
    assert _has_hole(vault_path)
    with pytest.raises(FormatError, match="sparse file"):
        ct.Sealed.read(vault_path)


def test_the_cli_refuses_a_sparse_vault_with_exit_4(
    cli: RunLocker, tmp_path: Path, vault_path: Path
) -> None:
    _vault(tmp_path, vault_path)
    os.truncate(vault_path, vault_path.stat().st_size + 2**30)
    r = cli("ls")
    assert r.returncode == 4
    assert b"sparse file" in r.stderr
    assert r.stderr.count(b"\n") <= 2


class _HoleSeeks:
    """Stands in for `os` in store/container.py: records where each look for a hole starts
    (on tmpfs a SEEK_HOLE walks every page from there: 14 ms for 1 GiB)."""

    def __init__(self) -> None:
        self.starts: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def lseek(self, fd: int, offset: int, whence: int) -> int:
        if whence == os.SEEK_HOLE:
            self.starts.append(offset)
        return os.lseek(fd, offset, whence)


@pytest.mark.parametrize("compact", [False, True], ids=["append", "compaction"])
def test_a_save_looks_for_holes_only_in_what_it_wrote(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch, compact: bool
) -> None:
    """The open looks at the whole file; the reopen after an append only from the old end
    (a 6-byte add to a 1 GiB vault on tmpfs spent 28 of its 138 ms there); a compaction's new
    file is looked at whole."""
    layer = _HoleSeeks()
    monkeypatch.setattr(ct, "os", layer)
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        assert layer.starts == [0]
        old_end = vault_path.stat().st_size
        v.add_bytes("note", b"hello\n")
        v.commit(compact=compact)
        assert layer.starts == [0, 0 if compact else old_end]
    monkeypatch.undo()
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert v.read_bytes("note") == b"hello\n"


def test_a_hole_after_the_old_end_is_refused_at_the_reopen(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the append wrote is still looked at: a hole there (a file system that lost the
    write) fails the reopen, which says the save happened and how to check it."""
    from locker.store import generations

    save = generations.save

    def save_then_punch(*args: Any, **kwargs: Any) -> bool:
        appended = save(*args, **kwargs)
        size = vault_path.stat().st_size
        with open(vault_path, "r+b") as f:  # the file made sparse past its new end
            f.truncate(size + 2**20)
        return appended

    monkeypatch.setattr(generations, "save", save_then_punch)
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("note", b"hello\n")
        with pytest.raises(LockerError, match=r"reopening it to check failed: .*sparse file"):
            v.commit()


def test_the_unlock_reads_the_slot_kinds_without_looking_for_holes(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from locker.cli.unlock import _slot_kinds

    layer = _HoleSeeks()
    monkeypatch.setattr(ct, "os", layer)
    assert _slot_kinds(vault_path) == {SLOT_PASSPHRASE}
    assert layer.starts == []
