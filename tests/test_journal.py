"""The mount journal: records, orphan detection (dead pid, reused pid), diff, runtime dirs."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Places, require

from locker.errors import LockerError
from locker.mount import journal as jn
from locker.mount import process
from locker.mount import runtime as rt
from locker.mount import scan as sc
from locker.text import plural


def make_record(tmp_path: Path, **overrides: object) -> jn.Record:
    record = jn.Record.new(
        tmp_path / "v.locker",
        tmp_path / "mnt-0123456789abcdef",
        started=1000.0,
        idle_seconds=300.0,
        idle_deadline=1300.0,
        hard_deadline=29800.0,
    )
    for key, value in overrides.items():
        setattr(record, key, value)
    return record


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_record_round_trip_and_private_files(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    rt.ensure_private_dir(directory)
    journal = jn.Journal(directory)
    record = make_record(tmp_path, files={"a.txt": "00" * 32}, state=jn.STATE_MOUNTED)
    journal.write(record)
    path = journal.path_of(record.mount_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [back] = list(journal.records())
    assert back == record
    assert back.running()  # written by this very process
    journal.remove(record.mount_id)
    assert list(journal.records()) == []
    journal.remove(record.mount_id)  # idempotent


def test_unreadable_or_foreign_records_are_skipped(tmp_path: Path) -> None:
    journal = jn.Journal(tmp_path)
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "old.json").write_text('{"version": 99}')
    (tmp_path / "notes.txt").write_text("ignored")
    assert list(journal.records()) == []


def test_dead_pid_is_an_orphan(tmp_path: Path) -> None:
    record = make_record(tmp_path, pid=dead_pid())
    assert not record.running()


def test_reused_pid_is_an_orphan(tmp_path: Path) -> None:
    """Same pid, different process start time: the mount that wrote the record is gone."""
    record = make_record(tmp_path)
    assert record.pid == os.getpid() and record.proc_start
    record.proc_start = str(int(record.proc_start) + 1)
    assert not record.running()


def test_record_from_another_boot_is_an_orphan(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    require(bool(record.boot_id), "/proc/sys/kernel/random/boot_id (Linux) tells boots apart")
    record.boot_id = "00000000-0000-0000-0000-000000000000"
    assert not record.running()


def test_zombie_is_not_running(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # exited but not reaped yet
            with open(f"/proc/{proc.pid}/stat", "rb") as f:
                if b") Z" in f.read():
                    break
            time.sleep(0.01)
        record = make_record(tmp_path, pid=proc.pid, proc_start=process.process_start(proc.pid))
        assert not record.running()
    finally:
        proc.wait()


def test_orphans_found_across_runtime_bases(tmp_path: Path) -> None:
    base = rt.runtime_base()  # this test's own $XDG_RUNTIME_DIR (see conftest's `places`)
    journal = jn.Journal(base.journal_dir)
    alive = make_record(tmp_path)
    gone = make_record(tmp_path, pid=dead_pid(), mount_id="mnt-dead")
    journal.write(alive)
    journal.write(gone)
    found = {f.record.mount_id: f.running for f in jn.all_mounts()}
    assert found[alive.mount_id] is True
    assert found["mnt-dead"] is False
    assert [f.record.mount_id for f in jn.orphans()] == ["mnt-dead"]


@pytest.mark.parametrize(
    ("name", "ignored"),
    [
        (".a.txt.swp", True),
        ("dir/.key.pem.swx", True),
        (".env.swo", True),
        ("notes~", True),
        ("4913", True),
        (".#lockfile", True),
        (".locker-0a1b2c3d4e5f6a7b.tmp", True),
        ("a.txt", False),
        ("swp", False),
        ("dir~/real.txt", False),
        ("49130", False),
    ],
)
def test_editor_litter_patterns(name: str, ignored: bool) -> None:
    assert sc.is_ignored(name) is ignored


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_diff_since_last_sync(tmp_path: Path) -> None:
    root = tmp_path / "mnt"
    (root / "sub").mkdir(parents=True)
    (root / "same.txt").write_bytes(b"same")
    (root / "edited.txt").write_bytes(b"new content")
    (root / "sub" / "moved.key").write_bytes(b"moved")
    (root / "fresh.env").write_bytes(b"fresh")
    (root / ".fresh.env.swp").write_bytes(b"swap")
    (root / "link").symlink_to("/etc/passwd")
    recorded = {
        "same.txt": sha(b"same"),
        "edited.txt": sha(b"old content"),
        "moved.key": sha(b"moved"),
        "gone.txt": sha(b"gone"),
    }
    changes = sc.diff(root, recorded)
    assert changes.changed == ["edited.txt"]
    assert changes.added == ["fresh.env"]
    assert changes.deleted == ["gone.txt"]
    assert changes.renamed == [("moved.key", "sub/moved.key")]
    assert changes.summary() == "1 changed, 1 added, 1 deleted, 1 renamed"
    assert not sc.diff(root, {n: sha((root / n).read_bytes()) for n in sc.scan_tree(root).files})


def test_scan_skips_symlinks_and_special_files(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    os.mkfifo(tmp_path / "fifo")
    scan = sc.scan_tree(tmp_path)
    assert list(scan.files) == ["real"]
    assert sorted(scan.skipped) == ["fifo", "link"]


def test_plural() -> None:
    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert plural(1, "sync") == "1 sync" and plural(3, "sync") == "3 syncs"
    assert plural(2, "process", "processes") == "2 processes"


@pytest.fixture
def run_user(places: Places) -> Path:
    """This test's stand-in for /run/user/UID, as logind makes it (0700, ours)."""
    path = places.run_user / str(os.getuid())
    path.mkdir(mode=0o700)
    return path


def test_mounts_under_run_user_are_found_without_xdg_runtime_dir(
    tmp_path: Path, run_user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """su, sudo -u and cron give no $XDG_RUNTIME_DIR: a mount made from a login shell must
    still be seen by status, lock, recover and the orphan notice."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_user))
    journal = jn.Journal(rt.runtime_base().journal_dir)
    assert journal.directory == run_user / "locker" / "journal"
    gone = make_record(tmp_path, pid=dead_pid(), mount_id="mnt-left-behind")
    journal.write(gone)
    for xdg in (None, str(tmp_path)):  # unset, or pointing somewhere else
        if xdg is None:
            monkeypatch.delenv("XDG_RUNTIME_DIR")
        else:
            monkeypatch.setenv("XDG_RUNTIME_DIR", xdg)
        assert [f.record.mount_id for f in jn.orphans()] == ["mnt-left-behind"]
    # $XDG_RUNTIME_DIR is /run/user/UID in a login shell: the journal is listed once
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_user))
    assert [j.directory for j in jn.journals()].count(journal.directory) == 1
    assert len(jn.all_mounts()) == 1


def test_new_mounts_keep_their_preference_order(
    run_user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/run/user/UID is searched, but without $XDG_RUNTIME_DIR new mounts still go to
    /dev/shm (else the temp dir), as before."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert rt.runtime_base().path.parent != run_user
    assert any(c.path == run_user / "locker" for c in rt.lookup_candidates())


def test_foreign_run_user_dir_is_not_searched(
    run_user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(os.getuid() == 0, "root, to make a directory owned by someone else")
    os.chown(run_user, 65534, 65534)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert all(c.path != run_user / "locker" for c in rt.lookup_candidates())


def test_finished_records_are_not_mounts_and_are_collected(
    tmp_path: Path, run_user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock asked for by `locker lock` leaves its outcome (state "locked") for it to read;
    it is no mount, and one nobody collected is removed after a while."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_user))
    journal = jn.Journal(rt.runtime_base().journal_dir)
    fresh = make_record(
        tmp_path, pid=dead_pid(), mount_id="mnt-fresh", state=jn.STATE_LOCKED, finished=time.time()
    )
    stale = make_record(
        tmp_path,
        pid=dead_pid(),
        mount_id="mnt-stale",
        state=jn.STATE_LOCKED,
        finished=time.time() - jn.LOCKED_KEEP - 1,
    )
    journal.write(fresh)
    journal.write(stale)
    assert jn.all_mounts() == [] and jn.orphans() == []
    assert journal.read("mnt-fresh") == fresh
    assert journal.read("mnt-stale") is None
    assert journal.read("mnt-never") is None


def test_records_of_an_older_locker_still_load(tmp_path: Path) -> None:
    """Records written before holders/wiped/error/finished existed (mounts of the previous
    version that are still running, or orphans of it) are read, not skipped."""
    record = make_record(tmp_path, state=jn.STATE_MOUNTED)
    data = record.to_json()
    for key in ("holders", "wiped", "error", "finished"):
        del data[key]
    (tmp_path / "old.json").write_text(json.dumps(data))
    [back] = list(jn.Journal(tmp_path).records())
    assert back == record


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dir", ["/home/me"]),
        ("dir", "relative/dir"),
        ("pid", "123"),
        ("pid", True),
        ("created_dir", "yes"),
        ("files", {"a.txt": 5}),
        ("files", ["a.txt"]),
        ("holders", "x"),
        ("state", "whatever"),
        ("mount_id", "../../home/me/.bashrc"),
        ("started", "yesterday"),
    ],
)
def test_records_with_fields_of_the_wrong_type_are_refused(
    tmp_path: Path, key: str, value: object
) -> None:
    data = make_record(tmp_path, state=jn.STATE_MOUNTED).to_json()
    data[key] = value
    with pytest.raises(ValueError, match="malformed"):
        jn.Record.from_json(data)
    (tmp_path / "crafted.json").write_text(json.dumps(data))
    assert list(jn.Journal(tmp_path).records()) == []


def test_a_record_dir_is_trusted_only_where_mounts_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    monkeypatch.setenv("HOME", str(home))
    base = rt.runtime_base()
    made = base.path / "mnt-0123456789abcdef"
    made.mkdir(mode=0o700)
    given = tmp_path / "given"  # a --dir mount
    given.mkdir(mode=0o700)
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    for ok in (made, given):
        jn.check_mount_dir(make_record(tmp_path, dir=str(ok)))
    for bad in (home, base.path, base.journal_dir, run, open_dir, Path("/")):
        with pytest.raises(LockerError):
            jn.check_mount_dir(make_record(tmp_path, dir=str(bad)))
    (tmp_path / "link").symlink_to(given)
    with pytest.raises(LockerError, match="symbolic link"):
        jn.check_mount_dir(make_record(tmp_path, dir=str(tmp_path / "link")))
    with pytest.raises(LockerError, match="normalised"):
        jn.check_mount_dir(make_record(tmp_path, dir=str(given) + "/../given"))


def test_a_wiping_marker_left_without_its_record_is_cleared(tmp_path: Path) -> None:
    """`remove` unlinks the record first (a marker alone never makes recover delete entries);
    a kill between the two unlinks leaves the marker, which the next listing clears."""
    directory = tmp_path / "journal"
    rt.ensure_private_dir(directory)
    journal = jn.Journal(directory)
    record = make_record(tmp_path, state=jn.STATE_MOUNTED)
    journal.write(record)
    journal.mark_wiping(record.mount_id)
    [back] = list(journal.records())
    assert back.state == jn.STATE_WIPING  # a marker beside its record still counts
    journal.path_of(record.mount_id).unlink()  # killed between remove's two unlinks
    assert list(journal.records()) == []
    assert os.listdir(directory) == []
