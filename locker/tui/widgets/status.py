"""The status bar: which vault, locked or unlocked, mounted where, and the time left."""

from __future__ import annotations

from textual.widgets import Static

from locker.text import duration


class StatusBar(Static):
    """One line, updated every second by the app."""

    def show(
        self, vault: str, state: str, idle_left: float | None, hard_left: float | None = None
    ) -> None:
        parts = [f"[b]{vault}[/b]", state]
        if idle_left is not None:
            parts.append(f"locks in {duration(idle_left)} idle")
        if hard_left is not None:
            parts.append(f"{duration(hard_left)} at most")
        self.update(" · ".join(parts))
        self.set_class(idle_left is not None and idle_left <= 30, "warning")
