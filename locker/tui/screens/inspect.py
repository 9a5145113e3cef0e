"""What the vault holds, as `locker inspect` shows it: soonest expiry first, each key beside its
certificate, overdue keys flagged; red for expired, yellow for what needs attention, green
for a certificate with time left. Made from the facts in the index alone: nothing is
decrypted. Enter goes to the entry in the list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from locker.know import inspect as kin
from locker.text import printable
from locker.tui.words import reported

if TYPE_CHECKING:
    from locker.tui.app import LockerApp

EXPIRING_WITHIN = 30  # days, as `locker inspect` by default
ROTATE_AFTER = 365


def style(item: kin.Item, now: float) -> str:
    """The row's colour: expired, needs attention, has time left, or no expiry."""
    if item.not_after is not None and item.not_after <= now:
        return "bold red"
    if item.attention:
        return "yellow"
    return "green" if item.not_after is not None else ""


class InspectScreen(Screen[str | None]):
    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("enter", "go", "Go to entry"),
    ]

    def __init__(self, app: LockerApp) -> None:
        super().__init__()
        self.locker = app
        self.names: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="inspect"):
            yield Static(
                f"[b]what the vault holds[/b], soonest expiry first. ! marks a certificate "
                f"expiring within {EXPIRING_WITHIN} days or a key older than {ROTATE_AFTER} "
                "days. Enter goes to the entry.",
                id="inspect-head",
            )
            yield DataTable(id="items", cursor_type="row", zebra_stripes=False)
            yield Static("", id="summary")
        yield Footer()

    @reported
    def on_mount(self) -> None:
        vault = self.locker.vault
        entries = vault.entries() if vault is not None else []
        now = self.locker.clock.wall()
        items = kin.report(entries, now, EXPIRING_WITHIN, ROTATE_AFTER)
        table = self.query_one(DataTable)
        table.add_columns(*kin.HEADINGS)
        for item in items:
            colour = style(item, now)
            table.add_row(*(Text(printable(c), style=colour) for c in kin.cells(item, now)))
        self.names = [i.name for i in items]
        self.query_one("#summary", Static).update(Text(kin.summary(items, len(entries))))
        table.focus()

    @on(DataTable.RowSelected)
    @reported
    def row_chosen(self) -> None:
        self.action_go()

    def action_go(self) -> None:
        row = self.query_one(DataTable).cursor_row
        self.dismiss(self.names[row] if 0 <= row < len(self.names) else None)

    def action_back(self) -> None:
        self.dismiss(None)
