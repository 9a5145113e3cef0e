"""The command-line front end: argparse, prompts, output, and errors mapped to exit codes.

Only this module prompts. Heavy imports (cryptography, argon2, platformdirs) are deferred to
the commands that need them so `locker --version` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from locker import __version__
from locker.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, LockerError

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"locker: error: {message}\nlocker: hint: see '{self.prog} --help'\n")
        raise SystemExit(EXIT_USAGE)


def _common_options() -> _Parser:
    """Options every command takes, before or after the command name."""
    p = _Parser(add_help=False)
    s = argparse.SUPPRESS
    p.add_argument(
        "--vault",
        metavar="PATH",
        default=s,
        help="vault file (default: $LOCKER_VAULT or the user data dir)",
    )
    p.add_argument(
        "--passphrase-file",
        metavar="FILE",
        default=s,
        help="read the passphrase from the first line of FILE ('-': stdin)",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(
        prog="locker", description="An encrypted local secrets locker.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"locker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, handler: str, help: str) -> argparse.ArgumentParser:
        """`handler` is "module:function" in locker, imported only when that command runs."""
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = command("init", "cli.commands:cmd_init", "create a new vault")
    p.add_argument(
        "--kdf-memory", type=int, metavar="MIB", help="Argon2id memory in MiB (default 256)"
    )
    passes = p.add_mutually_exclusive_group()
    passes.add_argument("--kdf-time", type=int, metavar="N", help="Argon2id passes (default 3)")
    passes.add_argument(
        "--kdf-target",
        type=float,
        metavar="SECONDS",
        help="choose the Argon2id passes so that unlocking takes about SECONDS on this machine",
    )
    p.add_argument("--kdf-parallelism", type=int, metavar="N", help="Argon2id lanes (default 4)")

    p = command("add", "cli.commands:cmd_add", "add files or directories (recursively)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument(
        "--as", dest="as_name", metavar="NAME", help="entry name (a prefix for a directory)"
    )
    p.add_argument("--force", action="store_true", help="replace entries that exist")

    p = command("ls", "cli.commands:cmd_ls", "list entries")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-l", dest="long", action="store_true", help="show size and times")

    p = command("cat", "cli.commands:cmd_cat", "write an entry to standard output")
    p.add_argument("name", metavar="NAME")

    p = command("get", "cli.commands:cmd_get", "write entries (or directories of entries) to files")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--to", metavar="DIR", default=".", help="target directory (default: .)")
    p.add_argument("--force", action="store_true", help="replace files that exist")

    p = command("rm", "cli.commands:cmd_rm", "remove entries")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument(
        "-r", dest="recursive", action="store_true", help="remove directories of entries"
    )

    p = command("mv", "cli.commands:cmd_mv", "rename an entry or a directory of entries")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--force", action="store_true", help="replace an entry named NEW")

    p = command(
        "passwd", "cli.commands:cmd_passwd", "change the passphrase (rewraps the key slot only)"
    )
    p.add_argument(
        "--new-passphrase-file",
        metavar="FILE",
        help="read the new passphrase from FILE ('-': stdin)",
    )
    p.add_argument("--kdf-memory", type=int, metavar="MIB", help="new Argon2id memory in MiB")
    p.add_argument("--kdf-time", type=int, metavar="N", help="new Argon2id passes")
    p.add_argument("--kdf-parallelism", type=int, metavar="N", help="new Argon2id lanes")

    command("rekey", "cli.commands:cmd_rekey", "make a new master key and re-encrypt every entry")
    command("verify", "cli.commands:cmd_verify", "decrypt every entry and report failures")

    p = command("info", "cli.commands:cmd_info", "show header facts (no passphrase needed)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("log", "cli.commands:cmd_log", "show the vault's audit log")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command(
        "mount",
        "cli.mount_commands:cmd_mount",
        "work on the files in a private directory until locked",
    )
    p.add_argument("--dir", metavar="DIR", help="mount here (default: a new private RAM dir)")
    p.add_argument(
        "--idle", default="300", metavar="SECONDS", help="lock after this long unused (default 300)"
    )
    p.add_argument(
        "--max-time", default="8h", metavar="DURATION", help="lock after this long (default 8h)"
    )
    command(
        "lock",
        "cli.mount_commands:cmd_lock",
        "lock active mounts (all of them unless --vault is given)",
    )
    p = command("status", "cli.mount_commands:cmd_status", "list active and orphaned mounts")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = command(
        "recover",
        "cli.mount_commands:cmd_recover",
        "save or discard what a crashed mount left behind",
    )
    p.add_argument("--yes", action="store_true", help="save the changes into the vault, then wipe")
    p.add_argument("--discard", action="store_true", help="wipe without saving the changes")
    _know_commands(command)
    return parser


def _know_commands(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    p = command(
        "inspect",
        "cli.know_commands:cmd_inspect",
        "what the vault holds: expiry, key age, key and certificate pairs (exit 6: attention)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--format", choices=("table", "json", "prometheus"), default="table", help="output format"
    )
    p.add_argument(
        "--output", metavar="FILE", help="with --format prometheus: write FILE atomically"
    )
    p.add_argument(
        "--expiring-within",
        default="30",
        metavar="DAYS",
        help="attention when a certificate expires within DAYS (default 30)",
    )
    p.add_argument(
        "--rotate-after",
        default="365",
        metavar="DAYS",
        help="attention when a key is older than DAYS (default 365)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list in (["--version"], ["-V"]):
        print(f"locker {__version__}")
        return EXIT_OK
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        spec: str | None = getattr(args, "handler", None)
        if getattr(args, "command", None) not in ("recover", "status"):
            _orphan_notice()
        if spec is None:
            from locker.cli.commands import cmd_overview

            return cmd_overview(args, parser)
        return _resolve(spec)(args)
    except LockerError as exc:
        return report(exc, exc.exit_code, exc.hint)
    except KeyboardInterrupt:
        sys.stderr.write("\nlocker: interrupted\n")
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except OSError as exc:
        name = f" {exc.filename}" if exc.filename else ""
        return report(exc, EXIT_ERROR, None, f"{exc.strerror or exc}{':' if name else ''}{name}")
    except Exception as exc:  # the last line of defence: one line, no traceback
        return report(
            exc,
            EXIT_ERROR,
            "rerun with LOCKER_DEBUG=1 for details",
            f"internal error ({type(exc).__name__})",
        )


def _resolve(spec: str) -> Handler:
    module, function = spec.split(":")
    handler: Handler = getattr(importlib.import_module(f"locker.{module}"), function)
    return handler


def _orphan_notice() -> None:
    """Warn about mounts left behind by a dead process; never fails the command itself."""
    try:
        from locker.mount.journal import orphans

        left = orphans()
    except Exception:
        return
    if not left:
        return
    if len(left) == 1:
        r = left[0].record
        message = f"a mount of {r.vault} at {r.dir} was left behind by PID {r.pid}, which is gone"
    else:
        message = f"{len(left)} mounts were left behind by processes that are gone"
    sys.stderr.write(f"locker: warning: {message}\n")
    sys.stderr.write("locker: hint: run 'locker recover' to save or discard their files\n")


def report(exc: BaseException, code: int, hint: str | None, message: str | None = None) -> int:
    if os.environ.get("LOCKER_DEBUG") == "1":
        traceback.print_exception(exc)
    sys.stderr.write(f"locker: error: {message or exc}\n")
    if hint:
        sys.stderr.write(f"locker: hint: {hint}\n")
    return code


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so interpreter shutdown does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
