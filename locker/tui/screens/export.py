"""The export dialog: entries (the selection, a folder, or everything) into a protected bundle
on a drive, removable drives offered first; a new bundle passphrase typed twice or generated
and shown once; optional recipients. `locker.bundle` does the work in a thread worker, with
progress measured by this process's I/O; the dialog ends with "verified" or the CLI's error.
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
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Input, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from locker.errors import LockerError, UsageError
from locker.text import printable
from locker.tui.screens.base import take_new_passphrase, titled
from locker.tui.words import as_text, reported

if TYPE_CHECKING:
    from locker.tui.app import LockerApp
    from locker.vault import Vault

IO_PER_BYTE = 4  # an export reads the source, writes the bundle, reads both back to verify


def lines(text: str) -> Text:
    """Text shown as it is: no markup, each line's control characters escaped."""
    return Text("\n".join(printable(line) for line in text.split("\n")))


def places(cwd: Path, home: Path) -> list[tuple[Path, str]]:
    """Directories a bundle may go to, removable drives first (where sysfs says so)."""
    from locker.store import drives

    found = [(Path(d.mount_point), d.describe()) for d in drives.removable_drives()]
    for path, what in ((cwd, "the current directory"), (home, "your home directory")):
        if all(p != path for p, _ in found):
            found.append((path, what))
    return found


class ExportModal(ModalScreen[None]):
    """Choose, type, export, and see the result; Escape closes (not while writing)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, app: LockerApp, selected: str) -> None:
        super().__init__()
        self.locker, self.selected = app, selected
        self.base_io = 0
        self.expected_io = 1
        self.timer: Timer | None = None

    def compose(self) -> ComposeResult:
        stem = self.locker.vault_path.stem or "vault"
        choices = places(Path.cwd(), Path.home())
        with Vertical(classes="dialog wide tall", id="export"):
            yield Label("export to a protected bundle", classes="question")
            with VerticalScroll():
                yield titled(Input(self.selected, id="names"), "entries, folders/ (empty: all)")
                yield titled(
                    Input(str(choices[0][0] / f"{stem}-bundle.locker"), id="target"), "bundle file"
                )
                yield OptionList(
                    *(Option(printable(f"{p}  ({what})"), id=str(p)) for p, what in choices),
                    id="places",
                )
                yield Checkbox("generate a passphrase (shown once, stored nowhere)", id="generate")
                with Horizontal(id="passphrases"):
                    yield titled(Input(password=True, id="first"), "bundle passphrase")
                    yield titled(Input(password=True, id="second"), "repeat it")
                yield titled(Input(id="recipients"), "recipients, optional: age1... age1...")
                yield Static("", id="problem", classes="error")
                yield ProgressBar(total=100, show_eta=False, id="export-progress")
                yield Static("", id="result")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close")
                yield Button("Export", id="run", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#export-progress", ProgressBar).display = False
        self.query_one("#names", Input).focus()

    # -- the form ----------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#places")
    @reported
    def place_picked(self, event: OptionList.OptionSelected) -> None:
        target = self.query_one("#target", Input)
        name = Path(target.value).name or "bundle.locker"
        target.value = str(Path(event.option.id or ".") / name)
        target.focus()

    @on(Checkbox.Changed, "#generate")
    @reported
    def generate_changed(self, event: Checkbox.Changed) -> None:
        for field in self.query("#first, #second").results(Input):
            field.disabled = event.value
            field.value = ""

    @on(Input.Submitted)
    @reported
    def next_field(self, event: Input.Submitted) -> None:
        if event.input.id == "recipients":
            self.start()
        else:
            self.focus_next()

    @on(Button.Pressed, "#run")
    @reported
    def run_pressed(self) -> None:
        self.start()

    @on(Button.Pressed, "#close")
    def close_pressed(self) -> None:
        self.action_close()

    def action_close(self) -> None:
        if not self.running():
            self.dismiss(None)

    def running(self) -> bool:
        return any(w.group == "export" and not w.is_finished for w in self.workers)

    def say(self, text: str) -> None:
        self.query_one("#problem", Static).update(lines(text))

    # -- the export ---------------------------------------------------------------------------

    def start(self) -> None:
        """Check the form, then export in the worker; a problem is said and nothing runs."""
        if self.running():
            return
        from locker import bundle

        vault = self.locker.vault
        try:
            if vault is None:
                raise LockerError("the vault is locked")
            names = bundle.select(vault, self.query_one("#names", Input).value.split())
            if not names:
                raise UsageError("the vault holds no entries; nothing to export")
            target = self._target()
            recipients = self._recipients()
        except LockerError as exc:
            self.say(as_text(exc))
            return
        secret = self._passphrase(bool(recipients))
        if isinstance(secret, str):
            self.say(secret)
            return
        for widget in self.query("Input, Checkbox, OptionList, #run"):
            widget.disabled = True
        self.say("")
        generated = self.query_one("#generate", Checkbox).value
        self.export(vault, names, target, recipients, secret, generated)

    def _target(self) -> Path:
        text = self.query_one("#target", Input).value.strip()
        if not text:
            raise UsageError("type the bundle's file name")
        target = Path(os.path.abspath(Path(text).expanduser()))
        if target == Path(os.path.abspath(self.locker.vault_path)):
            raise UsageError("the bundle cannot be the vault itself")
        return target

    def _recipients(self) -> list[bytes]:
        texts = self.query_one("#recipients", Input).value.replace(",", " ").split()
        if not texts:
            return []
        from locker.slots import recipient

        return [recipient.parse_recipient(text) for text in texts]

    def _passphrase(self, recipients: bool) -> bytearray | str | None:
        """The generated or typed passphrase; None for recipients only; or what is wrong."""
        from locker import bundle

        if self.query_one("#generate", Checkbox).value:
            return bundle.generated_passphrase()
        first, second = self.query_one("#first", Input), self.query_one("#second", Input)
        if recipients and not first.value and not second.value:
            return None
        return take_new_passphrase(first, second)

    @work(thread=True, exit_on_error=False, exclusive=True, group="export")
    def export(
        self,
        vault: Vault,
        names: list[str],
        target: Path,
        recipients: list[bytes],
        secret: bytearray | None,
        generated: bool,
    ) -> None:
        from locker import bundle

        try:
            with self.locker.vault_lock:
                self._still_open(vault)
                entries = [vault.entry(n) for n in names]
                size = bundle.bundle_size(entries)
                drive = bundle.check_target(target, size, entries)
            # Not under the vault lock: the app's thread may be waiting for it (to lock).
            self.app.call_from_thread(self._started, bundle.starting(entries, target, drive), size)
            with self.locker.vault_lock:  # the vault is read, not changed (bundle.export)
                self._still_open(vault)
                done = bundle.export(
                    vault, target, names, secret, self.locker.kdf_cost, recipients=recipients
                )
        except Exception as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        finally:
            shown = secret.decode("ascii") if generated and secret is not None else None
            if secret is not None:
                secret[:] = bytes(len(secret))
        said = bundle.finished(done, len(recipients), secret is not None, shown)
        if done.unlogged:
            said.insert(1, f"warning: {done.unlogged}; the bundle is complete")
        self.app.call_from_thread(self._done, said)

    def _still_open(self, vault: Vault) -> None:
        if self.locker.vault is not vault:
            raise LockerError("the vault was locked; nothing was exported")

    @reported
    def _started(self, text: str, size: int) -> None:
        from locker.mount.process import io_bytes

        if not self.is_attached:
            return
        self.query_one("#result", Static).update(lines(text))
        bar = self.query_one("#export-progress", ProgressBar)
        bar.display = True
        bar.update(progress=0)
        self.base_io, self.expected_io = io_bytes(), max(1, IO_PER_BYTE * size)
        self.timer = self.set_interval(0.1, self._measure)

    @reported
    def _measure(self) -> None:
        from locker.mount.process import io_bytes

        done = 100 * (io_bytes() - self.base_io) / self.expected_io
        self.query_one("#export-progress", ProgressBar).update(progress=min(99.0, done))

    def _finish(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        for widget in self.query("#close, #run"):
            widget.disabled = False
        self.query_one("#close", Button).focus()

    @reported
    def _done(self, result: list[str]) -> None:
        if not self.is_attached:  # the app locked meanwhile: the notification still says it
            self.notify(printable(result[0]))
            return
        self._finish()
        self.query_one("#export-progress", ProgressBar).update(progress=100)
        self.query_one("#result", Static).update(lines("\n".join(result)))
        self.query_one("#run", Button).disabled = True
        self.add_class("verified")
        self.notify(printable(result[0]))

    @reported
    def _failed(self, exc: BaseException) -> None:
        if not self.is_attached:
            self.locker.report(exc)
            return
        self._finish()
        self.query_one("#export-progress", ProgressBar).display = False
        self.query_one("#result", Static).update("")
        self.say(as_text(exc))
        for widget in self.query("Input, Checkbox, OptionList"):
            widget.disabled = False
        if self.query_one("#generate", Checkbox).value:
            self.query("#first, #second").set(disabled=True)
        self.locker.log_unexpected(exc)
