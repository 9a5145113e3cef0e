"""A vault on a removable drive: a real FAT image (mkfs.fat + fusefat) taken away under a
running `locker mount`, then brought back for `locker recover`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import LOCKER, MOUNT_FILES, PASSPHRASE, SMALL_KDF, SUBPROCESS_TIMEOUT, locker_env

from locker.mount.drive_watch import DriveGoneError, DriveWatch, mount_note
from locker.vault import Vault, create


@pytest.fixture
def journal(places) -> Path:
    """Where this test's mounts keep their journal."""
    return places.xdg / "locker" / "journal"


def vault_on(directory: Path) -> Path:
    path = directory / "vault.locker"
    create(path, PASSPHRASE, SMALL_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        for name, data in MOUNT_FILES.items():
            v.add_bytes(name, data)
        v.commit()
    return path


def start_mount(vault: Path, pwfile: Path, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    proc = subprocess.Popen(
        [*LOCKER, "mount", "--vault", str(vault), "--passphrase-file", str(pwfile), "--idle", "1h"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=locker_env(tmp_path),
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    root = Path(proc.stdout.readline().decode().strip())
    assert b"mounted" in proc.stdout.readline()  # materialised and watching
    return proc, root


@pytest.mark.parametrize("how", ["unmounted", "fusefat killed"])
def test_mount_survives_its_fat_drive_going_away_and_recover_saves_the_rest(
    fat_image, pwfile, tmp_path, journal, how
):
    fat = fat_image()
    vault = vault_on(fat.mount_point)
    proc, root = start_mount(vault, pwfile, tmp_path)
    try:
        # Stopped, so that the change below cannot be synced before the drive is gone.
        proc.send_signal(signal.SIGSTOP)
        if how == "unmounted":
            fat.unmount(lazy=True)
        else:
            assert fat.process is not None
            fat.process.kill()
            fat.unmount(lazy=True)
        (root / "a.txt").write_bytes(b"changed while the drive was away\n")
        (root / "new.key").write_bytes(b"new\n")
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()
    assert b"is on a FAT file system" in err
    assert b"went away; locking" in out
    assert proc.returncode == 1
    assert b"kept 2 files with unsaved changes: a.txt, new.key" in err
    assert b"locker: hint:" in err and b"locker recover" in err
    assert b"Traceback" not in err
    # What the vault already held is wiped; only the unsaved changes stay.
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["a.txt", "new.key"]
    assert not (root / "c.env").exists() and not (root / "sub" / "deep" / "b.key").exists()
    [record] = [json.loads(p.read_bytes()) for p in journal.iterdir()]
    assert "went away" in record["error"]

    fat.mount()  # the drive is back
    done = subprocess.run(
        [*LOCKER, "recover", "--yes", "--vault", str(vault), "--passphrase-file", str(pwfile)],
        capture_output=True,
        env=locker_env(tmp_path),
        cwd=tmp_path,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not root.exists()
    assert list(journal.iterdir()) == []
    with Vault.open(vault, PASSPHRASE) as v:
        assert v.read_bytes("a.txt") == b"changed while the drive was away\n"
        assert v.read_bytes("new.key") == b"new\n"
        assert v.read_bytes("c.env") == MOUNT_FILES["c.env"]  # untouched entries kept
        assert v.verify() == []
    assert sorted(fat.listing()) == ["vault.locker", "vault.locker.lock"]


def test_a_drive_that_goes_away_with_nothing_unsaved_locks_and_wipes_everything(
    fat_image, pwfile, tmp_path, journal
):
    fat = fat_image()
    vault = vault_on(fat.mount_point)
    proc, root = start_mount(vault, pwfile, tmp_path)
    before = vault.read_bytes()  # with the mount event
    try:
        fat.unmount(lazy=True)
        out, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"went away; locking" in out, err
    assert proc.returncode == 0, err
    assert not root.exists()
    assert list(journal.iterdir()) == []
    fat.mount()
    assert vault.read_bytes() == before  # the lock could not be recorded there, nothing else


def test_drive_watch_and_the_mount_note(fat_image, tmp_path):
    fat = fat_image()
    vault = vault_on(fat.mount_point)
    note = mount_note(vault, os.path.getsize(vault))
    assert note is not None and "FAT file system" in note and "locker recover" in note
    assert mount_note(tmp_path / "x.locker", 0) is None  # not a FAT or removable drive
    now = [0.0]
    with Vault.open(vault, PASSPHRASE) as v:
        watch = DriveWatch(v, lambda: now[0])
        assert not watch.gone()
        watch.check()
        fat.unmount(lazy=True)
        assert not watch.gone()  # looked 0 s ago: not again yet
        now[0] += 1
        assert watch.gone()
        with pytest.raises(DriveGoneError, match="went away"):
            watch.check()
        fat.mount()
        now[0] += 1
        assert watch.gone()  # back, but as another mount: our open file is not the one there
