"""add --shred and sweep --import zero a source in place before unlinking it. A source with
another hard link (a `cp -al` or rsnapshot copy, a second name elsewhere) shares its blocks:
zeroing it would wipe that other file too, one the user never named. Such a source is left."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import PASSPHRASE, RunLocker

from locker.errors import EXIT_ERROR
from locker.know import sweep as ks
from locker.vault import Vault

KEY = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKz5iX0c5H2+o8d7lYc4mG4c6t7N0oJ3n7sQyq5yQm0M\n-----END PRIVATE KEY-----\n"


def test_add_shred_leaves_a_source_with_another_hard_link(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "server.key").write_bytes(KEY)
    elsewhere = tmp_path / "live-server.key"
    os.link(src / "server.key", elsewhere)
    out = cli("add", src / "server.key", "--shred")
    assert out.returncode == EXIT_ERROR, out.stdout + out.stderr
    assert b"it has 1 other hard link that shredding would zero too" in out.stderr
    assert elsewhere.read_bytes() == KEY  # the other name keeps its content
    assert (src / "server.key").read_bytes() == KEY
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert v.read_bytes("server.key") == KEY  # stored all the same


def test_sweep_import_leaves_a_source_with_another_hard_link(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "backup"
    tree.mkdir()
    (tree / "id_ed25519").write_bytes(KEY)
    elsewhere = tmp_path / "home-id_ed25519"
    os.link(tree / "id_ed25519", elsewhere)
    out = cli("sweep", tree, "--import", "--yes")
    assert out.returncode == 6, out.stdout + out.stderr  # left in place: attention
    assert b"hard link" in out.stdout
    assert elsewhere.read_bytes() == KEY
    assert (tree / "id_ed25519").read_bytes() == KEY
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert v.read_bytes(ks.entry_name(tree / "id_ed25519")) == KEY
