"""The import dialog: a protected bundle's entries merged into the vault, as `locker import`
does. Pick the bundle (bundles on removable drives and here are offered), open it with its
passphrase or the age identity it was made for, see what it holds and which names the vault
has already, choose what happens to those (stop, skip, overwrite, rename: the CLI's
`--on-conflict`), then import in one save. `locker.bundle` does the work and says what would
happen (`bundle.plan`); an error is said in the dialog and leaves the vault as it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from locker.errors import ExistsError, LockerError, UsageError
from locker.text import printable, size_text
from locker.tui.screens.base import staging, titled
from locker.tui.words import as_text, reported

if TYPE_CHECKING:
    from locker.bundle import Step
    from locker.tui.app import LockerApp
    from locker.vault import Key, Vault

POLICIES = [
    ("a name the vault has: import nothing (stop)", "stop"),
    ("a name the vault has: skip it", "skip"),
    ("a name the vault has: overwrite the vault's entry", "overwrite"),
    ("a name the vault has: keep both, import as NAME.imported", "rename"),
]
MOST_OFFERED = 20


def found_bundles(cwd: Path, home: Path, vault: Path) -> list[tuple[Path, str]]:
    """`*.locker` files on removable drives (first), here and in the home directory; never
    the vault itself."""
    from locker.tui.screens.export import places

    mine = Path(os.path.abspath(vault))
    found: list[tuple[Path, str]] = []
    for place, what in places(cwd, home):
        try:
            files = sorted(p for p in place.glob("*.locker") if p.is_file())
        except OSError:
            continue
        found += [(p, what) for p in files if Path(os.path.abspath(p)) != mine]
    return found[:MOST_OFFERED]


class ImportModal(ModalScreen[str | None]):
    """Pick, open, preview, import; closing returns an imported entry's name (or None)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, app: LockerApp) -> None:
        super().__init__()
        self.locker = app
        self.bundle: Vault | None = None
        self.imported: str | None = None

    def compose(self) -> ComposeResult:
        offered = found_bundles(Path.cwd(), Path.home(), self.locker.vault_path)
        with Vertical(classes="dialog wide tall", id="import"):
            yield Label("import a protected bundle", classes="question")
            with VerticalScroll():
                first = str(offered[0][0]) if offered else ""
                yield titled(Input(first, id="source"), "bundle file")
                yield OptionList(
                    *(Option(printable(f"{p}  ({what})"), id=str(p)) for p, what in offered),
                    id="offered",
                )
                with Horizontal(id="bundle-key"):
                    yield titled(Input(password=True, id="bundle-passphrase"), "bundle passphrase")
                    yield titled(Input(id="identity"), "or the identity file it was made for")
                yield titled(Input(id="names"), "entries, folders/ (empty: all)")
                yield Select(POLICIES, value="stop", allow_blank=False, id="on-conflict")
                yield Static("", id="summary")
                yield DataTable(id="preview", cursor_type="row", zebra_stripes=True)
                yield Static("", id="problem", classes="error")
                yield Static("", id="result")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close")
                yield Button("Open", id="open")
                yield Button("Import", id="run", variant="primary", disabled=True)

    @reported
    def on_mount(self) -> None:
        self.query_one("#offered", OptionList).display = bool(
            self.query_one("#offered", OptionList).option_count
        )
        table = self.query_one("#preview", DataTable)
        table.add_columns("entry in the bundle", "size", "in this vault")
        table.display = False
        source = self.query_one("#source", Input)
        (self.query_one("#bundle-passphrase") if source.value else source).focus()

    def on_unmount(self) -> None:
        self._close_bundle()

    # -- the form ----------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#offered")
    @reported
    def offered_picked(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#source", Input).value = event.option.id or ""
        self.query_one("#bundle-passphrase", Input).focus()

    @on(Input.Changed, "#source, #identity")
    @reported
    def bundle_changed(self) -> None:
        if self.bundle is not None:  # another bundle or key: open it again
            self._close_bundle()
            self._preview()

    @on(Input.Changed, "#names")
    @on(Select.Changed, "#on-conflict")
    @reported
    def choice_changed(self) -> None:
        self._preview()

    @on(Input.Submitted)
    @reported
    def next_field(self, event: Input.Submitted) -> None:
        if event.input.id in ("bundle-passphrase", "identity") and self.bundle is None:
            self.start_open()
        elif event.input.id == "names" and self.bundle is not None:
            self.query_one("#run", Button).focus()
        else:
            self.focus_next()

    @on(Button.Pressed, "#open")
    @reported
    def open_pressed(self) -> None:
        self.start_open()

    @on(Button.Pressed, "#run")
    @reported
    def run_pressed(self) -> None:
        self.start_import()

    @on(Button.Pressed, "#close")
    def close_pressed(self) -> None:
        self.action_close()

    def action_close(self) -> None:
        if not self.running():
            self.dismiss(self.imported)

    def running(self) -> bool:
        return any(not w.is_finished for w in self.workers)

    def say(self, text: str) -> None:
        self.query_one("#problem", Static).update(Text(text))

    def _close_bundle(self) -> None:
        bundle, self.bundle = self.bundle, None
        if bundle is not None:
            bundle.close()

    # -- opening the bundle and the preview ----------------------------------------------------

    def start_open(self) -> None:
        """Check the path and the key, then open the bundle in a worker (its KDF runs there)."""
        if self.running():
            return
        from locker import bundle

        self._close_bundle()
        passphrase = self.query_one("#bundle-passphrase", Input)
        identity = self.query_one("#identity", Input).value.strip()
        try:
            text = self.query_one("#source", Input).value.strip()
            if not text:
                raise UsageError("type the bundle's file name")
            source = bundle.check_source(Path(text).expanduser(), self.locker.vault_path)
            if not identity and not passphrase.value:
                raise UsageError("type the bundle's passphrase, or name the identity file")
        except LockerError as exc:
            self.say(as_text(exc))
            return
        secret = None if identity else bytearray(passphrase.value.encode())
        passphrase.value = ""
        self.say("")
        self.query_one("#result", Static).update("opening the bundle…")
        self.query("#open, #run").set(disabled=True)
        self.open_bundle(source, secret, Path(identity).expanduser() if identity else None)

    @work(thread=True, exit_on_error=False, exclusive=True, group="open")
    def open_bundle(self, source: Path, secret: bytearray | None, identity: Path | None) -> None:
        from locker import bundle
        from locker.vault import Vault

        try:
            key: Key = bundle.identity_openers([identity]) if identity else secret or bytearray()
            opened = Vault.open(source, key)
        except Exception as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        finally:
            if secret is not None:
                secret[:] = bytes(len(secret))
        self.app.call_from_thread(self._opened, opened)

    @reported
    def _opened(self, opened: Vault) -> None:
        if not self.is_attached or self.locker.vault is None:
            opened.close()
            return
        self.bundle = opened
        self.query_one("#result", Static).update("")
        self.query_one("#open", Button).disabled = False
        self._preview()
        run = self.query_one("#run", Button)
        (run if not run.disabled else self.query_one("#on-conflict", Select)).focus()
        self.query_one("#preview", DataTable).scroll_visible()

    def _preview(self) -> None:
        """What the import would do with each entry, in `bundle.plan`'s words; a problem
        (an unsafe name, a name the bundle lacks) is said, and Import stays off."""
        from locker import bundle

        table = self.query_one("#preview", DataTable)
        table.clear()
        run = self.query_one("#run", Button)
        run.disabled = True
        table.display = self.bundle is not None
        if self.bundle is None or self.locker.vault is None:
            self.query_one("#summary", Static).update("")
            return
        policy = str(self.query_one("#on-conflict", Select).value)
        try:
            names = bundle.select(self.bundle, self.query_one("#names", Input).value.split())
            steps = bundle.plan(names, self.locker.vault.names(), _policy(policy))
        except LockerError as exc:
            self.say(as_text(exc))
            self.query_one("#summary", Static).update("")
            return
        self.say("")
        for step in steps:
            size = size_text(self.bundle.entry(step.name).size)
            table.add_row(printable(step.name), size, printable(_fate(step, policy)))
        clashes = [s.name for s in steps if s.exists]
        summary = f"{len(steps)} of the bundle's {len(self.bundle.names())} entries"
        if clashes:
            summary += f"; {len(clashes)} of these names the vault has already"
        self.query_one("#summary", Static).update(Text(printable(summary)))
        run.disabled = not steps or (bool(clashes) and policy == "stop")
        if clashes and policy == "stop":
            self.say("the vault has these names already: choose what happens to them above")

    # -- the import --------------------------------------------------------------------------

    def start_import(self) -> None:
        if self.running() or self.bundle is None:
            return
        from locker import bundle

        vault = self.locker.vault
        policy = str(self.query_one("#on-conflict", Select).value)
        try:
            if vault is None:
                raise LockerError("the vault is locked")
            names = bundle.select(self.bundle, self.query_one("#names", Input).value.split())
        except LockerError as exc:
            self.say(as_text(exc))
            return
        self.query("Input, Select, OptionList, #open, #run").set(disabled=True)
        self.query_one("#result", Static).update("importing…")
        self.import_entries(vault, self.bundle, names, _policy(policy))

    @work(thread=True, exit_on_error=False, exclusive=True, group="import")
    def import_entries(
        self, vault: Vault, source: Vault, names: list[str], policy: str | None
    ) -> None:
        from locker import bundle

        try:
            done = staging(
                self.locker,
                vault,
                lambda v: bundle.import_bundle(v, source, names, policy),
                "the vault was locked; nothing was imported",
            )
        except Exception as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._done, bundle.import_lines(done), done.added)

    @reported
    def _done(self, lines: list[str], added: list[tuple[str, str]]) -> None:
        if not self.is_attached:  # the app locked meanwhile: the notification still says it
            self.notify(printable(lines[-1]))
            return
        self.imported = added[0][1] if added else None
        self._close_bundle()
        self.query_one("#preview", DataTable).display = False
        self.query_one("#summary", Static).update("")
        self.query_one("#result", Static).update(Text("\n".join(printable(x) for x in lines)))
        self.query("Input, Select, OptionList, #open").set(disabled=False)
        self.query_one("#close", Button).focus()
        self.notify(printable(lines[-1]))

    @reported
    def _failed(self, exc: BaseException) -> None:
        if not self.is_attached:
            self.locker.report(exc)
            return
        self.query_one("#result", Static).update("")
        self.query("Input, Select, OptionList, #open").set(disabled=False)
        self._preview()
        message = as_text(exc)
        if isinstance(exc, ExistsError):  # the library's hint names the CLI's option
            message = message.split("\n")[0] + "\nhint: choose skip, overwrite or rename above"
        self.say(message)
        self.locker.log_unexpected(exc)


def _policy(choice: str) -> str | None:
    return None if choice == "stop" else choice


def _fate(step: Step, policy: str) -> str:
    """What happens to one entry, as the preview's last column says it."""
    if not step.exists:
        return "new"
    if policy == "stop":
        return "exists: stops the import"
    if step.as_name is None:
        return "exists: skipped"
    if step.as_name != step.name:
        return f"exists: imported as {step.as_name}"
    return "exists: replaced"
