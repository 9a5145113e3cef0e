"""The writer refuses to make what the reader refuses to read (FORMAT.md section 13).

Each reader limit gets a save that would cross it: the save fails before any file is made,
the vault on disk stays byte-identical and still opens, and no temp file is left.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest
from conftest import PASSPHRASE, TINY_KDF, counter_rng

from locker.errors import LockerError
from locker.store import container as ct
from locker.store.format import MAX_SLOTS, KdfCost, Slot
from locker.store.index import (
    MAX_INDEX_PLAINTEXT,
    MAX_LOG_BYTES,
    MAX_LOG_EVENTS,
    MAX_LOG_NAMES,
    Entry,
    Index,
    LogEvent,
    encode_index,
    trim_log,
)
from locker.store.sources import Plaintext
from locker.vault import Vault, create


@pytest.fixture
def tiny_vault(tmp_path: Path) -> Path:
    path = tmp_path / "v.locker"
    create(path, PASSPHRASE, TINY_KDF, rng=counter_rng(1))
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"alpha")
        v.commit()
    return path


def assert_unchanged(path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if ".tmp-" in p.name] == []
    with Vault.open(path, PASSPHRASE) as v:
        assert v.read_bytes("a") == b"alpha"


def long_names(count: int, length: int, tag: str = "n") -> tuple[str, ...]:
    return tuple(f"{tag}{i:06d}".ljust(length, "x") for i in range(count))


def test_a_log_of_huge_events_never_bricks_the_vault(tiny_vault: Path) -> None:
    """The review's reproduction: a log holding every name of every `add --force` grew past
    the reader's 64 MiB index cap; the save replaced the vault with a file every command
    refused (exit 4). Now old events are dropped to fit, and the vault still opens."""
    event = LogEvent(1, "add", long_names(1000, 1000), "u", "h", "")
    with Vault.open(tiny_vault, PASSPHRASE, write=True) as v:
        v._container.index.log = [event] * 70  # what 70 runs from cron left behind
        v.add_bytes("b", b"beta")
        v.commit()
    with Vault.open(tiny_vault, PASSPHRASE) as v:
        assert v.read_bytes("b") == b"beta"
        log = v.log()
    assert 0 < len(log) < 70
    assert log == [event] * len(log)
    assert len(canonical_log(log)) <= MAX_LOG_BYTES + 100


def test_names_per_log_event_are_capped_with_a_count(tiny_vault: Path) -> None:
    names = long_names(1000, 20)
    with Vault.open(tiny_vault, PASSPHRASE, write=True) as v:
        v.record("add", names, "forced")
        v.commit()
    with Vault.open(tiny_vault, PASSPHRASE) as v:
        ev = v.log()[-1]
    assert ev.names == names[:MAX_LOG_NAMES]
    assert ev.detail == f"forced; 1000 names, the first {MAX_LOG_NAMES} listed"


def test_trim_log_keeps_the_newest_events_within_both_caps() -> None:
    small = [LogEvent(i, "add") for i in range(MAX_LOG_EVENTS + 5)]
    assert trim_log(small) == small[-MAX_LOG_EVENTS:]
    big = [LogEvent(i, "add", long_names(MAX_LOG_NAMES, 1000)) for i in range(200)]
    kept = trim_log(big)
    assert kept == big[-len(kept) :]
    assert len(canonical_log(kept)) <= MAX_LOG_BYTES < len(canonical_log(kept[:1] + kept))


def canonical_log(log: list[LogEvent]) -> bytes:
    return encode_index(Index(log=log))


def test_an_index_over_the_reader_cap_is_refused_before_any_file(tiny_vault: Path) -> None:
    before = tiny_vault.read_bytes()
    count = MAX_INDEX_PLAINTEXT // 1000  # each entry's JSON is over 1000 bytes
    with Vault.open(tiny_vault, PASSPHRASE, write=True) as v:
        deep = "/".join(["y" * 250] * 4)  # 1003 bytes with the prefix: under the name cap
        for i in range(count):
            v.add_bytes(f"{i:06d}/{deep}", b"")
        with pytest.raises(LockerError, match=r"index would be .* over the 64 MiB"):
            v.commit()
    assert_unchanged(tiny_vault, before)


def _save(path: Path, mutate: Callable[[list[Slot], Index], None]) -> None:
    """Save `path` again through write_container after `mutate` bent its slots or index."""
    with Vault.open(path, PASSPHRASE, write=True) as v:
        c = v._container
        slots = list(c.header.slots)
        index = Index([e.copy() for e in c.index.entries], list(c.index.log))
        mutate(slots, index)
        plan = [ct.Planned(e, Plaintext(b"alpha")) for e in index.entries]
        ct.write_container(
            path, c.container_id, slots, c.unlocked.master, index, plan, counter_rng(9)
        )


def _too_many_slots(slots: list[Slot], index: Index) -> None:
    slots.extend(slots[0]._replace(slot_id=bytes([i]) * 8) for i in range(MAX_SLOTS))


def _duplicate_slot(slots: list[Slot], index: Index) -> None:
    slots.append(slots[0])


def _kdf_over_cap(slots: list[Slot], index: Index) -> None:
    slots[0] = slots[0]._replace(kdf=KdfCost(8, 17, 1))


def _unsafe_name(slots: list[Slot], index: Index) -> None:
    index.entries[0].name = "../escape"


def _file_and_directory(slots: list[Slot], index: Index) -> None:
    e = index.entries[0].copy()
    e.name, e.entry_id = "a/b", b"\x01" * 16
    index.entries.append(e)


def _duplicate_entry_id(slots: list[Slot], index: Index) -> None:
    e = index.entries[0].copy()
    e.name = "b"
    index.entries.append(e)


def _non_string_attr(slots: list[Slot], index: Index) -> None:
    index.entries[0].attrs = {"k": 1}  # type: ignore[dict-item]


LIMITS = {
    "more than 16 key slots": _too_many_slots,
    "two slots with one id": _duplicate_slot,
    "Argon2 time cost over the cap": _kdf_over_cap,
    "an unsafe entry name": _unsafe_name,
    "a name that is a file and a directory": _file_and_directory,
    "two entries with one id": _duplicate_entry_id,
    "an attribute that is not a string": _non_string_attr,
}


@pytest.mark.parametrize("mutate", LIMITS.values(), ids=LIMITS.keys())
def test_the_writer_refuses_what_the_reader_refuses(
    tiny_vault: Path, mutate: Callable[[list[Slot], Index], None]
) -> None:
    before = tiny_vault.read_bytes()
    with pytest.raises(LockerError, match="no reader would open"):
        _save(tiny_vault, mutate)
    assert_unchanged(tiny_vault, before)


class _Scribbler:
    """A buggy source: writes the right number of bytes, then scribbles over the header."""

    def write_to(
        self, out: BinaryIO, key_for: Callable[[Entry], bytes], aad: bytes, entry: Entry
    ) -> None:
        end = out.tell()
        out.write(b"\0" * entry.length)
        out.seek(40)
        out.write(b"\xff")
        out.seek(end + entry.length)


def test_the_temp_file_is_read_back_before_the_rename(tiny_vault: Path) -> None:
    before = tiny_vault.read_bytes()
    with Vault.open(tiny_vault, PASSPHRASE, write=True) as v:
        v.add_bytes("b", b"beta")
        v._staged["b"].source = _Scribbler()
        with pytest.raises(
            LockerError, match=r"cannot save .*: the new copy did not read back.*vault is unchanged"
        ):
            v.commit(compact=True)
    assert_unchanged(tiny_vault, before)


def test_an_append_never_writes_before_the_end_of_the_vault(tiny_vault: Path) -> None:
    """The same buggy source in an append, which writes into the vault file itself: its
    write over the head is refused, and the file is cut back to its old bytes."""
    before = tiny_vault.read_bytes()
    with Vault.open(tiny_vault, PASSPHRASE, write=True) as v:
        v.add_bytes("b", b"beta")
        v._staged["b"].source = _Scribbler()
        with pytest.raises(LockerError, match=r"a write before the end of the vault"):
            v.commit()
    assert_unchanged(tiny_vault, before)


def test_a_vault_replaced_behind_the_lock_is_not_overwritten(tiny_vault: Path) -> None:
    """On a file system where flock is local only, another host may save meanwhile."""
    with Vault.open(tiny_vault, PASSPHRASE, write=True) as v:
        other = tiny_vault.with_name("other")
        other.write_bytes(tiny_vault.read_bytes())
        os.replace(other, tiny_vault)
        theirs = tiny_vault.read_bytes()
        v.add_bytes("b", b"beta")
        with pytest.raises(LockerError, match="changed by another writer"):
            v.commit()
    assert tiny_vault.read_bytes() == theirs


def test_stale_temp_cleanup_spares_the_temps_of_a_vault_named_like_one(
    tiny_vault: Path,
) -> None:
    stale = tiny_vault.with_name(f".{tiny_vault.name}.tmp-0123456789ab")
    live = tiny_vault.with_name(f".{tiny_vault.name}.tmp-x.locker.tmp-0123456789ab")
    for p in (stale, live):
        p.write_bytes(b"ciphertext")
    with Vault.open(tiny_vault, PASSPHRASE, write=True):
        pass
    assert not stale.exists()
    assert live.read_bytes() == b"ciphertext"


def test_a_user_name_that_is_not_utf8_is_stored_escaped(
    tiny_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", os.fsdecode(b"j\xe9r\xf4me"))
    with Vault.open(tiny_vault, PASSPHRASE, write=True) as v:
        v.record("touch")
        v.commit()
    with Vault.open(tiny_vault, PASSPHRASE) as v:
        assert v.log()[-1].user == "j\\xe9r\\xf4me"
