"""The Textual app: which screen shows, the unlocked vault, the idle and hard deadlines, the
clipboard and reveal timers, and locking (on request, on idle, on quit, on SIGTERM/SIGHUP).

Time comes from an injected `tracker.Clock`; `tick()` (every second) checks every deadline
against it, so tests move the clock and call `tick()` instead of waiting.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events
from textual.actions import ActionParseResult
from textual.app import App, SuspendNotSupported, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from locker.errors import describe
from locker.mount.tracker import DEFAULT_IDLE, DEFAULT_MAX_TIME, Clock, Deadlines
from locker.tui.screens.unlock import CreateScreen, KeysAtHand, UnlockScreen
from locker.tui.words import debug_trace, reported

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from locker.mount.edit import Editor
    from locker.mount.session import Session
    from locker.store.format import KdfCost
    from locker.tui.messages import MountLocked
    from locker.tui.screens.token import TokenChoice
    from locker.vault import Vault

WARN_BEFORE = 30.0
REVEAL_SECONDS = 15.0
CLIPBOARD_SECONDS = 30.0
REASON_QUIT = "quit the TUI"


class LockerApp(App[None]):
    CSS_PATH = "locker.tcss"
    TITLE = "locker"
    BINDINGS = [
        Binding("s", "stay", "Stay unlocked", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        vault_path: Path,
        *,
        idle: float = DEFAULT_IDLE,
        max_time: float = DEFAULT_MAX_TIME,
        clock: Clock | None = None,
        kdf_cost: KdfCost | None = None,
        editor: Editor | None = None,
        keys: Callable[[], KeysAtHand] | None = None,
        token: TokenChoice | None = None,
    ) -> None:
        """`keys` finds the keys tried before the passphrase (the keyring's slot, key files
        named on the command line); it runs once, in a worker, after the first frame.
        `token` (the PKCS#11 module and labels named) opens the unlock screen on its fields."""
        super().__init__()
        self.vault_path = vault_path
        self.idle, self.max_time = idle, max_time
        self.clock = clock or Clock()
        self._kdf_cost = kdf_cost
        self.editor = editor
        self._find_keys = keys
        self.token = token
        self._keys: KeysAtHand | None = None
        self.keys_tried = False  # tried unasked once, at start; after a lock only on request
        self.vault: Vault | None = None
        self.vault_lock = threading.Lock()
        self.deadlines: Deadlines | None = None
        self.warned = False
        self.clipboard_clear_at: float | None = None
        self.reveal_hide_at: float | None = None
        self.debug_log: list[str] = []

    @property
    def kdf_cost(self) -> KdfCost:
        """What a vault created here costs to unlock (the library's default unless given)."""
        if self._kdf_cost is None:
            from locker.vault import DEFAULT_KDF  # the crypto loads only when it is needed

            self._kdf_cost = DEFAULT_KDF
        return self._kdf_cost

    def keys_at_hand(self) -> KeysAtHand | None:
        """The keys before the passphrase, found on first use (a worker calls this). An error
        (a key file that cannot be read) is raised once; after it, only the passphrase."""
        if self._find_keys is not None:
            find, self._find_keys = self._find_keys, None
            self._keys = find()
        return self._keys

    # -- start and stop ----------------------------------------------------------------------

    def on_mount(self) -> None:
        first = UnlockScreen() if os.path.lexists(self.vault_path) else CreateScreen()
        self.push_screen(first)
        self.set_interval(1.0, self.tick)
        if not self.is_headless:
            loop = __import__("asyncio").get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, self.exit)

    async def action_quit(self) -> None:
        self.lock_everything(REASON_QUIT)
        self.exit()

    def on_unmount(self) -> None:
        self.lock_everything(REASON_QUIT)

    def lock_everything(self, reason: str) -> None:
        """Synchronous and final: lock a running mount (waiting for its worker), close the vault."""
        from locker.tui.screens.mount import MountScreen

        for screen in self.screen_stack:
            if isinstance(screen, MountScreen):
                screen.stop(reason)
        self._close_vault()

    def _close_vault(self) -> None:
        if self.clipboard_clear_at is not None:
            self._clear_clipboard()
        vault, self.vault, self.deadlines = self.vault, None, None
        if vault is not None:
            with self.vault_lock:
                vault.close()

    # -- unlocking and locking ---------------------------------------------------------------

    def unlocked(self, vault: Vault) -> None:
        from locker.tui.screens.main import MainScreen

        self.vault = vault
        vault.notice = self._notice  # the save that upgrades a version 1 file
        self.deadlines = Deadlines(self.clock, self.idle, self.max_time)
        self.warned = False
        self.switch_screen(MainScreen())
        for line in vault.passed_over_warnings():  # FORMAT.md section 20
            self.notify(
                f"{line}; saves are refused until you decide: {vault.recover_hint()} "
                "('locker verify' tells more)",
                severity="warning",
                timeout=60,
            )

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notice as written, never as markup (`markup` is ignored: screens pass True by
        default): they carry paths, entry names and error text, where `[/x]` would fail to
        render and `[b]x[/b]` would not show as typed."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def _notice(self, message: str) -> None:
        self.notify(message, severity="warning", timeout=30)  # notify is thread-safe

    def lock_now(self, reason: str) -> None:
        """Lock: a mount locks first (its worker reports back), then the vault closes."""
        from locker.tui.screens.mount import MountScreen

        for screen in self.screen_stack:
            if isinstance(screen, MountScreen) and screen.is_running_worker():
                screen.request_stop(reason)
                return
        self.call_later(self._locked, reason, "")

    def mount_locked(self, message: MountLocked) -> None:
        for line in message.holders:
            self.notify(line, severity="warning", timeout=30)
        self.call_later(self._locked, message.reason, message.summary)

    async def _locked(self, reason: str, summary: str) -> None:
        try:
            self._close_vault()  # the app forgets the vault first: locked even if close fails
        except Exception as exc:
            self.report(exc)
        while len(self.screen_stack) > 2:
            await self.pop_screen()
        await self.switch_screen(UnlockScreen())
        self.notify(f"locked ({reason})" + (f": {summary}" if summary else ""), timeout=10)

    # -- deadlines ---------------------------------------------------------------------------

    def touch(self) -> None:
        if self.deadlines is not None:
            self.deadlines.touch()
        session = self.mount_session()
        if session is not None:
            session.deadlines.touch()
        self.warned = False

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown):
            self.touch()
        await super().on_event(event)

    def action_stay(self) -> None:
        self.touch()
        self.notify("staying unlocked")

    def mount_session(self) -> Session | None:
        from locker.tui.screens.mount import MountScreen

        for screen in self.screen_stack:
            if isinstance(screen, MountScreen):
                return screen.session
        return None

    @reported
    def tick(self) -> None:
        """Every second: deadlines, the warning before the lock, the clipboard, the reveal."""
        from locker.tui.screens.dialogs import RevealModal
        from locker.tui.screens.mount import MountScreen
        from locker.tui.widgets.status import StatusBar

        now = self.clock.monotonic()
        if self.clipboard_clear_at is not None and now >= self.clipboard_clear_at:
            self._clear_clipboard()
        if self.reveal_hide_at is not None and now >= self.reveal_hide_at:
            self.reveal_hide_at = None
            if isinstance(self.screen, RevealModal):
                self.screen.dismiss(None)
        if self.vault is None or self.deadlines is None:
            return
        mount = next((s for s in self.screen_stack if isinstance(s, MountScreen)), None)
        if mount is not None and mount.session is not None:
            deadlines = mount.session.deadlines  # the session locks itself; shown here
            mount.show_left(deadlines.idle_left(), deadlines.hard_left())
        else:
            deadlines = self.deadlines
            reason = deadlines.expired()
            if reason and mount is None:
                self.lock_now(reason)
                return
        idle_left, hard_left = deadlines.idle_left(), deadlines.hard_left()
        for bar in self.screen.query(StatusBar):
            state = f"mounted at {mount.session.root}" if mount and mount.session else "unlocked"
            bar.show(str(self.vault_path), state, idle_left, hard_left)
        left = min(idle_left, hard_left)
        if left <= WARN_BEFORE and not self.warned:
            self.warned = True
            self.notify(
                f"locking in {int(left)} s: press s to stay unlocked",
                severity="warning",
                timeout=WARN_BEFORE,
            )

    # -- secrets on screen and on the clipboard ----------------------------------------------

    def copy_secret(self, name: str, text: str) -> None:
        self.copy_to_clipboard(text)
        self.clipboard_clear_at = self.clock.monotonic() + CLIPBOARD_SECONDS
        if os.environ.get("TERM_PROGRAM") == "Apple_Terminal":
            self.notify(
                "this terminal does not take clipboard writes (OSC 52); nothing was copied",
                severity="warning",
            )
            return
        self.notify(f"copied {name}; the clipboard is cleared in {CLIPBOARD_SECONDS:g} s")

    def _clear_clipboard(self) -> None:
        self.clipboard_clear_at = None
        self.copy_to_clipboard("")
        self.notify(
            "clipboard cleared (a clipboard manager may keep its own copy: clear it there too)"
        )

    def reveal(self, name: str, text: str) -> None:
        from locker.tui.screens.dialogs import RevealModal

        self.reveal_hide_at = self.clock.monotonic() + REVEAL_SECONDS
        self.push_screen(RevealModal(name, text, REVEAL_SECONDS))

    # -- edit ---------------------------------------------------------------------------------

    def edit(self, name: str, then: Callable[[], None]) -> None:
        """The entry in $EDITOR (the app suspended meanwhile); saved only if it changed."""
        from locker.mount import edit

        if self.vault is None:
            return
        if self.mount_session() is not None:
            self.notify("the vault is mounted: edit the file in the mount directory")
            return
        run = self.editor or edit.run_editor

        def editor(path: Path) -> None:
            try:
                with self.suspend():
                    run(path)
            except SuspendNotSupported:
                run(path)

        try:
            with self.vault_lock:
                try:
                    result = edit.edit_entry(self.vault, name, editor, self._notice)
                except BaseException:
                    self.vault.discard()
                    raise
        except Exception as exc:
            self.report(exc)
            return
        finally:
            self.touch()
        then()
        self.notify(f"saved {name}" if result.changed else f"{name} unchanged")

    # -- errors and the palette --------------------------------------------------------------

    def report(self, exc: BaseException) -> None:
        """An error as a notification in the CLI's words; never a crash."""
        message, hint = describe(exc)
        self.notify(message + (f"\nhint: {hint}" if hint else ""), severity="error", timeout=10)
        self.log_unexpected(exc)

    def log_unexpected(self, exc: BaseException) -> None:
        trace = debug_trace(exc)
        if trace:
            self.debug_log.append(trace)

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """Every key's action: an unexpected error is a notification, never a crash."""
        try:
            return await super().run_action(action, default_namespace, namespaces)
        except Exception as exc:
            self.report(exc)
            return True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker's unexpected error (the screens' workers do not end the app on one)."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report(event.worker.error)

    def safely(self, callback: Callable[[], object]) -> Callable[[], None]:
        """A palette command's callback, with the same promise as run_action."""

        def run() -> None:
            try:
                callback()
            except Exception as exc:
                self.report(exc)

        return run

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        from locker.tui.screens.main import ACTIONS, MainScreen

        yield from super().get_system_commands(screen)
        if isinstance(screen, MainScreen):
            for _, action, label, help in ACTIONS:
                yield SystemCommand(label, help, self.safely(getattr(screen, f"action_{action}")))
