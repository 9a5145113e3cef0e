"""Tests that kill mutants `scripts/mutate` (mutmut) found alive in store/ and the mount wipe
(issue 10, item 14): the slot KEK derivations against RFC 5869 computed here with hmac alone,
the save error's naming of the file that failed, and the flags the wipe opens a
subdirectory with. docs/TESTING.md lists the survivors judged equivalent."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import io
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, TINY_KDF

from locker.errors import BadKeyError, BusyError, LockerError, UsageError
from locker.mount import directory
from locker.store import container as ct
from locker.store import crypto, generations, keys, lockfile, sources
from locker.store.format import SLOT_KEYFILE, SLOT_KEYRING, SLOT_RECOVERY, Header
from locker.vault import Vault, create


def _rfc5869(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()  # 32 bytes: one block


@pytest.mark.parametrize("kind", ["recovery", "keyfile", "keyring"])
def test_slot_kek_is_the_specified_hkdf(kind: str) -> None:
    secret, salt = bytes(range(32)), b"salt" * 4
    want = _rfc5869(secret, salt, b"locker/v1/slot-kek\x00" + kind.encode())
    assert crypto.slot_kek(secret, salt, kind) == want
    assert crypto.slot_kek(bytearray(secret), salt, kind) == want


def test_age_wrap_key_is_the_specified_hkdf() -> None:
    shared, salt = b"\x07" * 32, b"E" * 32 + b"R" * 32
    want = _rfc5869(shared, salt, b"age-encryption.org/v1/X25519")
    assert crypto.age_x25519_wrap_key(shared, salt) == want


def test_save_error_names_the_file_that_failed_when_it_is_not_the_vault(tmp_path: Path) -> None:
    vault = tmp_path / "v.locker"
    temp = ct.temp_path(vault, "0" * 12)
    other = ct.save_error(vault, OSError(errno.ENOSPC, "No space left on device", str(temp)))
    assert str(other) == (
        f"cannot save {vault} ({temp}): No space left on device; the vault is unchanged"
    )
    same = ct.save_error(vault, OSError(errno.EIO, "Input/output error", str(vault)))
    assert str(same) == f"cannot save {vault}: Input/output error; the vault is unchanged"
    bare = ct.save_error(vault, OSError("no errno"))
    assert str(bare) == f"cannot save {vault}: no errno; the vault is unchanged"


def test_a_header_without_its_mac_is_not_encoded() -> None:
    with pytest.raises(ValueError, match=r"^header MAC not set$"):
        Header(bytes(16), (), bytes(12), 17).encode()


def test_the_wipe_opens_a_subdirectory_without_following_a_link(tmp_path: Path) -> None:
    """O_NOFOLLOW, O_DIRECTORY and O_CLOEXEC each matter: a directory swapped for a symlink
    after the wipe's stat must not be entered, a file must not be taken for a directory, and
    the descriptor must not leak into a child process."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("x")
    top = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as caught:
            directory._open_subdir(top, "link")
        assert caught.value.errno in (errno.ELOOP, errno.ENOTDIR)
        with pytest.raises(NotADirectoryError):
            directory._open_subdir(top, "file")
        sub = directory._open_subdir(top, "real")
        try:
            assert fcntl.fcntl(sub, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            assert os.path.samestat(os.fstat(sub), os.stat(tmp_path / "real"))
        finally:
            os.close(sub)
    finally:
        os.close(top)


def test_why_is_the_system_reason_or_the_error_class() -> None:
    assert directory._why(OSError(errno.EROFS, "Read-only file system")) == "Read-only file system"
    assert directory._why(PermissionError()) == "PermissionError"


def test_a_mount_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    """`or` made `and` survived: an empty directory of another user was mounted into."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    if os.geteuid() == 0:
        os.chown(theirs, 65534, 65534)
    else:
        theirs = Path("/")  # root's, and this test's process is not root
    with pytest.raises(UsageError, match="is not a directory of yours"):
        directory.make_mount_dir(str(theirs))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is not a directory of yours"):
        directory.make_mount_dir(str(tmp_path / "file"))
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(UsageError, match="is not empty") as caught:
        directory.make_mount_dir(str(full))
    assert caught.value.hint == "mount into a new or empty directory"


def test_the_mount_dir_warning_tells_tmpfs_ramfs_and_disk_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinds = {
        "tmpfs": None,
        "ramfs": f"{tmp_path} is on ramfs, not tmpfs: it has no size limit and its coarse "
        "timestamps make each sync read more",
        "ext4": f"{tmp_path} is not RAM-backed (tmpfs): plaintext may reach the disk",
    }
    for kind, want in kinds.items():
        monkeypatch.setattr(directory.runtime, "filesystem_type", lambda p, k=kind: k)
        assert directory._dir_warning(tmp_path) == want, kind


class _WriterThreadWrites:
    """Stands in for `os` in store/container.py and store/generations.py: records the writes to
    the vault (a compaction's temp file, or an append) made by the background writer thread (its name, whether it is a daemon, which buffers it writes from)
    and fails the `fail`-th of them with EIO (0: none)."""

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.writes = fail, 0
        self.threads: set[tuple[str, bool]] = set()
        self.buffers: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fdopen(self, fd: int, *args: Any, **kwargs: Any) -> Any:
        return _Recorded(os.fdopen(fd, *args, **kwargs), self)


class _Recorded:
    def __init__(self, real: Any, layer: _WriterThreadWrites) -> None:
        self._real, self._layer = real, layer

    def write(self, data: Any) -> int:
        thread, layer = threading.current_thread(), self._layer
        if thread is not threading.main_thread():
            layer.threads.add((thread.name, thread.daemon))
            layer.buffers.add(id(memoryview(data).obj))
            layer.writes += 1
            if layer.writes == layer.fail:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        n: int = self._real.write(data)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> _Recorded:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.__exit__(*exc)


@pytest.fixture
def big_source(tmp_path: Path) -> tuple[Path, Path]:
    vault = tmp_path / "v.locker"
    create(vault, PASSPHRASE, TINY_KDF)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(sources._PIPELINE_MIN + 3 * 65536 + 5))
    return vault, src


@pytest.mark.parametrize("compact", [False, True], ids=["append", "compaction"])
def test_a_large_entry_is_written_by_one_daemon_thread_from_three_buffers(
    big_source: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, compact: bool
) -> None:
    """The background writer (a daemon, so a hung write never keeps locker alive) with at most
    3 blocks in flight (its memory bound), and a save through it that reads back whole."""
    vault, src = big_source
    layer = _WriterThreadWrites()
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_file("big", src)
        monkeypatch.setattr(ct, "os", layer)
        monkeypatch.setattr(generations, "os", layer)
        v.commit(compact=compact)
        monkeypatch.undo()
    assert layer.threads == {("locker-writer", True)}
    assert len(layer.buffers) == 3 and layer.writes > 3
    with Vault.open(vault, PASSPHRASE) as v:
        assert v.read_bytes("big") == src.read_bytes()


@pytest.mark.parametrize("compact", [False, True], ids=["append", "compaction"])
def test_a_write_error_on_the_writer_thread_fails_the_save_with_that_error(
    big_source: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, compact: bool
) -> None:
    """Even when the writes after it succeed: the error is not lost on the thread."""
    vault, src = big_source
    before = vault.read_bytes()
    layer = _WriterThreadWrites(fail=2)
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_file("big", src)
        monkeypatch.setattr(ct, "os", layer)
        monkeypatch.setattr(generations, "os", layer)
        with pytest.raises(LockerError) as raised:
            v.commit(compact=compact)
        monkeypatch.undo()
    assert str(raised.value) == f"cannot save {vault}: Input/output error; the vault is unchanged"
    assert vault.read_bytes() == before


class _ShortReads:
    """Stands in for `io` in store/sources.py: each read of a file returns at most 4 KiB (as a
    FUSE or network file system may)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(io, name)

    class FileIO(io.FileIO):
        def readinto(self, buffer: Any) -> int:
            return super().readinto(memoryview(buffer)[:4096])


def test_short_reads_of_a_source_are_sealed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "v.locker"
    create(vault, PASSPHRASE, TINY_KDF)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300_000))
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_file("src", src)
        monkeypatch.setattr(sources, "io", _ShortReads())
        v.commit()
        monkeypatch.undo()
    with Vault.open(vault, PASSPHRASE) as v:
        assert v.read_bytes("src") == src.read_bytes()


class _SwapAfterListing:
    """Stands in for `os` in mount/directory.py: right after the wipe lists a directory that
    holds `name` (a regular file), the name is replaced by a symlink to `target` (a racing
    process); the listing still says what it saw."""

    def __init__(self, name: str, target: Path) -> None:
        self.name, self.target, self.swapped = name, target, False

    def __getattr__(self, attr: str) -> Any:
        return getattr(os, attr)

    def scandir(self, dir_fd: int) -> Any:
        with os.scandir(dir_fd) as listing:
            entries = list(listing)
        for entry in entries:
            entry.is_file(follow_symlinks=False)  # the type as listed, kept by the entry
            if entry.name == self.name and not self.swapped:
                self.swapped = True
                os.unlink(self.name, dir_fd=dir_fd)
                os.symlink(self.target, self.name, dir_fd=dir_fd)
        return contextlib.nullcontext(entries)


def test_the_wipe_never_zeroes_through_a_symlink_swapped_in_after_its_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside.key"
    outside.write_bytes(b"not the mount's to zero")
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_bytes(b"secret")
    layer = _SwapAfterListing("f", outside)
    monkeypatch.setattr(directory, "os", layer)
    assert directory.wipe_tree(root, remove_root=True).count == 1
    monkeypatch.undo()
    assert layer.swapped
    assert outside.read_bytes() == b"not the mount's to zero"
    assert not root.exists()


@pytest.mark.parametrize(
    ("kind", "what"),
    [(SLOT_RECOVERY, "recovery key"), (SLOT_KEYFILE, "key file"), (SLOT_KEYRING, "keyring")],
)
def test_a_secret_opener_is_named_and_keeps_to_its_slots(
    tmp_path: Path, kind: int, what: str
) -> None:
    """A keyring secret belongs to one slot: limited to others, it opens nothing."""
    vault = tmp_path / "v.locker"
    create(vault, PASSPHRASE, TINY_KDF)
    secret = bytes(range(1, 33))
    slot = keys.new_slot(os.urandom, kind)
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        v.add_slot(slot, keys.secret_kek(secret, slot))
        v.commit()
    assert keys.SecretOpener(kind, secret).what == what
    mine = keys.SecretOpener(kind, secret, frozenset({slot.slot_id}))
    with Vault.open(vault, [mine]) as v:
        assert v.unlocked_slot.slot_id == slot.slot_id
    others = keys.SecretOpener(kind, secret, frozenset({bytes(len(slot.slot_id))}))
    with pytest.raises(BadKeyError):
        Vault.open(vault, [others])


def test_a_second_writer_is_told_who_holds_the_vault(tmp_path: Path) -> None:
    """flock is per open file: a second open in this process contends as another would."""
    vault = tmp_path / "v.locker"
    me = f"PID {os.getpid()} on {os.uname().nodename}"
    for purpose, message, hint in [
        (
            "mount",
            f"vault is mounted by {me}",
            "change the files in the mount directory instead, or run 'locker lock' first",
        ),
        ("write", f"vault is in use by {me}", "wait for that command to finish and try again"),
    ]:
        with lockfile.WriterLock(vault, purpose):
            for attempt in (
                lockfile.WriterLock(vault).acquire,
                lockfile.WriterLock(vault).check_free,
            ):
                with pytest.raises(BusyError) as raised:
                    attempt()
                assert (str(raised.value), raised.value.hint) == (message, hint)
        lockfile.WriterLock(vault).check_free()  # released: nothing to say
    # a holder that has not said who it is (or wrote no object): asked again, then unnamed
    for record in (b"", b"[]"):
        fd = os.open(lockfile.lock_path(vault), os.O_RDWR | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, record)
            fcntl.flock(fd, fcntl.LOCK_EX)
            with pytest.raises(BusyError) as raised:
                lockfile.WriterLock(vault).acquire()
            assert str(raised.value) == "vault is in use by PID ? on ?"
        finally:
            os.close(fd)


def test_a_mutant_run_that_blocks_ends_as_a_timeout(tmp_path: Path) -> None:
    """A mutant that blocks uses no CPU, so mutmut's CPU limit never ends it: the rooms'
    wall-clock limit does, with the exit status mutmut records as a timeout (36). Here the
    block is the one a mutant made: an open of a FIFO no one writes."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import mutation_rooms\n\n\n"
        "def pytest_sessionstart(session):\n    mutation_rooms.start(session)\n"
    )
    (tmp_path / "test_blocked.py").write_text(
        f"def test_blocked():\n    open({str(fifo)!r}, 'rb')\n"
    )
    env = {
        **os.environ,
        "MUTANT_UNDER_TEST": "locker.store.container.x_read_at__mutmut_1",
        "MUTATE_WALL_SECONDS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 36, proc.stdout + proc.stderr
