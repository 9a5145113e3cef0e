"""CLI handlers for `export` and `import`: protected bundles for removable drives.

The work is locker.bundle's; these parse, prompt and print.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from locker import bundle
from locker.cli import prompts
from locker.cli.commands import kdf_cost, open_vault, saving
from locker.cli.info_commands import vault_path
from locker.errors import EXIT_OK, UsageError
from locker.kdf_cost import weak_kdf_warning
from locker.vault import DEFAULT_KDF, Key, Vault


def _one_stdin(args: argparse.Namespace) -> None:
    if getattr(args, "passphrase_file", None) == "-" and args.bundle_passphrase_file == "-":  # noqa: S105
        raise UsageError("only one of --passphrase-file and --bundle-passphrase-file can be '-'")


def _recipients(texts: list[str] | None) -> list[bytes]:
    if not texts:
        return []
    from locker.slots import recipient

    return [recipient.parse_recipient(text) for text in texts]  # said before any prompt


def _bundle_key(args: argparse.Namespace) -> Key:
    """The bundle's passphrase, or the openers of --bundle-identity files."""
    if not args.bundle_identity:
        return prompts.secret(args.bundle_passphrase_file, "bundle passphrase")
    return bundle.identity_openers([Path(path) for path in args.bundle_identity])


def cmd_export(args: argparse.Namespace) -> int:
    _one_stdin(args)
    recipients = _recipients(args.recipient)
    target = Path(os.path.abspath(args.bundle))
    if target == Path(os.path.abspath(vault_path(args))):
        raise UsageError("the bundle cannot be the vault itself")
    cost = kdf_cost(args, DEFAULT_KDF)
    weak = weak_kdf_warning(cost)
    if weak:
        prompts.warn(weak)
    # For reading only: an export runs beside a mount or another writer (a USB backup taken
    # while working in a mount), reads the vault as last saved, and does not rewrite it.
    with open_vault(args) as v:
        names = bundle.select(v, args.names)
        if not names:
            raise UsageError("the vault holds no entries; nothing to export")
        entries = [v.entry(n) for n in names]
        drive = bundle.check_target(target, bundle.bundle_size(entries), entries)
        secret: bytearray | None = None
        if args.generate_passphrase:
            secret = bundle.generated_passphrase()
        elif args.bundle_passphrase_file or not recipients:
            secret = prompts.new_passphrase(args.bundle_passphrase_file, "bundle passphrase")
        print(bundle.starting(entries, target, drive))
        done = bundle.export(v, target, names, secret, cost, recipients=recipients)
    generated = secret.decode("ascii") if args.generate_passphrase and secret else None
    said = bundle.finished(done, len(recipients), secret is not None, generated)
    print(said[0])
    if done.unlogged:
        prompts.warn(f"{done.unlogged}; the bundle is complete")
    for line in said[1:]:
        print(line)
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    _one_stdin(args)
    source = bundle.check_source(Path(args.bundle), vault_path(args))
    with (
        open_vault(args, write=True, purpose="import") as v,
        Vault.open(source, _bundle_key(args)) as b,
    ):
        names = bundle.select(b, args.names)
        with saving(args):
            done = bundle.import_bundle(v, b, names, args.on_conflict)
    for line in bundle.import_lines(done):
        print(line)
    return EXIT_OK
