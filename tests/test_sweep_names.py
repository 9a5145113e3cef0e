"""sweep --import in a tree where someone else chose the file names: a file whose path cannot be
an entry name is left in place with its reason; it must not stop the rest from being imported."""

from __future__ import annotations

from pathlib import Path

from conftest import PASSPHRASE, RunLocker
from sweep_tree import secrets, write_tree

from locker.know import sweep as ks
from locker.vault import Vault


def test_a_path_that_cannot_be_a_name_is_left_in_place_and_the_rest_imported(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "t"
    found = secrets()
    good_name, data = next(iter(found.items()))
    write_tree(tree, {good_name: data, "drop\\box/id_ed25519": found[list(found)[1]]})
    bad = tree / "drop\\box/id_ed25519"
    assert bad.exists()
    out = cli("sweep", tree, "--import", "--yes")
    assert out.returncode == 6, out.stdout + out.stderr  # something was left in place
    assert b"Traceback" not in out.stderr
    assert bad.read_bytes() == found[list(found)[1]]  # left as it was
    assert b"backslash" in out.stdout  # the reason is told
    assert not (tree / good_name).exists()  # the other secret was moved in
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert v.read_bytes(ks.entry_name(tree / good_name)) == data
