"""CLI handler for `tui` (and bare `locker` on a terminal): run the Textual app.

textual is imported only here, when the app starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from locker import paths
from locker.cli.durations import parse_duration
from locker.errors import EXIT_OK, UsageError

# The unlock options (cli/main.py) other than the passphrase: the app does not take them yet.
_OTHER_KEYS = (
    "keyfile",
    "recovery_key_file",
    "recovery_key",
    "identity",
    "pkcs11_module",
    "pkcs11_token",
    "pkcs11_key",
    "pin_file",
)


def cmd_tui(args: argparse.Namespace) -> int:
    if getattr(args, "passphrase_file", None):
        raise UsageError("the TUI asks for the passphrase itself; --passphrase-file is for scripts")
    for flag in _OTHER_KEYS:
        if getattr(args, flag, None):
            raise UsageError(
                f"the TUI unlocks with a passphrase only; --{flag.replace('_', '-')} is not "
                "supported there yet",
                hint="use the other commands with that option",
            )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the TUI needs a terminal", hint="use the other commands in scripts")
    idle = parse_duration(str(getattr(args, "idle", "300")), "--idle")
    from locker.tui.app import LockerApp

    given = getattr(args, "vault", None)  # not cli.commands.vault_path: that loads the crypto
    app = LockerApp(Path(given) if given else paths.default_vault(), idle=idle)
    app.run()
    for trace in app.debug_log:
        sys.stderr.write(trace)
    return EXIT_OK
