"""Tamper campaign, the parts tests/test_tamper.py does not sweep (issue 10, item 9): key slots
removed, duplicated, swapped or moved, and 10,000 sampled damages of a large container
(bit flips, truncations, appended bytes, blocks spliced in from another container at the
same place). Every one is refused with exit 3 or 4; none opens to other content, and any
chunk released before the damage is a true prefix. In format 2 the bytes no reader reads (the
padding after each commit record, the empty record B) and bytes appended after the file's
end (garbage) change nothing: damage confined to them opens the same content.
LOCKER_STRESS=1 samples 100,000.
"""

from __future__ import annotations

import itertools
import os
import random
from collections import Counter
from pathlib import Path

import pytest
from conftest import OTHER_PASSPHRASE, PASSPHRASE, TINY_KDF
from test_tamper import assert_refused, build, open_and_read_everything, region_of

from locker.errors import BadKeyError, LockerError
from locker.store import container as ct
from locker.store import keys
from locker.store.format import HEAD_SIZE, Head, parse_head
from locker.vault import Vault
from locker.vault_info import info

STRESS = os.environ.get("LOCKER_STRESS") == "1"
SAMPLES = 100_000 if STRESS else 10_000
TRUTH = {"a.env": b"A=1\n", "big.bin": random.Random(7).randbytes(9 * 65536 + 123), "z": b""}


def three_slots(path: Path) -> bytes:
    """The vault at `path` with two more passphrase slots (OTHER_PASSPHRASE, and another)."""
    build(path, TRUTH)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        c = v._container
        slots = list(c.header.slots)
        for secret in (OTHER_PASSPHRASE, b"a third passphrase"):
            slot = keys.new_passphrase_slot(os.urandom, TINY_KDF)
            kek = keys.passphrase_kek(secret, slot)
            slots.append(keys.wrap_master(c.container_id, slot, kek, c.unlocked.master))
        plan = [ct.Planned(e, c.copy_source(e)) for e in c.index.entries]
        index = ct.Index(list(c.index.entries), list(c.index.log))
        generation = c.record.generation + 1
        ct.write_container(
            path,
            c.container_id,
            slots,
            c.unlocked.master,
            index,
            plan,
            os.urandom,
            None,
            generation,
        )
    return path.read_bytes()


def reframed(original: bytes, order: list[int]) -> bytes:
    """The same file with its key slots in `order` (indices may repeat or be left out), the
    commit records (and their MACs) and everything after the head unchanged."""
    head = parse_head(original)
    slots = tuple(head.slots[i] for i in order)
    return Head(head.container_id, slots).encode() + original[HEAD_SIZE:]


def test_slots_removed_duplicated_swapped_or_moved(tmp_path: Path) -> None:
    path = tmp_path / "v.locker"
    original = three_slots(path)
    for passphrase in (PASSPHRASE, OTHER_PASSPHRASE):
        with Vault.open(path, passphrase) as v:
            assert {e.name for e in v.entries()} == set(TRUTH)
    cases = {
        **{f"remove {i}": [j for j in range(3) if j != i] for i in range(3)},
        **{f"duplicate {i}": [*range(3), i] for i in range(3)},
        **{f"order {p}": list(p) for p in itertools.permutations(range(3)) if p != (0, 1, 2)},
        "only the last": [2],
    }
    outcomes: Counter[str] = Counter()
    for what, order in cases.items():
        path.write_bytes(reframed(original, order))
        for passphrase in (PASSPHRASE, OTHER_PASSPHRASE):
            try:
                Vault.open(path, passphrase).close()
            except BadKeyError:
                outcomes["wrong key (exit 3)"] += 1
            except LockerError as exc:
                assert exc.exit_code == 4, (what, exc)
                outcomes[type(exc).__name__] += 1
            else:
                pytest.fail(f"{what}: opened with {passphrase!r}")
    print(
        f"\ntamper slots: {sum(outcomes.values())} opens of {len(cases)} reframings: {dict(outcomes)}"
    )


def test_sampled_damage_of_a_large_container(big_file_dir: Path) -> None:
    path, other_path = big_file_dir / "v.locker", big_file_dir / "other.locker"
    original = build(path, TRUTH)
    other = build(other_path, TRUTH)  # same names and sizes, other keys: splices line up
    assert len(other) == len(original)
    facts = info(path)
    rnd = random.Random(20261130)
    kinds: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for trial in range(SAMPLES):
        n = 0
        kind = rnd.choice(["flip", "truncate", "append", "splice"])
        pos = rnd.randrange(len(original))
        if kind == "flip":
            data = bytearray(original)
            data[pos] ^= 1 << rnd.randrange(8)
            damaged = bytes(data)
        elif kind == "truncate":
            damaged = original[:pos]
        elif kind == "append":
            damaged = original + rnd.randbytes(rnd.choice([1, 16, 65552]))
        else:
            n = rnd.choice([1, 16, 4096, 65552])
            damaged = original[:pos] + other[pos : pos + n] + original[pos + n :]
            if damaged == original:
                continue
        path.write_bytes(damaged)
        exc = open_and_read_everything(path, TRUTH)
        kinds[kind] += 1
        span = range(pos, min(pos + n, len(original))) if kind == "splice" else range(pos, pos + 1)
        changed = (
            [i for i in span if damaged[i] != original[i]] if kind in ("flip", "splice") else []
        )
        if kind == "append" or (changed and all(region_of(i, facts) == "unread" for i in changed)):
            assert exc is None, f"trial {trial}: {kind} at {pos} of unread bytes: {exc!r}"
            errors["opened unchanged (unread bytes or garbage)"] += 1
            continue
        assert_refused(exc, f"trial {trial}: {kind} at {pos}")
        errors[type(exc).__name__] += 1
    print(
        f"\ntamper sample: {sum(kinds.values())} damages of a {len(original)}-byte container "
        f"{dict(kinds)}: {dict(errors)}"
    )
    assert sum(kinds.values()) >= SAMPLES * 0.99
