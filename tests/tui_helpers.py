"""Driving the real LockerApp with Textual's Pilot: a fake clock, waiting on conditions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conftest import PASSPHRASE, SMALL_KDF
from textual.pilot import Pilot

from locker.mount.tracker import Clock
from locker.tui.app import LockerApp

SIZE = (100, 30)
WAIT = 60.0  # seconds: generous, the machine is shared; a condition ends the wait early


class FakeTime:
    """Monotonic and wall clocks that move only when told."""

    def __init__(self) -> None:
        self.mono, self.wall = 1000.0, 1_700_000_000.0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds

    def clock(self) -> Clock:
        return Clock(monotonic=lambda: self.mono, wall=lambda: self.wall)


def make_app(vault: Path, time: FakeTime | None = None, **kwargs: Any) -> LockerApp:
    return LockerApp(
        vault,
        clock=(time or FakeTime()).clock(),
        kdf_cost=kwargs.pop("kdf_cost", SMALL_KDF),
        **kwargs,
    )


async def wait_for(pilot: Pilot[Any], condition: Callable[[], object], what: str) -> None:
    """Let the app run until `condition()` holds (bounded by WAIT)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*["space" if c == " " else c for c in text])


async def unlock(pilot: Pilot[Any], passphrase: bytes = PASSPHRASE) -> None:
    from locker.tui.screens.main import MainScreen

    await wait_for(pilot, lambda: pilot.app.screen.query("#passphrase"), "the unlock screen")
    await type_text(pilot, passphrase.decode())
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen), "the entry list")
    await pilot.pause()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]
