"""The locked face of the app: unlock an existing vault, or create the first one.

The KDF runs in a thread worker behind a progress bar; wrong passphrase, tampered container,
busy vault and orphaned mount each get their own state in the CLI's words. The library is
imported inside the workers, so the screen draws before cryptography and argon2 are loaded.
The unlock order is the CLI's: the keyring's slot and the keys given to `locker tui` are tried
first (unasked once at start; after a lock, Enter on an empty passphrase tries them), then the
passphrase. Ctrl+T shows the PKCS#11 token's fields (screens/token.py) instead of it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Input, Label, ProgressBar, Static

from locker.errors import LockerError, describe
from locker.tui.screens.base import LockerScreen, take_new_passphrase
from locker.tui.screens.token import TokenChoice, TokenForm, token_spec
from locker.tui.words import reported

if TYPE_CHECKING:
    from locker.store.format import KdfCost
    from locker.store.keys import Opener
    from locker.vault import Key


class KeysAtHand(Protocol):
    """The keys tried before the passphrase, in the unlock order (cli/unlock.py finds them)."""

    @property
    def openers(self) -> list[Opener]: ...
    @property
    def passphrase(self) -> bool: ...  # a passphrase may open the vault after them
    @property
    def keyfile(self) -> bytes | None: ...  # the second factor of a passphrase+keyfile slot
    @property
    def notes(self) -> list[str]: ...  # why the keyring opened nothing


class _LockedScreen(LockerScreen):
    """What the unlock and create screens share: the app, the state line, the progress bar."""

    def set_state(self, kind: str, message: str, hint: str | None = None) -> None:
        """kind: '' (plain), 'error', 'wrong', 'tampered', 'busy', 'orphan', 'working'."""
        from rich.markup import escape  # a path typed or named in an error is not markup

        state = self.query_one("#state", Static)
        state.update(escape(message) + (f"\n[dim]hint: {escape(hint)}[/dim]" if hint else ""))
        state.set_classes(kind)
        self.query_one("#progress", ProgressBar).display = kind == "working"

    @reported
    def failed(self, exc: BaseException) -> None:
        from locker.errors import BadKeyError, BusyError, IntegrityError

        message, hint = describe(exc)
        kind = (
            "wrong"
            if isinstance(exc, BadKeyError)
            else "busy"
            if isinstance(exc, BusyError)
            else "tampered"
            if isinstance(exc, IntegrityError)
            else "error"
        )
        self.set_state(kind, f"error: {message}", hint)
        self.locker.log_unexpected(exc)
        for field in self.query(Input):
            field.disabled = False
            if field.password:  # a secret is typed again; a module path or label stays
                field.value = ""
        self.focus_field()

    def focus_field(self) -> None:
        """Where typing goes on after a failure."""
        self.query(Input).first().focus()


class UnlockScreen(_LockedScreen):
    """Masked passphrase, or the PKCS#11 token's fields (Ctrl+T); Enter unlocks in a worker."""

    BINDINGS = [
        Binding("ctrl+t", "token", "Token / passphrase"),
        Binding("ctrl+q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="locked"):
            yield Label("locker", classes="title")
            yield Label(f"vault {self.locker.vault_path}", id="vault-path")
            yield Input(password=True, placeholder="passphrase", id="passphrase")
            yield TokenForm(self.locker.token, id="token")
            yield ProgressBar(total=None, show_eta=False, id="progress")
            yield Static("", id="state")
            yield Static("", id="notice")
        yield Footer()

    @reported
    def on_mount(self) -> None:
        self.query_one("#progress", ProgressBar).display = False
        self._show_token(self.locker.token is not None)
        keys = self.locker.keys_at_hand() if self.locker.keys_tried else None
        if keys is not None and keys.openers:
            self.set_state("", f"Enter with no passphrase unlocks with the {_what(keys)}")
        self.call_after_refresh(self.preflight)  # after the first frame: drawing comes first

    @work(thread=True, exit_on_error=False, exclusive=True, group="preflight")
    def preflight(self) -> None:
        """Busy and orphaned-mount checks before anyone types (the CLI's early checks); then,
        once per run of the app, the keys before the passphrase."""
        from locker.mount import journal as jn
        from locker.store.lockfile import WriterLock

        path = self.locker.vault_path
        notices: list[tuple[str, str, str | None]] = []
        try:
            WriterLock(path).check_free()
        except Exception as exc:
            notices.append(("busy", *describe(exc)))
        try:
            wanted = str(path.resolve())
            left = [f.record for f in jn.orphans() if f.record.vault == wanted]
        except Exception:
            left = []
        for r in left:
            notices.append(
                (
                    "orphan",
                    f"a mount of {r.vault} at {r.dir} was left behind by PID {r.pid}, which is gone",
                    "run 'locker recover' to save or discard its files",
                )
            )
        if notices:
            self.app.call_from_thread(self._show_notices, notices)
        if not self.locker.keys_tried and not any(kind == "busy" for kind, *_ in notices):
            self.locker.keys_tried = True
            self._try_keys()

    @reported
    def _show_notices(self, notices: list[tuple[str, str, str | None]]) -> None:
        if not self.is_attached:  # unlocked before the checks were done
            return
        for kind, message, hint in notices:
            if kind == "busy":
                self.set_state("busy", f"error: {message}", hint)
            else:
                notice = self.query_one("#notice", Static)
                notice.update(
                    f"warning: {message}" + (f"\n[dim]hint: {hint}[/dim]" if hint else "")
                )
                notice.set_classes("orphan")

    def _show_token(self, shown: bool) -> None:
        self.query_one("#token", TokenForm).display = shown
        self.query_one("#passphrase", Input).display = not shown
        self.focus_field()

    def focus_field(self) -> None:
        form = self.query_one("#token", TokenForm)
        (form.first_empty() if form.display else self.query_one("#passphrase", Input)).focus()

    @reported
    def action_token(self) -> None:
        if not self.query_one("#progress", ProgressBar).display:  # not while unlocking
            self._show_token(not self.query_one("#token", TokenForm).display)

    @on(Input.Submitted, "#pkcs11-module, #pkcs11-token, #pkcs11-key")
    def token_field_done(self) -> None:
        self.focus_next()

    @on(Input.Submitted, "#pin")
    @reported
    def pin_submitted(self) -> None:
        try:
            choice, pin = self.query_one("#token", TokenForm).take()
        except LockerError as exc:
            message, hint = describe(exc)
            self.set_state("error", f"error: {message}", hint)
            self.focus_field()
            return
        self._working(f"asking the token for the key ({choice.module})…")
        self.unlock_token(choice, pin)

    @on(Input.Submitted, "#passphrase")
    @reported
    def submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            self.retry_keys()
            return
        secret = bytearray(event.value.encode())
        event.input.value = ""
        self._working("deriving the key (Argon2id)…")
        self.unlock(secret)

    def _working(self, what: str) -> None:
        self.query(Input).set(disabled=True)
        self.set_state("working", what)

    @work(thread=True, exit_on_error=False, exclusive=True, group="unlock")
    def retry_keys(self) -> None:
        self._try_keys()

    def _try_keys(self) -> None:
        """On a worker: the keyring's slot and the keys given, if any; else nothing."""
        try:
            keys = self.locker.keys_at_hand()
        except Exception as exc:  # a key file that cannot be read, say
            self.app.call_from_thread(self.failed, exc)
            return
        if keys is None or not keys.openers:
            return
        self.app.call_from_thread(self._working, f"unlocking with the {_what(keys)}…")
        self._open(keys.openers, keys)

    @work(thread=True, exit_on_error=False, exclusive=True, group="unlock")
    def unlock(self, secret: bytearray) -> None:
        from locker.store.keys import PassphraseOpener

        try:
            keys = self.locker.keys_at_hand()
            self._open([PassphraseOpener(secret, keys.keyfile if keys else None)])
        except Exception as exc:
            self.app.call_from_thread(self.failed, exc)
        finally:
            secret[:] = bytes(len(secret))

    @work(thread=True, exit_on_error=False, exclusive=True, group="unlock")
    def unlock_token(self, choice: TokenChoice, pin: bytearray) -> None:
        from locker.slots.token import TokenOpener

        try:
            self._open([TokenOpener(token_spec(choice, pin))])
        except Exception as exc:
            self.app.call_from_thread(self.failed, exc)
        finally:
            pin[:] = bytes(len(pin))

    def _open(self, key: Key, keys: KeysAtHand | None = None) -> None:
        """On a worker: open the vault with `key`; with `keys` (the keys before the passphrase)
        a wrong key leaves the passphrase to type, as the CLI's prompt does."""
        from locker.errors import BadKeyError
        from locker.know.facts import recogniser
        from locker.mount.process import harden_process
        from locker.vault import Vault

        try:
            harden_process()
            vault = Vault.open(self.locker.vault_path, key, write=True, purpose="tui")
            vault.recogniser = recogniser()  # what is added here is described in the index
        except BadKeyError as exc:
            if keys is not None:
                self.app.call_from_thread(self._keys_failed, exc, keys)
            else:
                self.app.call_from_thread(self.failed, exc)
            return
        except Exception as exc:
            self.app.call_from_thread(self.failed, exc)
            return
        self.app.call_from_thread(self.locker.unlocked, vault)

    @reported
    def _keys_failed(self, exc: BaseException, keys: KeysAtHand) -> None:
        if not keys.passphrase:
            self.failed(exc)
            return
        if keys.notes:  # the keyring could not be used: its own words
            message, hint = "\n".join(keys.notes), None
        elif all(o.what == "keyring" for o in keys.openers):
            message, hint = "this machine's keyring holds no key for this vault", None
        else:
            message, hint = describe(exc)
        self.failed(exc)
        self.set_state("", message if keys.notes else f"{message}: type the passphrase", hint)
        keys.notes.clear()


class CreateScreen(_LockedScreen):
    """First run: a passphrase twice with strength feedback, the KDF cost and its time here."""

    BINDINGS = [("ctrl+q", "app.quit", "Quit")]

    def compose(self) -> ComposeResult:
        cost = self.locker.kdf_cost
        with Vertical(classes="locked"):
            yield Label("locker: create a vault", classes="title")
            yield Label(f"no vault at {self.locker.vault_path} yet", id="vault-path")
            yield Input(password=True, placeholder="new passphrase", id="first")
            yield Static("", id="strength")
            yield Input(password=True, placeholder="repeat it", id="second")
            yield Static(
                f"key derivation: Argon2id {cost.memory_kib // 1024} MiB, t={cost.time_cost}, "
                f"p={cost.parallelism}; timing it on this machine…",
                id="cost",
            )
            yield ProgressBar(total=None, show_eta=False, id="progress")
            yield Static("", id="state")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#progress", ProgressBar).display = False
        self.query_one("#first", Input).focus()
        self.time_kdf(self.locker.kdf_cost)

    @work(thread=True, exit_on_error=False, exclusive=True, group="time-kdf")
    def time_kdf(self, cost: KdfCost) -> None:
        from locker.store import crypto

        start = time.perf_counter()
        params = crypto.KdfParams(cost.memory_kib, cost.time_cost, cost.parallelism)
        crypto.argon2id(b"timing", bytes(crypto.SALT_SIZE), params)
        took = time.perf_counter() - start
        text = (
            f"key derivation: Argon2id {cost.memory_kib // 1024} MiB, t={cost.time_cost}, "
            f"p={cost.parallelism}; unlocking takes about {took:.2f} s on this machine"
        )
        self.app.call_from_thread(self._show_cost, text)

    @reported
    def _show_cost(self, text: str) -> None:
        if self.is_attached:  # the vault may be made, and this screen gone, before the timing
            self.query_one("#cost", Static).update(text)

    @on(Input.Changed, "#first")
    @reported
    def strength(self, event: Input.Changed) -> None:
        self.query_one("#strength", Static).update(strength_text(event.value))

    @on(Input.Submitted, "#first")
    def first_done(self) -> None:
        self.query_one("#second", Input).focus()

    @on(Input.Submitted, "#second")
    @reported
    def second_done(self) -> None:
        first, second = self.query_one("#first", Input), self.query_one("#second", Input)
        secret = take_new_passphrase(first, second)
        if isinstance(secret, str):
            self.set_state("error", f"error: {secret}; nothing was created")
            return
        first.disabled = second.disabled = True
        self.set_state("working", "creating the vault (Argon2id)…")
        self.create(secret)

    @work(thread=True, exit_on_error=False, exclusive=True, group="create")
    def create(self, secret: bytearray) -> None:
        from locker.know.facts import recogniser
        from locker.mount.process import harden_process
        from locker.vault import Vault

        path = self.locker.vault_path
        try:
            harden_process()
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            vault = Vault.new(path, secret, self.locker.kdf_cost, purpose="tui")
            vault.recogniser = recogniser()
        except Exception as exc:
            self.app.call_from_thread(self.failed, exc)
            return
        finally:
            secret[:] = bytes(len(secret))
        self.app.call_from_thread(self.locker.unlocked, vault)


def _what(keys: KeysAtHand) -> str:
    return " or ".join(dict.fromkeys(o.what for o in keys.openers))


STRENGTH = ("very weak", "weak", "fair", "strong", "very strong")


def strength_text(value: str) -> str:
    """zxcvbn's score and its advice, in one or two lines."""
    if not value:
        return ""
    from zxcvbn import zxcvbn

    result = zxcvbn(value[:100])
    score = int(result["score"])
    style = ("red", "red", "yellow", "green", "green")[score]
    crack = result["crack_times_display"]["offline_slow_hashing_1e4_per_second"]
    text = f"[{style}]{STRENGTH[score]}[/]: guessed in {crack} offline"
    advice = result["feedback"].get("warning") or " ".join(result["feedback"]["suggestions"])
    return text + (f"\n[dim]{advice}[/dim]" if advice else "")
