"""Audit events recorded without rewriting the vault (store/deferred.py): an export runs beside
a writer (a mount), reads the last saved state, leaves its event beside the vault, and the
writer's next save merges it into the log without losing anything of its own."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import PASSPHRASE, SMALL_KDF, TINY_KDF

from locker import bundle
from locker.store import deferred
from locker.vault import Vault, create

BUNDLE_PASSPHRASE = b"a different bundle passphrase"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "v.locker"
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("a.env", b"A=1\n")
        v.add_bytes("tls/site.key", b"key\n")
        v.commit()
    return path


def event_files(vault: Path) -> list[str]:
    return sorted(n for n in os.listdir(vault.parent) if deferred.is_event_of(vault, n))


def events(vault: Path, kind: str) -> list[str]:
    with Vault.open(vault, PASSPHRASE) as v:
        return [e.detail for e in v.log() if e.event == kind]


def export(vault: Path, target: Path) -> bundle.Exported:
    with Vault.open(vault, PASSPHRASE) as reader:
        names = bundle.select(reader, [])
        return bundle.export(reader, target, names, BUNDLE_PASSPHRASE, SMALL_KDF)


def test_an_export_beside_a_writer_reads_the_last_save_and_the_writer_loses_nothing(
    source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "stick" / "b.locker"
    target.parent.mkdir()
    with Vault.open(source, PASSPHRASE, write=True, purpose="mount") as writer:
        writer.add_bytes("staged.txt", b"not saved yet")
        before = source.read_bytes()
        done = export(source, target)
        assert done.unlogged is None
        assert source.read_bytes() == before  # the vault was not rewritten
        assert len(event_files(source)) == 1
        assert events(source, "export") == [f"bundle {done.bundle_id} to {target}"]
        writer.add_bytes("later.txt", b"after the export")
        writer.record("sync")
        writer.commit()
    with Vault.open(target, BUNDLE_PASSPHRASE) as b:
        assert sorted(e.name for e in b.entries()) == ["a.env", "tls/site.key"]
    with Vault.open(source, PASSPHRASE) as v:
        assert {e.name: v.read_bytes(e.name) for e in v.entries()} == {
            "a.env": b"A=1\n",
            "later.txt": b"after the export",
            "staged.txt": b"not saved yet",
            "tls/site.key": b"key\n",
        }
        assert [e.event for e in v.log()][-2:] == ["export", "sync"]
    assert event_files(source) == []
    assert events(source, "export") == [f"bundle {done.bundle_id} to {target}"]


def test_an_event_file_left_by_a_killed_save_is_not_merged_twice(
    source: Path, tmp_path: Path
) -> None:
    export(source, tmp_path / "b.locker")
    (name,) = event_files(source)
    kept = tmp_path / "kept"
    shutil.copyfile(source.with_name(name), kept)
    with Vault.open(source, PASSPHRASE, write=True) as v:
        v.commit()
        shutil.copyfile(kept, source.with_name(name))  # as if killed before the removal
        assert len(events(source, "export")) == 1
        v.commit()
    assert event_files(source) == []
    assert len(events(source, "export")) == 1


def test_a_forged_or_renamed_event_file_is_ignored_and_left(source: Path, tmp_path: Path) -> None:
    export(source, tmp_path / "b.locker")
    (name,) = event_files(source)
    real = source.with_name(name)
    renamed = source.with_name(name[:-1] + ("0" if name[-1] != "0" else "1"))
    shutil.copyfile(real, renamed)  # a replay under another name fails authentication
    flipped = bytearray(real.read_bytes())
    flipped[-1] ^= 1
    forged = source.with_name(name[:-2] + "ff" if not name.endswith("ff") else name[:-2] + "ee")
    forged.write_bytes(bytes(flipped))
    with Vault.open(source, PASSPHRASE, write=True) as v:
        v.commit()
    assert events(source, "export") != []
    assert len(events(source, "export")) == 1
    assert event_files(source) == sorted([renamed.name, forged.name])


def test_a_rekey_merges_the_events_sealed_under_the_old_master_key(
    source: Path, tmp_path: Path
) -> None:
    export(source, tmp_path / "b.locker")
    with Vault.open(source, PASSPHRASE, write=True) as v:
        v.rekey()
        v.commit()
    assert event_files(source) == []
    assert len(events(source, "export")) == 1


def test_an_export_whose_event_cannot_be_written_says_so_and_keeps_the_bundle(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vault in a directory this user cannot write (the event file is refused there)."""

    def refuse(*_: object) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(deferred, "write", refuse)
    done = export(source, tmp_path / "b.locker")
    assert done.unlogged == (
        f"cannot record the export in the audit log beside {source}: Permission denied"
    )
    assert (tmp_path / "b.locker").exists()


def test_events_written_in_the_same_second_keep_their_order(source: Path) -> None:
    """A mount and its lock within one second (log times are whole seconds): the files' names
    sort in the order they were written, and the log shows them in that order, merged or not."""
    details = [f"event {i}" for i in range(12)]
    with Vault.open(source, PASSPHRASE, write=True, clock=lambda: 1_800_000_000.0) as v:
        for detail in details:
            v.record_deferred("mount", detail=detail)
        assert [e.detail for e in v.log()][-12:] == details
        v.commit()
    assert event_files(source) == []
    assert events(source, "mount") == details
