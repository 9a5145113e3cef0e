"""CLI handler for `tui` (and bare `locker` on a terminal): run the Textual app.

textual is imported only here, when the app starts. The unlock options that name a key
(`--keyfile`, `--recovery-key-file`, `--identity`, a token with `--pin-file`) and the keyring's
slot are tried before the passphrase, as on the CLI. `--pkcs11-module`, `--pkcs11-token` and
`--pkcs11-key` also fill in the unlock screen's token fields, where the PIN is typed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from locker import paths
from locker.cli.durations import parse_duration
from locker.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from locker.cli.unlock import KeysAtHand
    from locker.tui.screens.token import TokenChoice

# Unlock options the TUI cannot take: each would prompt on the terminal the app draws on.
_PROMPTING = {
    "recovery_key": "--recovery-key asks on the terminal; give --recovery-key-file FILE",
}


def cmd_tui(args: argparse.Namespace) -> int:
    if getattr(args, "passphrase_file", None):
        raise UsageError("the TUI asks for the passphrase itself; --passphrase-file is for scripts")
    for flag, why in _PROMPTING.items():
        if getattr(args, flag, None):
            raise UsageError(
                f"the TUI cannot take --{flag.replace('_', '-')}: {why}",
                hint="use the other commands with that option",
            )
    token = _token_choice(args)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the TUI needs a terminal", hint="use the other commands in scripts")
    idle = parse_duration(str(getattr(args, "idle", "300")), "--idle")
    from locker.tui.app import LockerApp

    given = getattr(args, "vault", None)  # not cli.commands.vault_path: that loads the crypto
    path = Path(given) if given else paths.default_vault()
    if token is not None and not getattr(args, "pin_file", None):
        # The PIN is typed on the unlock screen: the CLI's PIN prompt must not run.
        unset = dict.fromkeys(("pkcs11_module", "pkcs11_token", "pkcs11_key"))
        args = argparse.Namespace(**{**vars(args), **unset})

    def keys() -> KeysAtHand:
        """The unlock order's keys before the passphrase: the keyring's slot (unless
        --no-keyring), --identity, a token with --pin-file, --keyfile, --recovery-key-file;
        found after the first frame."""
        from locker.cli.unlock import keys_at_hand  # it loads the crypto

        return keys_at_hand(args, path)

    app = LockerApp(path, idle=idle, keys=keys, token=token)
    app.run()
    for trace in app.debug_log:
        sys.stderr.write(trace)
    return EXIT_OK


def _token_choice(args: argparse.Namespace) -> TokenChoice | None:
    """The token the options name, for the unlock screen's fields."""
    module = getattr(args, "pkcs11_module", None)
    if not module:
        for flag in ("pkcs11_token", "pkcs11_key", "pin_file"):  # cli.unlock.token_spec's check
            if getattr(args, flag, None):
                raise UsageError(f"--{flag.replace('_', '-')} needs --pkcs11-module")
        return None
    from locker.slots import DEFAULT_KEY_LABEL
    from locker.tui.screens.token import TokenChoice

    key = getattr(args, "pkcs11_key", None) or DEFAULT_KEY_LABEL
    return TokenChoice(module, getattr(args, "pkcs11_token", None) or "", key)
