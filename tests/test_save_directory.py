"""A save goes through one descriptor of the vault's directory (issue 13, the pulled drive):
a drive unmounted before or during a save, or the directory swapped under it, never gets a
vault or a bundle written into whatever directory the path names afterwards."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, SMALL_KDF, TINY_KDF, FatImage

from locker import bundle
from locker.bundle import exporting, interrupted
from locker.errors import LockerError
from locker.store import container as ct
from locker.store import generations
from locker.vault import Vault, create


def contents(path: Path) -> dict[str, bytes]:
    with Vault.open(path, PASSPHRASE) as v:
        return {e.name: v.read_bytes(e.name) for e in v.entries()}


def swap(directory: Path) -> Path:
    """Move `directory` aside and put an empty one in its place, as a lazy unmount leaves
    the empty mount point where the drive's root was; returns where the old one went."""
    away = directory.with_name(directory.name + "-away")
    directory.rename(away)
    directory.mkdir()
    return away


def test_a_save_after_the_drive_was_unmounted_writes_nothing_in_the_mount_point(
    fat_image: Callable[..., FatImage],
) -> None:
    fat = fat_image(size_mib=2)
    vault = fat.mount_point / "v.locker"
    create(vault, PASSPHRASE, TINY_KDF)
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"alpha")
        v.commit()
        fat.unmount(lazy=True)  # the vault and its lock stay open, as a mount's would
        v.add_bytes("b", b"beta")
        with pytest.raises(LockerError) as caught:
            v.commit()
        assert os.listdir(fat.mount_point) == []  # no vault, no temp in the empty mount point
    assert "is no longer there" in str(caught.value)
    assert "nothing was saved" in str(caught.value)
    fat.reap()
    fat.mount()
    assert contents(vault) == {"a": b"alpha"}


@pytest.mark.parametrize(
    ("module", "step", "compact"),
    [(ct, "verify_written", True), (generations, "_read_back", False)],
    ids=["compaction", "append"],
)
def test_a_directory_swapped_during_a_save_gets_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any, step: str, compact: bool
) -> None:
    """The swap comes after the new bytes are written (a compaction's temp file, an append's
    data and index) and before the rename or the commit record: the save lands in the
    directory the vault was read from, as it would on the drive a lazy unmount keeps alive for
    open descriptors, the empty directory stays empty, and reopening the vault by its path
    afterwards says it is gone."""
    home = tmp_path / "stick"
    home.mkdir()
    vault = home / "v.locker"
    create(vault, PASSPHRASE, TINY_KDF)
    real = getattr(module, step)
    moved: list[Path] = []

    def then_swap(*args: Any) -> None:
        real(*args)
        moved.append(swap(home))

    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"alpha")
        monkeypatch.setattr(module, step, then_swap)
        with pytest.raises(LockerError, match=r"saved .*, but reopening it to check failed"):
            v.commit(compact=compact)
    assert os.listdir(home) == []
    assert sorted(os.listdir(moved[0])) == ["v.locker", "v.locker.lock"]
    assert contents(moved[0] / "v.locker") == {"a": b"alpha"}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "v.locker"
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("a.env", b"A=1\n")
        v.commit()
    return path


def test_an_export_whose_directory_is_swapped_after_verifying_names_it_there(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "stick"
    out.mkdir()
    verify = exporting._verify_from_drive
    moved: list[Path] = []

    def verify_then_swap(*args: Any) -> None:
        verify(*args)
        moved.append(swap(out))

    monkeypatch.setattr(exporting, "_verify_from_drive", verify_then_swap)
    with Vault.open(source, PASSPHRASE, write=True) as v:
        done = bundle.export(v, out / "b.locker", ["a.env"], b"bundle passphrase", SMALL_KDF)
    assert os.listdir(out) == []
    assert os.listdir(moved[0]) == ["b.locker"]
    assert done.size == (moved[0] / "b.locker").stat().st_size


def test_an_export_whose_directory_is_swapped_before_writing_leaves_no_bundle(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "stick"
    out.mkdir()
    record = interrupted.record_export
    moved: list[Path] = []

    def swap_then_record(temp: Path) -> Path:
        moved.append(swap(out))
        return record(temp)

    monkeypatch.setattr(interrupted, "record_export", swap_then_record)
    with Vault.open(source, PASSPHRASE, write=True) as v, pytest.raises(LockerError) as caught:
        bundle.export(v, out / "b.locker", ["a.env"], b"bundle passphrase", SMALL_KDF)
    assert "no longer the directory the export began in" in str(caught.value)
    assert os.listdir(out) == []  # the temporary bundle is cleaned up where it was made
    assert os.listdir(moved[0]) == []
