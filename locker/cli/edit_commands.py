"""CLI handler for `edit NAME`: the entry in $EDITOR on a private RAM copy (locker.mount.edit)."""

from __future__ import annotations

import argparse

from locker.cli.commands import open_vault
from locker.cli.prompts import warn
from locker.errors import EXIT_ERROR, EXIT_OK
from locker.mount import edit
from locker.mount.process import harden_process


def cmd_edit(args: argparse.Namespace) -> int:
    command = edit.editor_command()
    with open_vault(args, write=True, purpose="edit") as v:
        harden_process()
        warned: list[str] = []

        def wipe_warning(line: str) -> None:  # said at once: an error may follow
            warned.append(line)
            warn(line)

        result = edit.edit_entry(
            v, args.name, lambda path: edit.run_editor(path, command), wipe_warning
        )
    if result.changed:
        print(f"saved {result.name} ({result.size} bytes)")
    else:
        print(f"{result.name} unchanged")
    return EXIT_ERROR if warned else EXIT_OK
