"""What the screens share: the app they run in (typed), and a new passphrase typed twice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen
from textual.widgets import Input

if TYPE_CHECKING:
    from locker.tui.app import LockerApp


class LockerScreen(Screen[None]):
    """A full screen of LockerApp."""

    @property
    def locker(self) -> LockerApp:
        from locker.tui.app import LockerApp  # app.py imports the screens

        app = self.app
        if not isinstance(app, LockerApp):
            raise TypeError("locker screens run in LockerApp")
        return app


def take_new_passphrase(first: Input, second: Input) -> bytearray | str:
    """The passphrase typed into both fields, as bytes, with the fields cleared; or what is
    wrong (an empty one focuses the first field, a mismatch clears the second)."""
    if not first.value:
        first.focus()
        return "the passphrase is empty"
    if first.value != second.value:
        second.value = ""
        return "the two passphrases differ"
    secret = bytearray(first.value.encode())
    first.value = second.value = ""
    return secret
