"""The writer lock holds per vault file, not per name; what a writer refuses before it locks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PASSPHRASE, RunLocker

from locker.errors import EXIT_BUSY, BusyError, LockerError
from locker.vault import Vault


def test_a_hard_linked_second_name_cannot_open_the_vault_for_writing(vault_path: Path) -> None:
    """Issue 9 item 11: the lock file is per name, so a hard link got a second writer."""
    twin = vault_path.with_name("twin.locker")
    os.link(vault_path, twin)
    with (
        Vault.open(vault_path, PASSPHRASE, write=True),
        pytest.raises(BusyError, match="in use under another name"),
    ):
        Vault.open(twin, PASSPHRASE, write=True)
    with Vault.open(twin, PASSPHRASE, write=True):  # free again once the first has closed
        pass


def test_the_file_lock_follows_the_vault_across_saves(vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("a", b"1")
        v.commit()
        twin = vault_path.with_name("twin.locker")
        os.link(vault_path, twin)  # a link to the file just saved
        with pytest.raises(BusyError):
            Vault.open(twin, PASSPHRASE, write=True)


def test_a_hard_linked_mount_is_refused(
    cli: RunLocker, run_locker: RunLocker, vault_path: Path, pwfile: Path
) -> None:
    twin = vault_path.with_name("twin.locker")
    os.link(vault_path, twin)
    with Vault.open(vault_path, PASSPHRASE, write=True):
        proc = run_locker("add", pwfile, "--vault", twin, "--passphrase-file", pwfile)
    assert proc.returncode == EXIT_BUSY, proc.stderr
    assert b"in use under another name" in proc.stderr


def test_a_symlinked_vault_leaves_no_lock_file(vault_path: Path) -> None:
    link = vault_path.with_name("link.locker")
    link.symlink_to(vault_path.name)
    with pytest.raises(LockerError, match="symbolic link"):
        Vault.open(link, PASSPHRASE, write=True)
    assert not link.with_name("link.locker.lock").exists()


@pytest.mark.permissions
def test_a_read_only_vault_is_not_replaced(vault_path: Path) -> None:
    vault_path.chmod(0o400)
    before = vault_path.read_bytes()
    with pytest.raises(LockerError, match=r"read-only \(mode 0400\)") as caught:
        Vault.open(vault_path, PASSPHRASE, write=True)
    assert caught.value.hint == f"chmod u+w {vault_path} to allow changes"
    assert vault_path.read_bytes() == before
    assert vault_path.stat().st_mode & 0o777 == 0o400
    with Vault.open(vault_path, PASSPHRASE) as v:  # reading needs no write permission
        assert v.entries() == []


def test_init_over_a_symlink_leaves_no_lock_file(tmp_path: Path, run_locker: RunLocker) -> None:
    link = tmp_path / "link.locker"
    link.symlink_to("nowhere")
    proc = run_locker("init", "--vault", link)
    assert proc.returncode != 0
    assert not (tmp_path / "link.locker.lock").exists()


def test_the_courtesy_check_before_the_prompt(vault_path: Path) -> None:
    """`check_free` (before the passphrase is asked) reads /proc/locks only when the lock file
    is not empty: a live holder is reported, a released lock and one whose holder was killed
    (its record left in the file) are free."""
    from locker.store.lockfile import WriterLock, lock_path

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from locker.store.lockfile import WriterLock\n"
            f"WriterLock(Path({str(vault_path)!r}), 'mount').acquire()\n"
            "print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with pytest.raises(BusyError, match=f"mounted by PID {holder.pid}"):
            WriterLock(vault_path).check_free()
    finally:
        holder.kill()  # as kill -9: its record stays in the lock file
        holder.wait()
    assert lock_path(vault_path).stat().st_size > 0
    WriterLock(vault_path).check_free()
    with Vault.open(vault_path, PASSPHRASE, write=True):
        pass
    assert lock_path(vault_path).stat().st_size == 0  # released: emptied
    WriterLock(vault_path).check_free()
