#!/usr/bin/env python3
"""Draw the README's screenshots from the real app: `scripts/screenshots.py [OUT_DIR]`.

Builds a demo vault in a temporary directory (cheap KDF, fixed times), drives the real
LockerApp headless with Textual's Pilot, and saves SVGs of the unlocked list and of a mount
with its countdown (docs/images/tui-list.svg, docs/images/tui-mount.svg). The mount is locked
and wiped before the script exits.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from locker.mount.tracker import Clock
from locker.store.format import KdfCost
from locker.tui.app import LockerApp
from locker.tui.screens.main import MainScreen
from locker.tui.screens.mount import MountScreen
from locker.vault import Vault, create

PASSPHRASE = b"correct horse battery staple"
KDF = KdfCost(memory_kib=8 * 1024, time_cost=1, parallelism=1)
SIZE = (100, 28)
FILES = {
    "prod.env": b"DATABASE_URL=postgres://app@db/prod\nAPI_TOKEN=s3cr3t\n",
    "staging.env": b"API_TOKEN=staging\n",
    "tls/api.example.com.key": b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 1600 + b"\n",
    "tls/api.example.com.crt": b"-----BEGIN CERTIFICATE-----\n" + b"B" * 1200 + b"\n",
    "jwt/signing-2026.jwk": b'{"kty":"OKP","crv":"Ed25519","x":"..."}\n',
    "ssh/deploy_ed25519": b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + b"C" * 400 + b"\n",
    "k8s/prod.kubeconfig": b"apiVersion: v1\nkind: Config\n",
}


async def wait(pilot: object, condition: object) -> None:
    for _ in range(3000):
        if condition():  # type: ignore[operator]
            return
        await pilot.pause(0.02)  # type: ignore[attr-defined]
    raise SystemExit("screenshots: timed out waiting for the app")


async def shoot(vault: Path, out: Path) -> None:
    app = LockerApp(vault, clock=Clock(), kdf_cost=KDF)
    async with app.run_test(size=SIZE) as pilot:
        await wait(pilot, lambda: app.screen.query("#passphrase"))
        await pilot.press(*["space" if c == " " else c for c in PASSPHRASE.decode()], "enter")
        await wait(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("down", "down", "down")
        app.tick()
        await pilot.pause()
        app.save_screenshot(str(out / "tui-list.svg"))
        await pilot.press("m")
        await wait(
            pilot, lambda: isinstance(app.screen, MountScreen) and app.screen.session is not None
        )
        app.tick()
        await pilot.pause(0.2)
        app.save_screenshot(str(out / "tui-mount.svg"))
        await pilot.press("l")
        await wait(pilot, lambda: app.vault is None)


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "docs/images")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="locker-shots-") as tmp:
        os.chdir(tmp)
        vault = Path("ops.locker")
        when = time.time() - 86400
        create(vault, PASSPHRASE, KDF, clock=lambda: when)
        with Vault.open(vault, PASSPHRASE, write=True, clock=lambda: when) as v:
            for name, data in FILES.items():
                v.add_bytes(name, data)
            v.commit()
        asyncio.run(shoot(vault, out))
    for name in ("tui-list.svg", "tui-mount.svg"):
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
