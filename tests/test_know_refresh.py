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
