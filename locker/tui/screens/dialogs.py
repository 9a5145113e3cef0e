"""Modal dialogs with typed results: confirm, a line of text, a new passphrase, a file to add,
a page of text, and the timed reveal of a secret."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, Static

from locker.tui.screens.base import take_new_passphrase
from locker.tui.words import reported


class ConfirmModal(ModalScreen[bool]):
    """A question naming the thing; Enter on the focused button, default No."""

    BINDINGS = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button("No", id="no", variant="primary")
                yield Button("Yes", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptModal(ModalScreen[str | None]):
    """One line of text (a new name, a directory); Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question, self.value = question, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Input(self.value, id="answer")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AddModal(ModalScreen[tuple[Path, str] | None]):
    """Pick a file (type its path or choose it in the tree) and the entry name to store it as."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, start: Path, prefix: str = "") -> None:
        super().__init__()
        self.start, self.prefix = start, prefix

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("add a file: type its path, or pick it below", classes="question")
            yield Input(placeholder="path of the file", id="path")
            yield DirectoryTree(self.start, id="picker")
            yield Label("as entry name (empty: the file's name)")
            yield Input(placeholder="entry name", id="name")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(DirectoryTree.FileSelected)
    @reported
    def picked(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#path", Input).value = str(event.path)
        name = self.query_one("#name", Input)
        name.value = self.prefix + event.path.name
        name.focus()

    @on(Input.Submitted, "#path")
    @reported
    def path_done(self, event: Input.Submitted) -> None:
        name = self.query_one("#name", Input)
        if not name.value and event.value.strip():
            name.value = self.prefix + Path(event.value.strip()).name
        name.focus()

    @on(Input.Submitted, "#name")
    @reported
    def name_done(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        name = self.query_one("#name", Input).value.strip()
        if not path:
            return
        try:
            chosen = Path(path).expanduser()
        except RuntimeError:  # ~someone with no home directory here
            self.notify(f"cannot expand {path}: no such user's home", severity="error")
            return
        self.dismiss((chosen, name or chosen.name))

    def action_cancel(self) -> None:
        self.dismiss(None)


class NewPassphraseModal(ModalScreen[bytearray | None]):
    """A new passphrase typed twice, masked."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("new passphrase", classes="question")
            yield Input(password=True, id="first", placeholder="new passphrase")
            yield Input(password=True, id="second", placeholder="repeat it")
            yield Label("", id="problem", classes="error")

    @on(Input.Submitted, "#first")
    def first_done(self) -> None:
        self.query_one("#second", Input).focus()

    @on(Input.Submitted, "#second")
    def second_done(self) -> None:
        secret = take_new_passphrase(
            self.query_one("#first", Input), self.query_one("#second", Input)
        )
        if isinstance(secret, str):
            self.query_one("#problem", Label).update(secret)
        else:
            self.dismiss(secret)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextModal(ModalScreen[None]):
    """A page of text (help, the audit log, a verify report); Escape or q closes it."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, body: str | Text) -> None:
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide tall"):
            yield Label(self.title_text, classes="question")
            with VerticalScroll():
                yield Static(self.body, id="body")

    def action_close(self) -> None:
        self.dismiss(None)


class RevealModal(ModalScreen[None]):
    """An entry's content, shown on purpose; the app hides it when its time is up."""

    BINDINGS = [Binding("escape,q,v", "close", "Hide")]

    def __init__(self, name: str, text: str, seconds: float) -> None:
        super().__init__()
        self.name_text, self.text, self.seconds = name, text, seconds

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide tall"):
            yield Label(f"{self.name_text}: hidden again in {self.seconds:g} s", classes="question")
            with VerticalScroll():
                yield Static(Text(self.text), id="secret")

    def action_close(self) -> None:
        self.dismiss(None)
