"""Recipient slots: age's key encoding (checked against the age spec's own example and the real
age and age-keygen commands), `locker gen identity`, `slot add-recipient` and `--identity`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import RunLocker, require

from locker.errors import EXIT_BAD_KEY, EXIT_OK, EXIT_USAGE
from locker.slots import recipient

# The X25519 example of the age specification (C2SP age.md, "The X25519 recipient type").
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"


def ok(proc: subprocess.CompletedProcess[bytes]) -> str:
    assert proc.returncode == EXIT_OK, proc.stderr.decode()
    return proc.stdout.decode()


def test_the_age_spec_example_identity_gives_its_recipient(tmp_path: Path) -> None:
    path = tmp_path / "spec.txt"
    path.write_text(f"# the spec's example\n\n{SPEC_IDENTITY}\n")
    (identity,) = recipient.read_identities(path)
    assert recipient.format_identity(identity) == SPEC_IDENTITY
    public = recipient.public_key(identity)
    assert recipient.format_recipient(public) == SPEC_RECIPIENT
    assert recipient.parse_recipient(SPEC_RECIPIENT) == public
    assert recipient.parse_recipient(SPEC_RECIPIENT.upper()) == public


@pytest.mark.parametrize(
    "bad",
    [
        SPEC_RECIPIENT[:-1] + ("q" if SPEC_RECIPIENT[-1] != "q" else "p"),  # checksum
        SPEC_RECIPIENT.replace("age1", "agf1"),
        "age1" + SPEC_RECIPIENT[4:].upper(),  # mixed case
        SPEC_IDENTITY,  # an identity is not a recipient
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGQs8",
    ],
)
def test_malformed_recipients_are_refused(bad: str) -> None:
    with pytest.raises(Exception, match="not an age X25519 recipient"):
        recipient.parse_recipient(bad)


def test_gen_identity_add_recipient_and_unlock(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    ident = tmp_path / "id.txt"
    proc = run_locker("gen", "identity", "--output", ident)
    ok(proc)
    assert ident.stat().st_mode & 0o777 == 0o600
    text = ident.read_text()
    public = text.splitlines()[1].removeprefix("# public key: ")
    assert proc.stderr.decode() == f"Public key: {public}\n"
    assert "AGE-SECRET-KEY-1" in text and "AGE-SECRET-KEY-1" not in proc.stdout.decode()
    again = run_locker("gen", "identity", "--output", ident)
    assert again.returncode != EXIT_OK and ident.read_text() == text  # never replaced
    ok(cli("slot", "add-recipient", public, "--label", "ops laptop"))
    (tmp_path / "s.txt").write_bytes(b"for the recipient\n")
    ok(cli("add", tmp_path / "s.txt"))
    out = ok(run_locker("cat", "s.txt", "--vault", vault_path, "--identity", ident))
    assert out == "for the recipient\n"
    rows = json.loads(
        ok(run_locker("slot", "ls", "--json", "--vault", vault_path, "--identity", ident))
    )
    assert [(r["kind"], r["label"], r["unlocked_this_time"]) for r in rows] == [
        ("passphrase", "", False),
        ("x25519", "ops laptop", True),
    ]


def test_a_wrong_identity_exits_3(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    right, wrong = tmp_path / "right.txt", tmp_path / "wrong.txt"
    ok(run_locker("gen", "identity", "--output", right))
    ok(run_locker("gen", "identity", "--output", wrong))
    public = right.read_text().splitlines()[1].removeprefix("# public key: ")
    ok(cli("slot", "add-recipient", public))
    proc = run_locker("ls", "--vault", vault_path, "--identity", wrong)
    assert proc.returncode == EXIT_BAD_KEY
    assert proc.stderr.decode().startswith("locker: error: wrong identity")
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("AGE-PLUGIN-YUBIKEY-1QQQQ\n")
    proc = run_locker("ls", "--vault", vault_path, "--identity", garbage)
    assert proc.returncode == EXIT_USAGE
    assert b"not an age X25519 identity" in proc.stderr


def test_an_identity_made_by_age_keygen_unlocks(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    keygen = require("age-keygen", "age-keygen (apt: age) makes the interop identity")
    ident = tmp_path / "age-identity.txt"
    subprocess.run([keygen, "-o", ident], check=True, capture_output=True)
    public = subprocess.run(
        [keygen, "-y", ident], check=True, capture_output=True, text=True
    ).stdout.strip()
    ok(cli("slot", "add-recipient", public))
    ok(run_locker("ls", "--vault", vault_path, "--identity", ident))


def test_age_reads_an_identity_made_by_locker(run_locker: RunLocker, tmp_path: Path) -> None:
    age = require("age", "age (apt: age) checks locker's identity format")
    ident = tmp_path / "id.txt"
    ok(run_locker("gen", "identity", "--output", ident))
    public = ident.read_text().splitlines()[1].removeprefix("# public key: ")
    sealed = subprocess.run(
        [age, "-r", public], input=b"round trip", check=True, capture_output=True
    ).stdout
    opened = subprocess.run(
        [age, "-d", "-i", ident], input=sealed, check=True, capture_output=True
    ).stdout
    assert opened == b"round trip"
