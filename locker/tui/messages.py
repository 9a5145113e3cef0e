"""Messages between the TUI's workers, widgets and screens: small dataclasses, posted, never called."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class EntrySelected(Message):
    """The entry tree's cursor is on `name` (`folder/` for a folder, None: nothing)."""

    name: str | None


@dataclass
class MountEvent(Message):
    """One line from the mount session (a sync, a warning), posted from its worker thread."""

    text: str


@dataclass
class MountLocked(Message):
    """The mount session locked for `reason`; `summary` says what was saved and wiped."""

    reason: str
    summary: str
    holders: list[str]
