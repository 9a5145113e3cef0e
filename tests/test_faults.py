"""Fault injection over the save path (issue 10, item 7).

A layer between `store/container.py` (and `store/sources.py`'s copy of unchanged entries) and
the operating system makes one `open`, `write`, `copy_file_range`, `fsync` or `rename` of a
compaction fail with ENOSPC, EIO or EPERM, each call in turn. Every time:
the error names the vault, nothing was renamed over it (it stays byte-identical) unless the
failure came after the rename, no temp file is left, and a failed fsync is never followed by
the rename. The same layer over `store/generations.py` fails each `open`, `write`, `fsync`
and `pwrite` of a format 2 append: until the commit record is written the vault is cut back
to its old bytes, and a failed record write or its fsync leaves exactly the old or the new
generation. Then the same on a real full FAT file system.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, TINY_KDF, FatImage

from locker.errors import LockerError
from locker.store import container as ct
from locker.store import generations, sources
from locker.vault import Vault, create

ERRNOS = (errno.ENOSPC, errno.EIO, errno.EPERM)
OPS = ("open", "write", "copy_file_range", "fsync", "replace")


class _FaultyFile:
    """A file object whose `write`s count toward the plan and may fail."""

    def __init__(self, real: Any, layer: FaultLayer) -> None:
        self._real, self._layer = real, layer

    def write(self, data: Any) -> int:
        self._layer.step("write")
        n: int = self._real.write(data)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> _FaultyFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.__exit__(*exc)


class _FaultyCopies:
    """Stands in for `os` inside store/sources.py: only `copy_file_range` counts and may fail
    (opening the new content's source file is not part of the save's own calls)."""

    def __init__(self, layer: FaultLayer) -> None:
        self._layer = layer

    def copy_file_range(self, *args: Any) -> int:
        self._layer.step("copy_file_range")
        n: int = os.copy_file_range(*args)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


class FaultLayer:
    """Stands in for `os` inside store/container.py: counts calls, fails the planned one."""

    def __init__(self, op: str | None = None, nth: int = 0, err: int = 0) -> None:
        self.op, self.nth, self.err = op, nth, err
        self.calls: Counter[str] = Counter()
        self.failed = False
        self.after_failure: list[str] = []
        self.log: list[str] = []

    def step(self, op: str) -> None:
        self.log.append(op)
        if self.failed:
            self.after_failure.append(op)
        self.calls[op] += 1
        if op == self.op and self.calls[op] == self.nth:
            self.failed = True
            raise OSError(self.err, os.strerror(self.err), "injected")

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, *args: Any, **kwargs: Any) -> int:
        self.step("open")
        return os.open(*args, **kwargs)

    def fsync(self, fd: int) -> None:
        self.step("fsync")
        os.fsync(fd)

    def replace(self, src: Any, dst: Any, **kwargs: Any) -> None:
        self.step("replace")
        os.replace(src, dst, **kwargs)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        self.step("pwrite")
        return os.pwrite(fd, data, offset)

    def fdopen(self, fd: int, *args: Any, **kwargs: Any) -> _FaultyFile:
        return _FaultyFile(os.fdopen(fd, *args, **kwargs), self)


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "v.locker"
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("keep.env", b"A=1\n")
        v.add_bytes("big.bin", os.urandom(300_000))
        v.commit()
    return path


def contents(path: Path) -> dict[str, bytes]:
    with Vault.open(path, PASSPHRASE) as v:
        return {e.name: v.read_bytes(e.name) for e in v.entries()}


def save(path: Path, layer: FaultLayer, monkeypatch: pytest.MonkeyPatch, src: Path) -> None:
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_file("new.bin", src)
        v.remove("keep.env")
        with monkeypatch.context() as m:
            m.setattr(ct, "os", layer)
            m.setattr(sources, "os", _FaultyCopies(layer))
            v.commit()


def trials(vault: Path, monkeypatch: pytest.MonkeyPatch, src: Path) -> Iterator[FaultLayer]:
    """One trial per (operation, call of it, errno); counts from a save without faults."""
    probe = vault.with_name("probe.locker")
    shutil.copyfile(vault, probe)
    clean = FaultLayer()
    save(probe, clean, monkeypatch, src)
    kernel_copy = sources.SHARE_BLOCK == 1
    assert all(clean.calls[op] for op in OPS if op != "copy_file_range" or kernel_copy), clean.calls
    # the temp file is synced before the rename, the directory after it
    syncs = [op for op in clean.log if op in ("fsync", "replace")]
    assert syncs[:3] == ["fsync", "replace", "fsync"], clean.log
    for op in OPS:
        for nth in range(1, clean.calls[op] + 1):
            for err in ERRNOS:
                yield FaultLayer(op, nth, err)


@pytest.mark.parametrize("share_block", [1, 1 << 40], ids=["kernel-copy", "copy-in-memory"])
def test_every_failing_call_of_a_save_leaves_the_vault_intact(
    vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share_block: int
) -> None:
    """Unchanged entries copied by `copy_file_range` (any offset counts as shareable) and
    through memory (none does)."""
    monkeypatch.setattr(sources, "SHARE_BLOCK", share_block)
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    old_bytes, old = vault.read_bytes(), contents(vault)
    new = {**{k: v for k, v in old.items() if k != "keep.env"}, "new.bin": src.read_bytes()}
    outcomes: Counter[str] = Counter()
    for layer in trials(vault, monkeypatch, src):
        where = f"{layer.op} #{layer.nth} {errno.errorcode[layer.err]}"
        renamed = False
        try:
            save(vault, layer, monkeypatch, src)
        except LockerError as exc:
            assert layer.failed, where
            renamed = layer.calls["replace"] > 0 and layer.op != "replace"
            assert str(vault) in str(exc), f"{where}: the error does not name the vault: {exc}"
            assert os.strerror(layer.err) in str(exc), f"{where}: {exc}"
        else:
            pytest.fail(f"{where}: the save reported success")
        if layer.op == "fsync" and layer.nth == 1:
            assert "replace" not in layer.after_failure, f"{where}: renamed after a failed fsync"
        leftovers = [p.name for p in vault.parent.iterdir() if ".tmp-" in p.name]
        assert leftovers == [], f"{where}: {leftovers}"
        if renamed:  # failed after the rename (the directory sync, the reopen): the new state
            assert contents(vault) == new, where
            outcomes["new, error said so"] += 1
            vault.write_bytes(old_bytes)
        else:
            assert vault.read_bytes() == old_bytes, where
            outcomes["old, byte-identical"] += 1
    print(f"fault injection: {sum(outcomes.values())} trials: {dict(outcomes)}")
    assert contents(vault) == old


APPEND_OPS = ("open", "write", "fsync", "pwrite")


def append(path: Path, layer: FaultLayer, monkeypatch: pytest.MonkeyPatch, src: Path) -> None:
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_file("new.bin", src)
        v.add_bytes("keep.env", b"A=2\n", force=True)
        with monkeypatch.context() as m:
            m.setattr(generations, "os", layer)
            v.commit()


def test_every_failing_call_of_an_append_leaves_old_or_new(
    vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    old_bytes, old = vault.read_bytes(), contents(vault)
    new = {**old, "keep.env": b"A=2\n", "new.bin": src.read_bytes()}
    probe = vault.with_name("probe.locker")
    shutil.copyfile(vault, probe)
    clean = FaultLayer()
    append(probe, clean, monkeypatch, src)
    assert contents(probe) == new
    assert all(clean.calls[op] for op in APPEND_OPS), clean.calls
    # the data is synced before the record is written, the record after
    order = [op for op in clean.log if op in ("fsync", "pwrite")]
    assert order == ["fsync", "pwrite", "fsync"], clean.log
    outcomes: Counter[str] = Counter()
    for op in APPEND_OPS:
        for nth in range(1, clean.calls[op] + 1):
            for err in ERRNOS:
                layer = FaultLayer(op, nth, err)
                where = f"{op} #{nth} {errno.errorcode[err]}"
                with pytest.raises(LockerError) as caught:
                    append(vault, layer, monkeypatch, src)
                assert layer.failed, where
                message = str(caught.value)
                assert str(vault) in message and os.strerror(err) in message, f"{where}: {message}"
                if "pwrite" not in layer.log[: len(layer.log) - 1] and op != "pwrite":
                    # before the record: the appended bytes were cut off again
                    assert vault.read_bytes() == old_bytes, where
                    assert "pwrite" not in layer.after_failure, f"{where}: switched after a failure"
                    outcomes["old, byte-identical"] += 1
                else:
                    got = contents(vault)
                    assert got in (old, new), where
                    outcomes["new" if got == new else "old"] += 1
                vault.write_bytes(old_bytes)
    print(f"fault injection, append: {sum(outcomes.values())} trials: {dict(outcomes)}")
    assert contents(vault) == old


def test_a_save_on_a_full_fat_file_system(
    fat_image: Callable[..., FatImage], tmp_path: Path
) -> None:
    """A real 2 MiB FAT file system through FUSE holding a vault, with almost no space left."""
    fat = fat_image(size_mib=2)
    vault = fat.mount_point / "v.locker"
    create(vault, PASSPHRASE, TINY_KDF)
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_bytes("a", os.urandom(600_000))
        v.commit()
    before = vault.read_bytes()
    src = tmp_path / "big"
    src.write_bytes(os.urandom(1_500_000))  # old 600 KB + 1.5 MB appended: over 2 MiB
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_file("b", src)
        with pytest.raises(LockerError) as caught:
            v.commit()
    message = str(caught.value)
    print(f"full FAT: {message}")
    assert message.startswith(f"cannot save {vault}"), message
    assert message.endswith("the vault is unchanged"), message
    assert vault.read_bytes() == before
    assert sorted(p.name for p in fat.mount_point.iterdir()) in (
        ["v.locker"],
        ["v.locker", "v.locker.lock"],
    )
    assert contents(vault).keys() == {"a"}


def test_on_fat_every_save_is_a_compaction(fat_image: Callable[..., FatImage]) -> None:
    """FORMAT.md section 21, rule 6: no in-place append where fsync is not trusted with it."""
    fat = fat_image(size_mib=4)
    vault = fat.mount_point / "v.locker"
    create(vault, PASSPHRASE, TINY_KDF)
    for i in range(3):
        with Vault.open(vault, PASSPHRASE, write=True) as v:
            v.add_bytes(f"n{i}", b"x")
            v.commit()
        with Vault.open(vault, PASSPHRASE) as v:
            sealed = v._container.sealed
            assert v.generation == i + 2
            assert [pos for pos, _ in sealed.records] == [0]  # record A alone: a whole file
            live = v._container.record.index_length + sum(e.length for e in v.entries())
            assert sealed.file_size == live + 12288  # no garbage
