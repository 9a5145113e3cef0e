"""CLI handler for `tui` (and bare `locker` on a terminal): run the Textual app.

textual is imported only here, when the app starts. The unlock options that name a key
(`--keyfile`, `--recovery-key-file`, `--identity`) and the keyring's slot are tried before the
passphrase, as on the CLI.
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

# Unlock options the TUI cannot take: each would prompt on the terminal the app draws on.
_PROMPTING = {
    "recovery_key": "--recovery-key asks on the terminal; give --recovery-key-file FILE",
    "pkcs11_module": "a PKCS#11 token is not supported there yet",
    "pkcs11_token": "a PKCS#11 token is not supported there yet",
    "pkcs11_key": "a PKCS#11 token is not supported there yet",
    "pin_file": "a PKCS#11 token is not supported there yet",
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
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the TUI needs a terminal", hint="use the other commands in scripts")
    idle = parse_duration(str(getattr(args, "idle", "300")), "--idle")
    from locker.tui.app import LockerApp

    given = getattr(args, "vault", None)  # not cli.commands.vault_path: that loads the crypto
    path = Path(given) if given else paths.default_vault()

    def keys() -> KeysAtHand:
        """The unlock order's keys before the passphrase: the keyring's slot (unless
        --no-keyring), --keyfile, --recovery-key-file, --identity; found after the first frame."""
        from locker.cli.unlock import keys_at_hand  # it loads the crypto

        return keys_at_hand(args, path)

    app = LockerApp(path, idle=idle, keys=keys)
    app.run()
    for trace in app.debug_log:
        sys.stderr.write(trace)
    return EXIT_OK
