"""The compaction and the reader of store/container.py, and store/passed_over.py, held to what
FORMAT.md sections 12 and 20 promise: tests written to kill the mutants of those modules that
the suite let live (scripts/mutate), in-process (a `locker` subprocess runs the unmutated
code). Which record is named for a restore when no record verifies; a generation flipped to 0
that is still restorable; the compaction's temp file (its name, its mode, a name planted at
it); the directory's fsync; the clean-up of a failed save; what the read-back of the new copy
and the open of a path that holds no vault say, word for word. Real files with their bytes
flipped; faults are injected by standing in for `os` inside the module, as
tests/test_faults.py does. docs/TESTING.md lists the survivors judged equivalent.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE
from test_mutants_generations import opened, saved, third
from test_passed_over import flip, records

from locker.errors import AuthenticationError, BusyError, FormatError, LockerError, NotFoundError
from locker.store import container as ct
from locker.store.format import RECORD_OFFSETS, RECORD_SIZE
from locker.vault import Vault

A, B = RECORD_OFFSETS
MAC_LAST = RECORD_SIZE - 1

__all__ = ["saved", "third"]  # fixtures


# -- passed_over.alone: when no record verifies, the last appended is named ----------------------


def test_when_no_record_verifies_the_restore_named_is_the_last_appended(third: Path) -> None:
    """Generation 3 in record A, 2 in record B, both MACs flipped: both indexes authenticate,
    and A's lies further into the file (B's position, or the record order, must not decide)."""
    flip(third, A + MAC_LAST)
    flip(third, B + MAC_LAST)
    with pytest.raises(AuthenticationError) as caught:
        Vault.open(third, PASSPHRASE)
    assert caught.value.hint == (
        "commit record A's index authenticates with this key: copy the vault file first; "
        "'locker recover --generation 3' restores the save it names (its index is authentic; "
        "its damaged record is not)"
    )
    with Vault.open(third, PASSPHRASE, write=True, unverified=True) as v:
        assert v.unverified and v.generation == 3
        [p] = v.passed_over()
        assert str(p) == "commit record A (claims generation 3) did not verify"
        assert v.recover_generation(3) == (
            "restored generation 3, whose commit record did not verify"
        )
        v.commit()
    generation, entries = opened(third)
    assert generation == 4 and sorted(entries) == ["a.env", "b.bin", "c.txt"]


# -- passed_over._fields: a record unusable by its generation alone ------------------------------


def test_a_generation_flipped_to_0_is_restorable_in_the_library(saved: Path) -> None:
    """Record B (generation 2) flipped to 0: unusable, yet its offset, length and nonce name
    an index that authenticates; the restore takes generation 1 + 1."""
    flip(saved, B + 7, 2)
    assert [r[0] for r in records(saved)] == [1, 0]
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        assert v.generation == 1
        [p] = v.passed_over()
        assert (p.position, p.generation, p.restorable) == (1, 0, True)
        assert str(p) == (
            "commit record B (claims generation 0) is unusable: commit record has generation 0 "
            "but is not empty"
        )
        v.recover_generation(2)
        v.commit()
    assert opened(saved) == (3, {"a.env": b"A=1\n", "b.bin": b"b" * 5000})


# -- write_container: the temp file ------------------------------------------------------------


@pytest.fixture
def filled(vault_path: Path) -> Path:
    """Two entries, saved by a compaction: generation 2 in record A."""
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a.env", b"A=1\n")
        v.add_bytes("b.bin", b"b" * 5000)
        v.commit(compact=True)
    return vault_path


class _Os:
    """Stands in for `os` inside store/container.py; `at_create(name)` runs just before the
    temp file is created, `dir_fsync` is raised by the fsync of a directory, `replace_error`
    by the rename, `unlink_error` by every unlink; `damage_read_back` flips the temp file's
    last byte (its index's tag) as it is opened to be read back, `swap_read_back` moves it
    aside and puts a symbolic link to it at its name."""

    def __init__(self, vault: Path) -> None:
        self.vault = vault
        self.created: list[str] = []
        self.at_create: Callable[[str], None] = lambda name: None
        self.dir_fsync: OSError | None = None
        self.replace_error: OSError | None = None
        self.unlink_error: OSError | None = None
        self.damage_read_back = False
        self.swap_read_back = False

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            self.created.append(name)
            self.at_create(name)
        elif self.swap_read_back and ".tmp-" in str(name):  # a symlink to it, in its place
            aside = self.vault.with_name("aside.locker")
            os.rename(self.vault.with_name(name), aside)
            self.vault.with_name(name).symlink_to(aside.name)
        elif self.damage_read_back and ".tmp-" in str(name):  # the disk returns other bytes
            fd = os.open(name, os.O_RDWR, dir_fd=kwargs["dir_fd"])
            try:
                end = os.fstat(fd).st_size - 1
                os.pwrite(fd, bytes([os.pread(fd, 1, end)[0] ^ 1]), end)
            finally:
                os.close(fd)
        return os.open(name, flags, *args, **kwargs)

    def fsync(self, fd: int) -> None:
        if self.dir_fsync is not None and stat.S_ISDIR(os.fstat(fd).st_mode):
            raise self.dir_fsync
        os.fsync(fd)

    def replace(self, *args: Any, **kwargs: Any) -> None:
        if self.replace_error is not None:
            raise self.replace_error
        os.replace(*args, **kwargs)

    def unlink(self, *args: Any, **kwargs: Any) -> None:
        if self.unlink_error is not None:
            raise self.unlink_error
        os.unlink(*args, **kwargs)


def compaction(
    path: Path, monkeypatch: pytest.MonkeyPatch, layer: _Os, error: type[Exception] | None = None
) -> pytest.ExceptionInfo[Exception] | None:
    """Add an entry and save by a compaction with `layer` as container's `os`; when `error`
    is given the save must fail with it (returned)."""
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("c", b"c" * 100)
        with monkeypatch.context() as m:
            m.setattr(ct, "os", layer)
            if error is None:
                v.commit(compact=True)
                return None
            with pytest.raises(error) as caught:
                v.commit(compact=True)
    return caught


def temps(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if ".tmp-" in p.name)


def test_the_temp_file_is_one_that_stale_temp_cleanup_knows_and_only_its_owner_reads(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = _Os(filled)
    compaction(filled, monkeypatch, layer)
    [name] = layer.created
    assert name.startswith(".vault.locker.tmp-") and ct.is_temp_of(filled, name)
    assert stat.S_IMODE(filled.stat().st_mode) == 0o600
    assert temps(filled) == []
    assert opened(filled)[1] == {"a.env": b"A=1\n", "b.bin": b"b" * 5000, "c": b"c" * 100}


@pytest.mark.parametrize("planted", ["symlink", "file"])
def test_a_name_planted_at_the_temp_files_name_is_never_written_through(
    filled: Path, monkeypatch: pytest.MonkeyPatch, planted: str
) -> None:
    """Another user's symbolic link (or file) at the temp file's name, made just before the
    open: the open refuses it (O_EXCL), nothing outside is written, the vault is unchanged."""
    before = filled.read_bytes()
    outside = filled.parent / "outside.txt"
    outside.write_bytes(b"not yours\n")
    layer = _Os(filled)

    def plant(name: str) -> None:
        at = filled.parent / name
        if planted == "symlink":
            at.symlink_to(outside)
        else:
            at.write_bytes(b"planted\n")

    layer.at_create = plant
    caught = compaction(filled, monkeypatch, layer, LockerError)
    assert caught is not None
    [name] = layer.created
    assert (
        str(caught.value) == f"cannot save {filled} ({name}): File exists; the vault is unchanged"
    )
    assert outside.read_bytes() == b"not yours\n"
    assert filled.read_bytes() == before
    assert temps(filled) == [name]  # the planted name is not ours to remove
    if planted == "file":
        assert (filled.parent / name).read_bytes() == b"planted\n"


# -- write_container: the directory's fsync, the clean-up of a failed save ------------------------


def test_a_directory_that_cannot_be_synced_says_the_vault_was_saved(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = _Os(filled)
    layer.dir_fsync = OSError(errno.EIO, os.strerror(errno.EIO))
    caught = compaction(filled, monkeypatch, layer, LockerError)
    assert caught is not None
    assert str(caught.value) == (
        f"saved {filled}, but syncing its directory {filled.parent} failed: Input/output error"
    )
    assert isinstance(caught.value, LockerError)
    assert caught.value.hint == "the new file may not survive a power loss; check the disk"
    assert opened(filled)[1]["c"] == b"c" * 100


@pytest.mark.parametrize("err", [errno.EINVAL, errno.ENOTSUP, errno.EBADF])
def test_a_directory_whose_file_system_cannot_sync_it_is_no_error(
    filled: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    layer = _Os(filled)
    layer.dir_fsync = OSError(err, os.strerror(err))
    compaction(filled, monkeypatch, layer)
    assert opened(filled)[1]["c"] == b"c" * 100


def test_a_failed_rename_whose_clean_up_fails_too_reports_the_rename(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = filled.read_bytes()
    layer = _Os(filled)
    layer.replace_error = OSError(errno.EIO, os.strerror(errno.EIO), "injected")
    layer.unlink_error = OSError(errno.EPERM, os.strerror(errno.EPERM))
    caught = compaction(filled, monkeypatch, layer, LockerError)
    assert caught is not None
    assert str(caught.value) == (
        f"cannot save {filled} (injected): Input/output error; the vault is unchanged"
    )
    assert filled.read_bytes() == before
    assert temps(filled) == layer.created  # what could not be removed stays
    layer.unlink_error = None
    caught = compaction(filled, monkeypatch, layer, LockerError)
    # the writer lock's holder removed the first, the failed save its own
    assert caught is not None and len(layer.created) == 2 and temps(filled) == []
    assert filled.read_bytes() == before


def test_a_failed_read_back_whose_clean_up_fails_too_reports_the_read_back(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = filled.read_bytes()

    def refuses(*args: Any) -> None:
        raise LockerError("read back refused")

    monkeypatch.setattr(ct, "verify_written", refuses)
    layer = _Os(filled)
    layer.unlink_error = OSError(errno.EPERM, os.strerror(errno.EPERM))
    caught = compaction(filled, monkeypatch, layer, LockerError)
    assert caught is not None
    assert str(caught.value) == "read back refused"
    assert filled.read_bytes() == before
    assert temps(filled) == layer.created
    layer.unlink_error = None
    caught = compaction(filled, monkeypatch, layer, LockerError)
    # the writer lock's holder removed the first, the failed save its own
    assert caught is not None and len(layer.created) == 2 and temps(filled) == []


# -- Sealed.read: what is at the vault's path ----------------------------------------------------


def test_what_is_said_of_a_vault_path_that_holds_no_vault(tmp_path: Path, filled: Path) -> None:
    missing = tmp_path / "none.locker"
    with pytest.raises(NotFoundError) as gone:
        ct.Sealed.read(missing)
    assert str(gone.value) == f"no vault at {missing}"
    assert gone.value.hint == "create one with 'locker init' or pass --vault PATH"
    link = tmp_path / "link.locker"
    link.symlink_to(filled)
    not_dir = tmp_path / "file.txt"
    not_dir.write_bytes(b"x")
    directory = tmp_path / "dir.locker"
    directory.mkdir()
    fifo = tmp_path / "fifo.locker"
    os.mkfifo(fifo)  # opened without blocking, then refused
    said = {}
    for path in (link, not_dir / "v.locker", directory, fifo):
        with pytest.raises(LockerError) as caught:
            ct.Sealed.read(path)
        said[path.name] = str(caught.value)
    assert said == {
        "link.locker": f"{link} is a symbolic link; refusing to follow it",
        "v.locker": f"cannot open {not_dir / 'v.locker'}: Not a directory",
        "dir.locker": f"{directory} is not a regular file",
        "fifo.locker": f"{fifo} is not a regular file",
    }


# -- verify_written: the new copy read back before the rename -----------------------------------


def read_back(path: Path, master: bytes, container_id: bytes, generation: int) -> None:
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ct.verify_written(dir_fd, path.name, master, container_id, path, generation)
    finally:
        os.close(dir_fd)


def test_the_read_back_of_a_new_copy_says_what_is_wrong_with_it(filled: Path) -> None:
    with Vault.open(filled, PASSPHRASE) as v:
        master, container_id = bytes(v._container.unlocked.master), v._container.container_id
    read_back(filled, master, container_id, 2)  # the file as written: it reads back
    _, offset, length = records(filled)[0]
    said = {}
    for case, key, generation in (
        ("generation", master, 3),
        ("key", bytes(len(master)), 2),
        ("index", master, 2),
    ):
        if case == "index":
            flip(filled, offset + length // 2)
        with pytest.raises(LockerError) as caught:
            read_back(filled, key, container_id, generation)
        assert caught.value.hint == "check the disk"
        said[case] = str(caught.value)
    copy = f"cannot save {filled}: the new copy did not read back"
    assert said == {
        "generation": f"{copy} (generation 2 is in force, not 3); the vault is unchanged",
        "key": f"{copy} (no commit record verified); the vault is unchanged",
        "index": f"{copy} (index failed authentication: it was changed or is corrupt); the vault "
        "is unchanged",
    }


# -- Sealed.parse: a reader holds no lock ---------------------------------------------------------


class _AppendsAfterFstat:
    """Stands in for `os` inside store/container.py: right after the reader's first `fstat`,
    another writer appends two generations (the reader takes no lock)."""

    def __init__(self, vault: Path) -> None:
        self.vault, self.done = vault, False

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fstat(self, fd: int) -> os.stat_result:
        st = os.fstat(fd)
        if not self.done:
            self.done = True
            with Vault.open(self.vault, PASSPHRASE, write=True) as w:
                for name in ("d", "e"):
                    w.add_bytes(name, name.encode() * 10)
                    w.commit()
        return st


def test_a_reader_whose_file_grows_by_two_appends_as_it_opens_reads_the_newest(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both records then name indexes past the size first seen: the size is taken after the
    records are read (an index is written before the record naming it). Under load this
    failed `test_readers_without_locks_see_whole_generations` with "no usable commit record"."""
    monkeypatch.setattr(ct, "os", _AppendsAfterFstat(saved))
    sealed = ct.Sealed.read(saved)
    monkeypatch.undo()
    try:
        assert [(p, r.generation) for p, r in sealed.records] == [(1, 4), (0, 3)]
        assert sealed.file_size == saved.stat().st_size
    finally:
        sealed.close()
    assert opened(saved) == (
        4,
        {"a.env": b"A=1\n", "b.bin": b"b" * 5000, "d": b"d" * 10, "e": b"e" * 10},
    )


def test_a_new_copy_that_does_not_read_back_names_the_vault_and_is_removed(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = filled.read_bytes()
    layer = _Os(filled)
    layer.damage_read_back = True
    caught = compaction(filled, monkeypatch, layer, LockerError)
    assert caught is not None
    assert str(caught.value) == (
        f"cannot save {filled}: the new copy did not read back (index failed authentication: "
        "it was changed or is corrupt); the vault is unchanged"
    )
    assert filled.read_bytes() == before
    assert temps(filled) == []


def test_a_temp_file_swapped_for_a_symlink_before_its_read_back_is_not_renamed(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read-back refuses to follow it (ELOOP): the rename would put a symbolic link, to
    a file a reader never checked, at the vault's name."""
    before = filled.read_bytes()
    layer = _Os(filled)
    layer.swap_read_back = True
    caught = compaction(filled, monkeypatch, layer, LockerError)
    assert caught is not None
    [name] = layer.created
    assert str(caught.value) == (
        f"cannot save {filled} ({name}): Too many levels of symbolic links; the vault is unchanged"
    )
    assert not filled.is_symlink() and filled.read_bytes() == before
    assert temps(filled) == []


# -- passed_over.others: what a record beside the one in force is said to be ----------------------


def test_a_record_that_fails_its_mac_beside_the_one_in_force_did_not_verify(saved: Path) -> None:
    """Record B (generation 2) with one bit of its MAC flipped: generation 1 opens, and B is
    passed over as a save that did not verify, restorable (its index authenticates)."""
    flip(saved, B + MAC_LAST)
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        assert v.generation == 1
        [p] = v.passed_over()
        assert (p.position, p.generation, p.restorable) == (1, 2, True)
        assert str(p) == "commit record B (claims generation 2) did not verify"


def test_a_passed_over_record_whose_index_does_not_open_is_not_restorable(saved: Path) -> None:
    """Record B's MAC and a byte of the index it names flipped: B is passed over, but nothing
    vouches for a save there, so no restore is offered (`_index_opens` says False)."""
    _, offset, length = records(saved)[1]
    flip(saved, B + MAC_LAST)
    flip(saved, offset + length // 2)
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        assert v.generation == 1
        [p] = v.passed_over()
        assert (p.position, p.restorable) == (1, False)


def test_record_a_read_as_zeros_beside_record_b_in_force_is_passed_over(saved: Path) -> None:
    """No save leaves record A empty: zeros there (a bad sector) beside B in force may have
    hidden a newer save, and are said so, at A's position."""
    with open(saved, "r+b") as f:
        f.seek(A)
        f.write(bytes(RECORD_SIZE))
    with Vault.open(saved, PASSPHRASE, write=True) as v:
        assert v.generation == 2
        [p] = v.passed_over()
        assert (p.position, p.generation, p.restorable) == (0, None, False)
        assert str(p) == "commit record A reads as empty, which no save leaves it"


# -- check_identity and FileIdentity: nothing but the file the save opened is replaced ------------


@contextlib.contextmanager
def seen(tmp_path: Path) -> Iterator[tuple[Path, int, ct.FileIdentity]]:
    """A vault file of 5 bytes, its directory open, and its identity as a save first sees it."""
    vault = tmp_path / "v.locker"
    vault.write_bytes(b"vault")
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        expect = ct.FileIdentity.at(dir_fd, vault.name)
        assert expect is not None
        yield vault, dir_fd, expect
    finally:
        os.close(dir_fd)


def test_a_vault_file_gone_before_the_save_says_what_to_do(tmp_path: Path) -> None:
    with seen(tmp_path) as (vault, dir_fd, expect):
        vault.unlink()
        with pytest.raises(LockerError) as gone:
            ct.check_identity(dir_fd, vault, expect)
        vault.write_bytes(b"another")
        with pytest.raises(BusyError) as other:
            ct.check_identity(dir_fd, vault, expect)
    assert not isinstance(gone.value, BusyError)
    assert (str(gone.value), gone.value.hint) == (
        f"cannot save {vault}: the vault file is no longer there (was its drive removed or "
        "unmounted?); nothing was saved",
        "put the drive back, then run 'locker recover' if a mount was interrupted",
    )
    assert (str(other.value), other.value.hint) == (
        f"{vault} was changed by another writer while this save was made; nothing was saved",
        "locking needs a local file system; run the command again",
    )


def test_a_symlink_to_the_vault_file_put_at_its_name_is_not_the_vault(tmp_path: Path) -> None:
    """The identity is the name's own (lstat): a link to the same file is another file."""
    with seen(tmp_path) as (vault, dir_fd, expect):
        vault.rename(tmp_path / "aside.locker")
        vault.symlink_to("aside.locker")
        assert ct.FileIdentity.of(os.stat(vault)) == expect  # followed, it is the same file
        with pytest.raises(BusyError):
            ct.check_identity(dir_fd, vault, expect)


# -- temp names and their clean-up ---------------------------------------------------------------


def test_the_temp_name_of_a_vault_named_with_255_bytes_fits_in_a_name(tmp_path: Path) -> None:
    vault = tmp_path / ("v" * 249 + ".locker")
    token = "0123456789ab"
    temp = ct.temp_path(vault, token)
    assert len(os.fsencode(temp.name)) <= 255 and temp.name.endswith(".tmp-" + token)
    assert ct.is_temp_of(vault, temp.name)


def test_only_lower_case_hex_tokens_are_temps(tmp_path: Path) -> None:
    vault = tmp_path / "v.locker"
    prefix = ct.temp_path(vault, "").name
    assert ct.is_temp_of(vault, prefix + "0123456789ab")
    for token in ("XXXXXXXXXXXX", "0123456789aB", "0123456789a", "0123456789abc"):
        assert not ct.is_temp_of(vault, prefix + token)


def test_a_stale_temp_that_cannot_be_removed_does_not_stop_the_others(tmp_path: Path) -> None:
    """A directory at a temp's name (unlink fails with EISDIR) is left; the files go."""
    vault = tmp_path / "v.locker"
    stuck = ct.temp_path(vault, "000000000000")
    stuck.mkdir()
    stale = ct.temp_path(vault, "ffffffffffff")
    stale.write_bytes(b"left by a killed save")
    ct.remove_stale_temps(vault)
    assert stuck.is_dir() and not stale.exists()


# -- write_entries: a run written at the wrong length is never saved ------------------------------


class _ShortSource:
    """A source that writes one byte less than its entry's planned length."""

    def write_to(self, out: Any, key_for: Any, aad: bytes, entry: Any) -> None:
        out.write(b"\0" * (entry.length - 1))


def test_an_entry_written_at_the_wrong_length_is_named_in_the_error() -> None:
    import io

    from locker.store.index import Entry

    source = _ShortSource()
    run = [
        ct.Planned(Entry(b"\1" * 16, name, 4, 1, 1, b"\2" * 16, length=20), source)  # type: ignore[arg-type]
        for name in ("a.env", "b.env")
    ]
    with pytest.raises(LockerError) as caught:
        ct.write_entries(io.BytesIO(), [(source, run)], lambda e: b"k" * 32, b"c" * 16)  # type: ignore[list-item]
    assert str(caught.value) == "internal error: entry 'a.env', 'b.env' has the wrong length"


def test_an_empty_record_b_beside_bytes_after_the_newest_save_is_passed_over(
    filled: Path,
) -> None:
    """After a compaction record B is empty and the index in force ends the file: bytes after
    it are an interrupted save (or bytes added), said at B's position."""
    with open(filled, "ab") as f:
        f.write(b"\0" * 100)
    with Vault.open(filled, PASSPHRASE, write=True) as v:
        [p] = v.passed_over()
        assert (p.position, p.generation, p.restorable) == (1, None, False)
        assert str(p) == (
            "commit record B is empty, but the file has bytes after the "
            "newest save (an interrupted save, or bytes added to the file)"
        )


def test_an_index_cut_short_after_the_open_is_said_to_be_truncated(filled: Path) -> None:
    """The file cut inside the index in force after its records were read (another tool's
    truncate): the index read comes back short, and says so."""
    with Vault.open(filled, PASSPHRASE) as v:
        c = v._container
        os.truncate(filled, c.record.index_offset + 10)
        with pytest.raises(FormatError) as caught:
            ct.open_index(c.sealed, c.unlocked.master, c.record)
    assert str(caught.value) == "container is truncated inside the index"


# -- check_no_holes: a sparse file is refused, and the file position is left at 0 ----------------


def test_a_hole_is_named_and_the_position_left_at_0(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse"
    with open(sparse, "wb") as f:
        f.write(b"x" * 4096)
        f.truncate(64 * 1024)  # 60 KiB that were never written
        f.seek(4096)
        fd = f.fileno()
        with pytest.raises(FormatError) as caught:
            ct.check_no_holes(fd, 64 * 1024, 0)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
    assert str(caught.value) == (
        "container has a hole at byte 4096 of 65536 (a sparse file); locker never writes one"
    )


def test_a_file_system_that_cannot_say_where_holes_are_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SEEK_HOLE refused (EINVAL, or ENXIO from the end of the file): no hole is reported,
    and the position is still left at 0."""
    whole = tmp_path / "whole"
    whole.write_bytes(b"x" * 8192)
    real_lseek = os.lseek

    def lseek(fd: int, pos: int, how: int) -> int:
        if how == os.SEEK_HOLE:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_lseek(fd, pos, how)

    with open(whole, "rb") as f:
        f.seek(100)
        ct.check_no_holes(f.fileno(), 8192, 8192)  # from the end: ENXIO
        assert real_lseek(f.fileno(), 0, os.SEEK_CUR) == 0
        monkeypatch.setattr(ct.os, "lseek", lseek)
        f.seek(100)
        ct.check_no_holes(f.fileno(), 8192, 0)
        assert real_lseek(f.fileno(), 0, os.SEEK_CUR) == 0


# -- Sealed.parse of a version 1 file --------------------------------------------------------------


def test_a_version_1_file_is_read_with_its_path_and_its_holes_and_length_checked(
    tmp_path: Path,
) -> None:
    from test_vectors import load, place

    v1 = place(load("success_basic"), tmp_path)
    whole = v1.read_bytes()
    sealed = ct.Sealed.read(v1)
    try:
        assert (sealed.path, sealed.version, sealed.file_size) == (v1, 1, len(whole))
        assert [p for p, _ in sealed.records] == [0]  # its one record stands at A's position
        index_end = sealed.records[0][1].index_offset + sealed.records[0][1].index_length
    finally:
        sealed.close()
    with open(v1, "r+b") as f:  # a hole after the last byte a writer wrote
        f.truncate(len(whole) + 64 * 1024)
    with pytest.raises(FormatError) as holed:
        ct.Sealed.read(v1).close()
    with open(v1, "rb") as f:  # where the file system says it starts (its block size)
        hole = os.lseek(f.fileno(), 0, os.SEEK_HOLE)
    assert len(whole) <= hole < len(whole) + 64 * 1024
    assert str(holed.value) == (
        f"container has a hole at byte {hole} of {len(whole) + 64 * 1024} (a sparse file); "
        "locker never writes one"
    )
    ct.Sealed.read(v1, holes_from=None).close()  # a caller that checks holes itself
    v1.write_bytes(whole[: index_end - 1])
    with pytest.raises(FormatError) as cut:
        ct.Sealed.read(v1).close()
    assert str(cut.value) == "container is truncated (shorter than its header and index)"


def test_a_version_2_file_cut_inside_its_commit_records_says_so(filled: Path) -> None:
    data = filled.read_bytes()
    filled.write_bytes(data[: B + RECORD_SIZE - 1])
    with pytest.raises(FormatError) as caught:
        ct.Sealed.read(filled).close()
    assert str(caught.value) == "container is truncated inside its head and commit records"


def test_the_same_file_grown_or_touched_is_another_version_of_it(tmp_path: Path) -> None:
    """The identity holds the size and the mtime as well as the inode: a vault file written to
    in place by a tool that takes no lock (its mtime put back, or its size kept) is refused."""
    with seen(tmp_path) as (vault, dir_fd, expect):
        before = os.stat(vault)
        with open(vault, "ab") as f:
            f.write(b"!")
        os.utime(vault, ns=(before.st_atime_ns, before.st_mtime_ns))
        with pytest.raises(BusyError):
            ct.check_identity(dir_fd, vault, expect)  # grown, its mtime put back
        with open(vault, "r+b") as f:
            f.truncate(5)
        os.utime(vault, ns=(before.st_atime_ns, before.st_mtime_ns + 1000))
        assert os.stat(vault).st_ino == before.st_ino
        with pytest.raises(BusyError):
            ct.check_identity(dir_fd, vault, expect)  # its size kept, touched


class _ShortReads:
    """Stands in for `os` in store/container.py: the first `pread` returns at most 3 bytes
    (fusefat does return less than asked)."""

    def __init__(self) -> None:
        self.first = True

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        n = min(n, 3) if self.first else n
        self.first = False
        return os.pread(fd, n, offset)


def test_a_read_that_comes_back_short_is_continued_to_what_was_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(20))
    path = tmp_path / "f"
    path.write_bytes(data)
    with open(path, "rb") as f:
        monkeypatch.setattr(ct, "os", _ShortReads())
        assert ct.read_at(f.fileno(), 10, 4) == data[4:14]
        monkeypatch.setattr(ct, "os", _ShortReads())
        assert ct.read_at(f.fileno(), 30, 4) == data[4:]  # fewer only at the end
