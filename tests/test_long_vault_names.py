"""A vault whose file name is up to NAME_MAX (255 bytes) long saves like any other: its lock
and temp files, whose names add to the vault's, use a shortened form of it (issue 10, item 5:
names of 238+ bytes had a temp name no file system takes, so they could never be saved)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import PASSPHRASE, TINY_KDF, RunLocker

from locker.store import container as ct
from locker.store import deferred
from locker.store.index import LogEvent
from locker.store.lockfile import NAME_MAX, lock_path, stem_beside
from locker.vault import Vault, create


@pytest.mark.parametrize("length", [237, 238, 250, 255])
def test_a_vault_with_a_long_name_saves_and_reopens(tmp_path: Path, length: int) -> None:
    home = tmp_path / "vaults"
    home.mkdir()
    path = home / ("v" * (length - 7) + ".locker")
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"alpha")
        v.commit()
        assert lock_path(path).exists()
    with Vault.open(path, PASSPHRASE) as v:
        assert v.read_bytes("a") == b"alpha"
    assert sorted(os.listdir(home)) == sorted([path.name, lock_path(path).name])


def test_multibyte_and_undecodable_names_are_cut_within_the_limit(tmp_path: Path) -> None:
    names = ["é" * 127 + ".x", os.fsdecode(b"\xff" * 251)]
    for name in names:
        path = tmp_path / name
        for added in (5, 18):
            stem = stem_beside(path, added)
            assert len(os.fsencode(stem)) + added == NAME_MAX
            assert stem[-17] == "~" and int(stem[-16:], 16) >= 0
    shortened = {stem_beside(tmp_path / ("w" * 250 + str(i)), 18) for i in range(3)}
    assert len(shortened) == 3  # distinct vaults, distinct temp and lock names


def test_stale_temps_of_a_long_named_vault_are_recognised(tmp_path: Path) -> None:
    path = tmp_path / ("v" * 248 + ".locker")
    stale = ct.temp_path(path, "0123456789ab")
    assert len(os.fsencode(stale.name)) == NAME_MAX
    stale.write_bytes(b"left by a killed writer")
    other = ct.temp_path(tmp_path / ("v" * 247 + ".locker"), "0123456789ab")
    other.write_bytes(b"another vault's")
    assert ct.is_temp_of(path, stale.name)
    assert not ct.is_temp_of(path, other.name)
    ct.remove_stale_temps(path)
    assert not stale.exists()
    assert other.exists()


def test_cli_init_and_add_with_a_255_byte_vault_name(
    run_locker: RunLocker, tmp_path: Path, pwfile: Path
) -> None:
    vault = tmp_path / ("k" * 248 + ".locker")
    secret = tmp_path / "s.txt"
    secret.write_text("hunter2\n")
    common = ("--vault", vault, "--passphrase-file", pwfile)
    r = run_locker("init", *common, "--kdf-memory", "8", "--kdf-time", "1")
    assert r.returncode == 0, r.stderr
    r = run_locker("add", *common, secret)
    assert r.returncode == 0, r.stderr
    r = run_locker("cat", *common, "s.txt")
    assert (r.returncode, r.stdout) == (0, b"hunter2\n")


def test_an_export_event_beside_a_long_named_vault(tmp_path: Path) -> None:
    """The export's deferred audit event (`.<name>.event-<16 hex>`) is 24 bytes longer than
    the vault's name: shortened like the temp file's, and read back and merged."""
    path = tmp_path / ("e" * 248 + ".locker")
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE) as v:
        written = deferred.write(
            path, v.container_id, v._master, LogEvent(1, "export", ("a",)), os.urandom
        )
    assert len(os.fsencode(written.name)) == NAME_MAX
    assert deferred.is_event_of(path, written.name)
    with Vault.open(path, PASSPHRASE) as v:
        pending = deferred.read(path, v.container_id, v._master)
    assert [e.event for e in pending.events] == ["export"]
