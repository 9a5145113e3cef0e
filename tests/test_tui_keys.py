"""The TUI's unlock order, the CLI's: the keyring's slot and the keys given to `locker tui` open
the vault before any passphrase is typed; a wrong key leaves the passphrase to type. Keys come
from cli/unlock.py's keys_at_hand, as `locker tui` finds them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from conftest import PASSPHRASE
from textual.pilot import Pilot
from tui_helpers import SIZE, make_app, run, unlock, wait_for

from locker.cli.unlock import KeysAtHand, keys_at_hand
from locker.slots import keyfile, recovery
from locker.store import keys
from locker.store.format import SLOT_KEYFILE, SLOT_PASSPHRASE, SLOT_RECOVERY
from locker.tui.app import LockerApp
from locker.tui.screens.main import MainScreen
from locker.tui.screens.unlock import UnlockScreen
from locker.tui.widgets.entry_tree import EntryTree
from locker.vault import Vault


def state_text(app: LockerApp) -> str:
    return str(app.screen.query_one("#state").render())


def with_keyfile_slot(vault: Path, path: Path) -> None:
    keyfile.generate(path, os.urandom(32))
    secret = keyfile.read_secret(path)
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        slot = keys.new_slot(os.urandom, SLOT_KEYFILE)
        v.add_slot(slot, keys.secret_kek(secret, slot))
        v.commit()


def given(vault: Path, **options: object) -> KeysAtHand:
    return keys_at_hand(argparse.Namespace(**options), vault)


async def listed(pilot: Pilot[None]) -> None:
    """The entry list is up and has the focus (keys go to it)."""
    app = pilot.app
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, MainScreen) and isinstance(app.focused, EntryTree),
        "the entry list",
    )


def unlocked_kind(app: LockerApp) -> int:
    assert app.vault is not None
    return app.vault.unlocked_slot.kind


def test_a_key_file_unlocks_unasked_and_again_after_a_lock(
    filled_vault: Path, tmp_path: Path
) -> None:
    path = tmp_path / "vault.key"
    with_keyfile_slot(filled_vault, path)

    async def go() -> None:
        app = make_app(filled_vault, keys=lambda: given(filled_vault, keyfile=str(path)))
        async with app.run_test(size=SIZE) as pilot:
            await listed(pilot)
            assert unlocked_kind(app) == SLOT_KEYFILE
            await pilot.press("l")
            await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen), "the lock")
            await pilot.pause()
            assert app.vault is None  # a lock is not undone unasked
            assert "Enter with no passphrase unlocks with the key file" in state_text(app)
            await pilot.press("enter")
            await listed(pilot)
            assert unlocked_kind(app) == SLOT_KEYFILE

    run(go)


def test_a_recovery_key_file_unlocks_unasked(filled_vault: Path, tmp_path: Path) -> None:
    secret = os.urandom(recovery.SECRET_SIZE)
    with Vault.open(filled_vault, PASSPHRASE, write=True) as v:
        slot = keys.new_slot(os.urandom, SLOT_RECOVERY)
        v.add_slot(slot, keys.secret_kek(secret, slot), "recovery key")
        v.commit()
    typed = tmp_path / "recovery.txt"
    typed.write_text(recovery.encode(secret).lower() + "\n")  # typing is forgiving

    async def go() -> None:
        app = make_app(filled_vault, keys=lambda: given(filled_vault, recovery_key_file=str(typed)))
        async with app.run_test(size=SIZE) as pilot:
            await listed(pilot)
            assert unlocked_kind(app) == SLOT_RECOVERY

    run(go)


def test_a_wrong_key_file_is_said_and_the_passphrase_still_opens(
    filled_vault: Path, tmp_path: Path
) -> None:
    with_keyfile_slot(filled_vault, tmp_path / "right.key")
    wrong = tmp_path / "wrong.key"
    keyfile.generate(wrong, os.urandom(32))

    async def go() -> None:
        app = make_app(filled_vault, keys=lambda: given(filled_vault, keyfile=str(wrong)))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "wrong key file" in state_text(app), "the error")
            assert app.vault is None
            await unlock(pilot)
            assert unlocked_kind(app) == SLOT_PASSPHRASE

    run(go)


def test_an_unreadable_key_file_is_said_in_the_cli_words(
    filled_vault: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "gone.key"

    async def go() -> None:
        app = make_app(filled_vault, keys=lambda: given(filled_vault, keyfile=str(missing)))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: str(missing) in state_text(app), "the error")
            assert state_text(app).startswith("error: ")
            await unlock(pilot)

    run(go)
