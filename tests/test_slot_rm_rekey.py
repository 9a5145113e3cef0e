"""slot rm --rekey: the removed slot never comes back as the only one (a rekey keeps just the
slot that unlocked), through the real CLI, with a real Secret Service for the keyring case."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import RunLocker

from locker.errors import EXIT_BAD_KEY, EXIT_OK, EXIT_USAGE

RECOVERY = re.compile(rb"[2-9A-Z]{4}(?:-[2-9A-Z]{4}){8}")


def ok(proc: subprocess.CompletedProcess[bytes]) -> str:
    assert proc.returncode == EXIT_OK, proc.stderr.decode()
    return proc.stdout.decode()


def slot_rows(
    run: RunLocker, *args: str | Path, env: dict[str, str | None] | None = None
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(ok(run("slot", "ls", "--json", *args, env=env)))
    return rows


def add_recovery(cli: RunLocker, tmp_path: Path) -> Path:
    found = RECOVERY.search(ok(cli("slot", "add-recovery")).encode())
    assert found
    path = tmp_path / "recovery.txt"
    path.write_bytes(found.group() + b"\n")
    path.chmod(0o600)
    return path


def test_rm_of_the_unlocking_slot_with_rekey_is_refused(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    """Unlocked with the passphrase, `slot rm <passphrase slot> --rekey` must not keep that
    passphrase as the only way in and drop the recovery key."""
    (tmp_path / "s.txt").write_bytes(b"kept\n")
    ok(cli("add", tmp_path / "s.txt"))
    recovery = add_recovery(cli, tmp_path)
    before = vault_path.read_bytes()
    passphrase_id = str(slot_rows(cli)[0]["id"])
    proc = cli("slot", "rm", passphrase_id, "--rekey")
    assert proc.returncode == EXIT_USAGE, (proc.stdout, proc.stderr)
    err = proc.stderr.decode()
    assert err.startswith("locker: error: ") and "Traceback" not in err
    assert vault_path.read_bytes() == before  # nothing was saved
    # the way the user meant it works: unlock with a key that stays
    out = ok(
        run_locker(
            "slot", "rm", passphrase_id, "--rekey", "--vault", vault_path,
            "--recovery-key-file", recovery,
        )
    )  # fmt: skip
    assert "new master key" in out
    rows = slot_rows(run_locker, "--vault", vault_path, "--recovery-key-file", recovery)
    assert [r["kind"] for r in rows] == ["recovery"]
    got = run_locker("cat", "s.txt", "--vault", vault_path, "--recovery-key-file", recovery)
    assert ok(got) == "kept\n"
    assert cli("ls").returncode == EXIT_BAD_KEY  # the removed passphrase opens nothing now


def test_rm_of_the_keyring_slot_with_rekey_never_bricks_the_vault(
    run_locker: RunLocker,
    cli: RunLocker,
    vault_path: Path,
    tmp_path: Path,
    secret_service: dict[str, str | None],
) -> None:
    """The keyring opens first, so `slot rm <keyring slot> --rekey` unlocked with the very slot
    it removes; the rekey kept only that slot, then its secret left the keyring: nothing
    could open the vault any more."""
    (tmp_path / "s.txt").write_bytes(b"kept\n")
    ok(cli("add", tmp_path / "s.txt"))
    ok(cli("slot", "remember", env=secret_service))
    keyring_id = str(slot_rows(cli, env=secret_service)[1]["id"])
    before = vault_path.read_bytes()
    proc = cli("slot", "rm", keyring_id, "--rekey", env=secret_service)
    assert proc.returncode == EXIT_USAGE, (proc.stdout, proc.stderr)
    assert b"--no-keyring" in proc.stderr
    assert vault_path.read_bytes() == before
    # the keyring still opens it, and so does the passphrase
    assert ok(run_locker("cat", "s.txt", "--vault", vault_path, env=secret_service)) == "kept\n"
    assert ok(cli("cat", "s.txt", "--no-keyring", env=secret_service)) == "kept\n"
    # with the passphrase unlocking, the keyring slot goes and the vault stays open to it
    ok(cli("slot", "rm", keyring_id, "--rekey", "--no-keyring", env=secret_service))
    assert [r["kind"] for r in slot_rows(cli, env=secret_service)] == ["passphrase"]
    assert ok(cli("cat", "s.txt", env=secret_service)) == "kept\n"


def test_rekey_through_the_keyring_never_drops_the_passphrase_unasked(
    run_locker: RunLocker,
    cli: RunLocker,
    vault_path: Path,
    tmp_path: Path,
    secret_service: dict[str, str | None],
) -> None:
    """The keyring opens first even when --passphrase-file is given, and a rekey keeps only
    the slot that unlocked: `locker rekey --passphrase-file pw` left a vault that only this
    machine's keyring opens, the passphrase and the recovery key dropped."""
    (tmp_path / "s.txt").write_bytes(b"kept\n")
    ok(cli("add", tmp_path / "s.txt"))
    recovery = add_recovery(cli, tmp_path)
    ok(cli("slot", "remember", env=secret_service))
    before = vault_path.read_bytes()
    proc = cli("rekey", env=secret_service)
    assert proc.returncode == EXIT_USAGE, (proc.stdout, proc.stderr)
    assert proc.stderr.decode().startswith("locker: error: ")
    assert b"--no-keyring" in proc.stderr
    assert vault_path.read_bytes() == before
    # with the passphrase unlocking, the rekey keeps the passphrase slot
    ok(cli("rekey", "--no-keyring", env=secret_service))
    assert ok(cli("cat", "s.txt", "--no-keyring", env=secret_service)) == "kept\n"
    gone = run_locker("ls", "--vault", vault_path, "--recovery-key-file", recovery)
    assert gone.returncode != EXIT_OK  # the rekey dropped the other slots, as documented
