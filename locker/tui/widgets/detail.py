"""What is known about the selected entry, never its content."""

from __future__ import annotations

import time

from rich.table import Table
from textual.widgets import Static

from locker.know import facts as kf
from locker.store.index import Entry
from locker.text import printable
from locker.tui.widgets.entry_tree import expiry, human_size, kind


class EntryDetail(Static):
    """Name, size, kind, times and recognised facts of one entry."""

    def show(self, entry: Entry | None, folder_count: int = 0) -> None:
        if entry is None:
            self.update(
                f"a folder of {folder_count} entries" if folder_count else "no entry selected"
            )
            return
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("name", printable(entry.name))
        table.add_row("size", f"{human_size(entry.size)} ({entry.size} bytes)")
        table.add_row("kind", printable(kind(entry) or "file"))
        table.add_row("modified", _when(entry.modified))
        table.add_row("created", _when(entry.created))
        when = expiry(entry, time.time())
        if when:
            table.add_row("expiry", f"[{when[1]}]{when[0]}[/]")
        found = kf.decode(entry.attrs) or {}
        for cert in found.get("certs") or []:
            table.add_row("subject", printable(str(cert.get("subject", "?"))))
            table.add_row("issuer", printable(str(cert.get("issuer", "?"))))
        for key in found.get("keys") or []:
            table.add_row("key", printable(kf.key_label(key)))
        self.update(table)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
