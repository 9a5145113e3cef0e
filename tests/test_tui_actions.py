"""The TUI's verify, log and get actions driven by Pilot on real vaults, and the promise that an
error inside a message handler is a notification, not the end of the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import MOUNT_FILES, PASSPHRASE
from textual.pilot import Pilot
from tui_helpers import SIZE, make_app, run, unlock, wait_for

from locker.tui.screens.main import MainScreen
from locker.tui.widgets.entry_tree import EntryTree
from locker.vault import Vault


def notes(app: object) -> list[str]:
    return [n.message for n in app._notifications]  # type: ignore[attr-defined]


def select(app: object, name: str) -> None:
    app.screen.query_one(EntryTree).select_name(name)  # type: ignore[attr-defined]


def damage(path: Path, name: str) -> None:
    """Flip one byte inside `name`'s ciphertext, in place (the open vault reads the same file)."""
    with Vault.open(path, PASSPHRASE) as v:
        entry = v.entry(name)
    at = entry.offset + entry.length // 2  # version 2: an absolute offset
    with path.open("r+b") as f:
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ 0x01]))


def test_verify_says_ok_then_names_a_damaged_entry(filled_vault: Path) -> None:
    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await unlock(pilot)
            await pilot.press("y")
            ok = f"ok: header, index and {len(MOUNT_FILES)} entries verified"
            await wait_for(pilot, lambda: ok in notes(app), "the verify result")
            damage(filled_vault, "d.txt")
            await pilot.press("y")
            failed = f"1 of {len(MOUNT_FILES)} entries failed verification"
            await wait_for(pilot, lambda: any(failed in m for m in notes(app)), "the failure")
            assert any("d.txt" in m for m in notes(app) if failed in m), notes(app)
            assert isinstance(app.screen, MainScreen)

    run(go)


def test_log_shows_the_audit_log_and_closes(vault_path: Path) -> None:
    from locker.tui.screens.dialogs import TextModal

    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.add_bytes("db/password", b"s3cret\n")
        v.record("add", ("db/password",))
        v.commit()

    async def go() -> None:
        app = make_app(vault_path)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, TextModal), "the log")
            body = str(app.screen.query_one("#body").render())
            line = next(line for line in body.splitlines() if "db/password" in line)
            assert " add " in f" {line} "
            assert "@" in line  # user@host
            assert "s3cret" not in body
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the list again")

    run(go)


def test_get_writes_an_entry_and_a_folder_into_a_directory(
    filled_vault: Path, tmp_path: Path
) -> None:
    from textual.widgets import Input

    one, many = tmp_path / "one", tmp_path / "many"

    async def get(pilot: Pilot[None], name: str, target: Path) -> None:
        select(pilot.app, name)
        await pilot.press("g")
        await wait_for(pilot, lambda: pilot.app.screen.query("#answer"), "the directory prompt")
        pilot.app.screen.query_one("#answer", Input).value = str(target)
        await pilot.press("enter")

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await unlock(pilot)
            await get(pilot, "a.txt", one)
            await wait_for(pilot, lambda: f"wrote 1 entry into {one}" in notes(app), "the get")
            assert (one / "a.txt").read_bytes() == MOUNT_FILES["a.txt"]
            await get(pilot, "sub/", many)
            await wait_for(pilot, lambda: f"wrote 1 entry into {many}" in notes(app), "folder")
            assert (many / "sub/deep/b.key").read_bytes() == MOUNT_FILES["sub/deep/b.key"]
            assert (one / "a.txt").stat().st_mode & 0o077 == 0

    run(go)


def test_an_error_in_a_message_handler_is_a_notification(
    filled_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from locker.tui.widgets.detail import EntryDetail

    def broken(self: EntryDetail, *args: object) -> None:
        raise RuntimeError("a bug in the detail pane")

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await unlock(pilot)
            monkeypatch.setattr(EntryDetail, "show", broken)
            await pilot.press("down")  # the tree posts EntrySelected; its handler fails
            await wait_for(
                pilot, lambda: any("internal error (RuntimeError)" in m for m in notes(app)), "it"
            )
            assert isinstance(app.screen, MainScreen)
            assert app.return_code is None
            await pilot.press("l")  # the app still works
            await wait_for(pilot, lambda: app.vault is None, "the lock")

    run(go)


def test_a_path_with_an_unknown_home_is_an_error_not_a_crash(filled_vault: Path) -> None:
    from textual.widgets import Input

    from locker.tui.screens.dialogs import AddModal

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await unlock(pilot)
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, AddModal), "the add dialog")
            app.screen.query_one("#path", Input).value = "~no-such-user-here/f"
            await pilot.press("enter", "enter")
            await wait_for(
                pilot, lambda: any("no such user's home" in m for m in notes(app)), "the error"
            )
            assert isinstance(app.screen, AddModal)
            assert app.return_code is None

    run(go)
