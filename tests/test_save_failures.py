"""Failure branches of a save that no other test reached (issue 10, item 15): a source file
that shrinks or grows between `add` and the save, on the inline and the background writer,
and a real ENOSPC met by the background writer. Each time the vault stays byte-identical,
no temp file is left and the error says what happened."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, TINY_KDF, FatImage

from locker.errors import LockerError
from locker.store import container as ct
from locker.store import generations, sources
from locker.vault import Vault, create

PIPELINED = sources._PIPELINE_MIN + 3 * 65536 + 5  # written by the background writer
INLINE = 200_000


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vaults" / "v.locker"
    path.parent.mkdir()
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("keep", b"kept\n")
        v.commit()
    return path


def _unchanged(vault: Path, before: bytes) -> None:
    assert vault.read_bytes() == before
    assert sorted(p.name for p in vault.parent.iterdir()) == ["v.locker", "v.locker.lock"]
    with Vault.open(vault, PASSPHRASE) as v:
        assert [e.name for e in v.entries()] == ["keep"]


@pytest.mark.parametrize("size", [INLINE, PIPELINED])
@pytest.mark.parametrize("change", ["shrank", "grew"])
def test_a_source_that_changes_size_after_add_aborts_the_save(
    vault: Path, tmp_path: Path, size: int, change: str
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(size))
    before = vault.read_bytes()
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_file("new.bin", src)
        if change == "shrank":
            os.truncate(src, size - 70_000)  # inside the last block the writer reads
        else:
            with src.open("ab") as f:
                f.write(b"more")
        with pytest.raises(LockerError, match=f"{src} {change} while it was being read"):
            v.commit()
    _unchanged(vault, before)


def test_the_background_writer_meets_a_full_disk(
    fat_image: Callable[..., FatImage], tmp_path: Path
) -> None:
    """A real 12 MiB FAT file system: an entry of over 8 MiB (sealed on one thread, written
    on another) does not fit; the writer thread's ENOSPC reaches the save as its error."""
    fat = fat_image(size_mib=12)
    vault = fat.mount_point / "v.locker"
    create(vault, PASSPHRASE, TINY_KDF)
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_bytes("keep", os.urandom(4 * 2**20))
        v.commit()
    before = vault.read_bytes()
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(PIPELINED))
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_file("big.bin", src)
        with pytest.raises(LockerError) as caught:
            v.commit()
    message = str(caught.value)
    assert message.startswith(f"cannot save {vault}"), message
    # fusefat reports a full disk as EPERM, the kernel's file systems as ENOSPC
    assert "No space left on device" in message or "Operation not permitted" in message
    assert message.endswith("the vault is unchanged"), message
    assert vault.read_bytes() == before
    assert fat.listing() in (["v.locker"], ["v.locker", "v.locker.lock"])


class _FailingReopen:
    """Stands in for `os` inside store/container.py: once the save is on disk (an append's
    record written, or a compaction's file renamed over the vault), reading the vault's index
    back (`Container.open`'s pread) fails with EIO."""

    def __init__(self) -> None:
        self.saved = self.failed = False

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def replace(self, *args: object, **kwargs: object) -> None:
        os.replace(*args, **kwargs)  # type: ignore[arg-type]
        self.saved = True

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        if self.saved:
            self.failed = True
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return os.pread(fd, n, offset)


def _fds_on(path: Path) -> int:
    """How many of this process's descriptors are open on `path` (its current file)."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path))


@pytest.mark.parametrize("compact", [False, True], ids=["append", "compaction"])
def test_a_reopen_that_fails_after_the_save_says_it_saved(
    vault: Path, monkeypatch: pytest.MonkeyPatch, compact: bool
) -> None:
    """The save is on disk when reading it back fails (a disk error), whether it was appended
    or written as a new file: the error says the vault was saved and how to check it, no
    descriptor of the reopened file is left open, and the vault opens with what was saved."""
    layer = _FailingReopen()
    save = generations.save

    def save_then_fail(*args: Any, **kwargs: Any) -> bool:
        appended = save(*args, **kwargs)
        layer.saved = True
        return appended

    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_bytes("new", b"saved before the reopen\n")
        open_before = _fds_on(vault)
        monkeypatch.setattr(ct, "os", layer)
        monkeypatch.setattr(generations, "save", save_then_fail)
        with pytest.raises(LockerError) as raised:
            v.commit(compact=compact)
        monkeypatch.undo()
        assert layer.failed
        # an append keeps the vault's own descriptor of the same file; a compaction's new
        # file is closed again and the old one is no longer at the path
        assert _fds_on(vault) == (0 if compact else open_before)
    assert str(raised.value) == (
        f"saved {vault}, but reopening it to check failed: {vault}: Input/output error"
    )
    assert raised.value.hint == "run 'locker verify' once the cause is fixed"
    assert sorted(p.name for p in vault.parent.iterdir()) == ["v.locker", "v.locker.lock"]
    with Vault.open(vault, PASSPHRASE) as v:
        assert {e.name: v.read_bytes(e.name) for e in v.entries()} == {
            "keep": b"kept\n",
            "new": b"saved before the reopen\n",
        }
