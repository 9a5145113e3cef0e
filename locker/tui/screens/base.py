"""What the screens share: the app they run in (typed), its open vault, the worker that
changes the vault, and a new passphrase typed twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from textual import work
from textual.screen import Screen
from textual.widgets import Input

from locker.errors import LockerError
from locker.text import printable
from locker.tui.words import reported

if TYPE_CHECKING:
    from locker.tui.app import LockerApp
    from locker.vault import Vault

T = TypeVar("T")


class LockerScreen(Screen[None]):
    """A full screen of LockerApp."""

    @property
    def locker(self) -> LockerApp:
        from locker.tui.app import LockerApp  # app.py imports the screens

        app = self.app
        if not isinstance(app, LockerApp):
            raise TypeError("locker screens run in LockerApp")
        return app

    @property
    def vault(self) -> Vault:
        vault = self.locker.vault
        if vault is None:
            raise LockerError("the vault is locked")
        return vault

    @work(thread=True, exit_on_error=False, group="vault")
    def change_vault(self, what: Callable[[Vault], str], then: Callable[[str], object]) -> None:
        """Run `what` on the vault under its lock; then `then(result)`, or notify the error.
        A failed `what` leaves nothing staged."""
        try:
            with self.locker.vault_lock:
                try:
                    done = what(self.vault)
                except BaseException:
                    self.vault.discard()
                    raise
        except Exception as exc:
            self.app.call_from_thread(self.locker.report, exc)
            return
        self.app.call_from_thread(self._written, then, done)

    @reported
    def _written(self, then: Callable[[str], object], done: str) -> None:
        if self.is_attached:
            then(done)
        if done:
            self.notify(printable(done))


def staging(app: LockerApp, vault: Vault, what: Callable[[Vault], T], gone: str) -> T:
    """On a worker: `what(vault)` under the app's vault lock, refused with `gone` when the app
    locked that vault meanwhile; a failure leaves nothing staged."""
    with app.vault_lock:
        if app.vault is not vault:
            raise LockerError(gone)
        try:
            return what(vault)
        except BaseException:
            vault.discard()
            raise


def titled(field: Input, title: str) -> Input:
    """An input with its label in its border: the form fits a small terminal."""
    field.border_title = title
    return field


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
