"""The PKCS#11 token fields of the unlock screen: the module, the token's label, the key's
label and the PIN, as the CLI's `--pkcs11-module`, `--pkcs11-token`, `--pkcs11-key` and its
PIN prompt take them. `locker tui --pkcs11-...` fills them in; the PIN is always typed here
(or read from `--pin-file` before anyone types, as one of the keys at hand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label

from locker.errors import UsageError
from locker.slots import DEFAULT_KEY_LABEL
from locker.tui.screens.base import titled

if TYPE_CHECKING:
    from locker.slots.token import TokenSpec


@dataclass(frozen=True)
class TokenChoice:
    """What the command line named: the module, the token's label, the key's label."""

    module: str
    token: str = ""
    key: str = DEFAULT_KEY_LABEL


class TokenForm(Vertical):
    """The token's fields; `take()` reads them and the PIN (clearing its field) for one unlock."""

    def __init__(self, choice: TokenChoice | None, *, id: str) -> None:
        super().__init__(id=id)
        self.choice = choice or TokenChoice("")

    def compose(self) -> ComposeResult:
        yield Label("unlock with a PKCS#11 token (a YubiKey PIV slot, a smart card, an HSM)")
        yield titled(
            Input(
                self.choice.module,
                placeholder="e.g. /usr/lib/x86_64-linux-gnu/libykcs11.so",
                id="pkcs11-module",
            ),
            "PKCS#11 module (.so)",
        )
        with Horizontal():
            yield titled(
                Input(self.choice.token, placeholder="if several", id="pkcs11-token"), "token label"
            )
            yield titled(Input(self.choice.key, id="pkcs11-key"), "key label")
        yield titled(Input(password=True, id="pin"), "PIN")

    def first_empty(self) -> Input:
        """Where typing goes on: the module if it is missing, else the PIN."""
        module = self.query_one("#pkcs11-module", Input)
        return module if not module.value.strip() else self.query_one("#pin", Input)

    def take(self) -> tuple[TokenChoice, bytearray]:
        """The token named in the fields and the PIN typed (its field cleared; the caller
        zeroes it after the unlock); UsageError if the module or the PIN is missing."""
        module = self.query_one("#pkcs11-module", Input).value.strip()
        if not module:
            raise UsageError("type the path of the PKCS#11 module (.so)")
        pin_field = self.query_one("#pin", Input)
        if not pin_field.value:
            raise UsageError("type the token's PIN")
        pin = bytearray(pin_field.value.encode())
        pin_field.value = ""
        token = self.query_one("#pkcs11-token", Input).value.strip()
        key = self.query_one("#pkcs11-key", Input).value.strip() or DEFAULT_KEY_LABEL
        return TokenChoice(module, token, key), pin


def token_spec(choice: TokenChoice, pin: bytearray) -> TokenSpec:
    """The library's spec for the chosen token (loads the crypto: call it in a worker)."""
    from locker.slots.token import TokenSpec

    return TokenSpec(choice.module, choice.token or None, choice.key, lambda: pin)
