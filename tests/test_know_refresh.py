"""`locker inspect --refresh` (issue 14): entries saved before locker recognised anything have
no facts until they are written again; a refresh recognises them, decrypting only those, and
saves their facts so that `inspect`, `ls -l` and the TUI see them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import PASSPHRASE, RunLocker
from pki_factory import cert, cert_pem, ec_key, key_pem

from locker.know.facts import FACTS_ATTR, MAX_RECOGNISED_SIZE, recogniser, refresh
from locker.know.inspect import unrecognised
from locker.store.index import Entry, LogEvent
from locker.vault import Vault

NOW = time.time()


def old_vault(path: Path) -> dict[str, bytes]:
    """Entries written by the library's writer with recognition off, as before it existed."""
    key = ec_key()
    files = {
        "web/tls.key": key_pem(key),
        "web/tls.crt": cert_pem(cert(key, "web.example", NOW, 10)),
        "prod.env": b"DB_PASSWORD=hunter2\n",
        "notes.txt": b"just some notes\n",
        "disk.img": b"\0" * (MAX_RECOGNISED_SIZE + 1),
    }
    with Vault.open(path, PASSPHRASE, write=True) as v:
        assert v.recogniser is None
        for name, data in files.items():
            v.add_bytes(name, data)
        v.commit()
    return files


def test_refresh_decrypts_only_the_entries_without_facts(vault_path: Path) -> None:
    old_vault(vault_path)
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.recogniser = recogniser()
        v.add_bytes("new.env", b"API_TOKEN=x\n")  # recognised as it is added
        v.commit()
        assert FACTS_ATTR in v.entry("new.env").attrs
        read: list[str] = []
        real = v.read_bytes

        def spy(name: str) -> bytes:
            read.append(name)
            return real(name)

        v.read_bytes = spy  # type: ignore[method-assign]
        found = refresh(v)
        v.commit()
    assert sorted(read) == ["notes.txt", "prod.env", "web/tls.crt", "web/tls.key"]
    assert sorted(found) == ["prod.env", "web/tls.crt", "web/tls.key"]
    with Vault.open(vault_path, PASSPHRASE) as v:
        has = {e.name for e in v.entries() if FACTS_ATTR in e.attrs}
    assert has == {"new.env", "prod.env", "web/tls.crt", "web/tls.key"}


def test_cli_inspect_refresh_saves_facts_that_ls_and_inspect_then_show(
    cli: RunLocker, vault_path: Path
) -> None:
    files = old_vault(vault_path)
    before = cli("inspect")
    assert before.returncode == 0, before.stderr
    assert b"nothing recognised among 5 entries" in before.stdout
    assert b"(private-key" not in cli("ls", "-l").stdout

    done = cli("inspect", "--refresh", "--json")
    assert done.returncode == 6, done.stderr  # the certificate expires in 9 days
    assert done.stderr.decode() == (
        "locker: note: recognised 3 entries that had no facts: prod.env, web/tls.crt, web/tls.key\n"
    )
    items = {i["name"]: i for i in json.loads(done.stdout)}
    assert sorted(items) == ["prod.env", "web/tls.crt", "web/tls.key"]
    assert items["web/tls.crt"]["paired_with"] == ["web/tls.key"]

    listing = cli("ls", "-l").stdout.decode()
    assert "web/tls.key  (private-key EC secp256r1)" in listing
    assert "web/tls.crt  (certificate CN=web.example)" in listing
    log = json.loads(cli("log", "--json").stdout)
    assert log[-1]["event"] == "refresh"
    assert log[-1]["names"] == ["prod.env", "web/tls.crt", "web/tls.key"]
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert {e.name: v.read_bytes(e.name) for e in v.entries()} == files

    saved = vault_path.read_bytes()
    again = cli("inspect", "--refresh")
    assert again.returncode == 6, again.stderr
    assert again.stderr == b"locker: note: recognised 0 entries that had no facts\n"
    assert vault_path.read_bytes() == saved  # nothing new: the vault is not rewritten


HINT = (
    "locker: hint: {} may have been saved before locker recorded facts: "
    "'locker inspect --refresh' recognises them\n"
)


def test_plain_inspect_hints_at_refresh_until_one_looked_at_the_entries(
    cli: RunLocker, vault_path: Path
) -> None:
    old_vault(vault_path)
    before = cli("inspect")
    assert before.returncode == 0, before.stderr
    assert before.stderr.decode() == HINT.format("4 entries")  # not disk.img: too large
    assert cli("inspect", "--json").stderr == b""  # scripts and cron read stdout alone

    assert cli("inspect", "--refresh").returncode == 6
    after = cli("inspect")
    assert after.returncode == 6, after.stderr
    assert after.stderr == b""  # notes.txt was looked at: a plain file


def test_no_hint_for_plain_files_saved_once_locker_recorded_facts(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    env, notes = tmp_path / "prod.env", tmp_path / "notes.txt"
    env.write_bytes(b"DB_PASSWORD=hunter2\n")
    notes.write_bytes(b"just some notes\n")
    assert cli("add", env, notes).returncode == 0
    done = cli("inspect")
    assert done.returncode == 0, done.stderr
    assert b"1 recognised, 1 plain files" in done.stdout
    assert done.stderr == b""


def entry(name: str, modified: int, facts: bool, size: int = 10) -> Entry:
    attrs = {FACTS_ATTR: '{"type":"env"}'} if facts else {}
    return Entry(bytes(16), name, size, modified, modified, bytes(16), "file", attrs)


def test_unrecognised_is_what_no_recognising_writer_looked_at() -> None:
    entries = [
        entry("old.key", 100, False),
        entry("old.img", 100, False, size=MAX_RECOGNISED_SIZE + 1),
        entry("first.env", 200, True),  # the first entry recognised as it was written
        entry("notes.txt", 300, False),  # saved by a writer that records facts: plain
    ]
    assert unrecognised(entries, []) == ["old.key"]
    # A refresh looked at everything saved until then, found or not.
    refreshed = [LogEvent(250, "refresh", ("other.env",))]
    assert unrecognised(entries, refreshed) == []
    # Facts a refresh gave an old entry do not say when locker began recording them.
    entries[0] = entry("old.key", 100, True)
    entries.append(entry("mid.txt", 170, False))
    assert unrecognised(entries, [LogEvent(150, "refresh", ("old.key",))]) == ["mid.txt"]
    # ...but facts written after that refresh do.
    entries[0] = entry("old.key", 160, True)
    assert unrecognised(entries, [LogEvent(150, "refresh", ("old.key",))]) == []
