"""Sweep: scan a directory for plaintext secrets (`know.sweep`, in a thread worker), list them
worst first as `locker sweep` does, and move the chosen ones in: add, commit and verify by
reading back; then, only when asked and confirmed, shred the originals. Each step says what
it did per file; a file that changed, or did not verify, is left in place with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Static

from locker.errors import UsageError
from locker.text import plural, printable
from locker.tui.screens.base import staging
from locker.tui.screens.dialogs import ConfirmModal
from locker.tui.words import as_text, reported

if TYPE_CHECKING:
    from locker.know.sweep import Finding, Held
    from locker.tui.app import LockerApp
    from locker.vault import Vault

CHECK = ("[ ]", "[x]")


class SweepScreen(Screen[str | None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("space", "choose", "Choose"),
        Binding("a", "all", "Choose all"),
        Binding("i", "import", "Import chosen"),
    ]

    def __init__(self, app: LockerApp, start: Path) -> None:
        super().__init__()
        self.locker, self.start = app, start
        self.found: list[Finding] = []
        self.chosen: set[int] = set()
        self.state: dict[Path, str] = {}  # what happened to a file, in words
        self.in_vault: set[Path] = set()
        self.shredded: set[Path] = set()
        self.seen = 0
        self.first_imported: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="sweep"):
            with Horizontal(id="sweep-where"):
                yield Input(str(self.start), placeholder="directory to scan", id="root")
                yield Button("Scan", id="scan", variant="primary")
            yield DataTable(id="findings", cursor_type="row")
            yield Static("type a directory and press Enter to scan it", id="sweep-state")
        yield Footer()

    def on_mount(self) -> None:
        from locker.know.sweep import HEADINGS

        self.query_one(DataTable).add_columns("", *HEADINGS)
        self.query_one("#root", Input).focus()

    def busy(self) -> bool:
        return any(w.group == "sweep" and not w.is_finished for w in self.workers)

    def say(self, text: str) -> None:
        self.query_one("#sweep-state", Static).update(Text(printable(text)))

    # -- scanning -----------------------------------------------------------------------------

    @on(Input.Submitted, "#root")
    @on(Button.Pressed, "#scan")
    @reported
    def start_scan(self) -> None:
        if self.busy():
            return
        root = Path(self.query_one("#root", Input).value.strip() or ".").expanduser()
        self.say(f"scanning {root}…")
        self.scan(root)

    @work(thread=True, exit_on_error=False, exclusive=True, group="sweep")
    def scan(self, root: Path) -> None:
        from locker.know import sweep as ks

        try:
            if not root.exists():
                raise UsageError(f"no such file or directory: {root}")
            found, seen = ks.sweep([root])
        except Exception as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._scanned, found, seen)

    @reported
    def _scanned(self, found: list[Finding], seen: int) -> None:
        if not self.is_attached:  # the app locked meanwhile
            return
        self.found, self.seen = found, seen
        self.state, self.in_vault, self.shredded = {}, set(), set()
        self.chosen = set(range(len(found)))  # as `sweep --import`: all of them, unless unticked
        self._draw()
        self.query_one(DataTable).focus()

    def _draw(self) -> None:
        from locker.know import sweep as ks

        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for n, f in enumerate(self.found):
            cells = list(ks.cells(f))
            cells[5] = self.state.get(f.path, cells[5])
            colour = "bold red" if f.readable_by != "owner" else ""
            if f.path in self.state:
                colour = "dim" if f.path in self.shredded else "yellow"
            table.add_row(
                Text(CHECK[n in self.chosen]), *(Text(printable(c), style=colour) for c in cells)
            )
        if self.found:
            table.move_cursor(row=min(max(row, 0), len(self.found) - 1))
        left = len(self.found) - len(self.shredded)
        self.say(
            ks.summary(len(self.found), self.seen, len(self.in_vault), left)
            + (f"; {len(self.chosen)} chosen: i imports them" if self.chosen else "")
        )

    @reported
    def _failed(self, exc: BaseException) -> None:
        if not self.is_attached:  # the app locked meanwhile: say it there
            self.locker.report(exc)
            return
        self.say(as_text(exc))
        self.locker.log_unexpected(exc)

    # -- choosing -----------------------------------------------------------------------------

    def action_choose(self) -> None:
        row = self.query_one(DataTable).cursor_row
        if 0 <= row < len(self.found) and self.found[row].path not in self.state:
            self.chosen ^= {row}
            self._draw()

    def action_all(self) -> None:
        left = {n for n, f in enumerate(self.found) if f.path not in self.state}
        self.chosen = set() if self.chosen == left else left
        self._draw()

    # -- importing ----------------------------------------------------------------------------

    def action_import(self) -> None:
        picked = [self.found[n] for n in sorted(self.chosen)]
        if self.busy() or not picked:
            self.notify("choose files first (space, or a for all)", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            vault = self.locker.vault
            if yes and vault is not None:
                self.say(f"importing {plural(len(picked), 'file')}…")
                self.add(vault, picked)

        question = (
            f"move {plural(len(picked), 'file')} into the vault? Each is added and verified; "
            "the originals are shredded only if you say so next"
        )
        self.app.push_screen(ConfirmModal(question), answer)

    @work(thread=True, exit_on_error=False, exclusive=True, group="sweep")
    def add(self, vault: Vault, picked: list[Finding]) -> None:
        from locker.know import sweep as ks

        try:
            held = staging(
                self.locker,
                vault,
                lambda v: ks.import_findings(v, picked),
                "the vault was locked; nothing was imported",
            )
        except Exception as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._added, held)

    @reported
    def _added(self, held: Held) -> None:
        if not self.is_attached:  # the app locked meanwhile
            return
        for path, why in held.reasons.items():
            self.state[path] = f"left in place: {why}"
        for path, (name, _) in held.held.items():
            self.state[path] = f"in the vault as {name}; original still here"
            self.in_vault.add(path)
            self.first_imported = self.first_imported or name
        self.chosen = set()
        self._draw()
        if not held.held:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.shred(held)

        question = (
            f"the vault holds {plural(len(held.held), 'file')}, verified. Shred the originals "
            "now? (overwritten and removed; on SSDs and copy-on-write file systems old blocks "
            "may survive)"
        )
        self.app.push_screen(ConfirmModal(question), answer)

    @work(thread=True, exit_on_error=False, exclusive=True, group="sweep")
    def shred(self, held: Held) -> None:
        from locker.know import sweep as ks

        shredded = ks.shred_held(held)
        self.app.call_from_thread(self._shredded, shredded, held)

    @reported
    def _shredded(self, shredded: dict[Path, str], held: Held) -> None:
        if not self.is_attached:  # the app locked meanwhile
            return
        for path, name in shredded.items():
            self.state[path] = f"in the vault as {name}; original shredded"
            self.shredded.add(path)
        for path in held.held:
            if path not in shredded:
                self.state[path] = f"in the vault; original left in place: {held.reasons[path]}"
        self._draw()
        self.notify(f"shredded {plural(len(shredded), 'original')}")

    def action_back(self) -> None:
        if not self.busy():
            self.dismiss(self.first_imported)
