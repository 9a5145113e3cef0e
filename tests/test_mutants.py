"""Tests that kill the plausible security bugs a hand-planted mutation round left alive
(issue 10, item 14), in the rooms this file's owner keeps: the key caps, the master key's
lifetime and the save's fsyncs (tests/test_faults.py checks their order)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import PASSPHRASE

from locker.errors import KdfTooCostlyError
from locker.store.format import (
    MAX_KDF_MEMORY_TIME_KIB,
    MAX_KDF_TOTAL_WORK_KIB,
    SLOT_PASSPHRASE,
    Header,
    KdfCost,
    Slot,
    parse_header,
)
from locker.vault import Vault

GIB_KIB = 1024 * 1024


def header_with(costs: list[KdfCost]) -> bytes:
    slots = tuple(
        Slot(SLOT_PASSPHRASE, bytes([i]) * 8, bytes(16), bytes(12), bytes(48), cost)
        for i, cost in enumerate(costs)
    )
    return Header(bytes(16), slots, bytes(12), 17).without_mac() + bytes(32)


def test_total_argon2_work_cap_is_inclusive() -> None:
    """Exactly 16 GiB x passes over all slots opens; 8 KiB more is refused (a `>=` for `>`
    or a cap summed over one slot only survived the mutation round)."""
    full = KdfCost(GIB_KIB, 8, 1)  # 8 GiB x passes, the per-slot cap
    assert GIB_KIB * 8 == MAX_KDF_MEMORY_TIME_KIB
    rest = KdfCost(GIB_KIB - 1, 8, 1)  # 8 KiB short of the per-slot cap
    small = KdfCost(8, 1, 1)
    assert 2 * MAX_KDF_MEMORY_TIME_KIB == MAX_KDF_TOTAL_WORK_KIB
    parse_header(header_with([full, rest, small]))  # exactly the total cap
    with pytest.raises(KdfTooCostlyError, match="together exceed"):
        parse_header(header_with([full, rest, KdfCost(16, 1, 1)]))  # 8 KiB over it


def test_the_master_key_is_zeroed_when_the_vault_closes(vault_path: Path) -> None:
    v = Vault.open(vault_path, PASSPHRASE, write=True)
    master = v._container.unlocked.master
    assert any(master)
    v.close()
    assert master == bytearray(len(master))


def test_rekey_zeroes_the_old_master_key(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        old = v._container.unlocked.master
        v.add_bytes("a", os.urandom(10))
        v.rekey()
        v.commit()
        assert old == bytearray(len(old))
        assert any(v._container.unlocked.master)
