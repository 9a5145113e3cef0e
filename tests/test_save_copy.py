"""A compaction copies unchanged entries as ciphertext, back-to-back ones in one go: with
`copy_file_range` where old and new file can share blocks (a reflink on btrfs and XFS),
through memory elsewhere or wherever the kernel refuses. The bytes written are the same
either way (issue 15, item 4). An append copies nothing: unchanged entries stay where they
are."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, TINY_KDF, counter_rng

from locker.errors import FormatError, LockerError
from locker.store import sources
from locker.store.crypto import CHUNK_SIZE
from locker.vault import Vault, create

NAMES = ("a", "b", "c", "d", "e")
UNUSED: Any = None  # the key and entry a copy of ciphertext never needs


class CountingOs:
    """Stands in for `os` inside store/sources.py: counts copy_file_range and pread calls,
    and can make copy_file_range fail or copy less than asked."""

    def __init__(self, err: int = 0, at_most: int | None = None, zero: bool = False) -> None:
        self.err, self.at_most, self.zero = err, at_most, zero
        self.copies: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def copy_file_range(self, src: int, dst: int, count: int, *offsets: int) -> int:
        self.copies.append(count)
        if self.err:
            raise OSError(self.err, os.strerror(self.err))
        if self.zero:
            return 0
        n: int = os.copy_file_range(src, dst, min(count, self.at_most or count), *offsets)
        return n


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "v.locker"
    create(path, PASSPHRASE, TINY_KDF, rng=counter_rng(3))
    with Vault.open(path, PASSPHRASE, write=True) as v:
        for i, name in enumerate(NAMES):
            v.add_bytes(name, bytes([i]) * (3 * CHUNK_SIZE + i))
        v.commit()
    return path


def ciphertexts(path: Path) -> dict[str, bytes]:
    """Each entry's ciphertext, cut from the file at the offsets its index gives."""
    with Vault.open(path, PASSPHRASE) as v:
        c = v._container
        data = path.read_bytes()[c.sealed.offset_base :]
        return {e.name: data[e.offset : e.offset + e.length] for e in v.entries()}


def contents(path: Path) -> dict[str, bytes]:
    with Vault.open(path, PASSPHRASE) as v:
        return {e.name: v.read_bytes(e.name) for e in v.entries()}


@pytest.fixture(autouse=True)
def any_offset_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every offset counts as shareable, so that the kernel path runs on any file system."""
    monkeypatch.setattr(sources, "SHARE_BLOCK", 1)


def save_with(
    path: Path, layer: CountingOs, monkeypatch: pytest.MonkeyPatch, compact: bool = True
) -> None:
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("bb", b"new content")
        with monkeypatch.context() as m:
            m.setattr(sources, "os", layer)
            v.commit(compact=compact)


def test_an_append_copies_nothing_and_moves_nothing(
    vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Vault.open(vault, PASSPHRASE) as v:
        places = {e.name: (e.offset, e.length) for e in v.entries()}
    before, size = ciphertexts(vault), vault.stat().st_size
    layer = CountingOs()
    save_with(vault, layer, monkeypatch, compact=False)
    assert layer.copies == []
    with Vault.open(vault, PASSPHRASE) as v:
        assert {e.name: (e.offset, e.length) for e in v.entries() if e.name != "bb"} == places
        assert v.entry("bb").offset == size  # appended at the end of the old file
    assert {k: v for k, v in ciphertexts(vault).items() if k != "bb"} == before


def test_unchanged_entries_are_copied_in_one_call_per_run(
    vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'bb' lands between 'b' and 'c': the five old entries are two runs, two calls."""
    before = ciphertexts(vault)
    layer = CountingOs()
    save_with(vault, layer, monkeypatch)
    lengths = {name: len(ct_) for name, ct_ in before.items()}
    assert layer.copies == [lengths["a"] + lengths["b"], lengths["c"] + lengths["d"] + lengths["e"]]
    after = ciphertexts(vault)
    assert {k: after[k] for k in NAMES} == before  # byte for byte, never re-encrypted
    assert contents(vault)["bb"] == b"new content"


def test_a_removed_entry_splits_the_run(vault: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = CountingOs()
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.remove("c")
        with monkeypatch.context() as m:
            m.setattr(sources, "os", layer)
            v.commit()
    assert len(layer.copies) == 2
    assert sorted(contents(vault)) == ["a", "b", "d", "e"]


def test_where_blocks_cannot_be_shared_the_bytes_go_through_memory(
    vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old and new offsets that differ within a block: no reflink is possible, and the kernel's
    byte copy measured slower than ours on XFS and ext4, so it is not asked."""
    monkeypatch.setattr(sources, "SHARE_BLOCK", 1 << 40)
    before = ciphertexts(vault)
    layer = CountingOs()
    save_with(vault, layer, monkeypatch)
    assert layer.copies == []
    after = ciphertexts(vault)
    assert {k: after[k] for k in NAMES} == before


@pytest.mark.parametrize(
    "layer",
    [
        CountingOs(err=errno.EXDEV),
        CountingOs(err=errno.EOPNOTSUPP),
        CountingOs(err=errno.ENOSYS),
        CountingOs(err=errno.EINVAL),
        CountingOs(zero=True),
        CountingOs(at_most=4097),
    ],
    ids=["EXDEV", "EOPNOTSUPP", "ENOSYS", "EINVAL", "copies-nothing", "short-copies"],
)
def test_where_the_kernel_will_not_copy_the_bytes_go_through_memory(
    vault: Path, layer: CountingOs, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = ciphertexts(vault)
    old = contents(vault)
    save_with(vault, layer, monkeypatch)
    assert layer.copies, "copy_file_range was not tried"
    after = ciphertexts(vault)
    assert {k: after[k] for k in NAMES} == before
    assert contents(vault) == {**old, "bb": b"new content"}


def test_another_error_of_the_copy_fails_the_save_and_changes_nothing(
    vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = vault.read_bytes()
    with pytest.raises(LockerError) as caught:
        save_with(vault, CountingOs(err=errno.EIO), monkeypatch)
    assert str(caught.value) == (
        f"cannot save {vault}: {os.strerror(errno.EIO)}; the vault is unchanged"
    )
    assert vault.read_bytes() == before
    assert [p.name for p in vault.parent.iterdir() if ".tmp-" in p.name] == []


@pytest.mark.parametrize("share_block", [1, 1 << 40], ids=["kernel-copy", "copy-in-memory"])
def test_an_old_file_that_ends_early_fails_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share_block: int
) -> None:
    """The kernel copies nothing past the end of the old file; the copy through memory then
    finds it short and says so. (A vault cut short under its writer is refused even earlier,
    by the identity check before the save writes anything.)"""
    monkeypatch.setattr(sources, "SHARE_BLOCK", share_block)
    old = tmp_path / "old"
    old.write_bytes(os.urandom(100_000))
    with old.open("rb") as f, (tmp_path / "new").open("wb") as out:
        copy = sources.CopyCiphertext(f, 0, 150_000)
        with pytest.raises(FormatError, match="container ended while copying an entry"):
            copy.write_to(out, UNUSED, b"", UNUSED)
    assert (tmp_path / "new").read_bytes() == old.read_bytes()
