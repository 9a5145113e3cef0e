"""The unlocked vault: the entry tree, filter-as-you-type, the detail pane, and every action.

Each action has a key in the footer and a command in the palette (ACTIONS). Writes run in a
thread worker under the app's vault lock; the tree is rebuilt from the vault afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, Input

from locker.errors import ExistsError, LockerError
from locker.text import iso_time, plural, printable
from locker.tui.messages import EntrySelected
from locker.tui.screens.base import LockerScreen
from locker.tui.screens.dialogs import (
    AddModal,
    ConfirmModal,
    NewPassphraseModal,
    PromptModal,
    TextModal,
)
from locker.tui.widgets.detail import EntryDetail
from locker.tui.widgets.entry_tree import EntryTree
from locker.tui.widgets.status import StatusBar
from locker.tui.words import reported
from locker.vault_slots import OLD_COPY_NOTE

if TYPE_CHECKING:
    from locker.vault import Vault

# (key, action, footer label, palette help); the palette shows "locker: <label>".
ACTIONS = [
    ("a", "add", "Add", "add a file to the vault"),
    ("e", "edit", "Edit", "edit the selected entry in $EDITOR"),
    ("r", "rename", "Rename", "rename or move the selected entry or folder"),
    ("x,delete", "remove", "Remove", "remove the selected entry or folder (asks first)"),
    ("g", "get", "Get", "write the selected entry or folder to a directory"),
    ("c", "copy", "Copy", "copy the selected entry to the clipboard (cleared after 30 s)"),
    ("v", "reveal", "Reveal", "show the selected entry's content for 15 s"),
    ("m", "mount", "Mount", "mount the vault to a private RAM directory"),
    ("l", "lock", "Lock", "lock the vault now"),
    ("p", "passwd", "Passphrase", "change the passphrase (rewraps the key slot)"),
    ("y", "verify", "Verify", "decrypt every entry and report failures"),
    ("h", "log", "Log", "show the vault's audit log"),
    ("k", "slots", "Slots", "list the key slots; add a passphrase or recovery key, remove one"),
    ("o", "export", "Export", "export entries to a protected bundle (e.g. on a USB stick)"),
    ("b", "import", "Import", "import a protected bundle's entries (e.g. from a USB stick)"),
    ("i", "inspect", "Inspect", "expiry, key age and key pairs of what the vault holds"),
    ("n", "gen", "Generate", "generate a JWT signing key, TLS key or secret in the vault"),
    ("w", "sweep", "Sweep", "find plaintext secrets in a directory and move them in"),
    ("question_mark", "help", "Help", "show the keys"),
]


class MainScreen(LockerScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        *(Binding(key, action, label) for key, action, label, _ in ACTIONS),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Input(placeholder="/ filter", id="filter")
        with Horizontal(id="panes"):
            yield EntryTree(id="entries")
            yield EntryDetail(id="detail")
        yield Footer()

    @reported
    def on_mount(self) -> None:
        self.refresh_entries()
        self.query_one(EntryTree).focus()
        self.call_after_refresh(self.locker.tick)

    # -- the list ----------------------------------------------------------------------------

    def refresh_entries(self, select: str | None = None) -> None:
        tree = self.query_one(EntryTree)
        tree.show(self.vault.entries(), self.query_one("#filter", Input).value)
        if select:
            tree.select_name(select)

    @on(Input.Changed, "#filter")
    @reported
    def filter_changed(self) -> None:
        self.refresh_entries()

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one(EntryTree).focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one(EntryTree).focus()

    @on(EntrySelected)
    @reported
    def selected(self, message: EntrySelected) -> None:
        detail = self.query_one(EntryDetail)
        name = message.name
        if name is None:
            detail.show(None)
        elif name.endswith("/"):
            detail.show(None, len(self._under(name)))
        elif name in self.vault.names():
            detail.show(self.vault.entry(name))
        else:
            detail.show(None)

    def _under(self, folder: str) -> list[str]:
        return [n for n in self.vault.names() if n.startswith(folder)]

    def _selected(self, leaf_only: bool = False) -> str | None:
        name = self.query_one(EntryTree).selected_name()
        if name is None or (leaf_only and name.endswith("/")):
            self.notify("select an entry first", severity="warning")
            return None
        return name

    # -- running library calls ---------------------------------------------------------------

    def write(self, what: Callable[[Vault], str], select: str | None = None) -> None:
        """`what` on the vault in a worker (`change_vault`); the tree is rebuilt after."""
        self.change_vault(what, lambda _: self.refresh_entries(select))

    # -- actions -----------------------------------------------------------------------------

    def action_add(self) -> None:
        folder = self.query_one(EntryTree).selected_name() or ""
        prefix = (
            folder if folder.endswith("/") else folder.rpartition("/")[0] + "/" * ("/" in folder)
        )
        self.app.push_screen(AddModal(Path.cwd(), prefix), self._add)

    def _add(self, picked: tuple[Path, str] | None, force: bool = False) -> None:
        if picked is None:
            return
        path, name = picked

        def add(v: Vault) -> str:
            try:
                v.add_file(name, path, force=force)
            except ExistsError:
                self.app.call_from_thread(self._ask_replace, picked)
                return ""
            v.record("add", (name,))
            v.commit()
            return f"added {name}"

        self.write(add, name)

    @reported
    def _ask_replace(self, picked: tuple[Path, str]) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self._add(picked, force=True)

        self.app.push_screen(ConfirmModal(f"replace {printable(picked[1])}?"), answer)

    def action_edit(self) -> None:
        name = self._selected(leaf_only=True)
        if name:
            self.locker.edit(name, lambda: self.refresh_entries(name))

    def action_rename(self) -> None:
        name = self._selected()
        if not name:
            return

        def rename(new: str | None) -> None:
            if not new or new == name:
                return
            self.write(lambda v: _move(v, name, new), new.rstrip("/"))

        self.app.push_screen(PromptModal(f"rename {printable(name)} to:", name), rename)

    def action_remove(self) -> None:
        name = self._selected()
        if not name:
            return
        names = self._under(name) if name.endswith("/") else [name]
        what = printable(name) + (f" ({plural(len(names), 'entry', 'entries')})" * (len(names) > 1))

        def remove(yes: bool | None) -> None:
            if yes:
                self.write(lambda v: _remove(v, names))

        self.app.push_screen(ConfirmModal(f"remove {what}?"), remove)

    def action_get(self) -> None:
        name = self._selected()
        if not name:
            return
        names = self._under(name) if name.endswith("/") else [name]

        def get(target: str | None) -> None:
            if target:
                self.write(lambda v: _get(v, names, Path(target).expanduser()))

        self.app.push_screen(
            PromptModal(f"write {printable(name)} into directory:", os.getcwd()), get
        )

    def action_copy(self) -> None:
        name = self._selected(leaf_only=True)
        if name:
            self.read_text(name, lambda text: self.locker.copy_secret(name, text))

    def action_reveal(self) -> None:
        name = self._selected(leaf_only=True)
        if not name:
            return

        def reveal(yes: bool | None) -> None:
            if yes:
                self.read_text(name, lambda text: self.locker.reveal(name, text))

        self.app.push_screen(ConfirmModal(f"show the content of {printable(name)}?"), reveal)

    @work(thread=True, exit_on_error=False, group="vault")
    def read_text(self, name: str, then: Callable[[str], Any]) -> None:
        try:
            with self.locker.vault_lock:
                data = self.vault.read_bytes(name)
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.app.call_from_thread(
                self.locker.report,
                LockerError(f"{name} is not text; use get to write it to a file"),
            )
            return
        except Exception as exc:
            self.app.call_from_thread(self.locker.report, exc)
            return
        self.app.call_from_thread(then, text)

    def action_mount(self) -> None:
        from locker.tui.screens.mount import MountScreen

        self.app.push_screen(MountScreen())

    def action_lock(self) -> None:
        self.locker.lock_now("locked from the TUI")

    def action_passwd(self) -> None:
        self.vault.require_passphrase_slot()  # said before the passphrase is asked

        def change(secret: bytearray | None) -> None:
            if secret is not None:
                self.notify("deriving the new key (Argon2id)…")
                self.write(lambda v: _passwd(v, secret))

        self.app.push_screen(NewPassphraseModal(), change)

    def action_slots(self) -> None:
        from locker.tui.screens.slots import SlotScreen

        self.app.push_screen(SlotScreen())

    def action_verify(self) -> None:
        self.notify("verifying every entry…")
        self.write(_verify)

    def action_log(self) -> None:
        lines = []
        for e in self.vault.log():
            names = " ".join(e.names)
            detail = f" ({e.detail})" if e.detail else ""
            lines.append(f"{iso_time(e.time)}  {e.user}@{e.host}  {e.event:<8} {names}{detail}")
        self.app.push_screen(TextModal("audit log", printable("\n".join(lines)) or "empty"))

    # The screens below load only when asked for: the first draw stays cheap.

    def action_export(self) -> None:
        from locker.tui.screens.export import ExportModal

        self.app.push_screen(
            ExportModal(self.locker, self.query_one(EntryTree).selected_name() or "")
        )

    def action_import(self) -> None:
        from locker.tui.screens.bundle_import import ImportModal

        self.app.push_screen(ImportModal(self.locker), self._show_entry)

    def action_inspect(self) -> None:
        from locker.tui.screens.inspect import InspectScreen

        self.app.push_screen(InspectScreen(self.locker), self._show_entry)

    def action_gen(self) -> None:
        from locker.tui.screens.gen import GenModal

        folder = self.query_one(EntryTree).selected_name() or ""
        self.app.push_screen(GenModal(self.locker, folder.rpartition("/")[0]), self._show_entry)

    def action_sweep(self) -> None:
        from locker.tui.screens.sweep import SweepScreen

        self.app.push_screen(SweepScreen(self.locker, Path.cwd()), self._show_entry)

    def _show_entry(self, name: str | None) -> None:
        """Back from a screen that named an entry (made, imported, chosen): show it."""
        if self.is_attached:
            self.refresh_entries(name)

    def action_help(self) -> None:
        rows = [f"{'/':<10} filter as you type (Esc clears)"]
        rows += [f"{key.split(',')[0]:<10} {help}" for key, _, _, help in ACTIONS]
        rows += [
            f"{'s':<10} stay unlocked (when the lock warning shows)",
            f"{'ctrl+p':<10} command palette: every action by name",
            f"{'q':<10} lock and quit",
        ]
        self.app.push_screen(TextModal("keys", "\n".join(rows).replace("question_mark", "?")))


def _move(v: Vault, old: str, new: str) -> str:
    """An entry, or every entry under a folder, as `locker mv` does."""
    if old.endswith("/"):
        moves = [(n, new.rstrip("/") + "/" + n[len(old) :]) for n in v.names() if n.startswith(old)]
    else:
        moves = [(old, new)]
    for src, dst in moves:
        v.rename(src, dst)
    v.record("mv", (old.rstrip("/"), new.rstrip("/")), plural(len(moves), "entry", "entries"))
    v.commit()
    return f"renamed {old} -> {new}"


def _remove(v: Vault, names: list[str]) -> str:
    for name in names:
        v.remove(name)
    v.record("rm", tuple(names))
    v.commit()
    return "removed " + ", ".join(names) if len(names) < 4 else f"removed {len(names)} entries"


def _get(v: Vault, names: list[str], target: Path) -> str:
    from locker.store import safefs

    if not target.is_dir():
        target.mkdir(mode=0o700)
    root = safefs.open_dir(target, follow=True)
    try:
        for name in names:
            safefs.write_file(root, name, v.chunks(name))
    finally:
        os.close(root)
    return f"wrote {plural(len(names), 'entry', 'entries')} into {target}"


def _passwd(v: Vault, secret: bytearray) -> str:
    try:
        v.change_passphrase(secret)
        v.record("passwd", detail=f"slot {v.unlocked_slot.slot_id.hex()}")
        v.commit()
    finally:
        secret[:] = bytes(len(secret))
    return (
        f"passphrase changed (key slot rewrapped; no entry was re-encrypted)\nnote: {OLD_COPY_NOTE}"
    )


def _verify(v: Vault) -> str:
    count = len(v.entries())
    failures = v.verify()
    if failures:
        raise LockerError(
            f"{len(failures)} of {count} entries failed verification: " + "; ".join(failures)
        )
    return f"ok: header, index and {plural(count, 'entry', 'entries')} verified"
