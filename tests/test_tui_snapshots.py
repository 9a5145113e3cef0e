"""SVG snapshots of the main screens (pytest-textual-snapshot): the spec of each screen and
state. A fixed clock, a fixed time zone and a relative vault path keep them reproducible;
`pytest --snapshot-update` redraws them after an intended change."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, SMALL_KDF, counter_rng
from textual.pilot import Pilot
from textual.widgets import Input
from tui_helpers import make_app, type_text, unlock, wait_for

from locker.tui.screens.token import TokenChoice
from locker.tui.screens.unlock import UnlockScreen
from locker.vault import Vault, create

WHEN = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FILES = {
    "prod.env": b"TOKEN=1\n",
    "tls/server.key": b"-----BEGIN PRIVATE KEY-----\n",
    "tls/server.crt": b"-----BEGIN CERTIFICATE-----\n",
    "ssh/deploy_ed25519": b"-----BEGIN OPENSSH PRIVATE KEY-----\n",
}


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.chdir(tmp_path)
    path = Path("demo.locker")
    clock = lambda: WHEN  # noqa: E731
    create(path, PASSPHRASE, SMALL_KDF, rng=counter_rng(), clock=clock)
    with Vault.open(path, PASSPHRASE, write=True, rng=counter_rng(1), clock=clock) as v:
        for name, data in FILES.items():
            v.add_bytes(name, data)
        v.commit()
    return path


def test_unlock_screen(demo: Path, snap_compare: Any) -> None:
    async def ready(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: pilot.app.screen.query("#passphrase"), "unlock screen")

    assert snap_compare(make_app(demo), run_before=ready, terminal_size=(80, 24))


def test_unlock_with_a_token(demo: Path, snap_compare: Any) -> None:
    """Ctrl+T: the PKCS#11 token's fields, as `locker tui --pkcs11-module M` fills them."""

    async def token(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: pilot.app.screen.query("#pin"), "unlock screen")
        pin = pilot.app.screen.query_one("#pin")
        await wait_for(pilot, lambda: pilot.app.focused is pin, "the PIN field")
        await type_text(pilot, "1234")

    choice = TokenChoice("/usr/lib/x86_64-linux-gnu/libykcs11.so", "YubiKey PIV")
    assert snap_compare(make_app(demo, token=choice), run_before=token, terminal_size=(80, 24))


def test_wrong_passphrase(demo: Path, snap_compare: Any) -> None:
    async def wrong(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: pilot.app.screen.query("#passphrase"), "unlock screen")
        await type_text(pilot, "nope")
        await pilot.press("enter")
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.query_one("#state").has_class("wrong"), "the error")
        field = screen.query_one("#passphrase")
        await wait_for(pilot, lambda: pilot.app.focused is field, "the field, for another try")

    assert snap_compare(make_app(demo), run_before=wrong, terminal_size=(80, 24))


def test_entry_list(demo: Path, snap_compare: Any) -> None:
    async def unlocked(pilot: Pilot[Any]) -> None:
        await unlock(pilot)
        await pilot.press("down", "down")

    assert snap_compare(make_app(demo), run_before=unlocked, terminal_size=(80, 24))


def test_filtered_list(demo: Path, snap_compare: Any) -> None:
    async def filtered(pilot: Pilot[Any]) -> None:
        await unlock(pilot)
        await pilot.press("slash")
        await type_text(pilot, "tls")
        await pilot.pause()

    assert snap_compare(make_app(demo), run_before=filtered, terminal_size=(80, 24))


def test_remove_asks_naming_the_entry(demo: Path, snap_compare: Any) -> None:
    async def confirm(pilot: Pilot[Any]) -> None:
        await unlock(pilot)
        await pilot.press("x")
        await wait_for(pilot, lambda: pilot.app.screen.query("#yes"), "the question")

    assert snap_compare(make_app(demo), run_before=confirm, terminal_size=(80, 24))


def test_help(demo: Path, snap_compare: Any) -> None:
    async def helped(pilot: Pilot[Any]) -> None:
        await unlock(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: pilot.app.screen.query("#body"), "the help")

    assert snap_compare(make_app(demo), run_before=helped, terminal_size=(80, 24))


def test_locked_again(demo: Path, snap_compare: Any) -> None:
    async def locked(pilot: Pilot[Any]) -> None:
        await unlock(pilot)
        await pilot.press("l")
        # The app switches to the unlock screen and only then notifies "locked (...)": the
        # screen alone is no sign that the toast the snapshot shows is up yet (under load it
        # was not), nor that the passphrase field has its focus.
        await wait_for(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, UnlockScreen)
                and pilot.app.screen.query("Toast")
                and pilot.app.focused is pilot.app.screen.query_one("#passphrase", Input)
            ),
            "the lock, its notification and the focused passphrase field",
        )
        field = pilot.app.screen.query_one("#passphrase", Input)
        assert field.value == ""

    assert snap_compare(make_app(demo), run_before=locked, terminal_size=(80, 24))


def test_entry_list_light_theme_no_color(
    demo: Path, snap_compare: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(demo)

    async def light(pilot: Pilot[Any]) -> None:
        pilot.app.theme = "textual-light"
        await unlock(pilot)

    assert snap_compare(app, run_before=light, terminal_size=(80, 24))
