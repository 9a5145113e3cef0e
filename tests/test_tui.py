"""The TUI driven by Textual's Pilot on real vaults: unlock, create, errors, every action,
mount and lock, idle auto-lock with an injected clock, the clipboard clear."""

from __future__ import annotations

from pathlib import Path

from conftest import MOUNT_FILES, PASSPHRASE
from tui_helpers import SIZE, make_app, run, type_text, unlock, wait_for

from locker.tui.screens.main import MainScreen
from locker.tui.screens.unlock import CreateScreen, UnlockScreen
from locker.tui.widgets.entry_tree import EntryTree
from locker.vault import Vault


def leaves(app: object) -> list[str]:
    tree = app.screen.query_one(EntryTree)  # type: ignore[attr-defined]
    found = []
    for line in range(tree.last_line + 1):
        node = tree.get_node_at_line(line)
        if node is not None and node.data and not node.data.endswith("/"):
            found.append(node.data)
    return sorted(found)


def state_text(app: object) -> str:
    return str(app.screen.query_one("#state").render())  # type: ignore[attr-defined]


def test_unlock_lists_the_entries_and_lock_returns(filled_vault: Path) -> None:
    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            assert isinstance(app.screen, UnlockScreen)
            await unlock(pilot)
            assert leaves(app) == sorted(MOUNT_FILES)
            await pilot.press("l")
            await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen), "the lock")
            assert app.vault is None

    run(go)


def test_wrong_passphrase_says_so_and_allows_another_try(filled_vault: Path) -> None:
    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.screen.query("#passphrase"), "the unlock screen")
            await type_text(pilot, "not it")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "wrong passphrase" in state_text(app), "the error")
            assert app.screen.query_one("#state").has_class("wrong")
            assert app.vault is None
            await unlock(pilot)

    run(go)


def test_busy_vault_is_said_before_typing(filled_vault: Path) -> None:
    async def go() -> None:
        with Vault.open(filled_vault, PASSPHRASE, write=True):
            app = make_app(filled_vault)
            async with app.run_test(size=SIZE) as pilot:
                await wait_for(pilot, lambda: "in use by PID" in state_text(app), "busy")
                assert app.screen.query_one("#state").has_class("busy")
                await type_text(pilot, PASSPHRASE.decode())
                await pilot.press("enter")
                await wait_for(
                    pilot, lambda: not app.screen.query_one("#passphrase").disabled, "retry"
                )
                assert "in use by PID" in state_text(app)
                assert app.vault is None

    run(go)


def test_tampered_vault_is_its_own_state(filled_vault: Path) -> None:
    from locker.vault import info

    data = bytearray(filled_vault.read_bytes())
    data[info(filled_vault)["header_size"] - 1] ^= 1  # the header's MAC
    filled_vault.write_bytes(bytes(data))

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.screen.query("#passphrase"), "the unlock screen")
            await type_text(pilot, PASSPHRASE.decode())
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.screen.query_one("#state").classes, "an error state")
            assert app.screen.query_one("#state").has_class("tampered"), state_text(app)

    run(go)


def test_create_on_first_run(tmp_path: Path) -> None:
    path = tmp_path / "new.locker"

    async def go() -> None:
        app = make_app(path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, CreateScreen), "create screen")
            await type_text(pilot, "correct horse")
            await pilot.press("enter")
            await type_text(pilot, "correct horsX")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "differ" in state_text(app), "the mismatch")
            assert not path.exists()
            await type_text(pilot, "correct horse")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the empty list")
            cost = str(app.screen.app.screen.query("#cost") or "")
            assert cost is not None
        with Vault.open(path, b"correct horse") as v:
            assert v.entries() == []

    run(go)
