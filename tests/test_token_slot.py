"""The PKCS#11 token slot through the real CLI, against SoftHSM2 (a real PKCS#11 module):
add-pkcs11, unlock with the token on any command, a wrong PIN and a wrong key exit 3."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import RunLocker, SoftHsm

from locker.errors import EXIT_BAD_KEY, EXIT_OK, EXIT_USAGE


def ok(proc: subprocess.CompletedProcess[bytes]) -> str:
    assert proc.returncode == EXIT_OK, proc.stderr.decode()
    return proc.stdout.decode()


@pytest.fixture
def pin_file(tmp_path: Path, softhsm: SoftHsm) -> Path:
    path = tmp_path / "pin.txt"
    path.write_text(softhsm.pin + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def token_vault(cli: RunLocker, softhsm: SoftHsm, pin_file: Path, tmp_path: Path) -> Path:
    out = ok(cli("slot", "add-pkcs11", *softhsm.options(pin_file)))
    assert "added pkcs11-p256 slot" in out
    (tmp_path / "s.txt").write_bytes(b"behind the token\n")
    ok(cli("add", tmp_path / "s.txt"))
    return tmp_path / "vault.locker"


def test_the_token_unlocks_any_command(
    run_locker: RunLocker, token_vault: Path, softhsm: SoftHsm, pin_file: Path
) -> None:
    out = ok(run_locker("cat", "s.txt", "--vault", token_vault, *softhsm.options(pin_file)))
    assert out == "behind the token\n"
    rows = json.loads(
        ok(run_locker("slot", "ls", "--json", "--vault", token_vault, *softhsm.options(pin_file)))
    )
    assert [(r["kind"], r["unlocked_this_time"]) for r in rows] == [
        ("passphrase", False),
        ("pkcs11-p256", True),
    ]
    assert rows[1]["label"] == f"token {softhsm.label!r}, key 'locker'"


def test_a_wrong_pin_exits_3(
    run_locker: RunLocker, token_vault: Path, softhsm: SoftHsm, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-pin.txt"
    wrong.write_text("0000\n")
    wrong.chmod(0o600)
    proc = run_locker("ls", "--vault", token_vault, *softhsm.options(wrong))
    assert proc.returncode == EXIT_BAD_KEY, proc.stderr
    assert proc.stderr.decode().splitlines()[0] == (
        f"locker: error: wrong PIN for token {softhsm.label!r}"
    )


def test_another_key_on_the_token_exits_3(
    run_locker: RunLocker, token_vault: Path, softhsm: SoftHsm, pin_file: Path
) -> None:
    softhsm.add_key("another")
    proc = run_locker(
        "ls", "--vault", token_vault, *softhsm.options(pin_file), "--pkcs11-key", "another"
    )
    assert proc.returncode == EXIT_BAD_KEY, proc.stderr
    assert proc.stderr.decode().startswith("locker: error: wrong token")


def test_bad_token_options_are_usage_errors(
    run_locker: RunLocker, cli: RunLocker, softhsm: SoftHsm, pin_file: Path, tmp_path: Path
) -> None:
    proc = cli("slot", "add-pkcs11", *softhsm.options(pin_file), "--pkcs11-key", "nope")
    assert proc.returncode == EXIT_USAGE
    assert b"has no EC private key labelled 'nope'" in proc.stderr
    proc = cli("slot", "add-pkcs11", "--pkcs11-module", tmp_path / "missing.so")
    assert proc.returncode == EXIT_USAGE
    assert b"cannot load the PKCS#11 module" in proc.stderr
    proc = cli("ls", "--pin-file", pin_file)
    assert proc.returncode == EXIT_USAGE
    assert b"--pin-file needs --pkcs11-module" in proc.stderr
    rows = json.loads(ok(cli("slot", "ls", "--json")))
    assert [r["kind"] for r in rows] == ["passphrase"]


def test_add_pkcs11_can_make_the_key(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, softhsm: SoftHsm, pin_file: Path
) -> None:
    options = [*softhsm.options(pin_file), "--pkcs11-key", "made-by-locker"]
    out = ok(cli("slot", "add-pkcs11", "--generate", *options))
    assert "made a P-256 key 'made-by-locker'" in out
    ok(run_locker("ls", "--vault", vault_path, *options))
    again = cli("slot", "add-pkcs11", "--generate", *options)
    assert again.returncode == EXIT_USAGE
    assert b"already has a key labelled 'made-by-locker'" in again.stderr


def test_an_off_curve_share_is_refused_before_the_token_is_asked(tmp_path: Path) -> None:
    """A crafted vault must not use the token as an oracle: the module is never even loaded."""
    from locker.errors import FormatError
    from locker.slots.token import TokenSpec, token_kek
    from locker.store.format import SLOT_PKCS11, Slot

    asked: list[str] = []
    spec = TokenSpec(
        str(tmp_path / "no-such-module.so"), None, "k", lambda: asked.append("pin") or b""
    )
    share = b"\x04" + b"\x01" * 64  # not on P-256
    slot = Slot(SLOT_PKCS11, b"\0" * 8, b"\0" * 16, b"\0" * 12, b"\0" * 48, None, extra=share)
    with pytest.raises(FormatError, match="not a P-256 point"):
        token_kek(spec, slot)
    assert asked == []
