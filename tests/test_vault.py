"""vault.py: the library API, with Hypothesis round trips through real files."""

from __future__ import annotations

import getpass
import hashlib
import os
import random
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import OTHER_PASSPHRASE, PASSPHRASE, TINY_KDF, FakeClock, counter_rng
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locker.errors import (
    EXIT_BAD_KEY,
    EXIT_BUSY,
    EXIT_USAGE,
    BadKeyError,
    BusyError,
    ExistsError,
    InvalidNameError,
    KdfTooCostlyError,
    LockerError,
    NotFoundError,
    UsageError,
)
from locker.store.container import Container, Sealed
from locker.store.crypto import CHUNK_SIZE
from locker.store.format import KdfCost, check_tree
from locker.store.index import MAX_LOG_EVENTS, Entry
from locker.vault import Vault, create
from locker.vault_info import info

# -- strategies -----------------------------------------------------------------------------------

component = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"), blacklist_characters="/\\\x00"
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))

entry_name = st.lists(component, min_size=1, max_size=3).map("/".join)


def without_conflicts(names: list[str]) -> list[str]:
    """Keep names in order, dropping any that would be both a file and a directory."""
    kept: list[str] = []
    for name in names:
        try:
            check_tree([*kept, name])
        except InvalidNameError:
            continue
        if name not in kept:
            kept.append(name)
    return kept


name_sets = st.lists(entry_name, min_size=1, max_size=12).map(without_conflicts)

BOUNDARY_SIZES = [
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    2 * CHUNK_SIZE,
    3 * CHUNK_SIZE + 17,
]


def pseudo_random(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


contents = st.one_of(
    st.binary(max_size=300),
    st.builds(pseudo_random, st.sampled_from(BOUNDARY_SIZES), st.integers(0, 2**16)),
)

HYPOTHESIS = settings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def snapshot(path: Path) -> dict[str, bytes]:
    with Vault.open(path, PASSPHRASE) as v:
        out = {e.name: v.read_bytes(e.name) for e in v.entries()}
        assert all(e.size == len(out[e.name]) for e in v.entries())
        return out


def fresh_vault(parent: Path) -> Path:
    """One vault per Hypothesis example (the smallest KDF: these unlock many times)."""
    path = Path(tempfile.mkdtemp(dir=parent)) / "v.locker"
    create(path, PASSPHRASE, TINY_KDF)
    return path


def data_section(path: Path, passphrase: bytes = PASSPHRASE) -> bytes:
    """The ciphertext of every entry in force, in name order (version 2 offsets are absolute)."""
    raw = path.read_bytes()
    with Vault.open(path, passphrase) as v:
        return b"".join(raw[e.offset : e.offset + e.length] for e in v.entries())


# -- round trips ----------------------------------------------------------------------------------


@HYPOTHESIS
@given(names=name_sets, data=st.data())
def test_round_trip_arbitrary_names_and_contents(
    tmp_path: Path, names: list[str], data: st.DataObject
) -> None:
    path = fresh_vault(tmp_path)
    model = {name: data.draw(contents, label=name) for name in names}
    with Vault.open(path, PASSPHRASE, write=True) as v:
        for i, (name, content) in enumerate(model.items()):
            if i % 2:
                v.add_bytes(name, content)
            else:  # through a real file as the CLI does
                src = path.parent / f"src{i}"
                src.write_bytes(content)
                v.add_file(name, src)
        v.record("add", tuple(model))
        v.commit()
        assert {e.name: v.read_bytes(e.name) for e in v.entries()} == model
    assert snapshot(path) == model
    assert [e.name for e in Vault.open(path, PASSPHRASE).entries()] == sorted(model)


@HYPOTHESIS
@given(names=name_sets, data=st.data())
def test_rename_remove_replace_sequences(
    tmp_path: Path, names: list[str], data: st.DataObject
) -> None:
    """Random add/replace/rename/remove/commit sequences against a dict model."""
    path = fresh_vault(tmp_path)
    model = {name: data.draw(contents) for name in names}
    with Vault.open(path, PASSPHRASE, write=True) as v:
        for name, content in model.items():
            v.add_bytes(name, content)
        v.commit()
        committed = dict(model)
        for _ in range(data.draw(st.integers(1, 12), label="steps")):
            op = data.draw(st.sampled_from(["add", "replace", "rename", "remove", "commit"]))
            if op in ("replace", "rename", "remove") and not model:
                op = "add"
            if op == "add":
                name = data.draw(entry_name)
                if name in model or without_conflicts([*model, name]) != [*model, name]:
                    continue
                model[name] = data.draw(contents)
                v.add_bytes(name, model[name])
            elif op == "replace":
                name = data.draw(st.sampled_from(sorted(model)))
                content = data.draw(contents)
                with pytest.raises(ExistsError):
                    v.add_bytes(name, content)
                v.add_bytes(name, content, force=True)
                model[name] = content
            elif op == "rename":
                old = data.draw(st.sampled_from(sorted(model)))
                new = data.draw(entry_name)
                rest = [n for n in model if n != old]
                if new == old or without_conflicts([*rest, new]) != [*rest, new]:
                    continue
                v.rename(old, new)
                model[new] = model.pop(old)
            elif op == "remove":
                name = data.draw(st.sampled_from(sorted(model)))
                v.remove(name)
                del model[name]
            else:
                v.commit()
                committed = dict(model)
                assert snapshot(path) == committed
            assert v.names() == sorted(model)
            # Nothing staged reaches the disk before commit.
            assert snapshot(path) == committed
        v.commit()
    assert snapshot(path) == model


def test_many_entries(vault_path: Path) -> None:
    model = {f"svc{i % 17}/key-{i:04d}.pem": f"secret {i}\n".encode() * (i % 5) for i in range(600)}
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        for name, content in model.items():
            v.add_bytes(name, content)
        v.commit()
    assert snapshot(vault_path) == model


def test_empty_vault_and_empty_entry(vault_path: Path) -> None:
    assert snapshot(vault_path) == {}
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("empty", b"")
        v.commit()
    assert snapshot(vault_path) == {"empty": b""}
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert list(v.chunks("empty")) == [b""]


def test_chunks_are_64k(vault_path: Path) -> None:
    content = pseudo_random(2 * CHUNK_SIZE + 5, 1)
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("x", content)
        v.commit()
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert [len(c) for c in v.chunks("x")] == [CHUNK_SIZE, CHUNK_SIZE, 5]


# -- create / open --------------------------------------------------------------------------------


def test_create_refuses_existing_path(tmp_path: Path, kdf: KdfCost) -> None:
    path = tmp_path / "v.locker"
    path.write_bytes(b"precious")
    with pytest.raises(ExistsError):
        create(path, PASSPHRASE, kdf)
    assert path.read_bytes() == b"precious"
    link = tmp_path / "link.locker"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ExistsError):
        create(link, PASSPHRASE, kdf)
    assert not (tmp_path / "nowhere").exists()


def test_create_refuses_costly_kdf(tmp_path: Path) -> None:
    with pytest.raises(KdfTooCostlyError):
        create(tmp_path / "v.locker", PASSPHRASE, KdfCost(8 * 1024 * 1024, 1, 1))
    assert not (tmp_path / "v.locker").exists()


def test_container_is_0600(vault_path: Path) -> None:
    assert stat.S_IMODE(vault_path.stat().st_mode) == 0o600
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"1")
        v.commit()
    assert stat.S_IMODE(vault_path.stat().st_mode) == 0o600


def test_wrong_passphrase(vault_path: Path) -> None:
    with pytest.raises(BadKeyError) as e:
        Vault.open(vault_path, OTHER_PASSPHRASE)
    assert e.value.exit_code == EXIT_BAD_KEY
    with pytest.raises(BadKeyError):
        Vault.open(vault_path, PASSPHRASE + b"\n")


def test_missing_vault_and_not_a_vault(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        Vault.open(tmp_path / "missing.locker", PASSPHRASE)
    (tmp_path / "text").write_text("hello")
    with pytest.raises(LockerError) as e:
        Vault.open(tmp_path / "text", PASSPHRASE)
    assert e.value.exit_code == 4
    (tmp_path / "link").symlink_to(tmp_path / "text")
    with pytest.raises(LockerError, match="symbolic link"):
        Vault.open(tmp_path / "link", PASSPHRASE)


def test_injected_rng_and_clock_make_output_reproducible(tmp_path: Path, kdf: KdfCost) -> None:
    def build(path: Path) -> bytes:
        rng, clock = counter_rng(7), FakeClock(1_700_000_000)
        create(path, PASSPHRASE, kdf, rng=rng, clock=clock)
        clock.advance(60)
        with Vault.open(path, PASSPHRASE, write=True, rng=rng, clock=clock) as v:
            v.add_bytes("a/b", b"hello")
            v.record("add", ("a/b",))
            v.commit()
            e = v.entry("a/b")
            assert (e.created, e.modified) == (1_700_000_060, 1_700_000_060)
        return path.read_bytes()

    first, second = build(tmp_path / "1.locker"), build(tmp_path / "2.locker")
    assert first == second
    with Vault.open(tmp_path / "1.locker", PASSPHRASE) as v:
        assert [(ev.event, ev.time) for ev in v.log()] == [
            ("init", 1_700_000_000),
            ("add", 1_700_000_060),
        ]
    # And with real randomness two vaults share nothing.
    create(tmp_path / "3.locker", PASSPHRASE, kdf)
    create(tmp_path / "4.locker", PASSPHRASE, kdf)
    assert (
        info(tmp_path / "3.locker")["container_id"] != info(tmp_path / "4.locker")["container_id"]
    )


def test_replace_keeps_created_and_bumps_modified(vault_path: Path) -> None:
    clock = FakeClock(1000)
    with Vault.open(vault_path, PASSPHRASE, write=True, clock=clock) as v:
        v.add_bytes("k", b"v1")
        v.commit()
        first = v.entry("k")
        clock.advance(500)
        v.add_bytes("k", b"v2", force=True)
        v.commit()
        second = v.entry("k")
    assert (first.created, first.modified) == (1000, 1000)
    assert (second.created, second.modified) == (1000, 1500)
    assert second.entry_id == first.entry_id
    assert second.content_salt != first.content_salt  # fresh key for new content


# -- staged writes --------------------------------------------------------------------------------


def test_unchanged_entries_are_copied_as_ciphertext(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("m", pseudo_random(100_000, 2))
        v.add_bytes("z", b"zzz")
        v.commit()
    before = data_section(vault_path)
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"sorted first, shifts every offset")
        v.rename("z", "y")
        v.commit()
        a = v.entry("a")
    after = data_section(vault_path)
    # Old ciphertext appears unchanged after the new entry's.
    assert after[a.length :] == before


def test_invalid_names_are_refused_before_anything_is_written(vault_path: Path) -> None:
    original = vault_path.read_bytes()
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("ok", b"1")
        v.commit()
        committed = vault_path.read_bytes()
        for bad in ["/abs", "../up", "a/../b", "nul\x00", "back\\slash", "a//b", "", "a/"]:
            with pytest.raises(InvalidNameError) as e:
                v.add_bytes(bad, b"x")
            assert e.value.exit_code == EXIT_USAGE
            assert isinstance(e.value, UsageError)
            with pytest.raises(InvalidNameError):
                v.rename("ok", bad)
        assert v.names() == ["ok"]
    assert vault_path.read_bytes() == committed != original


def test_file_versus_directory_conflict_fails_commit_and_keeps_file(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"1")
        v.commit()
        before = vault_path.read_bytes()
        v.add_bytes("a/b", b"2")
        with pytest.raises(InvalidNameError):
            v.commit()
    assert vault_path.read_bytes() == before
    assert not list(vault_path.parent.glob(".*.tmp-*"))


def test_errors_for_missing_and_existing(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"1")
        v.add_bytes("b", b"2")
        with pytest.raises(NotFoundError):
            v.remove("c")
        with pytest.raises(NotFoundError):
            v.rename("c", "d")
        with pytest.raises(ExistsError):
            v.rename("a", "b")
        v.rename("a", "b", force=True)
        v.commit()
        with pytest.raises(NotFoundError):
            v.read_bytes("a")
        assert v.read_bytes("b") == b"1"
        with pytest.raises(UsageError):
            v.add_file("dir", vault_path.parent)
        with pytest.raises(NotFoundError):
            v.add_file("missing", vault_path.parent / "missing")


def test_read_only_vault_refuses_writes(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE) as v, pytest.raises(LockerError):
        v.add_bytes("a", b"1")


def test_add_file_skips_symlink(vault_path: Path, tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"t")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with Vault.open(vault_path, PASSPHRASE, write=True) as v, pytest.raises(UsageError):
        v.add_file("link", tmp_path / "link")


# -- keys -----------------------------------------------------------------------------------------


def test_change_passphrase_rewraps_only_the_slot(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", pseudo_random(70_000, 3))
        v.commit()
    before = snapshot(vault_path)
    data_before = data_section(vault_path)
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.change_passphrase(OTHER_PASSPHRASE, KdfCost(16, 1, 1))
        v.record("passwd")
        v.commit()
    assert data_section(vault_path, OTHER_PASSPHRASE) == data_before
    with pytest.raises(BadKeyError):
        Vault.open(vault_path, PASSPHRASE)
    with Vault.open(vault_path, OTHER_PASSPHRASE) as v:
        assert {e.name: v.read_bytes(e.name) for e in v.entries()} == before
        assert v.unlocking_kdf() == KdfCost(16, 1, 1)


def test_rekey_reencrypts_everything(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", pseudo_random(3 * CHUNK_SIZE, 4))
        v.add_bytes("b", b"")
        v.add_bytes("c/d", b"small")
        v.commit()
    before = snapshot(vault_path)
    data_before = data_section(vault_path)
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        assert v.rekey() == 0
        v.add_bytes("new", b"staged after rekey")
        v.commit()
        assert v.verify() == []
    data_after = data_section(vault_path)
    assert len(data_after) == len(data_before) + len(b"staged after rekey") + 16
    # No 16-byte run of the old ciphertext survives anywhere in the file (a rekey compacts).
    old_blocks = {data_before[i : i + 16] for i in range(0, len(data_before) - 15, 16)}
    raw = vault_path.read_bytes()
    assert not any(raw[i : i + 16] in old_blocks for i in range(len(raw) - 15))
    assert snapshot(vault_path) == {**before, "new": b"staged after rekey"}


def test_log_records_events_with_user_and_host(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"1")
        v.record("add", ("a",))
        v.commit()
        v.rename("a", "b")
        v.record("mv", ("a", "b"))
        v.commit()
    with Vault.open(vault_path, PASSPHRASE) as v:
        log = v.log()
    assert [(e.event, e.names) for e in log] == [("init", ()), ("add", ("a",)), ("mv", ("a", "b"))]
    assert {e.user for e in log} == {getpass.getuser()}
    assert {e.host for e in log} == {socket.gethostname()}


def test_log_is_capped(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        for i in range(MAX_LOG_EVENTS + 5):
            v.record("note", detail=str(i))
        v.commit()
    with Vault.open(vault_path, PASSPHRASE) as v:
        log = v.log()
    assert len(log) == MAX_LOG_EVENTS
    assert log[-1].detail == str(MAX_LOG_EVENTS + 4)
    assert log[0].detail == "5"


# -- lock and temp files --------------------------------------------------------------------------


def test_second_writer_is_busy_and_readers_are_not(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        with pytest.raises(BusyError, match=f"in use by PID {os.getpid()} on ") as e:
            Vault.open(vault_path, PASSPHRASE, write=True)
        assert e.value.exit_code == EXIT_BUSY
        with Vault.open(vault_path, PASSPHRASE) as reader:
            assert reader.entries() == []
        v.add_bytes("a", b"1")
        v.commit()
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        assert v.names() == ["a"]


def test_stale_temp_files_are_removed_by_the_next_writer(vault_path: Path) -> None:
    stale = vault_path.with_name(f".{vault_path.name}.tmp-deadbeef0000")
    stale.write_bytes(b"half a container")
    unrelated = vault_path.with_name("other.tmp-1")
    unrelated.write_bytes(b"keep")
    with Vault.open(vault_path, PASSPHRASE):
        assert stale.exists()  # readers never delete anything
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        assert not stale.exists()
        v.add_bytes("a", b"1")
        v.commit()
    assert unrelated.exists()
    assert sorted(p.name for p in vault_path.parent.iterdir() if p.name.startswith(".")) == []


def test_verify_reports_each_damaged_entry(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        for name in ("a", "b", "c"):
            v.add_bytes(name, name.encode() * 1000)
        v.commit()
        entries = {e.name: e for e in v.entries()}
    raw = bytearray(vault_path.read_bytes())
    for name in ("a", "c"):
        raw[entries[name].offset + 10] ^= 0x01  # version 2: absolute offsets
    vault_path.write_bytes(bytes(raw))
    with Vault.open(vault_path, PASSPHRASE) as v:
        failures = v.verify()
        assert v.read_bytes("b") == b"b" * 1000
    assert len(failures) == 2
    assert "'a'" in failures[0] and "'c'" in failures[1]


def test_info_needs_no_passphrase(vault_path: Path, kdf: KdfCost) -> None:
    facts = info(vault_path)
    assert facts["format_version"] == 2
    assert facts["generation"] == 1
    assert facts["slot_count"] == 1
    assert facts["slots"][0]["kdf"] == {
        "algorithm": "argon2id",
        "memory_mib": kdf.memory_kib / 1024,
        "time_cost": kdf.time_cost,
        "parallelism": kdf.parallelism,
    }
    assert facts["file_size"] == vault_path.stat().st_size
    assert facts["header_size"] + facts["index_size"] + facts["data_size"] == facts["file_size"]
    sealed = Sealed.read(vault_path)
    sealed.close()


def test_content_hash_matches_streamed_chunks(vault_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(pseudo_random(5 * CHUNK_SIZE + 3, 5))
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_file("bin", src)
        v.commit()
    digest = hashlib.sha256()
    with Vault.open(vault_path, PASSPHRASE) as v:
        for chunk in v.chunks("bin"):
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(src.read_bytes()).digest()


@pytest.mark.timeout(30)
def test_a_file_swapped_for_a_fifo_before_commit_fails_instead_of_hanging(
    vault_path: Path, tmp_path: Path
) -> None:
    src = tmp_path / "key.pem"
    src.write_bytes(b"secret")
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        before = v.names()
        v.add_file("key.pem", src)
        src.unlink()
        os.mkfifo(src)
        with pytest.raises(LockerError, match="no longer a regular file"):
            v.commit()
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert v.names() == before


def test_copy_entry_with_a_recogniser_decrypts_a_small_entry_once(
    vault_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Import recognises a small entry from its content: that one decryption also feeds the
    save (a second pass over the bundle would double the work and the chance of a bad read)."""
    other_path = tmp_path / "other.locker"
    create(other_path, PASSPHRASE, TINY_KDF)
    with Vault.open(other_path, PASSPHRASE, write=True) as other:
        other.add_bytes("k", b"KEY=1\n")
        other.commit()
    reads: list[str] = []
    real_chunks = Container.chunks

    def counting(self: Container, entry: Entry) -> Iterator[bytes]:
        reads.append(entry.name)
        return real_chunks(self, entry)

    monkeypatch.setattr(Container, "chunks", counting)
    seen: list[bytes] = []
    with (
        Vault.open(other_path, PASSPHRASE) as other,
        Vault.open(vault_path, PASSPHRASE, write=True) as v,
    ):
        v.recogniser = lambda data, name: seen.append(data) or '{"kind": "env"}'
        v.copy_entry(other, "k", "copied")
        v.commit()
        assert reads == ["k"]
        assert seen == [b"KEY=1\n"]
        assert v.read_bytes("copied") == b"KEY=1\n"
        assert v.entry("copied").attrs["facts"] == '{"kind": "env"}'
