"""A commit record that is not taken (docs/FORMAT.md section 20), on real files with their
actual bytes flipped: a bit flip that makes a generation tie opens the intact record; a damaged
record in force, or a newest index that does not open, opens the generation before with a
warning on every command, `verify` exits 4, and no save may overwrite that record until
`locker recover --generation N` decides (continue from the older generation, or restore the
newer one when its index authenticates). Also: a failed append leaves the same open vault
able to save (a mount's next sync too), the identity re-check before the record write, and
the v1 upgrade's notice.
"""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import pytest
from conftest import PASSPHRASE, RunLocker, locker_env
from test_cli import run_in_pty
from test_faults import FaultLayer
from test_vectors import load, place

from locker import __version__
from locker.errors import (
    EXIT_INTEGRITY,
    EXIT_OK,
    EXIT_USAGE,
    BusyError,
    IntegrityError,
    KdfTooCostlyError,
    LockerError,
    UnsupportedVersionError,
)
from locker.store import container as ct
from locker.store import generations
from locker.store.format import RECORD_OFFSETS, RECORD_SIZE
from locker.store.lockfile import WriterLock
from locker.vault import Vault

A, B = RECORD_OFFSETS
MAC_LAST = RECORD_SIZE - 1


def records(path: Path) -> list[tuple[int, int, int]]:
    """(generation, index offset, index length) of record A and B; zeros for an empty one."""
    data = path.read_bytes()
    return [struct.unpack(">QQQ", data[at : at + 24]) for at in RECORD_OFFSETS]


def flip(path: Path, offset: int, mask: int = 1) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ mask]))


def opened(path: Path) -> tuple[int, list[str]]:
    with Vault.open(path, PASSPHRASE) as v:
        for e in v.entries():
            v.read_bytes(e.name)  # every chunk verified
        return v.generation, v.names()


@pytest.fixture
def saved(vault_path: Path) -> Path:
    """Generation 1 (empty, a compaction) then two appends: 3 in record A, 2 in record B."""
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("ssh/id_old", b"old key\n" * 50)
        v.commit()
        v.add_bytes("ssh/id_new", b"new key\n" * 50)
        v.commit()
    assert [r[0] for r in records(vault_path)] == [3, 2]
    return vault_path


# -- a tie is decided after the MACs (P2-2) ----------------------------------------------------


def test_a_bit_flip_that_makes_a_tie_opens_the_record_that_verifies(saved: Path) -> None:
    flip(saved, A + 7)  # generation 3 -> 2: a tie with record B, and A's MAC fails
    assert [r[0] for r in records(saved)] == [2, 2]
    assert opened(saved) == (2, ["ssh/id_old"])
    with Vault.open(saved, PASSPHRASE) as v:
        [p] = v.passed_over()
        assert (p.position, p.generation, p.restorable) == (0, 2, True)


def test_the_messages_say_the_number_a_damaged_record_claims(saved: Path, cli: RunLocker) -> None:
    """F7: after the tie flip, record A claims generation 2; what a restore gives is 3."""
    flip(saved, A + 7)
    warning, hint = lines(cli("ls").stderr)
    assert warning.startswith("locker: warning: commit record A (claims generation 2) did not")
    assert warning.endswith(
        "opened at generation 2, without the save that record may hold (restorable as generation 3)"
    )
    assert "'locker recover --generation 3' restores" in hint


def test_a_tie_made_in_the_older_record_keeps_the_newest(saved: Path) -> None:
    flip(saved, B + 7)  # generation 2 -> 3
    assert [r[0] for r in records(saved)] == [3, 3]
    assert opened(saved) == (3, ["ssh/id_new", "ssh/id_old"])


# -- a record passed over is said, and not overwritten silently (P2-1, P1-7) ----------------------


def lines(data: bytes) -> list[str]:
    return data.decode("utf-8").splitlines()


def test_a_damaged_record_in_force_warns_refuses_saves_and_can_be_restored(
    saved: Path, cli: RunLocker
) -> None:
    flip(saved, A + MAC_LAST)  # one bit of the MAC of generation 3, the record in force
    before = saved.read_bytes()

    ls = cli("ls")
    assert ls.returncode == EXIT_OK, ls.stderr
    assert lines(ls.stdout) == ["ssh/id_old"]
    warning, hint = lines(ls.stderr)
    assert warning.startswith(
        "locker: warning: commit record A (claims generation 3) did not verify;"
    )
    assert warning.endswith("without the save that record may hold (restorable as generation 3)")
    assert "opened at generation 2" in warning
    assert hint.startswith("locker: hint: ")
    # the restore first: continuing discards that save for good (F2)
    assert hint.index("recover --generation 3' restores") < hint.index("recover --generation 2")
    assert "discards that save for good" in hint

    verify = cli("verify")
    assert verify.returncode == EXIT_INTEGRITY, verify.stderr
    assert "recover --generation 3' restores that save" in verify.stderr.decode()

    add = cli("add", "-", "--as", "unrelated.txt", input=b"x\n")
    assert add.returncode == EXIT_INTEGRITY, add.stderr
    error = lines(add.stderr)[-2]
    assert error.startswith("locker: error: cannot save ") and "(claims generation 3)" in error
    assert "recover --generation 2" in lines(add.stderr)[-1]
    assert saved.read_bytes() == before  # nothing written, the record passed over kept

    wrong = cli("recover", "--generation", "7")
    assert wrong.returncode == EXIT_USAGE and saved.read_bytes() == before

    restore = cli("recover", "--generation", "3")
    assert restore.returncode == EXIT_OK, restore.stderr
    assert opened(saved) == (4, ["ssh/id_new", "ssh/id_old"])
    assert records(saved)[1] == (0, 0, 0)  # a compaction: record B empty
    log = cli("log")
    assert b"recover" in log.stdout and b"restored generation 3" in log.stdout
    assert cli("ls").stderr == b""
    assert cli("verify").returncode == EXIT_OK


def test_a_command_that_saves_is_refused_before_the_user_works(
    saved: Path, cli: RunLocker, tmp_path: Path
) -> None:
    """`locker edit` started the editor and then lost the edit when the save was refused: a
    writing command is refused when the vault opens, before the editor (or a prompt, or a
    keyring change) can take the user's work, with the error and its ways out once, not
    after the warning that says the same."""
    flip(saved, A + MAC_LAST)
    before = saved.read_bytes()
    ran = tmp_path / "editor-ran"
    ed = tmp_path / "fake-editor"
    ed.write_text(f"#!/bin/sh\ntouch {ran}\n")
    ed.chmod(0o700)
    r = cli("edit", "ssh/id_old", env={"EDITOR": str(ed)})
    assert r.returncode == EXIT_INTEGRITY, r.stderr
    assert not ran.exists()
    error, hint = lines(r.stderr)
    assert error.startswith("locker: error: cannot save ") and "(claims generation 3)" in error
    assert "recover --generation 3' restores" in hint
    assert saved.read_bytes() == before


def test_continuing_from_the_older_generation_is_an_explicit_decision(
    saved: Path, cli: RunLocker
) -> None:
    flip(saved, A + MAC_LAST)
    before = saved.read_bytes()
    asked = cli("recover", "--generation", "2")  # record A's save is restorable: not silently
    assert asked.returncode == EXIT_USAGE
    error, hint = lines(asked.stderr)[-2:]
    assert error == (
        "locker: error: continuing from generation 2 discards the save in commit record A "
        "(restorable as generation 3) for good"
    )
    assert hint == (
        "locker: hint: 'locker recover --generation 3' restores it; pass --yes to discard it"
    )
    assert saved.read_bytes() == before
    go_on = cli("recover", "--generation", "2", "--yes")
    assert go_on.returncode == EXIT_OK, go_on.stderr
    assert opened(saved) == (3, ["ssh/id_old"])  # generation 3 written over the damaged record
    assert cli("log").stdout.count(b"continued from generation 2") == 1
    assert cli("add", "-", "--as", "later.txt", input=b"x\n").returncode == EXIT_OK
    assert opened(saved) == (4, ["later.txt", "ssh/id_old"])
    assert cli("verify").returncode == EXIT_OK


def zero_record(path: Path, at: int) -> None:
    """The record at `at` reads back as 68 zero bytes (a sector a drive returns as zeros)."""
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(bytes(RECORD_SIZE))


def test_a_record_in_force_that_reads_as_zeros_after_a_compaction_is_passed_over(
    vault_path: Path, cli: RunLocker
) -> None:
    """F1 (a): generation 1 (a compaction) in A, a confirmed save in B, then B reads as zeros:
    bytes follow the index in force, so B is not the empty record a compaction leaves."""
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("ssh/id_new", b"new key\n")
        v.commit()
    assert [r[0] for r in records(vault_path)] == [1, 2]
    zero_record(vault_path, B)
    before = vault_path.read_bytes()

    ls = cli("ls")
    assert ls.returncode == EXIT_OK and ls.stdout == b""
    warning, hint = lines(ls.stderr)
    assert warning.startswith(
        "locker: warning: commit record B is empty, but the file has "
        "bytes after the newest save (an interrupted save, or bytes added to the file);"
    )
    assert "opened at generation 1" in warning and "recover --generation 1" in hint
    assert cli("verify").returncode == EXIT_INTEGRITY
    add = cli("add", "-", "--as", "unrelated.txt", input=b"x\n")
    assert add.returncode == EXIT_INTEGRITY, add.stderr
    assert vault_path.read_bytes() == before  # the bytes of the lost save are kept
    assert cli("recover", "--generation", "2").returncode == EXIT_USAGE  # nothing restorable
    assert cli("recover", "--generation", "1").returncode == EXIT_OK
    assert opened(vault_path) == (2, [])
    assert cli("verify").returncode == EXIT_OK


def test_record_a_that_reads_as_zeros_is_passed_over(saved: Path, cli: RunLocker) -> None:
    """F1 (b): no save leaves record A empty beside a record B."""
    zero_record(saved, A)
    ls = cli("ls")
    assert ls.returncode == EXIT_OK and lines(ls.stdout) == ["ssh/id_old"]
    assert lines(ls.stderr)[0].startswith(
        "locker: warning: commit record A reads as empty, which no save leaves it;"
    )
    assert cli("verify").returncode == EXIT_INTEGRITY
    assert cli("add", "-", "--as", "unrelated.txt", input=b"x\n").returncode == EXIT_INTEGRITY


def test_an_empty_record_b_after_a_compaction_is_no_warning(
    vault_path: Path, cli: RunLocker
) -> None:
    """The empty record a compaction leaves (its index ends the file) is not passed over."""
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"a")
        v.commit(compact=True)
    assert records(vault_path)[1] == (0, 0, 0)
    ls = cli("ls")
    assert ls.returncode == EXIT_OK and ls.stderr == b""


def test_a_reader_beside_the_first_append_after_a_compaction_reports_nothing(
    vault_path: Path,
) -> None:
    """While a writer holds the lock, bytes after the index in force beside an empty record B
    are an append under way (its record is written last); once the lock is free they are a
    save that wrote no record, or a record read as zeros."""
    with open(vault_path, "ab") as f:
        f.write(b"an append's new bytes")
    with WriterLock(vault_path), Vault.open(vault_path, PASSPHRASE) as v:
        assert v.passed_over() == ()
    with Vault.open(vault_path, PASSPHRASE) as v:
        [p] = v.passed_over()
        assert (p.position, p.generation, p.restorable) == (1, None, False)


def test_continuing_past_a_restorable_save_asks_on_a_terminal(
    saved: Path, pwfile: Path, tmp_path: Path
) -> None:
    flip(saved, A + MAC_LAST)
    before = saved.read_bytes()
    args = ["recover", "--generation", "2", "--vault", str(saved), "--passphrase-file", str(pwfile)]
    question = b"discard the save in commit record A (restorable as generation 3) for good [y/N]? "
    code, out = run_in_pty(args, [(question, b"n")], locker_env(tmp_path))
    assert code == EXIT_OK and b"left as it is; generation 2 is in force" in out, out
    assert saved.read_bytes() == before
    code, out = run_in_pty(args, [(question, b"y")], locker_env(tmp_path))
    assert code == EXIT_OK and b"continued from generation 2" in out, out
    assert opened(saved) == (3, ["ssh/id_old"])


def test_a_generation_flipped_to_0_is_still_restorable(vault_path: Path, cli: RunLocker) -> None:
    """F3: the first save after init is generation 2 in record B; one bit makes it 0, an
    unusable record, yet its offset, length and nonce name an index that authenticates. The
    restore takes the generation in force + 1, never the damaged number."""
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("ssh/id_new", b"new key\n")
        v.commit()
    flip(vault_path, B + 7, 2)  # generation 2 -> 0
    assert [r[0] for r in records(vault_path)] == [1, 0]
    with Vault.open(vault_path, PASSPHRASE) as v:
        [p] = v.passed_over()
        assert (p.position, p.generation, p.restorable) == (1, 0, True)
    verify = cli("verify")
    assert verify.returncode == EXIT_INTEGRITY
    assert "'locker recover --generation 2' restores that save" in lines(verify.stderr)[-1]
    restore = cli("recover", "--generation", "2")
    assert restore.returncode == EXIT_OK, restore.stderr
    assert opened(vault_path) == (3, ["ssh/id_new"])
    assert cli("verify").returncode == EXIT_OK


def test_one_bit_in_the_only_record_is_restorable(vault_path: Path, cli: RunLocker) -> None:
    """F4: after a compaction record A is alone; one bit of its MAC makes no record verify,
    but its index authenticates under its nonce: the error names the restore, which works."""
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("ssh/id_ed25519", b"key\n")
        v.commit()
        v.add_bytes("tmp", b"t")
        v.commit()
        v.remove("tmp")
        v.commit()  # a compaction: generation 4 in record A, record B empty
    assert [r[0] for r in records(vault_path)] == [4, 0]
    flip(vault_path, A + 50, 0x10)
    before = vault_path.read_bytes()
    ls = cli("ls")
    assert ls.returncode == EXIT_INTEGRITY and ls.stdout == b""
    error, hint = lines(ls.stderr)
    assert error.startswith("locker: error: container header failed authentication")
    assert "'locker recover --generation 4' restores the save it names" in hint
    wrong = cli("recover", "--generation", "5")
    assert wrong.returncode == EXIT_USAGE
    assert lines(wrong.stderr)[-1] == "locker: hint: choose generation 4"
    assert vault_path.read_bytes() == before
    restore = cli("recover", "--generation", "4")
    assert restore.returncode == EXIT_OK, restore.stderr
    assert restore.stderr == b""
    assert b"restored generation 4, whose commit record did not verify; generation 5" in (
        restore.stdout
    )
    assert opened(vault_path) == (5, ["ssh/id_ed25519"])
    assert cli("verify").returncode == EXIT_OK


def test_a_newest_index_that_does_not_open_falls_back_with_a_warning(
    saved: Path, cli: RunLocker
) -> None:
    generation, offset, _ = records(saved)[0]
    assert generation == 3
    flip(saved, offset + 5)  # inside generation 3's index: its record still verifies
    before = saved.read_bytes()
    assert opened(saved) == (2, ["ssh/id_old"])
    ls = cli("ls")
    assert ls.returncode == EXIT_OK
    assert "its index did not open" in lines(ls.stderr)[0]
    assert cli("verify").returncode == EXIT_INTEGRITY
    assert cli("rm", "ssh/id_old").returncode == EXIT_INTEGRITY  # no compaction either
    assert cli("recover", "--generation", "3").returncode == EXIT_USAGE  # not restorable
    assert saved.read_bytes() == before
    assert cli("recover", "--generation", "2").returncode == EXIT_OK
    assert opened(saved) == (3, ["ssh/id_old"])


def test_a_newest_index_cut_off_refuses_saves_in_the_library(saved: Path) -> None:
    with open(saved, "r+b") as f:
        f.truncate(os.path.getsize(saved) - 1)
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        [p] = v.passed_over()
        assert (p.position, p.generation) == (0, 3) and "unusable" in p.problem
        v.add_bytes("x", b"x")
        with pytest.raises(IntegrityError, match="generation 3"):
            v.commit()
        with pytest.raises(IntegrityError):
            v.check_saves_allowed()  # what `locker mount` asks before it starts
        v.recover_generation(2)
        v.commit()
    assert opened(saved) == (3, ["ssh/id_old"])


def test_a_reader_racing_an_append_reads_again_before_reporting(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first read measures the file before the append's index reached its end (record A
    unusable); by the time it reports, the append is done: the second read finds none."""
    full = saved.read_bytes()
    with open(saved, "r+b") as f:
        f.truncate(len(full) - 1)
    real = ct.Container.open
    calls = []

    def open_then_finish_the_append(
        sealed: ct.Sealed, unlocked: object, unverified: bool = False
    ) -> ct.Container:
        c = real(sealed, unlocked, unverified)  # type: ignore[arg-type]
        if not calls:
            with open(saved, "ab") as f:
                f.write(full[-1:])
        calls.append(c.passed_over)
        return c

    monkeypatch.setattr(ct.Container, "open", open_then_finish_the_append)
    with Vault.open(saved, PASSPHRASE) as v:
        assert v.passed_over() == () and v.generation == 3
    assert len(calls) == 2 and calls[0]


# -- a failed append leaves the open vault able to save (P2-3) ------------------------------------


@pytest.mark.parametrize(("op", "err"), [("write", errno.ENOSPC), ("pwrite", errno.EIO)])
def test_a_failed_append_then_a_save_in_the_same_open_vault(
    saved: Path, monkeypatch: pytest.MonkeyPatch, op: str, err: int
) -> None:
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v.add_bytes("big.bin", os.urandom(200_000))
        layer = FaultLayer(op, 1, err)
        with monkeypatch.context() as m, pytest.raises(LockerError, match=os.strerror(err)):
            m.setattr(generations, "os", layer)
            v.commit()
        assert layer.failed
        assert opened(saved)[0] == 3
        v.commit()  # the same vault, the same staged change
        assert v.generation == 4
    assert opened(saved) == (4, ["big.bin", "ssh/id_new", "ssh/id_old"])


class TornRecordWrite:
    """Stands in for `os` inside store/generations.py: the commit record's `pwrite` writes its
    first 40 bytes, then fails with EIO (a disk error in the middle of the record)."""

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        os.pwrite(fd, data[:40], offset)
        raise OSError(errno.EIO, os.strerror(errno.EIO))


def test_its_own_record_write_cut_short_does_not_stop_the_session(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F6: the record this writer was writing is torn by its own failed write. It overwrote
    the previous generation and was never confirmed: the same open vault (a mount, the terminal
    app) writes it again, while any other opener passes it over."""
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v.add_bytes("c", b"third\n")
        with monkeypatch.context() as m, pytest.raises(LockerError, match="commit record failed"):
            m.setattr(generations, "os", TornRecordWrite())
            v.commit()
        assert records(saved)[1][0] == 4  # record B torn: its first 40 bytes are generation 4's
        with Vault.open(saved, PASSPHRASE) as other:
            assert [p.position for p in other.passed_over()] == [1]
        v.commit()  # the disk is fine again: no 'recover --generation' needed
        assert v.generation == 4
    assert opened(saved) == (4, ["c", "ssh/id_new", "ssh/id_old"])
    with Vault.open(saved, PASSPHRASE) as v:
        assert v.passed_over() == ()


# -- the identity is checked again just before the record write (P2-4) ---------------------------


def test_a_writer_the_lock_missed_is_seen_before_the_record_write(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer (one that takes no lock) appends after our new index: the record is not
    written, the generation in force stays, and the next save works."""
    real = generations._read_back

    def read_back_then_another_writer(*args: object) -> None:
        real(*args)  # type: ignore[arg-type]
        with open(saved, "ab") as f:
            f.write(b"another writer's bytes")

    before = records(saved)
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v.add_bytes("mine", b"mine\n")
        monkeypatch.setattr(generations, "_read_back", read_back_then_another_writer)
        with pytest.raises(BusyError, match="another writer"):
            v.commit()
    assert records(saved) == before
    assert opened(saved) == (3, ["ssh/id_new", "ssh/id_old"])


def test_a_record_changed_by_another_writer_is_seen_before_the_record_write(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = generations._read_back
    other = saved.read_bytes()[B : B + RECORD_SIZE]

    def read_back_then_a_record_rewritten(*args: object) -> None:
        real(*args)  # type: ignore[arg-type]
        with open(saved, "r+b") as f:
            f.seek(B)
            f.write(bytes(RECORD_SIZE))  # record B emptied behind our back

    with Vault.open(saved, PASSPHRASE, write=True) as v:
        v.add_bytes("mine", b"mine\n")
        monkeypatch.setattr(generations, "_read_back", read_back_then_a_record_rewritten)
        with pytest.raises(BusyError):
            v.commit()
    data = saved.read_bytes()
    assert data[B : B + RECORD_SIZE] == bytes(RECORD_SIZE) != other  # not overwritten by us
    assert opened(saved) == (3, ["ssh/id_new", "ssh/id_old"])


def test_a_retry_after_another_writer_saved_in_place_stays_refused(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F5: a writer that takes no lock (a tool, `cp backup v.locker` over the same inode) saves
    while this one holds the lock. This save fails with BusyError; so does its retry, which
    must not build on the other writer's generation and drop its save."""
    import locker.vault as vault_module

    with Vault.open(saved, PASSPHRASE, write=True) as mine:
        mine.add_bytes("mine", b"mine\n")
        with monkeypatch.context() as m:
            m.setattr(vault_module.WriterLock, "acquire", lambda self: self)
            m.setattr(vault_module, "lock_vault_file", lambda fd, path: None)
            with Vault.open(saved, PASSPHRASE, write=True) as other:
                other.add_bytes("theirs", b"confirmed\n")
                other.commit()
        for _ in range(2):
            with pytest.raises(BusyError, match="another writer"):
                mine.commit()
    assert opened(saved) == (4, ["ssh/id_new", "ssh/id_old", "theirs"])


# -- the upgrade of a version 1 file is said (P2-5) -----------------------------------------------


def test_the_save_that_upgrades_a_version_1_file_says_so_once(
    tmp_path: Path, run_locker: RunLocker
) -> None:
    vector = load("success_basic")  # a version 1 file
    path = place(vector, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(vector.passphrase + b"\n")
    secret.chmod(0o600)
    key = ("--vault", path, "--passphrase-file", secret)
    ls = run_locker("ls", *key)
    assert ls.returncode == EXIT_OK and ls.stderr == b""  # reading changes nothing
    first = run_locker("add", "-", "--as", "new.txt", *key, input=b"x\n")
    assert first.returncode == EXIT_OK, first.stderr
    assert lines(first.stderr) == [
        f"locker: warning: upgraded {path} to format 2; locker before {__version__} cannot "
        f"open it: every machine that opens this vault needs locker {__version__} or later"
    ]
    second = run_locker("add", "-", "--as", "other.txt", *key, input=b"y\n")
    assert second.returncode == EXIT_OK and second.stderr == b""


# -- the hole check comes where the spec puts it (P2-7) ------------------------------------------


@pytest.mark.parametrize(
    ("where", "value", "error"),
    [
        (8, (3).to_bytes(2, "big"), UnsupportedVersionError),  # the version
        (29 + 12 + 21, (17).to_bytes(4, "big"), KdfTooCostlyError),  # slot 1's Argon2 passes
    ],
)
def test_a_sparse_file_gives_the_error_of_the_step_before_the_hole_check(
    vault_path: Path, where: int, value: bytes, error: type[Exception]
) -> None:
    data = bytearray(vault_path.read_bytes())
    data[where : where + len(value)] = value
    with open(vault_path, "wb") as f:
        f.write(data)
        f.seek(len(data) + (1 << 20))  # a hole of 1 MiB after the data
        f.write(b"\0" * 10)
    with pytest.raises(error):
        ct.Sealed.read(vault_path)
