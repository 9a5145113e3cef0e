"""The TUI's key slots screen driven by Pilot on real vaults: the list (never a secret), adding
a passphrase and a recovery key (shown once), removing a slot (asks first; the last one is
refused), each change committed with its audit-log event."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import OTHER_PASSPHRASE, PASSPHRASE
from textual.pilot import Pilot
from textual.widgets import DataTable, Input
from tui_helpers import SIZE, make_app, run, type_text, unlock, wait_for

from locker.errors import BadKeyError
from locker.slots import recovery
from locker.store.format import SLOT_KEYRING, SLOT_RECOVERY
from locker.store.keys import SecretOpener
from locker.tui.app import LockerApp
from locker.tui.screens.dialogs import ConfirmModal, NewPassphraseModal, PromptModal
from locker.tui.screens.main import MainScreen
from locker.tui.screens.slots import RecoveryKeyModal, SlotScreen
from locker.vault import Vault


def notes(app: LockerApp) -> list[str]:
    return [n.message for n in app._notifications]


def rows(app: LockerApp) -> list[list[str]]:
    table = app.screen.query_one(DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def open_slots(pilot: Pilot[None]) -> None:
    await unlock(pilot)
    await pilot.press("k")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SlotScreen), "the slot screen")
    await wait_for(pilot, lambda: pilot.app.screen.query_one(DataTable).row_count, "the rows")


async def add_passphrase(pilot: Pilot[None], label: str, secret: bytes) -> None:
    app = pilot.app
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), "the label prompt")
    app.screen.query_one(Input).value = label
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, NewPassphraseModal), "the passphrase")
    for _ in range(2):
        await type_text(pilot, secret.decode())
        await pilot.press("enter")


def test_the_list_shows_kind_label_and_times_and_marks_the_one_that_unlocked(
    filled_vault: Path,
) -> None:
    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await open_slots(pilot)
            [row] = rows(app)
            assert row[0] == "*" and row[2] == "passphrase"
            assert re.fullmatch(r"[0-9a-f]{16}", row[1]), row
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the list again")

    run(go)


def test_add_a_passphrase_then_remove_it_and_the_last_is_refused(filled_vault: Path) -> None:
    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await open_slots(pilot)
            await add_passphrase(pilot, "laptop", OTHER_PASSPHRASE)
            await wait_for(pilot, lambda: len(rows(app)) == 2, "the new slot")
            added = rows(app)[1]
            assert added[0] == "" and added[2] == "passphrase" and added[3] == "laptop"
            assert added[4] != "-"  # created
            with Vault.open(filled_vault, OTHER_PASSPHRASE) as v:  # committed: it opens
                assert v.log()[-1].event == "slot-add"

            table = app.screen.query_one(DataTable)
            table.move_cursor(row=1)
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the question")
            await pilot.press("n")  # no is the default answer
            await pilot.pause()
            assert len(rows(app)) == 2
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the question")
            await pilot.press("y")
            await wait_for(pilot, lambda: len(rows(app)) == 1, "the removal")
            assert any("an old copy of this vault" in m for m in notes(app)), notes(app)
            with pytest.raises(BadKeyError):
                Vault.open(filled_vault, OTHER_PASSPHRASE)

            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the question")
            await pilot.press("y")
            refused = "refusing to remove the last key slot"
            await wait_for(pilot, lambda: any(refused in m for m in notes(app)), "the refusal")
            assert len(rows(app)) == 1
        with Vault.open(filled_vault, PASSPHRASE) as v:
            assert [e.event for e in v.log()][-2:] == ["slot-add", "slot-rm"]

    run(go)


def test_a_recovery_key_is_shown_once_and_opens_the_vault(filled_vault: Path) -> None:
    async def go() -> str:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await open_slots(pilot)
            await pilot.press("k")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the question")
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, RecoveryKeyModal), "the key")
            shown = str(app.screen.query_one("#recovery-key").render()).strip()
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SlotScreen), "the list again")
            await wait_for(pilot, lambda: len(rows(app)) == 2, "the new slot")
            assert rows(app)[1][2:4] == ["recovery", "recovery key"]
            assert shown not in " ".join(" ".join(r) for r in rows(app))
            return shown

    shown: list[str] = []

    async def keep() -> None:
        shown.append(await go())

    run(keep)
    secret = recovery.decode(shown[0])
    with Vault.open(filled_vault, [SecretOpener(SLOT_RECOVERY, secret)]) as v:
        assert v.unlocked_slot.kind == SLOT_RECOVERY


def test_slots_is_a_key_in_the_footer_and_a_command_in_the_palette(filled_vault: Path) -> None:
    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Slots" in titles, titles
            keys = {k: b.binding.description for k, b in app.screen.active_bindings.items()}
            assert keys.get("k") == "Slots", keys

    run(go)


class MemoryKeyring:
    """A keyring that holds its secrets in this process (priority 1: usable, like a real one).
    Not a KeyringBackend subclass: keyring registers every subclass as a backend it may pick,
    which would make later tests' real Secret Service a chain of two."""

    priority = 1

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.secrets[(service, username)]


def test_remember_then_forget_this_machine_and_an_unusable_keyring_is_one_line(
    filled_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`m` and `f` are `locker slot remember` and `forget`: the slot and its secret in the
    keyring come and go together, and the keyring alone opens the vault in between."""
    import keyring
    from keyring.backends import fail

    memory = MemoryKeyring()
    chosen: list[object] = [memory]
    monkeypatch.setattr(keyring, "get_keyring", lambda: chosen[0])

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await open_slots(pilot)
            await pilot.press("m")
            await wait_for(pilot, lambda: len(rows(app)) == 2, "the keyring slot")
            assert rows(app)[1][2] == "keyring", rows(app)
            [(_, secret)] = memory.secrets.items()
            with Vault.open(filled_vault, [SecretOpener(SLOT_KEYRING, bytes.fromhex(secret))]):
                pass  # the keyring's secret alone opens the vault
            await pilot.press("m")
            already = "already remembered"
            await wait_for(pilot, lambda: any(already in m for m in notes(app)), "the note")
            assert len(rows(app)) == 2
            await pilot.press("f")
            await wait_for(pilot, lambda: len(rows(app)) == 1, "the keyring slot gone")
            assert memory.secrets == {}
            chosen[0] = fail.Keyring()
            await pilot.press("m")
            unusable = "the OS keyring cannot be used here"
            await wait_for(pilot, lambda: any(unusable in m for m in notes(app)), "the error")
            assert len(rows(app)) == 1
        with Vault.open(filled_vault, PASSPHRASE) as v:
            assert [e.event for e in v.log()][-2:] == ["slot-add", "slot-rm"]

    run(go)
