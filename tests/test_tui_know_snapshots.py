"""SVG snapshots of the inspect screen (its order and colours are the spec) and of the export
dialog. A fixed clock, certificates dated from it and a fixed list of places keep them
reproducible; `pytest --snapshot-update` redraws them after an intended change."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, SMALL_KDF, counter_rng
from pki_factory import cert, cert_pem, ec_key, key_pem
from textual.pilot import Pilot
from tui_helpers import FakeTime, make_app, unlock, wait_for

from locker.know.facts import recogniser
from locker.vault import Vault, create

DAY = 86400


@pytest.fixture
def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A vault of two services' keys and certificates, an expired one and an old key."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.chdir(tmp_path)
    now = FakeTime().wall
    path = Path("demo.locker")
    create(path, PASSPHRASE, SMALL_KDF, rng=counter_rng(), clock=lambda: now)
    api, web = ec_key(), ec_key()
    with Vault.open(path, PASSPHRASE, write=True, clock=lambda: now - 500 * DAY) as v:
        v.recogniser = recogniser()
        v.add_bytes("api/tls.key", key_pem(api))
        v.commit()
    with Vault.open(path, PASSPHRASE, write=True, clock=lambda: now - 20 * DAY) as v:
        v.recogniser = recogniser()
        v.add_bytes("api/tls.crt", cert_pem(cert(api, "api.example", now, 12)))
        v.add_bytes("web/tls.key", key_pem(web))
        v.add_bytes("web/tls.crt", cert_pem(cert(web, "web.example", now, 300)))
        v.add_bytes("legacy.crt", cert_pem(cert(ec_key(), "legacy.example", now - 9 * DAY, 2)))
        v.add_bytes("prod.env", b"DB_PASSWORD=x\n")
        v.commit()
    return path


def test_inspect_screen(held: Path, snap_compare: Any) -> None:
    from locker.tui.screens.inspect import InspectScreen

    async def inspected(pilot: Pilot[Any]) -> None:
        await unlock(pilot)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, InspectScreen), "inspect")

    assert snap_compare(make_app(held), run_before=inspected, terminal_size=(120, 20))


def test_export_dialog(held: Path, snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from locker.tui.screens import export

    stick = (Path("/media/stick"), "FAT file system on a removable drive at /media/stick")
    monkeypatch.setattr(export, "places", lambda cwd, home: [stick, (Path("/root"), "home")])

    async def asked(pilot: Pilot[Any]) -> None:
        await unlock(pilot)
        await pilot.press("down", "o")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, export.ExportModal), "dialog")

    assert snap_compare(make_app(held), run_before=asked, terminal_size=(100, 32))
