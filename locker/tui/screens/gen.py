"""The gen dialog: a JWT signing key, a TLS key (and its CSR) or a random secret, made in memory
and stored in the vault under a name, as `locker gen jwt|tls|secret` does (`know.gen` makes
and stores it; a thread worker runs it). Shows what the CLI prints: the public JWK, the CSR, or
what was stored; c copies it (it is public)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from locker.errors import LockerError, UsageError
from locker.text import printable
from locker.tui.words import as_text, reported

if TYPE_CHECKING:
    from locker.tui.app import LockerApp
    from locker.vault import Vault

KINDS = [
    ("JWT signing key, ES256", "jwt ES256"),
    ("JWT signing key, ES384", "jwt ES384"),
    ("JWT signing key, EdDSA", "jwt EdDSA"),
    ("JWT signing key, RS256", "jwt RS256"),
    ("TLS key, EC P-256, and its CSR", "tls ec"),
    ("TLS key, RSA 3072, and its CSR", "tls rsa"),
    ("TLS key, Ed25519, and its CSR", "tls ed25519"),
    ("random secret (HMAC), base64", "secret"),
]


class GenModal(ModalScreen[str | None]):
    """Choose what, name it, generate; closing returns the new entry's name (or None)."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("ctrl+y", "copy", "Copy result")]

    def __init__(self, app: LockerApp, folder: str = "") -> None:
        super().__init__()
        self.locker, self.folder = app, folder
        self.made: str | None = None
        self.result = ""

    def compose(self) -> ComposeResult:
        prefix = self.folder + "/" if self.folder else ""
        with Vertical(classes="dialog wide tall", id="gen"):
            yield Label("generate a key or secret inside the vault", classes="question")
            with VerticalScroll():
                yield Select(KINDS, value="jwt ES256", allow_blank=False, id="kind")
                yield Input(prefix, placeholder="entry name", id="name", select_on_focus=False)
                yield Input(placeholder="TLS: the subject's common name (CN)", id="cn")
                yield Input(placeholder="TLS: SANs, DNS names or IPs (default: the CN)", id="sans")
                yield Input("32", placeholder="secret: how many bytes", id="bytes")
                yield Input(placeholder="TLS: also write the CSR to this file", id="csr")
                yield Checkbox("replace an entry of that name", id="force")
                yield Static("", id="problem", classes="error")
                yield Static("", id="result")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close")
                yield Button("Generate", id="run", variant="primary")

    @reported
    def on_mount(self) -> None:
        self.kind_changed()
        self.query_one("#name", Input).focus()

    @on(Select.Changed, "#kind")
    @reported
    def kind_changed(self) -> None:
        kind = str(self.query_one("#kind", Select).value)
        for field in ("#cn", "#sans", "#csr"):
            self.query_one(field).display = kind.startswith("tls")
        self.query_one("#bytes").display = kind == "secret"

    @on(Input.Submitted)
    def next_field(self) -> None:
        self.focus_next()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        if not any(w.group == "gen" and not w.is_finished for w in self.workers):
            self.dismiss(self.made)

    def action_copy(self) -> None:
        if self.result:
            self.app.copy_to_clipboard(self.result)
            self.notify("copied (public: the clipboard is not cleared)")

    @on(Button.Pressed, "#run")
    @reported
    def start(self) -> None:
        vault = self.locker.vault
        kind = str(self.query_one("#kind", Select).value)
        name = self.query_one("#name", Input).value.strip()
        cn = self.query_one("#cn", Input).value.strip()
        sans = self.query_one("#sans", Input).value.replace(",", " ").split()
        size = self.query_one("#bytes", Input).value.strip()
        try:
            if vault is None:
                raise LockerError("the vault is locked")
            if not name or name.endswith("/"):
                raise UsageError("type a name for the new entry")
            if kind.startswith("tls") and not cn:
                raise UsageError("a TLS key's CSR needs a common name (CN)")
            if not size.isdigit():
                raise UsageError(f"the secret's size is a whole number of bytes, not {size!r}")
        except LockerError as exc:
            self.query_one("#problem", Static).update(Text(as_text(exc)))
            return
        self.query_one("#problem", Static).update("")
        self.query_one("#run", Button).disabled = True
        self.query_one("#result", Static).update("generating…")
        force = self.query_one("#force", Checkbox).value
        csr_file = self.query_one("#csr", Input).value.strip() if kind.startswith("tls") else ""
        self.generate(vault, kind, name, (cn, sans, int(size)), force, csr_file)

    @work(thread=True, exit_on_error=False, exclusive=True, group="gen")
    def generate(
        self,
        vault: Vault,
        kind: str,
        name: str,
        tls_or_size: tuple[str, list[str], int],
        force: bool,
        csr_file: str,
    ) -> None:
        from locker.know import gen

        cn, sans, size = tls_or_size
        what, _, alg = kind.partition(" ")
        try:
            made = gen.make(what, alg=alg, cn=cn, sans=sans, size=size)
            with self.locker.vault_lock:
                if self.locker.vault is not vault:
                    raise LockerError("the vault was locked; nothing was made")
                try:
                    gen.store(vault, name, made, force)
                except BaseException:
                    vault.discard()
                    raise
            said = [
                f"stored {8 * size} random bits as {name} (base64)"
                if what == "secret"
                else f"stored the new key as {name}"
            ]
            if csr_file:
                Path(csr_file).expanduser().write_text(made.shown, encoding="ascii")
                said.append(f"wrote the CSR to {csr_file}")
        except Exception as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._done, name, said, made.shown)

    @reported
    def _done(self, name: str, said: list[str], shown: str) -> None:
        if not self.is_attached:
            return
        self.made, self.result = name, shown
        text = "\n".join(printable(line) for line in [*said, "", *shown.splitlines()])
        self.query_one("#result", Static).update(Text(text))
        self.query_one("#run", Button).disabled = False
        self.notify(printable(f"generated {name}"))

    @reported
    def _failed(self, exc: BaseException) -> None:
        if not self.is_attached:  # the app locked meanwhile: say it there
            self.locker.report(exc)
            return
        self.query_one("#result", Static).update("")
        self.query_one("#problem", Static).update(Text(as_text(exc)))
        self.query_one("#run", Button).disabled = False
        self.locker.log_unexpected(exc)
