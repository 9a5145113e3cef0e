"""The TUI's export dialog, inspect screen, gen dialog and sweep screen, driven by Pilot end to
end against real vaults, bundles and files in tmp: each result is checked in the vault (or the
bundle, or the file system) afterwards, not only on the screen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import MOUNT_FILES, PASSPHRASE
from textual.widgets import DataTable, Input, Select
from tui_helpers import SIZE, FakeTime, make_app, run, type_text, unlock, wait_for

from locker.know.facts import decode, recogniser
from locker.tui.screens.main import MainScreen
from locker.tui.widgets.entry_tree import EntryTree
from locker.vault import Vault

BUNDLE_PASSPHRASE = "bundle words here"


def text_of(app: Any, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def select(app: Any, name: str) -> None:
    app.screen.query_one(EntryTree).select_name(name)


async def open_export(pilot: Any, target: Path) -> Any:
    from locker.tui.screens.export import ExportModal

    await pilot.press("o")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ExportModal), "the dialog")
    pilot.app.screen.query_one("#target", Input).value = str(target)
    return pilot.app.screen


async def click(pilot: Any, selector: str) -> None:
    """Click a button once its last press has settled (a button ignores a second click within
    its 0.2 s press animation, as it would a double click)."""
    button = pilot.app.screen.query_one(selector)
    await wait_for(pilot, lambda: not button.has_class("-active"), f"{selector} to settle")
    await pilot.click(selector)


async def focus(pilot: Any, selector: str) -> None:
    """Focus a widget and wait until it has the focus (focus() takes effect a moment later)."""
    widget = pilot.app.screen.query_one(selector)
    widget.focus()
    await wait_for(pilot, lambda: pilot.app.focused is widget, f"{selector} focused")


async def type_into(pilot: Any, selector: str, text: str) -> None:
    await focus(pilot, selector)
    await type_text(pilot, text)


def events(path: Path, passphrase: bytes = PASSPHRASE) -> list[Any]:
    with Vault.open(path, passphrase) as v:
        return list(v.log())


# -- export ----------------------------------------------------------------------------------------


def test_export_dialog_writes_the_selected_folder_and_says_verified(
    filled_vault: Path, tmp_path: Path
) -> None:
    target = tmp_path / "stick" / "keys.locker"
    target.parent.mkdir()

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            select(app, "sub/")
            dialog = await open_export(pilot, target)
            assert dialog.query_one("#names", Input).value == "sub/"
            await type_into(pilot, "#first", BUNDLE_PASSPHRASE)
            await type_into(pilot, "#second", BUNDLE_PASSPHRASE)
            await click(pilot, "#run")
            await wait_for(pilot, lambda: "verified" in text_of(app, "#result"), "verified")
            result = text_of(app, "#result")
            assert f"verified: 1 entry read back from {target}" in result
            assert dialog.query_one("#export-progress").percentage == 1.0
            assert dialog.query_one("#first", Input).value == ""  # the passphrase is not kept
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the list")

    run(go)
    with Vault.open(target, BUNDLE_PASSPHRASE.encode()) as bundle:
        assert [e.name for e in bundle.entries()] == ["sub/deep/b.key"]
        assert bundle.read_bytes("sub/deep/b.key") == MOUNT_FILES["sub/deep/b.key"]
    export = [e for e in events(filled_vault) if e.event == "export"]
    assert len(export) == 1 and export[0].names == ("sub/deep/b.key",)
    assert str(target) in export[0].detail


def test_export_dialog_generates_a_passphrase_shown_once(
    filled_vault: Path, tmp_path: Path
) -> None:
    target = tmp_path / "all.locker"
    shown: list[str] = []

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            dialog = await open_export(pilot, target)
            dialog.query_one("#names", Input).value = ""  # everything
            await focus(pilot, "#generate")
            await pilot.press("space")
            assert dialog.query_one("#first", Input).disabled
            await click(pilot, "#run")
            await wait_for(pilot, lambda: "verified" in text_of(app, "#result"), "verified")
            lines = text_of(app, "#result").splitlines()
            at = lines.index(
                "bundle passphrase (shown once and stored nowhere; write it down now):"
            )
            shown.append(lines[at + 1].strip())
            assert dialog.query_one("#run").disabled  # one export per dialog: no second showing

    run(go)
    words = shown[0]
    assert len(words.replace("-", "")) * 5 >= 128
    with Vault.open(target, words.encode()) as bundle:
        assert sorted(e.name for e in bundle.entries()) == sorted(MOUNT_FILES)
    assert words.encode() not in target.read_bytes()


def test_export_dialog_refuses_bad_input_in_the_clis_words_and_writes_nothing(
    filled_vault: Path, tmp_path: Path
) -> None:
    taken = tmp_path / "taken.locker"
    taken.write_bytes(b"someone's file")

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            dialog = await open_export(pilot, tmp_path / "new.locker")
            await type_into(pilot, "#first", BUNDLE_PASSPHRASE)
            await type_into(pilot, "#second", "something else")
            await click(pilot, "#run")
            await wait_for(pilot, lambda: "differ" in text_of(app, "#problem"), "mismatch")
            dialog.query_one("#names", Input).value = "no/such"
            await click(pilot, "#run")
            await wait_for(
                pilot, lambda: "no entry named 'no/such'" in text_of(app, "#problem"), ""
            )
            assert "hint: 'locker ls' lists the entries" in text_of(app, "#problem")
            dialog.query_one("#names", Input).value = "a.txt"
            dialog.query_one("#target", Input).value = str(taken)
            await type_into(pilot, "#first", BUNDLE_PASSPHRASE)
            await type_into(pilot, "#second", BUNDLE_PASSPHRASE)
            await click(pilot, "#run")
            await wait_for(pilot, lambda: "already exists" in text_of(app, "#problem"), "taken")
            assert f"error: {taken} already exists" in text_of(app, "#problem")
            assert not dialog.query_one("#run").disabled  # the form is open for another try
            dialog.query_one("#recipients", Input).value = "age1nope"
            await click(pilot, "#run")
            await wait_for(pilot, lambda: "age1nope" in text_of(app, "#problem"), "recipient")

    run(go)
    assert taken.read_bytes() == b"someone's file"
    assert not [p for p in tmp_path.iterdir() if "export" in p.name or p.name == "new.locker"]
    assert not [e for e in events(filled_vault) if e.event == "export"]


def test_export_places_offer_removable_drives_first(tmp_path: Path, monkeypatch: Any) -> None:
    from locker.store import drives
    from locker.tui.screens.export import places

    stick = drives.Drive("/media/stick", "vfat", "8:17", True)
    monkeypatch.setattr(drives, "removable_drives", lambda: [stick])
    found = places(tmp_path, tmp_path / "home")
    assert found[0] == (
        Path("/media/stick"),
        "FAT file system on a removable drive at /media/stick",
    )
    assert [p for p, _ in found[1:]] == [tmp_path, tmp_path / "home"]


def test_removable_drives_come_from_mountinfo_and_sysfs(tmp_path: Path, monkeypatch: Any) -> None:
    from locker.store import drives

    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 254:0 / / rw - ext4 /dev/vda1 rw\n"
        "40 22 8:17 / /media/my\\040stick rw,nosuid - vfat /dev/sdb1 rw\n"
    )
    sysfs = tmp_path / "block"
    for dev, removable in (("254:0", "0"), ("8:16", "1")):
        (sysfs / "devices" / dev).mkdir(parents=True)
        (sysfs / "devices" / dev / "removable").write_text(removable + "\n")
        (sysfs / dev).symlink_to(sysfs / "devices" / dev)
    (sysfs / "devices" / "8:16" / "sdb1").mkdir()
    (sysfs / "8:17").symlink_to(sysfs / "devices" / "8:16" / "sdb1")
    monkeypatch.setattr(drives, "_MOUNTINFO", mountinfo)
    monkeypatch.setattr(drives, "_SYS_DEV_BLOCK", sysfs)
    assert drives.removable_drives() == [drives.Drive("/media/my stick", "vfat", "8:17", True)]


# -- inspect ---------------------------------------------------------------------------------------


def test_inspect_screen_shows_the_clis_table_soonest_first_and_goes_to_an_entry(
    vault_path: Path,
) -> None:
    from pki_factory import cert, cert_pem, ec_key, key_pem

    from locker.know import inspect as kin
    from locker.tui.screens.inspect import InspectScreen

    time = FakeTime()
    now = time.wall
    soon_key, late_key = ec_key(), ec_key()
    with Vault.open(vault_path, PASSPHRASE, write=True, clock=lambda: now - 400 * 86400) as v:
        v.recogniser = recogniser()
        v.add_bytes("api/tls.key", key_pem(soon_key))
        v.commit()
    with Vault.open(vault_path, PASSPHRASE, write=True, clock=lambda: now) as v:
        v.recogniser = recogniser()
        v.add_bytes("api/tls.crt", cert_pem(cert(soon_key, "api.example", now, 5)))
        v.add_bytes("web/tls.crt", cert_pem(cert(late_key, "web.example", now, 400)))
        v.add_bytes("old.crt", cert_pem(cert(ec_key(), "old.example", now - 10 * 86400, 3)))
        v.add_bytes("notes.txt", b"nothing to see\n")
        v.commit()
        expected = [kin.cells(i, now) for i in kin.report(v.entries(), now)]

    async def go() -> None:
        app = make_app(vault_path, time)
        async with app.run_test(size=(140, 30)) as pilot:
            await unlock(pilot)
            await pilot.press("i")
            await wait_for(pilot, lambda: isinstance(app.screen, InspectScreen), "inspect")
            await focus(pilot, "#items")
            table = app.screen.query_one(DataTable)
            rows = [[str(c) for c in table.get_row_at(n)] for n in range(table.row_count)]
            assert rows == [list(r) for r in expected]
            assert [r[2] for r in rows] == ["old.crt", "api/tls.crt", "api/tls.key", "web/tls.crt"]
            assert rows[2][4] == "api/tls.crt"  # the key sits under its certificate
            assert rows[2][5].startswith("! key is 400 days old")
            styles = [table.get_row_at(n)[2].style for n in range(table.row_count)]
            assert styles == ["bold red", "yellow", "yellow", "green"]
            summary = text_of(app, "#summary")
            assert summary == "4 recognised, 1 plain files; 3 need attention"
            await pilot.press("down", "down", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the list")
            assert app.screen.query_one(EntryTree).selected_name() == "api/tls.key"

    run(go)


# -- gen -------------------------------------------------------------------------------------------


async def open_gen(pilot: Any) -> Any:
    from locker.tui.screens.gen import GenModal

    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, GenModal), "the gen dialog")
    return pilot.app.screen


def test_gen_dialog_stores_a_jwt_key_and_shows_its_public_jwk(filled_vault: Path) -> None:
    import json

    shown: list[str] = []

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            select(app, "sub/deep/b.key")
            dialog = await open_gen(pilot)
            name = dialog.query_one("#name", Input)
            assert name.value == "sub/deep/"
            await type_into(pilot, "#name", "signing.jwk")
            await click(pilot, "#run")
            await wait_for(pilot, lambda: '"kid"' in text_of(app, "#result"), "the public JWK")
            shown.append(dialog.result)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the list")
            assert app.screen.query_one(EntryTree).selected_name() == "sub/deep/signing.jwk"

    run(go)
    public = json.loads(shown[0])
    assert public["alg"] == "ES256" and "d" not in public
    with Vault.open(filled_vault, PASSPHRASE) as v:
        stored = json.loads(v.read_bytes("sub/deep/signing.jwk"))
        facts = decode(v.entry("sub/deep/signing.jwk").attrs)
        gen = [e for e in v.log() if e.event == "gen"]
    assert stored["kid"] == public["kid"] and "d" in stored
    assert facts is not None and facts["type"] == "jwk"
    assert gen[-1].names == ("sub/deep/signing.jwk",) and f"kid={public['kid']}" in gen[-1].detail


def test_gen_dialog_makes_a_tls_key_and_csr_and_a_secret(
    filled_vault: Path, tmp_path: Path
) -> None:
    from cryptography import x509

    csr_file = tmp_path / "web.csr"

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            dialog = await open_gen(pilot)
            kind = dialog.query_one("#kind", Select)
            await focus(pilot, "#kind")
            await pilot.press("enter")
            await pilot.press("down", "down", "down", "down", "enter")  # TLS key, EC P-256
            await wait_for(pilot, lambda: kind.value == "tls ec", "the TLS choice")
            await type_into(pilot, "#name", "web/server.key")
            await click(pilot, "#run")
            await wait_for(pilot, lambda: "common name" in text_of(app, "#problem"), "the CN")
            await type_into(pilot, "#cn", "web.example")
            await type_into(pilot, "#sans", "web.example 10.0.0.7")
            await type_into(pilot, "#csr", str(csr_file))
            await click(pilot, "#run")
            await wait_for(pilot, lambda: "wrote the CSR" in text_of(app, "#result"), "the CSR")
            assert "BEGIN CERTIFICATE REQUEST" in text_of(app, "#result")
            await click(pilot, "#run")  # the same name again: refused, as the CLI does
            await wait_for(pilot, lambda: "already exists" in text_of(app, "#problem"), "exists")
            kind.value = "secret"
            await pilot.pause()
            name = dialog.query_one("#name", Input)
            name.value = "hmac/webhook"
            await click(pilot, "#run")
            await wait_for(pilot, lambda: "256 random bits" in text_of(app, "#result"), "secret")

    run(go)
    request = x509.load_pem_x509_csr(csr_file.read_bytes())
    sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in sans] == ["web.example", "10.0.0.7"]
    with Vault.open(filled_vault, PASSPHRASE) as v:
        key = decode(v.entry("web/server.key").attrs)
        secret = decode(v.entry("hmac/webhook").attrs)
        assert len(v.read_bytes("hmac/webhook")) == 44  # 32 bytes, base64
    assert key is not None and key["type"] == "private-key"
    assert secret == {"type": "secret", "bits": 256, "secret": True}
    assert request.public_key().public_numbers() == _public_numbers(filled_vault)


def _public_numbers(vault: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    with Vault.open(vault, PASSPHRASE) as v:
        key = serialization.load_pem_private_key(v.read_bytes("web/server.key"), None)
    return key.public_key().public_numbers()  # type: ignore[union-attr]


# -- sweep -----------------------------------------------------------------------------------------


def _tree(root: Path) -> tuple[dict[str, bytes], Path, Path]:
    """A service's directory: a key others can read, a private .env, a certificate, a README;
    returns the files and the paths of the key and the .env."""
    from pki_factory import cert, cert_pem, ec_key, key_pem

    key = ec_key()
    files = {
        "srv/app/.env": b"DB_PASSWORD=hunter2\nPORT=8080\n",
        "srv/app/tls.key": key_pem(key),
        "srv/app/tls.crt": cert_pem(cert(key, "app.example", FakeTime().wall, 90)),
        "srv/app/README": b"how to run the app\n",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "srv/app/tls.key").chmod(0o644)
    (root / "srv/app/.env").chmod(0o600)
    return files, root / "srv/app/tls.key", root / "srv/app/.env"


async def scan(pilot: Any, root: Path) -> Any:
    from locker.tui.screens.sweep import SweepScreen

    await pilot.press("w")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SweepScreen), "the sweep")
    screen = pilot.app.screen
    screen.query_one("#root", Input).value = str(root)
    await focus(pilot, "#root")
    await pilot.press("enter")
    table = screen.query_one(DataTable)
    await wait_for(pilot, lambda: screen.focused is table, "the findings")  # keys go to it now
    return screen


def test_sweep_screen_lists_secrets_imports_verifies_then_shreds_on_yes(
    filled_vault: Path, tmp_path: Path
) -> None:
    from locker.know.sweep import entry_name

    files, key, env = _tree(tmp_path)

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=(140, 30)) as pilot:
            await unlock(pilot)
            screen = await scan(pilot, tmp_path / "srv")
            table = screen.query_one(DataTable)
            paths = [str(table.get_row_at(n)[5]) for n in range(table.row_count)]
            assert paths == [str(key), str(env)]  # worst first: others can read the key
            assert text_of(app, "#sweep-state").startswith("2 plaintext secrets in 4 files")
            await pilot.press("i")
            await wait_for(pilot, lambda: app.screen.query("#yes"), "the first question")
            assert "originals are shredded only if you say so" in text_of(app, ".question")
            await pilot.press("y")
            await wait_for(pilot, lambda: "Shred the originals" in _question(app), "the second")
            assert key.exists() and env.exists()  # in the vault, verified, nothing shredded yet
            await pilot.press("y")
            await wait_for(pilot, lambda: not key.exists(), "the shred")
            await wait_for(pilot, lambda: "original shredded" in str(table.get_row_at(1)[6]), "")
            assert "2 imported, 0 left in place" in text_of(app, "#sweep-state")
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the list")

    run(go)
    assert not env.exists() and (tmp_path / "srv/app/tls.crt").exists()
    with Vault.open(filled_vault, PASSPHRASE) as v:
        assert v.read_bytes(entry_name(key)) == files["srv/app/tls.key"]
        assert v.read_bytes(entry_name(env)) == files["srv/app/.env"]
        assert [e.event for e in v.log()][-1] == "sweep"


def test_sweep_screen_keeps_the_originals_when_shredding_is_declined(
    filled_vault: Path, tmp_path: Path
) -> None:
    from locker.know.sweep import entry_name

    files, key, env = _tree(tmp_path)

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=(140, 30)) as pilot:
            await unlock(pilot)
            screen = await scan(pilot, tmp_path / "srv")
            table = screen.query_one(DataTable)
            assert [str(table.get_row_at(n)[0]) for n in (0, 1)] == ["[x]", "[x]"]
            await pilot.press("down", "space")  # untick the .env file
            assert [str(table.get_row_at(n)[0]) for n in (0, 1)] == ["[x]", "[ ]"]
            await pilot.press("i")
            await wait_for(pilot, lambda: app.screen.query("#yes"), "the first question")
            assert "move 1 file into the vault" in _question(app)
            await pilot.press("y")
            await wait_for(pilot, lambda: "Shred the originals" in _question(app), "the second")
            await pilot.press("n")
            await wait_for(pilot, lambda: app.screen is screen, "the sweep again")
            await wait_for(pilot, lambda: "original still here" in str(table.get_row_at(0)[6]), "")
            assert "1 imported, 2 left in place" in text_of(app, "#sweep-state")

    run(go)
    assert key.read_bytes() == files["srv/app/tls.key"] and env.exists()
    with Vault.open(filled_vault, PASSPHRASE) as v:
        assert v.read_bytes(entry_name(key)) == files["srv/app/tls.key"]
        assert entry_name(env) not in v.names()


def _question(app: Any) -> str:
    found = app.screen.query(".question")
    return str(found.first().render()) if found else ""


# -- reachable, and loaded only when asked for -------------------------------------------------------


def test_each_is_in_the_palette_and_loads_only_when_asked_for(filled_vault: Path) -> None:
    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            labels = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Export", "Inspect", "Generate", "Sweep"} <= labels

    run(go)
    code = (
        "import sys, locker.tui.app, locker.tui.screens.main\n"
        "print(sorted(m for m in sys.modules if m.split('.')[-1] in "
        "('export', 'inspect', 'gen', 'sweep') and m.startswith('locker.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
