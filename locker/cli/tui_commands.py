"""CLI handler for `tui` (and bare `locker` on a terminal): run the Textual app.

textual is imported only here, when the app starts.
"""

from __future__ import annotations

import argparse
import sys

from locker.cli.commands import vault_path
from locker.cli.mount_commands import parse_duration
from locker.errors import EXIT_OK, UsageError


def cmd_tui(args: argparse.Namespace) -> int:
    if getattr(args, "passphrase_file", None):
        raise UsageError("the TUI asks for the passphrase itself; --passphrase-file is for scripts")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the TUI needs a terminal", hint="use the other commands in scripts")
    idle = parse_duration(str(getattr(args, "idle", "300")), "--idle")
    from locker.tui.app import LockerApp

    app = LockerApp(vault_path(args), idle=idle)
    app.run()
    for trace in app.debug_log:
        sys.stderr.write(trace)
    return EXIT_OK
