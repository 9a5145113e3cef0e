"""The TUI driven by Textual's Pilot on real vaults: unlock, create, errors, every action,
mount and lock, idle auto-lock with an injected clock, the clipboard clear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import MOUNT_FILES, PASSPHRASE
from tui_helpers import SIZE, FakeTime, make_app, run, type_text, unlock, wait_for

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
    from locker.store.format import RECORD_OFFSETS, RECORD_SIZE

    data = bytearray(filled_vault.read_bytes())
    for at in RECORD_OFFSETS:
        data[at + RECORD_SIZE - 1] ^= 1  # the MAC of each commit record: no generation verifies
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


def test_create_on_first_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from locker.store import keys

    path = tmp_path / "new.locker"
    derived: list[int] = []
    real_kek = keys.passphrase_kek

    def counted(passphrase: bytes | bytearray, slot: Any) -> bytes:
        derived.append(1)
        return real_kek(passphrase, slot)

    monkeypatch.setattr(keys, "passphrase_kek", counted)

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
            assert len(derived) == 1  # made and opened with one key derivation
        with Vault.open(path, b"correct horse") as v:
            assert v.entries() == []

    run(go)


def select(app: object, name: str) -> None:
    app.screen.query_one(EntryTree).select_name(name)  # type: ignore[attr-defined]


def vault_of(app: object) -> Vault:
    vault = app.vault  # type: ignore[attr-defined]
    assert vault is not None
    return vault


def test_add_a_file_by_its_path(filled_vault: Path, tmp_path: Path) -> None:
    from textual.widgets import Input

    source = tmp_path / "server.key"
    source.write_bytes(b"KEY\n")

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            await pilot.press("a")
            await wait_for(pilot, lambda: app.screen.query("#path"), "the add dialog")
            app.screen.query_one("#path", Input).value = str(source)
            await pilot.press("enter")
            assert app.screen.query_one("#name", Input).value == "server.key"
            await pilot.press("enter")
            await wait_for(pilot, lambda: "server.key" in leaves(app), "the new entry")
            assert vault_of(app).read_bytes("server.key") == b"KEY\n"
            assert vault_of(app).log()[-1].event == "add"

    run(go)


def test_edit_runs_editor_and_saves_the_change(
    filled_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "fake-editor"
    script.write_text('#!/bin/sh\nfor f; do :; done\nprintf "edited\\n" > "$f"\n')
    script.chmod(0o700)
    monkeypatch.setenv("EDITOR", str(script))

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            select(app, "c.env")
            await pilot.press("e")
            await wait_for(pilot, lambda: vault_of(app).log()[-1].event == "edit", "the save")
            assert vault_of(app).read_bytes("c.env") == b"edited\n"

    run(go)


def test_rename_and_remove(filled_vault: Path) -> None:
    from textual.widgets import Input

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            select(app, "a.txt")
            await pilot.press("r")
            await wait_for(pilot, lambda: app.screen.query("#answer"), "the rename dialog")
            app.screen.query_one("#answer", Input).value = "moved/a.txt"
            await pilot.press("enter")
            await wait_for(pilot, lambda: "moved/a.txt" in leaves(app), "the rename")
            assert "a.txt" not in vault_of(app).names()
            select(app, "d.txt")
            await pilot.press("x")
            await wait_for(pilot, lambda: app.screen.query("#yes"), "the confirmation")
            await pilot.press("n")  # the default is no
            await pilot.pause()
            assert "d.txt" in vault_of(app).names()
            await pilot.press("x")
            await wait_for(pilot, lambda: app.screen.query("#yes"), "the confirmation")
            await pilot.press("y")
            await wait_for(pilot, lambda: "d.txt" not in leaves(app), "the removal")
            assert "d.txt" not in vault_of(app).names()
            assert vault_of(app).log()[-1].event == "rm"

    run(go)


def test_filter_as_you_type(filled_vault: Path) -> None:
    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            await pilot.press("slash")
            await type_text(pilot, "bkey")
            await wait_for(pilot, lambda: leaves(app) == ["sub/deep/b.key"], "the filter")
            await pilot.press("escape")
            await wait_for(pilot, lambda: len(leaves(app)) == len(MOUNT_FILES), "all again")

    run(go)


def test_mount_syncs_and_lock_wipes(filled_vault: Path) -> None:
    from locker.tui.screens.mount import MountScreen

    time = FakeTime()

    async def go() -> None:
        app = make_app(filled_vault, time)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            await pilot.press("m")
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, MountScreen) and app.screen.session is not None,
                "the mount",
            )
            screen = app.screen
            assert isinstance(screen, MountScreen) and screen.session is not None
            root = screen.session.root
            assert (root / "a.txt").read_bytes() == b"alpha\n"
            (root / "a.txt").write_bytes(b"changed in the mount\n")

            def synced() -> bool:
                time.advance(1.0)  # the debounce runs on the injected clock
                return screen.session is not None and screen.session.syncs > 0

            await wait_for(pilot, synced, "the sync")
            await pilot.press("l")
            await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen), "the lock")
            assert not root.exists()
            assert app.vault is None
        with Vault.open(filled_vault, PASSPHRASE) as v:
            assert v.read_bytes("a.txt") == b"changed in the mount\n"
            assert [e.event for e in v.log()][-3:] == ["mount", "sync", "lock"]

    run(go)


def test_idle_warns_then_locks_with_the_injected_clock(filled_vault: Path) -> None:
    time = FakeTime()

    async def go() -> None:
        app = make_app(filled_vault, time, idle=300)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            time.advance(275)
            app.tick()
            assert app.warned
            await pilot.press("s")  # stay unlocked
            assert not app.warned
            time.advance(275)
            app.tick()
            assert isinstance(app.screen, MainScreen)
            time.advance(30)
            app.tick()
            await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen), "the idle lock")
            assert app.vault is None
            assert not app.screen.query(EntryTree)

    run(go)


def test_copy_clears_the_clipboard_after_30_s_and_reveal_hides(filled_vault: Path) -> None:
    from locker.tui.screens.dialogs import RevealModal

    time = FakeTime()

    async def go() -> None:
        app = make_app(filled_vault, time)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            select(app, "c.env")
            await pilot.press("c")
            await wait_for(pilot, lambda: app.clipboard == "TOKEN=1\n", "the copy")
            time.advance(29)
            app.tick()
            assert app.clipboard == "TOKEN=1\n"
            time.advance(2)
            app.tick()
            assert app.clipboard == ""
            await pilot.press("v")
            await wait_for(pilot, lambda: app.screen.query("#yes"), "the question")
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, RevealModal), "the reveal")
            assert "TOKEN=1" in str(app.screen.query_one("#secret").render())
            time.advance(16)
            app.tick()
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "hidden again")

    run(go)


def test_recognised_entries_show_their_kind_and_expiry_colour(vault_path: Path) -> None:
    import time as clock

    from pki_factory import cert, cert_pem, ec_key

    from locker.know.facts import recogniser
    from locker.tui.widgets.entry_tree import expiry

    now = clock.time()
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.recogniser = recogniser()
        v.add_bytes("tls/soon.crt", cert_pem(cert(ec_key(), "soon.example", now, 10)))
        v.add_bytes("tls/late.crt", cert_pem(cert(ec_key(), "late.example", now, 200)))
        v.add_bytes("tls/gone.crt", cert_pem(cert(ec_key(), "gone.example", now - 86400 * 5, 1)))
        v.commit()

    async def go() -> None:
        app = make_app(vault_path)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            entries = {e.name: e for e in vault_of(app).entries()}
            assert expiry(entries["tls/soon.crt"], now) == ("expires in 9 days", "yellow")
            assert expiry(entries["tls/late.crt"], now)[1] == "green"  # type: ignore[index]
            assert expiry(entries["tls/gone.crt"], now)[1] == "bold red"  # type: ignore[index]
            tree = app.screen.query_one(EntryTree)
            labels = [str(tree.get_node_at_line(i).label) for i in range(tree.last_line + 1)]  # type: ignore[union-attr]
            assert any(
                "certificate CN=soon.example" in t and "expires in 9 days" in t for t in labels
            )

    run(go)


def test_an_unexpected_error_is_a_notification_not_a_crash(
    filled_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: MainScreen) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(MainScreen, "action_log", broken)

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await unlock(pilot)
            await pilot.press("h")
            await pilot.pause()
            assert isinstance(app.screen, MainScreen)
            shown = [n.message for n in app._notifications]
            assert any("internal error (RuntimeError)" in m for m in shown), shown
            assert app.return_code is None

    run(go)


def test_orphaned_mount_is_named_on_the_unlock_screen(filled_vault: Path, places: object) -> None:
    import json
    import os

    from locker.mount import journal as jn
    from locker.mount import runtime as rt

    base = rt.runtime_base()
    orphan = base.path / "mnt-0123456789abcdef"
    orphan.mkdir(mode=0o700)
    record = jn.Record.new(
        filled_vault, orphan, started=1.0, idle_seconds=300.0, idle_deadline=2.0, hard_deadline=3.0
    )
    record.pid, record.proc_start = 2**22 - 1, "1"
    (base.journal_dir / f"{record.mount_id}.json").write_text(json.dumps(record.to_json()))
    assert jn.orphans()

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            notice = app.screen.query_one("#notice")
            await wait_for(pilot, lambda: notice.has_class("orphan"), "the orphan notice")
            text = str(notice.render())
            assert f"at {orphan} was left behind by PID" in text
            assert "locker recover" in text

    run(go)
    os.rmdir(orphan)


def test_passphrase_change_asks_twice_and_rewraps(filled_vault: Path) -> None:
    from locker.tui.screens.dialogs import NewPassphraseModal

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await unlock(pilot)
            await pilot.press("p")
            await wait_for(pilot, lambda: isinstance(app.screen, NewPassphraseModal), "dialog")
            problem = app.screen.query_one("#problem")
            await pilot.press("enter", "enter")
            await wait_for(pilot, lambda: "empty" in str(problem.render()), "the empty one")
            await type_text(pilot, "new one")
            await pilot.press("enter")
            await type_text(pilot, "new onX")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "differ" in str(problem.render()), "the mismatch")
            await type_text(pilot, "new one")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the list again")
            changed = "passphrase changed (key slot rewrapped; no entry was re-encrypted)"
            await wait_for(
                pilot,
                lambda: any(n.message.startswith(changed) for n in app._notifications),
                "passwd",
            )
        with Vault.open(filled_vault, b"new one") as v:
            assert sorted(e.name for e in v.entries()) == sorted(MOUNT_FILES)

    run(go)


def test_the_app_and_the_cli_word_an_error_alike(tmp_path: Path) -> None:
    from locker.errors import describe

    where = str(tmp_path / "gone")
    assert describe(FileNotFoundError(2, "No such file or directory", where)) == (
        f"cannot use {where}: no such file or directory",
        None,
    )
    assert describe(OSError(28, "No space left on device")) == (
        "no space left on device (errno 28)",
        None,
    )
    assert describe(KeyError("x")) == (
        "internal error (KeyError)",
        "rerun with LOCKER_DEBUG=1 for details",
    )


def test_a_record_passed_over_is_said_after_the_unlock(filled_vault: Path) -> None:
    """The record in force damaged (one bit of its MAC): the app opens the generation before
    and says so, as every command does (FORMAT.md section 20)."""
    with Vault.open(filled_vault, PASSPHRASE, write=True) as v:
        v.add_bytes("newest.txt", b"the save after\n")
        v.commit()
        position = v._container.position
    with open(filled_vault, "r+b") as f:
        f.seek((4096, 8192)[position] + 67)
        last = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([last[0] ^ 1]))

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await unlock(pilot)
            assert leaves(app) == sorted(MOUNT_FILES)  # without newest.txt
            shown = [n.message for n in app._notifications]
            assert any("did not verify" in m and "recover --generation" in m for m in shown)

    run(go)


def test_a_notice_is_shown_as_written_never_as_markup(filled_vault: Path) -> None:
    """Notices carry paths, entry names and error text the user chose: `[b]x[/b]` in a name
    must be shown as typed, and `[/x]` must not make the notice fail to render."""

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await unlock(pilot)
            app.screen.notify("saved [b]x[/b].env and [/x]")
            await pilot.pause()
            [shown] = [n for n in app._notifications if "[/x]" in n.message]
            assert not shown.markup and shown.message == "saved [b]x[/b].env and [/x]"

    run(go)
