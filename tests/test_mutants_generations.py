"""The format 2 save held to what FORMAT.md sections 20 and 21 promise, edge by edge: tests
written to kill the mutants of store/generations.py and store/container.py that the suite let
live (scripts/mutate). The last generation a record can hold, the garbage rule's exact edge, a
source that writes before the end of the vault, the failure's cut-back made durable, an index
that reads back other bytes, a commit record written short, the vault's name gone or another
file at it just before the record write, and a damaged record whose index starts exactly
where the one in force ends (restorable). Real files; faults are injected by standing in for
`os` (or one helper) inside the module, as tests/test_faults.py does.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from conftest import PASSPHRASE, TINY_KDF, FakeClock
from test_faults import FaultLayer
from test_passed_over import flip, records
from test_vectors import load, place

from locker.errors import AuthenticationError, BusyError, FormatError, LockerError
from locker.store import container as ct
from locker.store import drives, generations
from locker.store.format import DATA_AREA_START, MAX_GENERATION, RECORD_OFFSETS, RECORD_SIZE
from locker.store.index import Entry
from locker.vault import Vault, create

A, B = RECORD_OFFSETS


def opened(path: Path) -> tuple[int, dict[str, bytes]]:
    with Vault.open(path, PASSPHRASE) as v:
        return v.generation, {e.name: v.read_bytes(e.name) for e in v.entries()}


@pytest.fixture
def saved(vault_path: Path) -> Path:
    """Generation 1 (empty) in record A, then an append: generation 2 in record B."""
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a.env", b"A=1\n")
        v.add_bytes("b.bin", b"b" * 5000)
        v.commit()
    assert [r[0] for r in records(vault_path)] == [1, 2]
    return vault_path


def after_read_back(then: Any) -> Any:
    """A stand-in for the append's `_read_back` that runs `then` right after it: just before
    the record write."""
    real = generations._read_back

    def hook(*args: Any) -> None:
        real(*args)
        then()

    return hook


def failed_commit(
    saved: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    stand_in: Any,
    data: bytes = b"c",
    error: type[LockerError] = LockerError,
) -> pytest.ExceptionInfo[LockerError]:
    """Add `data` and commit with generations' `name` replaced by `stand_in`; the commit
    must fail with `error`, whose ExceptionInfo is returned."""
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v.add_bytes("c", data)
        with monkeypatch.context() as m, pytest.raises(error) as caught:
            m.setattr(generations, name, stand_in)
            v.commit()
    return caught


# -- save: the generation counter ---------------------------------------------------------------


def test_the_last_generation_is_saved_and_the_one_after_it_refused(saved: Path) -> None:
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        c = v._container
        c.record = c.record._replace(generation=MAX_GENERATION - 1)  # saved 2^64 - 2 times
        v.add_bytes("c", b"c")
        v.commit()
        assert v.generation == MAX_GENERATION
    assert records(saved)[0][0] == MAX_GENERATION == 2**64 - 1
    before = saved.read_bytes()
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v.add_bytes("d", b"d")
        with pytest.raises(LockerError) as caught:
            v.commit()
    assert str(caught.value) == "the vault has been saved 2^64 - 1 times; it cannot be saved again"
    assert saved.read_bytes() == before


# -- compaction_reason: rules 1 to 4 and 6 of FORMAT.md section 21 -----------------------------


def reason(v: Vault) -> str:
    planned = [ct.Planned(s.entry, s.source) for s in v._staged.values()]
    return generations.compaction_reason(v._container, v._slots, planned)


def test_why_a_save_is_a_compaction(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v.add_bytes("c", b"c")
        v.rename("a.env", "moved.env")
        assert reason(v) == ""
        v.remove("b.bin")
        assert reason(v) == "entries removed"
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        staged = v._staged["a.env"]
        staged.source = ct.Reencrypt(v._container, staged.entry)
        assert reason(v) == "rekey"
    other = tmp_path / "other.locker"
    create(other, PASSPHRASE, TINY_KDF)
    with Vault.open(other, PASSPHRASE) as o, Vault.open(saved, PASSPHRASE, write=True) as v:
        staged = v._staged["a.env"]
        staged.source = ct.Reencrypt(o._container, staged.entry)  # a copy from another vault
        assert reason(v) == ""
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v._slots = [*v._slots, *v._slots]
        assert reason(v) == "key slots changed"
    with Vault.open(saved, PASSPHRASE, write=True) as v, monkeypatch.context() as m:
        m.setattr(drives, "appends_in_place", lambda path: False)
        assert reason(v) == "a file system where locker does not write in place"
    vector = load("success_basic")  # a version 1 file
    with Vault.open(place(vector, tmp_path), vector.passphrase, write=True) as v:
        assert reason(v) == "upgrade of a version 1 file"


# -- _append_plan: rule 5, garbage more than half of the data area -------------------------------


def test_an_append_whose_garbage_is_exactly_half_of_the_data_area_appends(
    saved: Path, tmp_path: Path
) -> None:
    """`2 x garbage > file size - 12 288` compacts: at equality the save still appends. The
    smallest new content that appends is found by trying; the file it leaves has garbage of
    exactly half its data area (measured from the file: records, entries, size)."""
    base = saved.read_bytes()
    trial = tmp_path / "trial.locker"

    def appends(n: int) -> bool:
        trial.write_bytes(base)
        with Vault.open(trial, PASSPHRASE, write=True, clock=FakeClock()) as v:
            v.add_bytes("b.bin", b"n" * n, force=True)  # the old 5000 bytes become garbage
            v.commit()
        return all(r != (0, 0, 0) for r in records(trial))

    lo, hi = 0, 20_000
    assert not appends(lo) and appends(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if appends(mid) else (mid, hi)
    assert appends(hi)
    generation, _ = opened(trial)
    in_force = next(r for r in records(trial) if r[0] == generation)
    with Vault.open(trial, PASSPHRASE) as v:
        live = in_force[2] + sum(e.length for e in v.entries())
    data_area = trial.stat().st_size - DATA_AREA_START
    assert 2 * (data_area - live) == data_area
    assert not appends(hi - 1)


# -- _append: a record the reader would pass over is never written -----------------------------


def test_an_append_never_writes_a_commit_record_a_reader_passes_over(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer bug that seals generation 0: the reader would pass the record over and open the
    generation before (the other record stays usable), so the save must stop before it writes
    anything, not find out when it reopens the vault."""
    real = ct.seal_record

    def generation_zero(*args: Any) -> Any:
        return real(*args)._replace(generation=0)

    before = saved.read_bytes()
    caught = failed_commit(saved, monkeypatch, "seal_record", generation_zero)
    assert str(caught.value) == (
        "refusing to save a commit record every reader passes over: commit record has "
        "generation 0 but is not empty"
    )
    assert saved.read_bytes() == before


# -- _AppendOnly: no byte before the end of the vault -------------------------------------------


class _SeeksBack:
    """A source that seeks to the start of the file and writes there."""

    def write_to(self, out: BinaryIO, key_for: Any, aad: bytes, entry: Entry) -> None:
        out.seek(0)
        out.write(b"\0" * entry.length)


def test_a_source_that_writes_before_the_end_of_the_vault_is_refused(saved: Path) -> None:
    before = saved.read_bytes()
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v.add_bytes("c", b"c" * 100)
        v._staged["c"].source = _SeeksBack()
        with pytest.raises(LockerError) as caught:
            v.commit()
    assert str(caught.value) == "internal error: a write before the end of the vault was refused"
    assert saved.read_bytes() == before


# -- _write_generation: a failure cuts the file back, durably ------------------------------------


class _Cuts(FaultLayer):
    def ftruncate(self, fd: int, length: int) -> None:
        self.step("ftruncate")
        os.ftruncate(fd, length)


@pytest.mark.parametrize("op", ["write", "fsync"])
def test_a_failed_append_is_cut_back_and_the_cut_is_synced(
    saved: Path, monkeypatch: pytest.MonkeyPatch, op: str
) -> None:
    before = saved.read_bytes()
    layer = _Cuts(op, 1, errno.EIO)
    caught = failed_commit(saved, monkeypatch, "os", layer, data=os.urandom(100_000))
    assert str(caught.value) == (
        f"cannot save {saved} (injected): Input/output error; the vault is unchanged"
    )
    assert layer.after_failure == ["ftruncate", "fsync"]
    assert saved.read_bytes() == before


class _CutFails(FaultLayer):
    def ftruncate(self, fd: int, length: int) -> None:
        self.step("ftruncate")
        raise OSError(errno.EIO, os.strerror(errno.EIO), "cut")


def test_a_cut_back_that_fails_too_reports_the_first_failure(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new bytes stay as garbage after the end of the old generation, which still opens."""
    layer = _CutFails("write", 1, errno.ENOSPC)
    caught = failed_commit(saved, monkeypatch, "os", layer, data=os.urandom(100_000))
    assert str(caught.value) == (
        f"cannot save {saved} (injected): No space left on device; the vault is unchanged"
    )
    assert layer.after_failure == ["ftruncate"]
    assert opened(saved) == (2, {"a.env": b"A=1\n", "b.bin": b"b" * 5000})


# -- _append: the file opened is the file read --------------------------------------------------


class _SwapsAtOpen:
    """Stands in for `os` inside store/generations.py: just before the vault is opened for
    writing, another file (a copy, the same bytes) is renamed over its name ("file"), and the
    vault's own file put back right after that open ("file-and-back"), or the name becomes a
    symbolic link to that copy ("symlink")."""

    def __init__(self, vault: Path, how: str) -> None:
        self.vault, self.how, self.done = vault, how, False
        self.aside = vault.with_name("aside.locker")

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if self.done or not flags & os.O_RDWR:
            return os.open(name, flags, *args, **kwargs)
        self.done = True
        os.link(self.vault, self.aside)
        copy = self.vault.with_name("copy.locker")
        copy.write_bytes(self.vault.read_bytes())
        if self.how == "symlink":
            self.vault.unlink()
            self.vault.symlink_to(copy.name)
        else:
            os.replace(copy, self.vault)
        try:
            return os.open(name, flags, *args, **kwargs)
        finally:
            if self.how != "file":
                os.replace(self.aside, self.vault)


@pytest.mark.parametrize("how", ["file", "file-and-back", "symlink"])
def test_a_vault_swapped_while_the_append_opens_it_saves_nothing(
    saved: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    before = saved.read_bytes()
    layer = _SwapsAtOpen(saved, how)
    caught = failed_commit(saved, monkeypatch, "os", layer)
    assert layer.done
    if how == "file":
        assert isinstance(caught.value, BusyError)
        assert "was changed by another writer" in str(caught.value)
    elif how == "file-and-back":  # the name is the file read again: only the descriptor tells
        assert type(caught.value) is LockerError
        assert str(caught.value) == (
            f"cannot save {saved}: the vault file changed while opening it"
        )
    else:  # never followed
        assert type(caught.value) is LockerError
        assert str(caught.value) == (
            f"cannot save {saved} ({saved.name}): {os.strerror(errno.ELOOP)}; "
            "the vault is unchanged"
        )
    assert saved.read_bytes() == before


class _SymlinkAtReadBack:
    """Stands in for `os` inside store/generations.py: just before the new index is read
    back, the vault's name becomes a symbolic link to a copy of it (the same bytes)."""

    def __init__(self, vault: Path) -> None:
        self.vault, self.done = vault, False
        self.aside = vault.with_name("aside.locker")

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if not self.done and name == self.vault.name and not flags & os.O_RDWR:
            self.done = True
            os.link(self.vault, self.aside)
            copy = self.vault.with_name("copy.locker")
            copy.write_bytes(self.vault.read_bytes())
            self.vault.unlink()
            self.vault.symlink_to(copy.name)
        return os.open(name, flags, *args, **kwargs)


def test_the_index_is_not_read_back_through_a_symlink(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = saved.read_bytes()
    layer = _SymlinkAtReadBack(saved)
    caught = failed_commit(saved, monkeypatch, "os", layer)
    assert layer.done
    assert type(caught.value) is LockerError
    assert str(caught.value) == (
        f"cannot save {saved} ({saved.name}): {os.strerror(errno.ELOOP)}; the vault is unchanged"
    )
    os.replace(layer.aside, saved)
    assert saved.read_bytes() == before  # cut back


# -- _read_back: the index as a reader reads it ---------------------------------------------------


def test_an_index_that_reads_back_other_bytes_fails_the_append(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ct.read_at

    def last_bit_flipped(fd: int, n: int, offset: int) -> bytes:
        data = real(fd, n, offset)
        return data[:-1] + bytes([data[-1] ^ 1])

    before = saved.read_bytes()
    caught = failed_commit(saved, monkeypatch, "read_at", last_bit_flipped)
    assert str(caught.value) == (
        f"cannot save {saved}: the new index did not read back (the index read back is not "
        "the one written); the vault is unchanged"
    )
    assert caught.value.hint == "check the disk"
    assert saved.read_bytes() == before


# -- _check_before_switch: the name, the file, its end, its records ------------------------------


def test_a_vault_name_gone_before_the_record_write_saves_nothing(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = records(saved)
    aside = saved.with_name("aside.locker")
    caught = failed_commit(
        saved,
        monkeypatch,
        "_read_back",
        after_read_back(lambda: saved.rename(aside)),
        error=BusyError,
    )
    assert str(caught.value) == (
        f"{saved} was changed by another writer while this save was made; nothing was saved"
    )
    assert caught.value.hint == "locking needs a local file system; run the command again"
    aside.rename(saved)
    assert records(saved) == before
    assert opened(saved) == (2, {"a.env": b"A=1\n", "b.bin": b"b" * 5000})


def test_another_file_at_the_vault_name_before_the_record_write_saves_nothing(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes, the same size and records, another inode: refused all the same."""
    before = records(saved)
    copy = saved.with_name("copy.locker")

    def swap() -> None:
        copy.write_bytes(saved.read_bytes())
        os.replace(copy, saved)

    failed_commit(saved, monkeypatch, "_read_back", after_read_back(swap), error=BusyError)
    assert records(saved) == before
    assert opened(saved)[0] == 2


# -- _switch: the record written whole, or the save fails --------------------------------------


class _ShortPwrite(FaultLayer):
    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        self.step("pwrite")
        return os.pwrite(fd, data[: RECORD_SIZE // 2], offset)


def test_a_commit_record_written_short_fails_the_save(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = _ShortPwrite()
    caught = failed_commit(saved, monkeypatch, "os", layer)
    assert str(caught.value) == (
        f"cannot save {saved}: writing its commit record failed: short write of the commit "
        f"record ({RECORD_SIZE // 2} bytes)"
    )
    assert caught.value.hint == (
        "the vault opens at this save or the one before it; 'locker verify' says which"
    )
    assert "fsync" not in layer.log[layer.log.index("pwrite") :]  # a short write is no success
    with Vault.open(saved, PASSPHRASE) as v:  # the torn record A is passed over
        assert v.generation == 2 and [p.position for p in v.passed_over()] == [0]


# -- Container.open: a restorable record's index starts at or after the end of the one in force


def test_a_damaged_record_of_a_save_that_wrote_only_an_index_is_restorable(saved: Path) -> None:
    """A rename writes no entry: the new index starts exactly where the index in force ends."""
    _, offset, length = records(saved)[1]
    assert offset + length == saved.stat().st_size
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v.rename("a.env", "renamed.env")
        v.commit()
    assert records(saved)[0][:2] == (3, offset + length)
    flip(saved, A + RECORD_SIZE - 1)  # one bit of record A's MAC
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        [p] = v.passed_over()
        assert (p.position, p.generation, p.restorable) == (0, 3, True)
        v.recover_generation(3)
        v.commit()
    assert opened(saved) == (4, {"b.bin": b"b" * 5000, "renamed.env": b"A=1\n"})


@pytest.fixture
def third(saved: Path) -> Path:
    """`saved` and one more append: generation 3 in record A, 2 in record B."""
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v.add_bytes("c.txt", b"c" * 300)
        v.commit()
    assert [r[0] for r in records(saved)] == [3, 2]
    return saved


def test_a_damaged_generation_number_is_restored_as_the_one_after_the_one_in_force(
    third: Path,
) -> None:
    """Record A claims 7 (one bit of its generation): it fails its MAC, its index opens, and
    restoring it saves generation 3 + 1 whatever it claimed."""
    flip(third, A + 7, 4)
    assert records(third)[0][0] == 7
    with Vault.open(third, PASSPHRASE, write=True) as v:
        assert v.generation == 2
        [p] = v.passed_over()
        assert (p.position, p.generation, p.restorable) == (0, 7, True)
        v.recover_generation(3)
        assert v.generation == 3
        v.commit()
    generation, entries = opened(third)
    assert generation == 4 and sorted(entries) == ["a.env", "b.bin", "c.txt"]


def test_a_record_that_names_an_older_index_is_never_restored(third: Path) -> None:
    """Record B (generation 2, before the one in force) fails its MAC: its index still
    authenticates, but it lies before the index in force, so it is no newer save."""
    flip(third, B + RECORD_SIZE - 1)
    with Vault.open(third, PASSPHRASE, write=True) as v:
        assert v.generation == 3
        [p] = v.passed_over()
        assert (p.position, p.generation, p.restorable) == (1, 2, False)
        with pytest.raises(LockerError) as caught:
            v._container.restored(1)
        assert str(caught.value) == "commit record B names no index that authenticates"
        assert v.generation == 3


def test_when_no_index_opens_the_error_is_the_newest_ones(third: Path) -> None:
    for _, offset, length in records(third):
        flip(third, offset + length // 2)  # inside each generation's index
    with pytest.raises(LockerError) as caught:
        Vault.open(third, PASSPHRASE)
    assert str(caught.value) == "index failed authentication: it was changed or is corrupt"


def test_a_version_2_file_of_exactly_its_head_and_records_has_no_usable_record(
    vault_path: Path,
) -> None:
    """12 288 bytes: not truncated inside the records; its record names an index past its end."""
    with open(vault_path, "r+b") as f:
        f.truncate(DATA_AREA_START)
    with pytest.raises(LockerError) as caught:
        Vault.open(vault_path, PASSPHRASE)
    assert str(caught.value).startswith("no usable commit record (commit record A is unusable")


@pytest.fixture
def compacted(vault_path: Path) -> Path:
    """A compaction: generation 2 in record A alone, record B empty; then one bit of A's MAC."""
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a.env", b"A=1\n")
        v.commit(compact=True)
    assert records(vault_path)[1] == (0, 0, 0)
    flip(vault_path, A + RECORD_SIZE - 1)
    return vault_path


def test_a_lone_record_that_fails_its_mac_is_opened_only_for_a_restore(compacted: Path) -> None:
    """Its index authenticates, but only `recover --generation` (unverified) opens it."""
    before = compacted.read_bytes()
    with pytest.raises(AuthenticationError) as caught:
        Vault.open(compacted, PASSPHRASE)
    assert str(caught.value) == (
        "container header failed authentication: it was changed or is corrupt "
        "(no commit record verified)"
    )
    assert caught.value.hint == (
        "commit record A's index authenticates with this key: copy the vault file first; "
        "'locker recover --generation 2' restores the save it names (its index is authentic; "
        "its damaged record is not)"
    )
    assert compacted.read_bytes() == before
    with Vault.open(compacted, PASSPHRASE, write=True, unverified=True) as v:
        assert v.unverified and v.generation == 2
        assert v.read_bytes("a.env") == b"A=1\n"
        v.recover_generation(2)
        v.commit()
    assert opened(compacted) == (3, {"a.env": b"A=1\n"})


def test_a_lone_record_whose_index_does_not_authenticate_names_no_restore(
    compacted: Path,
) -> None:
    _, offset, length = records(compacted)[0]
    flip(compacted, offset + length // 2)
    with pytest.raises(AuthenticationError) as caught:
        Vault.open(compacted, PASSPHRASE, write=True, unverified=True)
    assert caught.value.hint == (
        "the key is right but the file was changed: restore it from a backup"
    )


def test_opening_a_record_that_fails_its_mac_is_never_the_default(compacted: Path) -> None:
    """Container.open without `unverified` (a save's reopen, a failed save's second look)."""
    flip(compacted, A + RECORD_SIZE - 1)  # back: record A verifies
    with Vault.open(compacted, PASSPHRASE) as v:
        unlocked = v._container.unlocked
        flip(compacted, A + RECORD_SIZE - 1)
        sealed = ct.Sealed.read(compacted)
        try:
            with pytest.raises(AuthenticationError):
                ct.Container.open(sealed, unlocked)
        finally:
            sealed.close()


def test_a_version_1_header_that_fails_its_mac_names_no_commit_record(tmp_path: Path) -> None:
    vector = load("header_mac_tampered")
    with pytest.raises(AuthenticationError) as caught:
        Vault.open(place(vector, tmp_path), vector.passphrase)
    assert str(caught.value) == (
        "container header failed authentication: it was changed or is corrupt"
    )
    assert caught.value.hint == (
        "the key is right but the file was changed: restore it from a backup"
    )


def test_a_newest_index_that_does_not_open_is_passed_over_with_its_reason(third: Path) -> None:
    _, offset, length = records(third)[0]
    flip(third, offset + length // 2)  # inside generation 3's index: its record verifies
    with Vault.open(third, PASSPHRASE) as v:
        assert v.generation == 2
        [p] = v.passed_over()
    assert (p.position, p.generation, p.restorable) == (0, 3, False)
    assert str(p) == (
        "commit record A (claims generation 3) verified, but its index did not open (index "
        "failed authentication: it was changed or is corrupt)"
    )


def test_two_records_of_one_generation_that_both_verify_are_refused(tmp_path: Path) -> None:
    vector = load("v2_format_generation_tie")
    path = place(vector, tmp_path)
    [generation, _] = [r[0] for r in records(path)]
    with pytest.raises(FormatError) as caught:
        Vault.open(path, vector.passphrase)
    assert str(caught.value) == (
        f"both commit records hold generation {generation} and both verify; no writer makes that"
    )
