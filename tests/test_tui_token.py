"""Unlocking in the TUI with a PKCS#11 token (SoftHSM2, a real module): Ctrl+T shows the
token's fields, the right PIN opens the token's slot, a wrong PIN or module is one line on the
screen with the vault untouched, and nothing of the PIN stays on the screen."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import RunLocker, SoftHsm
from textual.widgets import Input
from tui_helpers import SIZE, make_app, run, type_text, wait_for

from locker.errors import EXIT_OK
from locker.slots import DEFAULT_KEY_LABEL
from locker.store.format import SLOT_PKCS11
from locker.tui.screens.main import MainScreen
from locker.tui.screens.token import TokenChoice, TokenForm
from locker.tui.screens.unlock import UnlockScreen


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ok(proc: subprocess.CompletedProcess[bytes]) -> str:
    assert proc.returncode == EXIT_OK, proc.stderr.decode()
    return proc.stdout.decode()


@pytest.fixture
def token_vault(cli: RunLocker, softhsm: SoftHsm, vault_path: Path, tmp_path: Path) -> Path:
    pin_file = tmp_path / "pin.txt"
    pin_file.write_text(softhsm.pin + "\n")
    pin_file.chmod(0o600)
    ok(cli("slot", "add-pkcs11", *softhsm.options(pin_file)))
    pin_file.unlink()
    return vault_path


def state(app: Any) -> str:
    return str(app.screen.query_one("#state").render())


async def token_fields(pilot: Any, module: str, token: str = "") -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, UnlockScreen), "unlock screen")
    await pilot.press("ctrl+t")
    form = pilot.app.screen.query_one("#token", TokenForm)
    await wait_for(pilot, lambda: form.display, "the token's fields")
    pilot.app.screen.query_one("#pkcs11-module", Input).value = module
    pilot.app.screen.query_one("#pkcs11-token", Input).value = token


async def type_pin(pilot: Any, pin: str) -> None:
    field = pilot.app.screen.query_one("#pin", Input)
    field.focus()
    await wait_for(pilot, lambda: pilot.app.focused is field, "the PIN field")
    await type_text(pilot, pin)
    await pilot.press("enter")


def test_the_token_and_its_pin_unlock(token_vault: Path, softhsm: SoftHsm) -> None:
    async def go() -> None:
        app = make_app(token_vault)
        async with app.run_test(size=SIZE) as pilot:
            await token_fields(pilot, softhsm.module, softhsm.label)
            assert app.screen.query_one("#pkcs11-key", Input).value == DEFAULT_KEY_LABEL
            assert not app.screen.query_one("#passphrase").display
            await type_pin(pilot, softhsm.pin)
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the entry list")
            assert app.vault is not None and app.vault.unlocked_slot.kind == SLOT_PKCS11
            await pilot.press("l")
            await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen), "locked")
            await pilot.pause()
            # Locked again: the PIN is nowhere (the module path, not a secret, is not kept
            # either: the fields are new).
            assert all(not f.value for f in app.screen.query(Input) if f.password)
            assert softhsm.pin not in "".join(str(w.render()) for w in app.screen.query("*"))

    run(go)


def test_a_wrong_pin_is_one_line_and_the_vault_is_untouched(
    token_vault: Path, softhsm: SoftHsm
) -> None:
    before = digest(token_vault)

    async def go() -> None:
        app = make_app(token_vault)
        async with app.run_test(size=SIZE) as pilot:
            await token_fields(pilot, softhsm.module, softhsm.label)
            await type_pin(pilot, "0000")
            screen = app.screen
            await wait_for(pilot, lambda: screen.query_one("#state").has_class("wrong"), "error")
            assert state(app) == f"error: wrong PIN for token {softhsm.label!r}"
            assert app.screen.query_one("#pin", Input).value == ""
            assert app.focused is app.screen.query_one("#pin")
            # What is not secret stays for the next try.
            assert app.screen.query_one("#pkcs11-module", Input).value == softhsm.module
            assert app.vault is None

    run(go)
    assert digest(token_vault) == before


def test_a_bad_module_and_a_missing_pin_are_said(token_vault: Path, tmp_path: Path) -> None:
    before = digest(token_vault)
    bogus = tmp_path / "no-such-module.so"

    async def go() -> None:
        app = make_app(token_vault)
        async with app.run_test(size=SIZE) as pilot:
            await token_fields(pilot, str(bogus))
            await type_pin(pilot, "")
            await wait_for(pilot, lambda: "PIN" in state(app), "the missing PIN")
            assert state(app) == "error: type the token's PIN"
            await type_pin(pilot, "1234")
            screen = app.screen
            await wait_for(pilot, lambda: "module" in state(app), "the module's error")
            lines = state(app).splitlines()
            assert lines[0].startswith(f"error: cannot load the PKCS#11 module {bogus}")
            assert lines[1] == "hint: --pkcs11-module takes the path of the module's .so file"
            assert screen.query_one("#state").has_class("error")

    run(go)
    assert digest(token_vault) == before


def test_a_module_path_with_brackets_is_shown_as_typed(token_vault: Path, tmp_path: Path) -> None:
    """An error naming what was typed shows it verbatim: brackets are not markup."""
    odd = tmp_path / "[bold]x[/bold].so"

    async def go() -> None:
        app = make_app(token_vault)
        async with app.run_test(size=SIZE) as pilot:
            await token_fields(pilot, str(odd))
            await type_pin(pilot, "1234")
            await wait_for(pilot, lambda: "module" in state(app), "the module's error")
            first = state(app).splitlines()[0]
            assert first.startswith(f"error: cannot load the PKCS#11 module {odd}")

    run(go)


def test_a_passphrase_vault_refuses_a_token_and_ctrl_t_goes_back(
    vault_path: Path, softhsm: SoftHsm
) -> None:
    async def go() -> None:
        app = make_app(vault_path)
        async with app.run_test(size=SIZE) as pilot:
            await token_fields(pilot, softhsm.module, softhsm.label)
            await type_pin(pilot, softhsm.pin)
            screen = app.screen
            await wait_for(pilot, lambda: screen.query_one("#state").has_class("wrong"), "error")
            assert len(state(app).splitlines()) <= 2
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: app.focused is screen.query_one("#passphrase"), "back")
            assert not screen.query_one("#token").display

    run(go)


def test_the_command_lines_token_fills_the_fields(token_vault: Path, softhsm: SoftHsm) -> None:
    async def go() -> None:
        choice = TokenChoice(softhsm.module, softhsm.label, "locker")
        app = make_app(token_vault, token=choice)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.screen.query("#pin"), "unlock screen")
            screen = app.screen
            await wait_for(pilot, lambda: app.focused is screen.query_one("#pin"), "the PIN")
            assert screen.query_one("#pkcs11-token", Input).value == softhsm.label
            await type_text(pilot, softhsm.pin)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the entry list")

    run(go)


def test_a_pin_file_unlocks_with_the_token_before_anyone_types(
    token_vault: Path, softhsm: SoftHsm, tmp_path: Path
) -> None:
    """`locker tui --pkcs11-module M --pin-file F`: the token is one of the keys at hand."""
    from locker.cli.unlock import keys_at_hand

    pin_file = tmp_path / "pin.txt"
    pin_file.write_text(softhsm.pin + "\n")
    pin_file.chmod(0o600)
    args = argparse.Namespace(
        pkcs11_module=softhsm.module, pkcs11_token=softhsm.label, pin_file=str(pin_file)
    )

    async def go() -> None:
        app = make_app(token_vault, keys=lambda: keys_at_hand(args, token_vault))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the entry list")
            assert app.vault is not None and app.vault.unlocked_slot.kind == SLOT_PKCS11

    run(go)
