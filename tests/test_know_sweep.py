"""`locker sweep`: exactly the plaintext secrets of a tree, worst first; --import moves them
into the vault, verified, then shreds them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import PASSPHRASE, RunLocker
from sweep_tree import ordinary, secrets, write_tree

from locker.know import sweep as ks
from locker.know.shred import digest_of, shred_if_held
from locker.vault import Vault


def test_sweep_finds_exactly_the_20_secrets_among_200_ordinary_files(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    write_tree(tree, {**secrets(), **ordinary(200)})
    (tree / "link-to-key").symlink_to(tree / "srv/tls/server.key")
    os.mkfifo(tree / "fifo")
    found, seen = ks.sweep([tree])
    assert seen == 220  # the link and the FIFO are not files to read
    names = sorted(str(f.path.relative_to(tree)) for f in found)
    assert names == sorted(secrets())


def test_worst_first_and_who_can_read(tmp_path: Path) -> None:
    write_tree(tmp_path, secrets())
    (tmp_path / "app/.env").chmod(0o644)
    (tmp_path / "srv/tls/server.key").chmod(0o640)
    for p in tmp_path.rglob("*"):
        if p.is_file() and p.name not in (".env", "server.key"):
            p.chmod(0o600)
    found, _ = ks.sweep([tmp_path])
    assert [f.path.name for f in found[:2]] == [".env", "server.key"]
    assert (found[0].readable_by, found[1].readable_by, found[2].readable_by) == (
        "everyone",
        "group",
        "owner",
    )
    assert found[-1].encrypted  # encrypted keys come last among the owner-only files


def test_cli_sweep_needs_no_vault_and_exits_6(run_locker: RunLocker, tmp_path: Path) -> None:
    write_tree(tmp_path / "t", {**secrets(), **ordinary(30)})
    out = run_locker("sweep", tmp_path / "t", "--json", "--vault", tmp_path / "none.locker")
    assert out.returncode == 6, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 20 and all(r["left_in_place"] for r in rows)
    assert set(rows[0]) == {
        "path",
        "kind",
        "what",
        "owner",
        "mode",
        "readable_by",
        "encrypted",
        "entry",
        "left_in_place",
        "reason",
    }
    assert b"hunter2" not in out.stdout and b"t0k3n" not in out.stdout
    clean = run_locker("sweep", tmp_path / "t/certs")
    assert clean.returncode == 0 and b"0 plaintext secrets" in clean.stdout


def test_cli_sweep_import_moves_verifies_and_shreds(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "t"
    secret_files, plain_files = secrets(), ordinary(14)
    write_tree(tree, {**secret_files, **plain_files})
    refused = cli("sweep", tree, "--import")  # no terminal to ask on
    assert refused.returncode == 2 and b"--yes" in refused.stderr
    out = cli("sweep", tree, "--import", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    with Vault.open(vault_path, PASSPHRASE) as v:
        for name, data in secret_files.items():
            entry = ks.entry_name(tree / name)
            assert entry == str(tree / name).lstrip("/")
            assert v.read_bytes(entry) == data
    assert not any((tree / n).exists() for n in secret_files)
    assert all((tree / n).read_bytes() == d for n, d in plain_files.items())
    assert b"20 plaintext secrets in 34 files; 20 imported, 0 left in place" in out.stdout
    again = cli("sweep", tree)
    assert again.returncode == 0


def test_import_keeps_what_is_already_held_or_changed(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    key = tmp_path / "t" / "app/.env"
    write_tree(tmp_path / "t", {"app/.env": b"DB_PASSWORD=one\n"})
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes(ks.entry_name(key), b"older\n")
        v.commit()
    out = cli("sweep", tmp_path / "t", "--import", "--yes")
    assert out.returncode == 6 and b"already has an entry named" in out.stdout
    assert key.read_bytes() == b"DB_PASSWORD=one\n"


def test_a_file_changed_after_it_was_read_is_left_in_place(tmp_path: Path) -> None:
    write_tree(tmp_path, {"prod.env": b"API_TOKEN=abc\n"})
    (found,), _ = ks.sweep([tmp_path])
    (tmp_path / "prod.env").write_bytes(b"API_TOKEN=abcd\n")
    assert ks.read_unchanged(found) is None
    why = shred_if_held(tmp_path / "prod.env", digest_of([b"API_TOKEN=abc\n"]))
    assert why is not None and "changed" in why
    assert (tmp_path / "prod.env").read_bytes() == b"API_TOKEN=abcd\n"
    assert shred_if_held(tmp_path / "prod.env", digest_of([b"API_TOKEN=abcd\n"])) is None
    assert not (tmp_path / "prod.env").exists()
