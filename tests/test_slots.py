"""Key slots through the real CLI: slot ls/add-*/rm, passwd on the slot that unlocked, the
unlock options on every command, a wrong key of each kind (exit 3), and the last slot kept."""

from __future__ import annotations

import json
import re
import resource
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import LOCKER, OTHER_PASSPHRASE, PASSPHRASE, SUBPROCESS_TIMEOUT, RunLocker, locker_env

from locker.errors import EXIT_BAD_KEY, EXIT_OK, EXIT_USAGE
from locker.slots import keyfile, recovery

RECOVERY = re.compile(rb"[2-9A-Z]{4}(?:-[2-9A-Z]{4}){8}")


def ok(proc: object) -> str:
    assert getattr(proc, "returncode", None) == EXIT_OK, getattr(proc, "stderr", b"").decode()
    return str(getattr(proc, "stdout", b"").decode())


def one_error(proc: object, code: int) -> str:
    assert getattr(proc, "returncode", None) == code, getattr(proc, "stderr", b"")
    err = getattr(proc, "stderr", b"").decode()
    assert "Traceback" not in err
    assert err.splitlines()[0].startswith("locker: error: "), err
    return err


def slots(run: RunLocker, vault: Path, *unlock: str | Path) -> list[dict[str, object]]:
    """`slot ls --json`; with `cli`, pass the vault again (argparse keeps the last one)."""
    out = ok(run("slot", "ls", "--json", "--vault", vault, *unlock))
    rows: list[dict[str, object]] = json.loads(out)
    return rows


@pytest.fixture
def with_recovery(cli: RunLocker, tmp_path: Path) -> Path:
    out = ok(cli("slot", "add-recovery"))
    found = RECOVERY.search(out.encode())
    assert found, out
    path = tmp_path / "recovery.txt"
    path.write_bytes(found.group() + b"\n")
    path.chmod(0o600)
    return path


def test_slot_ls_shows_kinds_and_labels_never_secrets(
    cli: RunLocker, with_recovery: Path, tmp_path: Path
) -> None:
    key = tmp_path / "key"
    out = ok(cli("slot", "add-keyfile", key, "--generate", "--label", "laptop key"))
    assert "key file fingerprint" in out
    text = ok(cli("slot", "ls"))
    rows = json.loads(ok(cli("slot", "ls", "--json")))
    assert [r["kind"] for r in rows] == ["passphrase", "recovery", "keyfile"]
    assert rows[2]["label"] == "laptop key"
    assert rows[0]["unlocked_this_time"] is True
    secret_text = with_recovery.read_text().strip()
    for shown in (text, json.dumps(rows)):
        assert secret_text not in shown
        assert key.read_text().strip() not in shown
    assert {"id", "kind", "label", "created", "last_used"} <= set(rows[0])


def test_recovery_key_unlocks_every_command(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, with_recovery: Path, tmp_path: Path
) -> None:
    (tmp_path / "s.txt").write_bytes(b"secret\n")
    ok(cli("add", tmp_path / "s.txt"))
    out = run_locker("cat", "s.txt", "--vault", vault_path, "--recovery-key-file", with_recovery)
    assert ok(out) == "secret\n"
    # typed sloppily: lower case, spaces instead of dashes
    sloppy = tmp_path / "sloppy.txt"
    sloppy.write_text(with_recovery.read_text().lower().replace("-", " "))
    sloppy.chmod(0o600)
    ok(run_locker("ls", "--vault", vault_path, "--recovery-key-file", sloppy))


def test_recovery_key_format() -> None:
    secret = bytes(range(20))
    text = recovery.encode(secret)
    assert RECOVERY.fullmatch(text.encode())
    assert not set(text) & set("01IO")
    assert recovery.decode(text) == secret
    typo = text[:5] + ("Z" if text[5] != "Z" else "Y") + text[6:]
    with pytest.raises(Exception, match="typo"):
        recovery.decode(typo)


def test_keyfile_alone_and_as_a_second_factor(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    alone, both = tmp_path / "alone.key", tmp_path / "both.key"
    ok(cli("slot", "add-keyfile", alone, "--generate"))
    assert alone.stat().st_mode & 0o777 == 0o600
    new = tmp_path / "second.txt"
    new.write_bytes(OTHER_PASSPHRASE + b"\n")
    new.chmod(0o600)
    ok(
        cli(
            "slot",
            "add-keyfile",
            both,
            "--generate",
            "--with-passphrase",
            "--new-passphrase-file",
            new,
        )
    )
    ok(run_locker("ls", "--vault", vault_path, "--keyfile", alone))
    # the second factor: the key file and its passphrase together
    ok(run_locker("ls", "--vault", vault_path, "--keyfile", both, "--passphrase-file", new))
    # the key file alone: its passphrase is asked for (and there is no terminal here)
    err = one_error(run_locker("ls", "--vault", vault_path, "--keyfile", both), EXIT_USAGE)
    assert "no terminal to ask for the passphrase" in err
    # the passphrase without its key file opens nothing either
    one_error(run_locker("ls", "--vault", vault_path, "--passphrase-file", new), EXIT_BAD_KEY)
    secret = keyfile.read_secret(alone)
    listed = [r["label"] for r in slots(run_locker, vault_path, "--keyfile", alone)]
    assert f"key file {keyfile.fingerprint(secret)}" in listed


def test_any_file_can_be_a_key_file_and_short_ones_are_refused(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(bytes(range(256)) * 8)
    ok(cli("slot", "add-keyfile", photo))
    ok(run_locker("ls", "--vault", vault_path, "--keyfile", photo))
    short = tmp_path / "short"
    short.write_bytes(b"too short")
    err = one_error(cli("slot", "add-keyfile", short), EXIT_USAGE)
    assert "32 bytes to 1 MiB" in err


@pytest.mark.parametrize("kind", ["passphrase", "recovery", "keyfile"])
def test_a_wrong_key_of_each_kind_exits_3(
    kind: str, run_locker: RunLocker, cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    ok(cli("slot", "add-recovery"))
    ok(cli("slot", "add-keyfile", tmp_path / "right.key", "--generate"))
    wrong = tmp_path / "wrong"
    if kind == "passphrase":
        wrong.write_bytes(OTHER_PASSPHRASE + b"\n")
        option = "--passphrase-file"
    elif kind == "recovery":
        wrong.write_text(recovery.encode(bytes(20)) + "\n")
        option = "--recovery-key-file"
    else:
        keyfile.generate(wrong, bytes(32))
        option = "--keyfile"
    wrong.chmod(0o600)
    proc = run_locker("ls", "--vault", vault_path, option, wrong)
    err = one_error(proc, EXIT_BAD_KEY)
    assert kind.split()[0][:4] in err.replace("key file", "keyfile")
    assert proc.stdout == b""


def test_a_mistyped_recovery_key_is_a_bad_key(
    run_locker: RunLocker, vault_path: Path, with_recovery: Path, tmp_path: Path
) -> None:
    text = with_recovery.read_text().strip()
    mistyped = tmp_path / "mistyped"
    mistyped.write_text(text.replace(text[0], "2" if text[0] != "2" else "3", 1))
    mistyped.chmod(0o600)
    err = one_error(
        run_locker("ls", "--vault", vault_path, "--recovery-key-file", mistyped), EXIT_BAD_KEY
    )
    assert "typo" in err


def test_removing_the_last_slot_is_refused(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, with_recovery: Path
) -> None:
    rows = slots(cli, vault_path)
    passphrase_id = str(rows[0]["id"])
    out = ok(cli("slot", "rm", passphrase_id))
    assert "old copy" in out and "rekey" in out
    left = slots(run_locker, vault_path, "--recovery-key-file", with_recovery)
    assert [r["kind"] for r in left] == ["recovery"]
    proc = run_locker(
        "slot",
        "rm",
        str(left[0]["id"]),
        "--vault",
        vault_path,
        "--recovery-key-file",
        with_recovery,
    )
    err = one_error(proc, EXIT_USAGE)
    assert "last key slot" in err
    ok(run_locker("ls", "--vault", vault_path, "--recovery-key-file", with_recovery))
    one_error(cli("ls"), EXIT_BAD_KEY)  # the removed passphrase opens nothing now


def test_slot_changes_are_in_the_audit_log(cli: RunLocker, with_recovery: Path) -> None:
    recovery_id = json.loads(ok(cli("slot", "ls", "--json")))[1]["id"]
    ok(cli("slot", "rm", recovery_id))
    events = json.loads(ok(cli("log", "--json")))
    changes = [(e["event"], e["detail"]) for e in events if e["event"].startswith("slot-")]
    assert changes == [
        ("slot-add", f"recovery slot {recovery_id} (recovery key)"),
        ("slot-rm", f"recovery slot {recovery_id}"),
    ]


def test_passwd_changes_the_slot_that_unlocked(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    second = tmp_path / "second.txt"
    second.write_bytes(OTHER_PASSPHRASE + b"\n")
    second.chmod(0o600)
    ok(cli("slot", "add-passphrase", "--new-passphrase-file", second, "--label", "ops"))
    third = tmp_path / "third.txt"
    third.write_bytes(b"a third passphrase, long enough\n")
    third.chmod(0o600)
    out = ok(
        run_locker(
            "passwd",
            "--vault",
            vault_path,
            "--passphrase-file",
            second,
            "--new-passphrase-file",
            third,
        )
    )
    assert "old copy" in out
    ok(cli("ls"))  # the first slot is untouched
    ok(run_locker("ls", "--vault", vault_path, "--passphrase-file", third))
    one_error(run_locker("ls", "--vault", vault_path, "--passphrase-file", second), EXIT_BAD_KEY)
    labels = [r["label"] for r in slots(cli, vault_path)]
    assert labels == ["", "ops"]


def test_passwd_after_a_recovery_key_unlock_says_what_to_do(
    run_locker: RunLocker, vault_path: Path, with_recovery: Path, pwfile: Path
) -> None:
    proc = run_locker(
        "passwd",
        "--vault",
        vault_path,
        "--recovery-key-file",
        with_recovery,
        "--new-passphrase-file",
        pwfile,
    )
    err = one_error(proc, EXIT_USAGE)
    assert "add-passphrase" in err


def test_rm_with_rekey_makes_a_new_master_key(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, with_recovery: Path, tmp_path: Path
) -> None:
    (tmp_path / "s.txt").write_bytes(b"kept\n")
    ok(cli("add", tmp_path / "s.txt"))
    old_copy = tmp_path / "old.locker"
    old_copy.write_bytes(vault_path.read_bytes())
    recovery_id = str(slots(cli, vault_path)[1]["id"])
    out = ok(cli("slot", "rm", recovery_id, "--rekey"))
    assert "new master key" in out
    assert ok(cli("cat", "s.txt")) == "kept\n"
    # the old copy still opens with the removed recovery key: that is what the note says
    ok(run_locker("ls", "--vault", old_copy, "--recovery-key-file", with_recovery))
    one_error(
        run_locker("ls", "--vault", vault_path, "--recovery-key-file", with_recovery),
        EXIT_BAD_KEY,
    )


def test_unlock_order_tries_the_given_key_before_the_passphrase(
    run_locker: RunLocker, cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    key = tmp_path / "k.key"
    ok(cli("slot", "add-keyfile", key, "--generate"))
    # with a key file and no --passphrase-file, no passphrase is asked for (stdin is empty)
    rows = slots(run_locker, vault_path, "--keyfile", key)
    assert [r["kind"] for r in rows if r["unlocked_this_time"]] == ["keyfile"]
    # a wrong passphrase file does not matter when the key file opens first
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"wrong\n")
    bad.chmod(0o600)
    rows = slots(run_locker, vault_path, "--keyfile", key, "--passphrase-file", bad)
    assert [r["kind"] for r in rows if r["unlocked_this_time"]] == ["keyfile"]


def test_passphrase_is_asked_for_only_when_needed(
    run_locker: RunLocker, vault_path: Path, tmp_path: Path, cli: RunLocker
) -> None:
    wrong_key = tmp_path / "other.key"
    keyfile.generate(wrong_key, bytes(range(32)))
    ok(cli("slot", "add-keyfile", tmp_path / "right.key", "--generate"))
    proc = run_locker(
        "ls",
        "--vault",
        vault_path,
        "--keyfile",
        wrong_key,
        "--passphrase-file",
        "-",
        input=PASSPHRASE + b"\n",
    )
    ok(proc)


def test_every_slot_verb_documents_its_arguments_and_an_example() -> None:
    import argparse

    from locker.cli.main import _subparsers, build_parser

    verbs = _subparsers(_subparsers(build_parser())["slot"])
    assert {"ls", "add-passphrase", "add-recovery", "add-keyfile", "rm"} <= set(verbs)
    for name, p in verbs.items():
        for action in p._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"locker slot {name}: {action.dest} has no help text"
        assert "\nexample:\n  $ locker slot " in p.format_help(), name


def test_slot_verb_options_are_known_to_the_parser(cli: RunLocker, tmp_path: Path) -> None:
    # the unknown-option check runs before argparse: it must see the verbs' own options
    ok(cli("slot", "add-keyfile", tmp_path / "k", "--generate", "--label", "x"))
    err = one_error(cli("slot", "add-keyfile", tmp_path / "k2", "--generat"), EXIT_USAGE)
    assert "--generat" in err


def test_a_key_file_cut_short_while_generated_is_not_left_behind(
    vault_path: Path, pwfile: Path, tmp_path: Path
) -> None:
    """A write that fails half-way (disk full; here a 64-byte file size limit) must not leave
    the first 64 of the 65 bytes: `read_secret` would take them for a key file."""

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    key = tmp_path / "new.key"
    args = ["slot", "add-keyfile", key, "--generate", "--vault", vault_path]
    proc = subprocess.run(
        [*LOCKER, *args, "--passphrase-file", pwfile],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        # Under a 64-byte limit Python would cut the byte-code it caches for the next
        # subprocesses short ("marshal data too short"), and coverage (scripts/test --cov)
        # could not save its data: neither runs in this child.
        env=locker_env(tmp_path, {"PYTHONDONTWRITEBYTECODE": "1", "COVERAGE_PROCESS_START": None}),
        cwd=tmp_path,
        timeout=SUBPROCESS_TIMEOUT,
        preexec_fn=limit_file_size,
        check=False,
    )
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.decode().splitlines() == [
        f"locker: error: cannot create key file {key}: File too large"
    ]
    assert not key.exists()
    assert [p.name for p in tmp_path.iterdir() if "key" in p.name] == []
