"""`info` and the bare `locker` overview: header facts, no passphrase, no cryptography.

Kept apart from `cli/commands.py` so that these commands import the store's header reader and
nothing of unlocking, prompting or writing (tests/test_cli.py counts the modules).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from locker import paths
from locker.errors import EXIT_OK, LockerError, UsageError
from locker.text import plural
from locker.vault_info import info


def vault_path(args: argparse.Namespace) -> Path:
    given = getattr(args, "vault", None)
    return Path(given) if given else paths.default_vault()


def check_not_a_directory(path: Path) -> None:
    if path.is_dir():
        raise UsageError(
            f"{path} is a directory, not a vault", hint="--vault names the vault file itself"
        )


# -- commands ------------------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    check_not_a_directory(vault_path(args))
    facts = info(vault_path(args))
    if args.json:
        print(json.dumps(facts, indent=2))
        return EXIT_OK
    print(f"vault:          {facts['path']}")
    print(f"format:         locker v{facts['format_version']}")
    if "generation" in facts:
        print(f"generation:     {facts['generation']}")
    print(f"container id:   {facts['container_id']}")
    print(
        f"size:           {facts['file_size']} bytes (header {facts['header_size']}, "
        f"index {facts['index_size']}, data {facts['data_size']})"
    )
    print(f"key slots:      {facts['slot_count']}")
    for slot in facts["slots"]:
        line = f"  {slot['kind']:<11} {slot['id']}"
        kdf = slot.get("kdf")
        if kdf:
            line += f"  argon2id {kdf['memory_mib']:g} MiB, t={kdf['time_cost']}, p={kdf['parallelism']}"
        print(line)
    return EXIT_OK


def cmd_overview(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    path = vault_path(args)
    if os.path.lexists(path):
        try:
            facts = info(path)
            print(
                f"vault {path}: locker v{facts['format_version']}, {facts['file_size']} bytes, "
                f"{plural(facts['slot_count'], 'key slot')}"
            )
        except LockerError as exc:
            print(f"vault {path}: {exc}")
    else:
        print(f"no vault at {path} yet: 'locker init' creates it")
    print()
    parser.print_help()
    return EXIT_OK
