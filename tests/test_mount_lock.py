"""Locking under trouble, on a real vault and a real mount directory under a real runtime base,
recovered with the real `locker recover` in a subprocess: a final sync that fails, a journal
that cannot be written (a full runtime tmpfs), a process killed in the middle of the wipe,
rewrites the stat cannot see, names the vault refuses, writers that refill the directory, paths
past PATH_MAX, a file that keeps growing. Whatever happens, `recover --yes` deletes no entry the
mount did not delete, and imports no zeroed file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import test_mount_e2e as e2e
from conftest import MOUNT_FILES, PASSPHRASE, RunLocker

from locker.errors import LockerError
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import runtime as rt
from locker.mount import scan as sc
from locker.mount import session as m
from locker.mount import sync, tracker
from locker.vault import Vault

runtime = e2e.runtime  # the fixture: this test's $XDG_RUNTIME_DIR


class Killed(BaseException):
    """Stands for SIGKILL inside the process: nothing after it runs, no handler, no cleanup."""


class NoObserver:
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def mounted(filled_vault: Path, runtime: Path) -> Iterator[m.Session]:
    """A session as `locker mount` makes it: under $XDG_RUNTIME_DIR/locker, journal beside it."""
    base = rt.RuntimeBase(runtime / "locker", True)
    rt.ensure_private_dir(base.path)
    rt.ensure_private_dir(base.journal_dir)
    root = base.path / f"mnt-{secrets.token_hex(8)}"
    root.mkdir(mode=0o700)
    vault = Vault.open(filled_vault, PASSPHRASE, write=True, purpose="mount")
    s = m.Session(
        vault,
        root,
        journal=jn.Journal(base.journal_dir),
        observer_factory=lambda root, sink: NoObserver(),
    )
    s.start()
    try:
        yield s
    finally:
        vault.close()


def contents(vault: Path) -> dict[str, bytes]:
    with Vault.open(vault, PASSPHRASE) as v:
        return {e.name: v.read_bytes(e.name) for e in v.entries()}


def orphan(s: m.Session) -> None:
    """The mount process is gone: its record names a process that has exited."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    for path in s.journal.directory.glob("*.json"):
        data = json.loads(path.read_bytes())
        data["pid"] = dead.pid
        path.write_text(json.dumps(data))


Recover = Callable[..., str]


@pytest.fixture
def recover(run_locker: RunLocker, filled_vault: Path, pwfile: Path, runtime: Path) -> Recover:
    """The real `locker recover ARGS` on this test's vault and runtime dir; its stdout."""

    def run(*args: str) -> str:
        done = run_locker(
            "--vault",
            filled_vault,
            "--passphrase-file",
            pwfile,
            "recover",
            *args,
            env={"XDG_RUNTIME_DIR": str(runtime)},
        )
        assert done.returncode == 0, (done.stdout, done.stderr)
        return done.stdout.decode()

    return run


def kill_at_zero(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The process dies right after the wipe zeroed its n-th file (before unlinking it)."""
    real, calls = mountdir._zero_fd, []

    def zero(fd: int, size: int) -> None:
        real(fd, size)
        calls.append(fd)
        if len(calls) == n:
            raise Killed

    monkeypatch.setattr(mountdir, "_zero_fd", zero)


def killed_in_the_wipe(s: m.Session, monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Lock, killed right after the n-th file was zeroed; the process is gone."""
    kill_at_zero(monkeypatch, n)
    with pytest.raises(Killed):
        s.lock(tracker.REASON_IDLE)
    s.vault.close()
    monkeypatch.undo()
    orphan(s)


def full_journal(monkeypatch: pytest.MonkeyPatch, marker: bool = True) -> None:
    """The runtime tmpfs is full: no record can be rewritten (an empty marker still can)."""

    def write(self: jn.Journal, record: jn.Record) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jn.Journal, "write", write)
    if not marker:
        monkeypatch.setattr(jn.Journal, "mark_wiping", write)


def broken_commit(s: m.Session) -> None:
    def commit() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    s.vault.commit = commit  # type: ignore[method-assign]


# -- 1, 2: nothing is wiped before the record says what stays -------------------------------------


def test_kill_in_the_wipe_after_a_failed_final_sync_deletes_nothing(
    mounted: m.Session,
    filled_vault: Path,
    recover: Recover,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 9.1: the final sync fails (full disk), the unchanged files are being wiped, and
    the process is killed: `recover --yes` saves the unsaved edit and deletes nothing."""
    s = mounted
    (s.root / "a.txt").write_bytes(b"unsaved edit\n")
    broken_commit(s)
    killed_in_the_wipe(s, monkeypatch, 2)
    out = recover("--yes")
    assert "deleted" not in out
    assert contents(filled_vault) == {**MOUNT_FILES, "a.txt": b"unsaved edit\n"}
    assert not s.root.exists()


@pytest.mark.parametrize("kill_at", [1, 3])
def test_full_runtime_tmpfs_wipes_only_with_the_marker_and_recover_deletes_nothing(
    mounted: m.Session,
    filled_vault: Path,
    recover: Recover,
    monkeypatch: pytest.MonkeyPatch,
    kill_at: int,
) -> None:
    """Issue 9.2: no journal write succeeds from the lock on; the wipe goes on only because
    the empty marker says "wiping"; a kill mid-wipe, then `recover --yes`: nothing deleted."""
    s = mounted
    (s.root / "c.env").write_bytes(b"TOKEN=2\n")
    full_journal(monkeypatch)
    killed_in_the_wipe(s, monkeypatch, kill_at)
    assert s.journal.marker_of(s.record.mount_id).exists()
    out = recover("--yes")
    assert "stopped while wiping" in out and "deleted" not in out
    assert contents(filled_vault) == {**MOUNT_FILES, "c.env": b"TOKEN=2\n"}
    assert not s.root.exists() and list(s.journal.directory.iterdir()) == []


def test_nothing_is_wiped_when_not_even_the_marker_can_be_written(
    mounted: m.Session, filled_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mounted
    (s.root / "c.env").write_bytes(b"TOKEN=3\n")
    full_journal(monkeypatch, marker=False)
    with pytest.raises(LockerError, match="nothing was wiped"):
        s.lock(tracker.REASON_IDLE)
    assert sorted(sc.scan_tree(s.root).files) == sorted(MOUNT_FILES)
    assert contents(filled_vault)["c.env"] == b"TOKEN=3\n"  # the final sync itself is in


def test_recover_checks_the_vault_log_for_the_lock_of_a_record_left_behind(
    mounted: m.Session,
    filled_vault: Path,
    recover: Recover,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The record still says "mounted" with every file (its updates failed) and the marker is
    gone, but the vault's log holds the lock: what is missing was wiped, not deleted."""
    s = mounted
    full_journal(monkeypatch)
    killed_in_the_wipe(s, monkeypatch, 2)
    s.journal.marker_of(s.record.mount_id).unlink()
    [record] = s.journal.records()
    assert record.state == jn.STATE_MOUNTED and sorted(record.files) == sorted(MOUNT_FILES)
    out = recover("--yes")
    assert "holds this mount's lock" in out
    assert contents(filled_vault) == MOUNT_FILES
    assert not s.root.exists()


# -- 3: a rewrite the stat cannot see ----------------------------------------------------------


def same_stat_rewrite(s: m.Session, name: str, data: bytes) -> None:
    """Rewrite `name` with content of the same size and leave the stat the session saw as it
    is, as a coarse-timestamp file system does for a rewrite in the same tick."""
    path = s.root / name
    assert len(data) == path.stat().st_size
    path.write_bytes(data)
    known = s.known[name]
    s.known[name] = sync.Known(known.sha256, sc.FileStat.of(os.lstat(path)), known.read_ns)


def test_final_sync_reads_every_file_whatever_its_stat(
    mounted: m.Session, filled_vault: Path
) -> None:
    s = mounted
    same_stat_rewrite(s, "d.txt", b"DELTA\n")
    s.known["d.txt"].read_ns = 2**62  # read long after its last change: trusted by a sync
    assert not s.sync().changes
    s.lock(tracker.REASON_IDLE)
    assert contents(filled_vault)["d.txt"] == b"DELTA\n"


def test_a_file_read_within_a_tick_of_its_change_is_read_again(
    mounted: m.Session, filled_vault: Path
) -> None:
    s = mounted
    (s.root / "d.txt").write_bytes(b"first\n")
    assert s.sync().changes.changed == ["d.txt"]
    same_stat_rewrite(s, "d.txt", b"again\n")  # within RACY_NS of the read
    assert s.sync().changes.changed == ["d.txt"]
    assert contents(filled_vault)["d.txt"] == b"again\n"


def rename_under_the_scan(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """While moves[0] > 0, each scan's stat of a.txt (or a-b.txt) first renames it to the
    other name: the directory listed it, then it is gone under both names."""
    real_stat = os.stat
    moves = [0]

    def stat(path: str, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> object:
        if path in ("a.txt", "a-b.txt") and dir_fd is not None and moves[0]:
            moves[0] -= 1
            other = "a-b.txt" if path == "a.txt" else "a.txt"
            os.rename(path, other, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(os, "stat", stat)
    return moves


def test_a_file_renamed_between_listing_and_stat_is_not_saved_as_deleted(
    mounted: m.Session, filled_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the lock-race campaign: a file renamed back and forth after the scan listed its
    directory but before it looked at the file was seen under neither name, and the sync saved
    it as deleted. Now a sync that sees files move saves no deletion, and the final sync looks
    again until they hold still."""
    s = mounted
    alpha = (s.root / "a.txt").read_bytes()
    moves = rename_under_the_scan(monkeypatch)
    moves[0] = 1
    assert not s.sync().changes.deleted
    assert contents(filled_vault)["a.txt"] == alpha
    moves[0] = 3  # the final sync: moved under three scans in a row, still at the fourth
    s.lock(tracker.REASON_IDLE)
    monkeypatch.undo()
    got = contents(filled_vault)
    assert [got[n] for n in ("a.txt", "a-b.txt") if n in got] == [alpha]
    assert not s.root.exists()


def test_a_file_renamed_under_the_scan_after_a_failed_final_sync_is_not_deleted(
    mounted: m.Session, filled_vault: Path, recover: Recover, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final sync fails (full disk) and a file is renamed while the lock looks at what
    to keep: it was recorded as deleted by the mount (and wiped under its new name), so
    `recover --yes` deleted the entry. Now the lock looks again until the files hold still."""
    s = mounted
    alpha = (s.root / "a.txt").read_bytes()
    (s.root / "d.txt").write_bytes(b"unsaved edit\n")  # kept: the directory stays for recover
    moves = rename_under_the_scan(monkeypatch)

    def commit() -> None:
        moves[0] = 1  # the rename comes after the failed sync's scan
        raise OSError(errno.ENOSPC, "No space left on device")

    s.vault.commit = commit  # type: ignore[method-assign]
    with contextlib.suppress(LockerError):
        s.lock(tracker.REASON_IDLE)
    monkeypatch.undo()
    s.vault.close()
    orphan(s)
    recover("--yes")
    got = contents(filled_vault)
    assert [got[n] for n in ("a.txt", "a-b.txt") if n in got] == [alpha]
    assert got["d.txt"] == b"unsaved edit\n"
    assert not s.root.exists()


def test_ramfs_dir_is_accepted_only_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rt, "filesystem_type", lambda path: "ramfs")
    _, _, warning = mountdir.make_mount_dir(str(tmp_path / "on-ramfs"))
    assert warning is not None and "ramfs" in warning


# -- 4: names the vault refuses ----------------------------------------------------------------

REFUSED = {
    "by\\x2duuid": "by-uuid",
    "line\nbreak": "line_break",
    "bidi\u202etxt.exe": "bidi_txt.exe",
}


def test_files_with_refused_names_are_kept_and_recover_renames_them(
    mounted: m.Session, filled_vault: Path, recover: Recover
) -> None:
    s = mounted
    for name in REFUSED:
        (s.root / name).write_bytes(f"content of {name!r}".encode())
    os.mkdir(os.fsencode(s.root) + b"/raw\xff")
    with open(os.fsencode(s.root) + b"/raw\xff/k", "wb") as f:
        f.write(b"not utf-8")
    (s.root / "a.txt").write_bytes(b"saved\n")
    result = s.lock(tracker.REASON_IDLE)
    assert sorted(result.kept) == sorted([*REFUSED, "raw\udcff/k"])
    assert result.synced.changed == ["a.txt"]
    assert sorted(p.name for p in s.root.iterdir()) == sorted([*REFUSED, "raw\udcff"])
    [record] = s.journal.records()
    assert record.state == jn.STATE_WIPING and sorted(record.kept) == sorted(result.kept)
    s.vault.close()
    orphan(s)
    out = recover("--yes")
    assert "cannot be an entry name" in out
    data = contents(filled_vault)
    for name, fixed in REFUSED.items():
        assert data[fixed] == f"content of {name!r}".encode()
    assert data["raw_/k"] == b"not utf-8"
    assert data["a.txt"] == b"saved\n"
    assert not s.root.exists()


# -- 5: the wipe carries on ---------------------------------------------------------------------


def test_wipe_goes_on_when_a_writer_refills_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process writing by path recreates a file after its unlink: the directory is listed
    and wiped again, and every other file is wiped too."""
    root = tmp_path / "w"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x").write_bytes(b"secret x")
    for i in range(20):
        (root / f"f{i}").write_bytes(b"secret")
    real_unlink = os.unlink
    refills = []

    def unlink(path: str, *, dir_fd: int | None = None) -> None:
        real_unlink(path, dir_fd=dir_fd)
        if path == "x" and len(refills) < 2:
            refills.append(path)
            (root / "a" / "x").write_bytes(b"rewritten by path")

    monkeypatch.setattr(os, "unlink", unlink)
    wiped = mountdir.wipe_tree(root, remove_root=True)
    monkeypatch.undo()
    assert len(refills) == 2
    assert wiped.left == [] and not root.exists()


def test_wipe_reports_what_keeps_coming_back_and_wipes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "w"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x").write_bytes(b"secret x")
    (root / "z").mkdir()
    (root / "z" / "y").write_bytes(b"secret y")
    real_unlink = os.unlink

    def unlink(path: str, *, dir_fd: int | None = None) -> None:
        real_unlink(path, dir_fd=dir_fd)
        if path == "x":
            (root / "a" / "x").write_bytes(b"again")

    monkeypatch.setattr(os, "unlink", unlink)
    wiped = mountdir.wipe_tree(root, remove_root=True)
    monkeypatch.undo()
    assert any(w.startswith("a/") for w in wiped.left)
    assert not (root / "z").exists()
    assert sorted(p.name for p in root.rglob("*")) == ["a", "x"]


def test_wipe_reports_files_that_keep_coming_back_at_the_top(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer recreating a file at the top of the mount faster than the wipe removes it: the
    directory stays, and the wipe says so (the lock keeps its record for `locker recover`)
    instead of reporting a clean wipe and leaving plaintext with no record."""
    root = tmp_path / "w"
    root.mkdir()
    (root / "x").write_bytes(b"secret x")
    real_unlink = os.unlink

    def unlink(path: str, *, dir_fd: int | None = None) -> None:
        real_unlink(path, dir_fd=dir_fd)
        if path == "x":
            (root / "x").write_bytes(b"again")

    monkeypatch.setattr(os, "unlink", unlink)
    wiped = mountdir.wipe_tree(root, remove_root=True)
    monkeypatch.undo()
    assert root.exists()
    assert wiped.left == [f"{root}: files kept reappearing while it was wiped"]


# -- 8: paths past PATH_MAX ---------------------------------------------------------------------


def deep_file(root: Path, depth: int = 20) -> str:
    """A file whose path is longer than PATH_MAX (made through directory descriptors)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    parts = []
    for i in range(depth):
        part = f"{i:02d}" + "d" * 250
        os.mkdir(part, dir_fd=fd)
        sub = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = sub
        parts.append(part)
    wfd = os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
    os.write(wfd, b"too deep to save")
    os.close(wfd)
    os.close(fd)
    return "/".join([*parts, "deep.txt"])


def test_a_path_past_path_max_does_not_stop_syncs_or_the_lock(
    mounted: m.Session, filled_vault: Path, recover: Recover
) -> None:
    s = mounted
    name = deep_file(s.root)
    assert len(str(s.root / name).encode()) > 4096
    (s.root / "a.txt").write_bytes(b"edited next to it\n")
    result = s.sync()
    assert result.changes.changed == ["a.txt"] and name in result.unsaved
    result2 = s.lock(tracker.REASON_IDLE)
    assert list(result2.kept) == [name]
    assert contents(filled_vault)["a.txt"] == b"edited next to it\n"
    s.vault.close()
    orphan(s)
    out = recover("--discard")
    assert "wiped" in out and not s.root.exists()


# -- 9, 12: a growing file holds nothing back; memory stays flat ---------------------------------


@contextlib.contextmanager
def growing(path: Path) -> Iterator[None]:
    """A thread appending to `path` while the block runs: paced and bounded (at most 256 MiB
    more), since it must still be growing while a sync reads it and must never fill the
    machine's disk or RAM if the sync hangs. However the block ends (a failed assertion, the
    timeout's exception), the thread is stopped and joined before anything else runs."""
    stop = threading.Event()

    def grow() -> None:
        with path.open("ab") as f:
            for _ in range(64 * 1024):
                if stop.wait(0.0005):
                    break
                f.write(b"\1" * 4096)
                f.flush()

    writer = threading.Thread(target=grow, name="growing-writer", daemon=True)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()


@pytest.fixture
def vault_removed_after(filled_vault: Path) -> Iterator[Path]:
    """`filled_vault`, deleted after the test with every temporary file a save left beside it,
    pass or fail: a test that saves hundreds of MiB leaves nothing in pytest's kept temp dirs.
    Asked for before `mounted`, it is torn down after the mount's vault is closed."""
    try:
        yield filled_vault
    finally:
        for path in filled_vault.parent.glob(f"*{filled_vault.name}*"):
            if not path.is_dir():
                path.unlink(missing_ok=True)


def test_a_growing_large_file_does_not_hold_back_other_edits(
    vault_removed_after: Path, mounted: m.Session
) -> None:
    s = mounted
    big = s.root / "growing.bin"
    block = b"\1" * (1024 * 1024)
    with big.open("wb") as f:
        for _ in range(65):
            f.write(block)
    with growing(big):
        (s.root / "a.txt").write_bytes(b"small edit\n")
        result = s.sync()
    assert "a.txt" in result.changes.changed
    assert result.unsaved.get("growing.bin") == sync.STILL_WRITTEN
    assert contents(vault_removed_after)["a.txt"] == b"small edit\n"
    result = s.sync()  # it settled: saved now
    assert result.changes.added == ["growing.bin"]
    data = contents(vault_removed_after)["growing.bin"]
    assert hashlib.sha256(data).hexdigest() == sc.sha256_file(big)
