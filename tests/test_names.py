"""Entry names: one pinned code-point rule, whatever Python's Unicode tables say, and names that
a case-insensitive file system would merge are refused by `get`, never overwritten."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import PASSPHRASE, FatImage, RunLocker

from locker.errors import InvalidNameError
from locker.store.format import FORBIDDEN_NAME_CHARS, check_name, is_forbidden_char
from locker.vault import Vault

EDGES_REFUSED = [0x01, 0x1F, 0x7F, 0x9F, 0xAD, 0x200B, 0x202E, 0x2066, 0xFEFF, 0x13438, 0xE007F]
EDGES_ACCEPTED = [0x20, 0x7E, 0xA0, 0xAE, 0x2065, 0x13439, 0x1343F, 0xE0000, 0xE0080, 0x10FFFF]


@pytest.mark.parametrize("cp", EDGES_REFUSED, ids=hex)
def test_refused_at_the_edges(cp: int) -> None:
    with pytest.raises(InvalidNameError, match="control character"):
        check_name(f"a{chr(cp)}b")


@pytest.mark.parametrize("cp", EDGES_ACCEPTED, ids=hex)
def test_accepted_at_the_edges(cp: int) -> None:
    assert check_name(f"a{chr(cp)}b") == f"a{chr(cp)}b"


def test_the_rule_does_not_follow_pythons_unicode_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.12's tables made U+13439 a format character: a name a 3.11 locker wrote then
    failed every command. Simulate the newer table; the pinned rule must not change."""
    real = unicodedata.category
    monkeypatch.setattr(
        unicodedata, "category", lambda c: "Cf" if 0x13439 <= ord(c) <= 0x1343F else real(c)
    )
    assert check_name("hiero\U00013439glyph") == "hiero\U00013439glyph"


def test_every_forbidden_character_is_a_control_in_this_pythons_tables() -> None:
    """Unicode only ever added Cc/Cf/Zl/Zp code points since 14.0, so the pinned set is a subset
    of what any supported Python calls controls: no name that any locker wrote is refused."""
    for lo, hi in FORBIDDEN_NAME_CHARS:
        for cp in range(lo, hi + 1):
            assert unicodedata.category(chr(cp)) in ("Cc", "Cf", "Zl", "Zp"), hex(cp)
    assert sum(hi - lo + 1 for lo, hi in FORBIDDEN_NAME_CHARS) == 230
    assert not is_forbidden_char(" ")


@pytest.fixture
def fat_dir(fat_image: Callable[..., FatImage]) -> Path:
    """A real FAT file system (case-insensitive) mounted through FUSE; unmounted afterwards."""
    return fat_image(size_mib=8).mount_point


@pytest.mark.parametrize("force", [False, True])
def test_get_refuses_names_a_fat_file_system_would_merge(
    fat_dir: Path, vault_path: Path, cli: RunLocker, force: bool
) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("ID_RSA", b"upper")
        v.add_bytes("id_rsa", b"lower")
        v.commit()
    proc = cli("get", "ID_RSA", "id_rsa", "--to", fat_dir, *(["--force"] if force else []))
    assert proc.returncode == 1, proc.stderr
    assert (fat_dir / "ID_RSA").read_bytes() == b"upper"  # the first stays, not overwritten
    assert b"is the same file here as an entry written just before it" in proc.stderr
    assert sorted(os.listdir(fat_dir)) in (["ID_RSA"], ["id_rsa"])


def test_get_writes_case_variants_side_by_side_where_the_file_system_allows(
    tmp_path: Path, vault_path: Path, cli: RunLocker
) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("K", b"upper")
        v.add_bytes("k", b"lower")
        v.commit()
    out = tmp_path / "out"
    assert cli("get", "K", "k", "--to", out, "--force").returncode == 0
    assert (out / "K").read_bytes() == b"upper" and (out / "k").read_bytes() == b"lower"
