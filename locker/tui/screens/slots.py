"""The vault's key slots: every slot's kind, label, creation and last use (never a secret); add
a passphrase or a recovery key (shown once), let this machine's keyring remember the vault or
forget it, remove one (asks first; the vault refuses to lose its last slot). Each change is one commit with its audit-log event, through the vault's slot
API (`vault_slots.py`), as `locker slot ...` does."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

from locker.errors import LockerError
from locker.store import keys
from locker.store.format import SLOT_KEYRING, SLOT_PASSPHRASE, SLOT_RECOVERY
from locker.text import iso_time, printable
from locker.tui.screens.base import LockerScreen
from locker.tui.screens.dialogs import ConfirmModal, NewPassphraseModal, PromptModal
from locker.tui.widgets.status import StatusBar
from locker.tui.words import reported
from locker.vault_slots import OLD_COPY_NOTE, SlotInfo, check_label

if TYPE_CHECKING:
    from locker.vault import Vault

COLUMNS = ("", "id", "kind", "label", "created", "last used")


class SlotScreen(LockerScreen):
    """The slot list; a, k and x change it."""

    BINDINGS = [
        Binding("a", "add_passphrase", "Add passphrase"),
        Binding("k", "add_recovery", "Add recovery key"),
        Binding("m", "remember", "Remember here"),
        Binding("f", "forget", "Forget here"),
        Binding("x,delete", "remove", "Remove"),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Vertical(id="slot-pane"):
            yield Label("key slots (* the slot that unlocked the vault this time)", id="slot-title")
            yield DataTable(id="slots", cursor_type="row")
        yield Footer()

    @reported
    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        self.show_slots()
        table.focus()
        self.call_after_refresh(self.locker.tick)

    def show_slots(self, _done: str = "") -> None:
        table = self.query_one(DataTable)
        table.clear()
        for s in self.vault.slots():
            table.add_row(
                "*" if s.unlocked else "",
                s.slot_id,
                s.kind,
                printable(s.label),
                _when(s.created),
                _when(s.used),
                key=s.slot_id,
            )

    def _selected(self) -> SlotInfo | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((s for s in self.vault.slots() if s.slot_id == row), None)

    # -- actions -----------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_add_passphrase(self) -> None:
        def labelled(label: str | None) -> None:
            if label is None:
                return
            try:
                check_label(label)  # a bad label is said before the passphrase is asked
            except LockerError as exc:
                self.locker.report(exc)
                return
            self.app.push_screen(NewPassphraseModal(), lambda secret: added(label, secret))

        def added(label: str, secret: bytearray | None) -> None:
            if secret is not None:
                self.notify("deriving the new slot's key (Argon2id)…")
                self.change_vault(lambda v: _add_passphrase(v, label, secret), self.show_slots)

        self.app.push_screen(
            PromptModal("label of the new passphrase slot (Escape cancels):", "passphrase"),
            labelled,
        )

    def action_add_recovery(self) -> None:
        shown: list[str] = []

        def made(done: str) -> None:
            self.show_slots()
            self.app.push_screen(RecoveryKeyModal(shown.pop(), done))

        def add(yes: bool | None) -> None:
            if yes:
                self.change_vault(lambda v: _add_recovery(v, shown), made)

        question = "add a recovery key? it is shown once, now: have somewhere safe to write it"
        self.app.push_screen(ConfirmModal(question), add)

    def action_remember(self) -> None:
        self.change_vault(_remember, self.show_slots)

    def action_forget(self) -> None:
        self.change_vault(_forget, self.show_slots)

    def action_remove(self) -> None:
        slot = self._selected()
        if slot is None:
            self.notify("select a slot first", severity="warning")
            return
        what = f"the {slot.kind} slot {slot.slot_id}" + (
            f" ({printable(slot.label)})" if slot.label else ""
        )

        def removed(done: str) -> None:
            self.show_slots()
            self.notify(f"note: {OLD_COPY_NOTE}", timeout=15)

        def remove(yes: bool | None) -> None:
            if yes:
                self.change_vault(lambda v: _remove(self, v, slot.slot_id), removed)

        self.app.push_screen(ConfirmModal(f"remove {what}?"), remove)


class RecoveryKeyModal(ModalScreen[None]):
    """A new recovery key, shown this once; Enter or Escape closes it (a lock closes it too)."""

    BINDINGS = [Binding("enter,escape", "close", "Written down")]

    def __init__(self, key: str, done: str) -> None:
        super().__init__()
        self.key, self.done = key, done

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.done, classes="question")
            yield Static(
                "recovery key (shown only now: write it down, keep it apart from the vault):"
            )
            yield Static(f"\n    [b]{self.key}[/b]\n", id="recovery-key")
            yield Static(
                "unlock with it: --recovery-key-file FILE (or --recovery-key) on any command, "
                "and locker tui --recovery-key-file FILE\n\n[dim]Enter: it is written down[/dim]"
            )

    def action_close(self) -> None:
        self.key = ""
        self.dismiss(None)


def _when(ts: int | None) -> str:
    return iso_time(ts) if ts is not None else "-"


def _add_passphrase(v: Vault, label: str, secret: bytearray) -> str:
    from locker.vault import DEFAULT_KDF

    try:
        slot = keys.new_slot(os.urandom, SLOT_PASSPHRASE, v.unlocking_kdf() or DEFAULT_KDF)
        v.add_slot(slot, keys.passphrase_kek(secret, slot), label)
    finally:
        secret[:] = bytes(len(secret))
    v.commit()
    return f"added passphrase slot {slot.slot_id.hex()}"


def _add_recovery(v: Vault, shown: list[str]) -> str:
    from locker.slots import recovery

    secret = os.urandom(recovery.SECRET_SIZE)
    slot = keys.new_slot(os.urandom, SLOT_RECOVERY)
    v.add_slot(slot, keys.secret_kek(secret, slot), "recovery key")
    v.commit()
    shown.append(recovery.encode(secret))
    return f"added recovery slot {slot.slot_id.hex()}"


def _remember(v: Vault) -> str:
    """`locker slot remember`: this machine's keyring opens the vault without a passphrase."""
    from locker.slots import keyring_slot

    kr = keyring_slot.backend()  # an unusable keyring: its one line, nothing staged
    slot = v.remember(kr, f"keyring on {socket.gethostname()}")
    if slot is None:
        return "this vault is already remembered by this machine's keyring"
    return (
        f"added keyring slot {slot.slot_id.hex()}: this machine's keyring "
        f"({keyring_slot.describe(kr)}) now unlocks the vault without a prompt"
    )


def _forget(v: Vault) -> str:
    """`locker slot forget`: the keyring slots this machine's keyring opens, and their secrets."""
    from locker.slots import keyring_slot

    mine = v.forget(keyring_slot.backend())
    if not mine:
        return "this machine's keyring holds no key for this vault: nothing to forget"
    return "removed " + ", ".join(f"keyring slot {s.slot_id.hex()}" for s in mine)


def _remove(screen: SlotScreen, v: Vault, slot_id: str) -> str:
    slot = v.find_slot(slot_id)
    v.remove_slot(slot)
    v.commit()
    if slot.kind == SLOT_KEYRING:
        from locker.slots import keyring_slot

        left = keyring_slot.forget(v.container_id, slot.slot_id)
        if left:
            screen.app.call_from_thread(screen.notify, left, severity="warning")
    return f"removed slot {slot.slot_id.hex()}"
