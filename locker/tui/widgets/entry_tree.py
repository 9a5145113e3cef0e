"""The entries as a tree: folders from the `/` in names, each leaf with its size and modified
time, key type and expiry where known. Filtering rebuilds it; the cursor posts EntrySelected."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from locker.know import facts as kf
from locker.store.index import Entry
from locker.tui.messages import EntrySelected

SOON = 30 * 86400


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def expiry(entry: Entry, now: float) -> tuple[str, str] | None:
    """(text, style) for an entry holding certificates: the soonest expiry, colour-coded."""
    found = kf.decode(entry.attrs)
    certs = (found or {}).get("certs") or []
    try:
        when = min(float(c["not_after"]) for c in certs)
    except (KeyError, TypeError, ValueError):
        return None
    days = int((when - now) // 86400)
    if when <= now:
        return f"expired {-days} days ago", "bold red"
    return f"expires in {days} days", "yellow" if when - now < SOON else "green"


def kind(entry: Entry) -> str:
    """What the recogniser found ('certificate CN=api', 'env (3 variables)'), or ''."""
    return kf.summary(kf.decode(entry.attrs))


def matches(name: str, pattern: str) -> bool:
    """Case-insensitive: every character of the pattern, in order (so `tlsky` finds tls/*.key)."""
    rest = name.lower()
    for ch in pattern.lower():
        found = rest.find(ch)
        if found < 0:
            return False
        rest = rest[found + 1 :]
    return True


class EntryTree(Tree[str]):
    """Leaves hold the entry name; folders their path with a trailing `/`."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("vault", "", id=id)
        self.show_root = False
        self.guide_depth = 3
        self.shown = 0

    def show(self, entries: Sequence[Entry], pattern: str = "", now: float | None = None) -> None:
        """Rebuild from `entries`, keeping those that match `pattern`, folders expanded."""
        now = time.time() if now is None else now
        keep = [e for e in entries if not pattern or matches(e.name, pattern)]
        self.clear()
        folders: dict[str, TreeNode[str]] = {"": self.root}
        for entry in sorted(keep, key=lambda e: e.name.split("/")):
            *parts, leaf = entry.name.split("/")
            path = ""
            parent = self.root
            for part in parts:
                path = f"{path}/{part}" if path else part
                if path not in folders:
                    folders[path] = parent.add(
                        Text(f"{part}/", style="bold"), f"{path}/", expand=True
                    )
                parent = folders[path]
            parent.add_leaf(self._label(leaf, entry, now), entry.name)
        self.shown = len(keep)
        self.root.expand()
        if keep:
            self.cursor_line = 0
        self.post_message(EntrySelected(self.selected_name()))

    def _label(self, leaf: str, entry: Entry, now: float) -> Text:
        label = Text(leaf)
        modified = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.modified))
        label.append(f"  {human_size(entry.size)} · {modified}", style="dim")
        what = kind(entry)
        if what:
            label.append(f"  {what}", style="cyan")
        when = expiry(entry, now)
        if when:
            label.append(f"  {when[0]}", style=when[1])
        return label

    def selected_name(self) -> str | None:
        """The entry (or `folder/`) under the cursor."""
        node = self.cursor_node
        return (node.data or None) if node is not None else None

    def select_name(self, name: str) -> None:
        for line in range(self.last_line + 1):
            node = self.get_node_at_line(line)
            if node is not None and node.data == name:
                self.move_cursor(node)
                return

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        event.stop()
        self.post_message(EntrySelected(event.node.data or None))
