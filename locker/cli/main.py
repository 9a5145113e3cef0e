"""The command-line front end: argparse, prompts, output, and errors mapped to exit codes.

Only this module prompts. Heavy imports (cryptography, argon2, platformdirs) are deferred to
the commands that need them so `locker --version` stays fast.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, cast

from locker import __version__
from locker.errors import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    LockerError,
    UsageError,
    describe,
)
from locker.signals import Terminated

Handler = Callable[[argparse.Namespace], int]


ENVIRONMENT_AND_EXIT_CODES = """\
environment:
  LOCKER_VAULT     the vault when --vault is not given (default: the user data dir)
  LOCKER_DEBUG=1   print a traceback with every error
  XDG_RUNTIME_DIR  where mounts go when it is RAM-backed (else /dev/shm)
  XDG_DATA_HOME    where the default vault lives (default: ~/.local/share/locker)

exit codes:
  0  ok                     4  tampered, corrupt or not a locker vault
  1  other error            5  busy: another writer or a mount holds the vault
  2  usage                  6  attention needed
  3  wrong passphrase or key

'locker help COMMAND' (or 'locker COMMAND --help') shows a command's arguments and an example.
"""

# What shtab completes an argument with (its FILE and DIRECTORY, without importing shtab).
FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}
DIRECTORY = {"bash": "_shtab_compgen_dirs", "zsh": "_files -/", "tcsh": "d"}
SHELLS = ("bash", "zsh", "tcsh")

# Options whose values are secrets or name them: an error never repeats what follows them.
_SECRET_HINTS = ("pass", "secret", "key", "token", "pin")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter at the width argparse would choose, found without importing
    `shutil` (and with it bz2, lzma and zlib): argparse makes a formatter for every
    add_argument, so every command paid for that import (about 2 ms CPU) before this."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) < 4 and kwargs.get("width") is None:
            kwargs["width"] = _columns() - 2  # what HelpFormatter does with width=None
        super().__init__(*args, **kwargs)


def _columns() -> int:
    """`shutil.get_terminal_size().columns`: $COLUMNS if positive, else the width of the
    terminal on standard output, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    """argparse with no abbreviations (`--passphrase` is not `--passphrase-file`), errors as
    `locker: error:` lines, did-you-mean hints, and never a secret echoed back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"locker: error: {message}\nlocker: hint: see '{self.prog} --help'\n")
        raise SystemExit(EXIT_USAGE)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            close = _closest(str(value), list(action.choices), 0.5)
            hint = f"did you mean 'locker {close}'? " if close else ""
            raise UsageError(
                f"unknown command {value!r}", hint=f"{hint}'locker --help' lists the commands"
            )
        super()._check_value(action, value)


def _closest(word: str, choices: list[str], cutoff: float) -> str | None:
    """The choice `word` most looks like (difflib, loaded only when a command line is wrong)."""
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return close[0] if close else None


def _option_names(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def _unrecognized(
    parser: argparse.ArgumentParser, command: str | None, extras: list[str]
) -> UsageError:
    """The error for arguments nobody takes: names an unknown option (never the value that
    follows it, which may be a secret typed into a mistyped `--passphrase`), with the option
    it most looks like and the command's own help."""
    sub = _subparsers(parser).get(command or "") if command else None
    where = sub or parser
    help_of = f"'locker {command} --help'" if sub else "'locker --help'"
    option = next((e for e in extras if e.startswith("-")), None)
    if option is None:
        return UsageError(f"unexpected argument {extras[0]!r}", hint=f"see {help_of}")
    name = option.split("=", 1)[0]
    close = _closest(name, _option_names(where), 0.6)
    if not close:  # `--passphrase` for `--passphrase-file`: a prefix is a near miss too
        close = next(
            (o for o in _option_names(where) if o.startswith(name) and len(name) > 2), None
        )
    hint = f"did you mean {close!r}? see {help_of}" if close else f"see {help_of}"
    secret = any(word in name.lower() for word in _SECRET_HINTS)
    shown = f"unknown option {name!r}" + (" (its value is not shown)" if secret else "")
    return UsageError(shown, hint=hint)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """parse_args, with unknown arguments reported by `_unrecognized`. An option no parser
    knows is reported before argparse runs: argparse would take the value after it for the
    command name and repeat it in its error."""
    commands = _subparsers(parser)
    nested = [q for p in commands.values() for q in _subparsers(p).values()]  # slot verbs
    known = set(_option_names(parser)).union(
        *(_option_names(p) for p in [*commands.values(), *nested])
    )
    for arg in argv:
        if arg == "--":
            break
        if arg.startswith("--") and arg.split("=", 1)[0] not in known:
            command = next((a for a in argv if a in commands), None)
            raise _unrecognized(parser, command, [arg])
    args, extras = parser.parse_known_args(argv)
    if extras:
        raise _unrecognized(parser, getattr(args, "command", None), extras)
    return args


@functools.cache
def _common_options() -> _Parser:
    """Options every command takes, before or after the command name (built once: every
    subparser copies its actions, and `_command_word` reads them)."""
    p = _Parser(add_help=False)
    s = argparse.SUPPRESS
    vault = p.add_argument(
        "--vault",
        metavar="PATH",
        default=s,
        help="vault file (default: $LOCKER_VAULT or the user data dir)",
    )
    secret = p.add_argument(
        "--passphrase-file",
        metavar="FILE",
        default=s,
        help="read the passphrase from the first line of FILE ('-': stdin)",
    )
    for action in (vault, secret):
        setattr(action, "complete", FILE)  # noqa: B010 - shtab reads this attribute
    _unlock_options(p)
    return p


def _unlock_options(p: argparse.ArgumentParser) -> None:
    """Keys other than the passphrase, tried before it (the unlock order: docs/guides)."""
    s = argparse.SUPPRESS
    p.add_argument("--keyfile", metavar="PATH", default=s, help="unlock with this key file")
    p.add_argument(
        "--recovery-key-file",
        metavar="FILE",
        default=s,
        help="unlock with the recovery key on the first line of FILE ('-': stdin)",
    )
    p.add_argument(
        "--recovery-key", action="store_true", default=s, help="ask for the recovery key"
    )
    p.add_argument(
        "--identity",
        metavar="FILE",
        action="append",
        default=s,
        help="unlock a recipient slot with the age identity (AGE-SECRET-KEY-1...) in FILE",
    )
    p.add_argument(
        "--pkcs11-module",
        metavar="PATH",
        default=s,
        help="unlock a token slot through this PKCS#11 module (.so)",
    )
    p.add_argument(
        "--pkcs11-token", metavar="LABEL", default=s, help="the token's label (if several)"
    )
    p.add_argument(
        "--pkcs11-key",
        metavar="LABEL",
        default=s,
        help="the label of the P-256 key on the token (default: locker)",
    )
    p.add_argument(
        "--pin-file",
        metavar="FILE",
        default=s,
        help="read the token's PIN from the first line of FILE ('-': stdin)",
    )
    p.add_argument(
        "--no-keyring",
        action="store_true",
        default=s,
        help="do not look in the OS keyring for this vault's key",
    )


class _Unused:
    """Stands in for the parser of a command that is not running (`build_parser(only=...)`):
    takes every call made on a parser (add_argument, add_subparsers, add_parser, set_defaults)
    and keeps nothing, so a command's start-up does not build the other thirty parsers."""

    def __getattr__(self, name: str) -> Callable[..., _Unused]:
        return self._take

    def __setattr__(self, name: str, value: object) -> None:
        pass

    def _take(self, *args: object, **kwargs: object) -> _Unused:
        return self


_UNUSED = cast(argparse.ArgumentParser, _Unused())


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `only`, just that command's subparser under the top level (a
    command's start-up then pays for its own arguments, not for all thirty commands'). The
    other commands get `_UNUSED`, which keeps nothing. Only `main` passes `only`, for a
    command it found on the command line; an unknown one gets the whole parser."""
    common = _common_options()
    parser = _Parser(
        prog="locker",
        description="An encrypted local secrets locker.",
        parents=[common],
        epilog=ENVIRONMENT_AND_EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"locker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, handler: str, help: str, example: str = "") -> argparse.ArgumentParser:
        """`handler` is "module:function" in locker, imported only when that command runs;
        `example` is one or more command lines shown under the command's --help."""
        if only is not None and name != only:
            return _UNUSED
        lines = [f"  $ {line}" for line in example.splitlines() if line.strip()]
        epilog = ("example:\n" + "\n".join(lines)) if lines else None
        p = sub.add_parser(name, parents=[common], help=help, description=help, epilog=epilog)
        p.set_defaults(handler=handler)
        return p

    p = command(
        "init",
        "cli.commands:cmd_init",
        "create a new vault",
        "locker init --vault ~/ops.locker --kdf-target 1",
    )
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

    p = command(
        "add",
        "cli.know_commands:cmd_add",
        "add files or directories (recursively)",
        "locker add ~/.ssh/id_ed25519 certs/\nprintf '%s' \"$TOKEN\" | locker add - --as api/token",
    )
    paths = p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a file, a directory (added with everything under it) or '-' (standard input)",
    )
    setattr(paths, "complete", FILE)  # noqa: B010
    p.add_argument(
        "--as", dest="as_name", metavar="NAME", help="entry name (a prefix for a directory)"
    )
    p.add_argument("--force", action="store_true", help="replace entries that exist")
    p.add_argument(
        "--shred",
        action="store_true",
        help="once stored and verified, overwrite and remove the sources (best effort on SSDs)",
    )

    p = command("ls", "cli.commands:cmd_ls", "list entries", "locker ls -l")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("-l", dest="long", action="store_true", help="show size and times")

    p = command(
        "cat",
        "cli.commands:cmd_cat",
        "write an entry to standard output",
        "locker cat prod.env | grep DB_",
    )
    p.add_argument("name", metavar="NAME", help="the entry's name, as 'locker ls' shows it")

    p = command(
        "get",
        "cli.commands:cmd_get",
        "write entries (or directories of entries) to files",
        "locker get certs --to /run/deploy",
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="an entry, or a directory of entries")
    to = p.add_argument(
        "--to",
        metavar="DIR",
        default=".",
        help="target directory, made if only its last part is missing (default: .)",
    )
    setattr(to, "complete", DIRECTORY)  # noqa: B010
    p.add_argument("--force", action="store_true", help="replace files that exist")

    p = command("rm", "cli.commands:cmd_rm", "remove entries", "locker rm -r old-certs")
    p.add_argument("names", nargs="+", metavar="NAME", help="an entry, or a directory with -r")
    p.add_argument(
        "-r", dest="recursive", action="store_true", help="remove directories of entries"
    )

    p = command(
        "mv",
        "cli.commands:cmd_mv",
        "rename an entry or a directory of entries",
        "locker mv prod.env prod/app.env",
    )
    p.add_argument("old", metavar="OLD", help="the entry or directory of entries to rename")
    p.add_argument("new", metavar="NEW", help="its new name")
    p.add_argument("--force", action="store_true", help="replace an entry named NEW")

    p = command(
        "passwd",
        "cli.commands:cmd_passwd",
        "change the passphrase (rewraps the key slot only)",
        "locker passwd",
    )
    p.add_argument(
        "--new-passphrase-file",
        metavar="FILE",
        help="read the new passphrase from FILE ('-': stdin)",
    )
    p.add_argument("--kdf-memory", type=int, metavar="MIB", help="new Argon2id memory in MiB")
    p.add_argument("--kdf-time", type=int, metavar="N", help="new Argon2id passes")
    p.add_argument("--kdf-parallelism", type=int, metavar="N", help="new Argon2id lanes")
    p.add_argument(
        "--rekey", action="store_true", help="also make a new master key (old copies stay old)"
    )
    if only in (None, "slot"):
        _slot_commands(sub, common)

    command(
        "rekey",
        "cli.commands:cmd_rekey",
        "make a new master key and re-encrypt every entry",
        "locker rekey",
    )
    command(
        "verify",
        "cli.commands:cmd_verify",
        "decrypt every entry and report failures",
        "locker verify",
    )

    p = command(
        "info",
        "cli.info_commands:cmd_info",
        "show header facts (no passphrase needed)",
        "locker info --json",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("log", "cli.commands:cmd_log", "show the vault's audit log", "locker log")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command(
        "mount",
        "cli.mount_commands:cmd_mount",
        "work on the files in a private directory until locked",
        "locker mount --idle 120 --max-time 1h",
    )
    mount_dir = p.add_argument(
        "--dir", metavar="DIR", help="mount here (default: a new private RAM dir)"
    )
    setattr(mount_dir, "complete", DIRECTORY)  # noqa: B010
    p.add_argument(
        "--idle", default="300", metavar="SECONDS", help="lock after this long unused (default 300)"
    )
    p.add_argument(
        "--max-time", default="8h", metavar="DURATION", help="lock after this long (default 8h)"
    )
    command(
        "lock",
        "cli.lock_commands:cmd_lock",
        "lock active mounts (all of them unless --vault is given)",
        "locker lock",
    )
    p = command(
        "status",
        "cli.lock_commands:cmd_status",
        "list active and orphaned mounts",
        "locker status",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = command(
        "recover",
        "cli.recover_commands:cmd_recover",
        "save or discard what a crashed mount left behind; decide about a damaged commit "
        "record (--generation N)",
        "locker recover",
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="save the changes into the vault, then wipe; with --generation: continue without "
        "asking although the record passed over can be restored",
    )
    p.add_argument("--discard", action="store_true", help="wipe without saving the changes")
    p.add_argument(
        "--generation",
        type=int,
        metavar="N",
        help="after a commit record was passed over: N = the generation in force continues "
        "from it (the save that record holds is lost); N = the one after restores that save "
        "('locker verify' names both)",
    )
    _know_commands(command, common)
    p = command(
        "edit",
        "cli.edit_commands:cmd_edit",
        "edit an entry in $EDITOR (a private RAM copy)",
        "locker edit prod.env",
    )
    p.add_argument("name", metavar="NAME", help="the entry to edit")
    p = command(
        "tui",
        "cli.tui_commands:cmd_tui",
        "open the terminal app (bare 'locker' on a terminal does too)",
        "locker --vault ~/ops.locker tui --idle 10m",
    )
    p.add_argument(
        "--idle", default="300", metavar="SECONDS", help="lock after this long unused (default 300)"
    )
    _bundle_commands(command)

    p = command("help", "cli.main:cmd_help", "show the help of a command", "locker help add")
    p.add_argument("topic", nargs="?", metavar="COMMAND", help="the command to explain")

    p = command(
        "completion",
        "cli.main:cmd_completion",
        "print a shell completion script (bash, zsh or tcsh) generated from this parser",
        "locker completion bash > ~/.local/share/bash-completion/completions/locker",
    )
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or tcsh")
    return parser


def _bundle_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command(
        "export",
        "cli.bundle_commands:cmd_export",
        "write entries to a protected bundle (a locker container) and verify it there",
        "locker export /media/stick/keys.locker tls --generate-passphrase",
    )
    p.add_argument("bundle", metavar="BUNDLE", help="the bundle file to create")
    p.add_argument("names", nargs="*", metavar="NAME", help="entries or directories (default: all)")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument(
        "--bundle-passphrase-file",
        metavar="FILE",
        help="read the bundle's passphrase from FILE ('-': stdin)",
    )
    secret.add_argument(
        "--generate-passphrase",
        action="store_true",
        help="make a random passphrase (>= 128 bits), shown once",
    )
    p.add_argument(
        "--recipient",
        action="append",
        metavar="PUBKEY",
        help="also (or, without a passphrase option, only) open with this age1... key's identity",
    )
    p.add_argument("--kdf-memory", type=int, metavar="MIB", help="Argon2id memory in MiB")
    p.add_argument("--kdf-time", type=int, metavar="N", help="Argon2id passes")
    p.add_argument("--kdf-parallelism", type=int, metavar="N", help="Argon2id lanes")

    p = command(
        "import",
        "cli.bundle_commands:cmd_import",
        "merge a bundle's entries, with their metadata, into the vault",
        "locker import /media/stick/keys.locker --on-conflict rename",
    )
    p.add_argument("bundle", metavar="BUNDLE", help="the bundle to read")
    p.add_argument("names", nargs="*", metavar="NAME", help="entries or directories (default: all)")
    p.add_argument(
        "--bundle-passphrase-file",
        metavar="FILE",
        help="read the bundle's passphrase from FILE ('-': stdin)",
    )
    p.add_argument(
        "--bundle-identity",
        action="append",
        metavar="FILE",
        help="open the bundle with the age identity (AGE-SECRET-KEY-1...) in FILE",
    )
    p.add_argument(
        "--on-conflict",
        choices=("skip", "overwrite", "rename"),
        help="for names the vault holds already (default: stop before writing anything)",
    )


def _know_commands(command: Callable[..., argparse.ArgumentParser], common: _Parser) -> None:
    p = command(
        "inspect",
        "cli.know_commands:cmd_inspect",
        "what the vault holds: expiry, key age, key and certificate pairs (exit 6: attention)",
        "locker inspect --expiring-within 14",
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
    p.add_argument(
        "--refresh",
        action="store_true",
        help="first recognise entries that have no facts yet (added before locker knew "
        "what they hold) and save their facts: decrypts those entries only",
    )

    p = command(
        "run",
        "cli.know_commands:cmd_run",
        "run a command with secrets in its environment (exits with its exit code)",
        "locker run --env prod.env --file tls/server.key:TLS_KEY -- ./deploy.sh",
    )
    p.add_argument(
        "--env", action="append", metavar="NAME", help="an env entry whose variables to set"
    )
    p.add_argument(
        "--file",
        action="append",
        metavar="NAME:VAR",
        help="put entry NAME in a private RAM directory and its path in $VAR (wiped after)",
    )
    p.add_argument(
        "cmd",
        nargs=argparse.REMAINDER,
        metavar="-- CMD ARGS",
        help="the command, after '--' (its arguments are never secrets: use --env and --file)",
    )

    p = command(
        "sweep",
        "cli.know_commands:cmd_sweep",
        "find plaintext secrets under PATHs (exit 6 if any is left); --import moves them in",
        "locker sweep /srv /home --json\nlocker sweep /srv/app --import",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to search")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--import",
        dest="import_",
        action="store_true",
        help="add each file (named by its path), verify, then shred the original",
    )
    p.add_argument("--yes", action="store_true", help="with --import: do not ask")
    p.add_argument(
        "--cross-devices", action="store_true", help="descend into other file systems too"
    )

    gen = command(
        "gen",
        "",
        "generate keys and secrets inside the vault",
        "locker gen jwt auth/signing --alg EdDSA\nlocker gen tls web/server.key --cn web.example",
    ).add_subparsers(
        dest="gen_kind",
        metavar="KIND",
        parser_class=_Parser,
        required=True,
        help="jwt (a JWT signing key), tls (a TLS key and its CSR), secret (random bytes), "
        "identity (an age X25519 identity, kept outside the vault)",
    )
    p = gen.add_parser("jwt", parents=[common], help="a JWT signing key; prints its public JWK")
    p.set_defaults(handler="cli.know_commands:cmd_gen_jwt")
    p.add_argument("name", nargs="?", metavar="NAME", help="the entry for the private key")
    p.add_argument(
        "--alg", choices=("ES256", "ES384", "EdDSA", "RS256"), default="ES256", help="the JWS alg"
    )
    p.add_argument("--jwks", action="store_true", help="print the JWKS of every signing key held")
    p.add_argument("--force", action="store_true", help="replace an entry named NAME")
    p = gen.add_parser("tls", parents=[common], help="a TLS key; writes its CSR")
    p.set_defaults(handler="cli.know_commands:cmd_gen_tls")
    p.add_argument("name", metavar="NAME", help="the entry for the private key")
    p.add_argument("--cn", required=True, help="the subject's common name")
    p.add_argument("--san", action="append", metavar="NAME", help="a DNS name or IP (repeat)")
    p.add_argument(
        "--key",
        choices=("ec", "rsa", "ed25519"),
        default="ec",
        help="EC P-256 (default), RSA 3072 or Ed25519",
    )
    p.add_argument("--csr", metavar="FILE", help="write the CSR here (default: standard output)")
    p.add_argument("--force", action="store_true", help="replace an entry named NAME")
    p = gen.add_parser(
        "secret", parents=[common], help="random bytes for HMAC, stored base64 encoded"
    )
    p.set_defaults(handler="cli.know_commands:cmd_gen_secret")
    p.add_argument("name", metavar="NAME", help="the entry for the secret")
    p.add_argument("--bytes", type=int, default=32, metavar="N", help="how many (default 32)")
    p.add_argument("--force", action="store_true", help="replace an entry named NAME")
    _gen_identity(gen, common)


def _gen_identity(kinds: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    text = "an X25519 identity in age's format, for 'slot add-recipient' and --identity"
    p = kinds.add_parser(
        "identity",
        parents=[common],
        help=text,
        description=text,
        epilog="example:\n  $ locker gen identity --output ~/.config/locker/identity.txt",
    )
    p.set_defaults(handler="cli.slot_commands:cmd_gen_identity")
    p.add_argument(
        "--output",
        metavar="FILE",
        help="write the identity to FILE (mode 0600, never replaced) instead of standard output",
    )


def _slot_commands(sub: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    text = "list, add and remove the vault's key slots"
    example = (
        "example:\n  $ locker slot ls\n  $ locker slot add-recovery\n"
        "  $ locker slot add-keyfile ~/deploy.key --generate\n  $ locker slot remember"
    )
    slot = sub.add_parser("slot", parents=[common], help=text, description=text, epilog=example)
    verbs = slot.add_subparsers(
        dest="slot_command",
        metavar="SUBCOMMAND",
        parser_class=_Parser,
        required=True,
        help="what to do with the slots",
    )

    def verb(name: str, function: str, help: str, example: str) -> argparse.ArgumentParser:
        p = verbs.add_parser(
            name, parents=[common], help=help, description=help, epilog=f"example:\n  $ {example}"
        )
        p.set_defaults(handler=f"cli.slot_commands:{function}")
        return p

    def label(p: argparse.ArgumentParser) -> None:
        p.add_argument("--label", metavar="TEXT", help="a name for the slot, shown by 'slot ls'")

    def kdf(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kdf-memory", type=int, metavar="MIB", help="Argon2id memory in MiB")
        p.add_argument("--kdf-time", type=int, metavar="N", help="Argon2id passes")
        p.add_argument("--kdf-parallelism", type=int, metavar="N", help="Argon2id lanes")

    def new_passphrase(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--new-passphrase-file",
            metavar="FILE",
            help="read the new passphrase from FILE ('-': stdin)",
        )

    p = verb("ls", "cmd_slot_ls", "list key slots (never secrets)", "locker slot ls --json")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = verb(
        "add-passphrase",
        "cmd_slot_add_passphrase",
        "add a passphrase slot",
        "locker slot add-passphrase --label bob",
    )
    label(p)
    new_passphrase(p)
    kdf(p)
    p = verb(
        "add-recovery",
        "cmd_slot_add_recovery",
        "add a recovery key, printed once",
        "locker slot add-recovery",
    )
    label(p)
    p = verb(
        "add-keyfile",
        "cmd_slot_add_keyfile",
        "add a key-file slot",
        "locker slot add-keyfile ~/deploy.key --generate",
    )
    p.add_argument("path", metavar="PATH", help="the key file (32 bytes to 1 MiB)")
    p.add_argument("--generate", action="store_true", help="write a new random key file at PATH")
    p.add_argument(
        "--with-passphrase",
        action="store_true",
        help="the key file and a passphrase together (two factors)",
    )
    label(p)
    new_passphrase(p)
    kdf(p)
    p = verb(
        "remember",
        "cmd_slot_remember",
        "keep a key in this machine's OS keyring (no prompt)",
        "locker slot remember",
    )
    label(p)
    verb(
        "forget",
        "cmd_slot_forget",
        "remove this machine's keyring slot and its secret",
        "locker slot forget",
    )
    p = verb(
        "add-recipient",
        "cmd_slot_add_recipient",
        "add a slot an X25519 public key (age1...) opens, with its identity",
        "locker slot add-recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
    )
    p.add_argument("recipient", metavar="PUBKEY", help="an age X25519 recipient, age1...")
    label(p)
    p = verb(
        "add-pkcs11",
        "cmd_slot_add_pkcs11",
        "add a slot a P-256 key on a PKCS#11 token opens (YubiKey PIV, smart card, HSM)",
        "locker slot add-pkcs11 --pkcs11-module /usr/lib/x86_64-linux-gnu/libykcs11.so",
    )
    p.add_argument(
        "--generate",
        action="store_true",
        help="first make the P-256 key (--pkcs11-key LABEL) on the token",
    )
    label(p)
    p = verb("rm", "cmd_slot_rm", "remove a key slot (never the last one)", "locker slot rm 3ffc")
    p.add_argument("id", metavar="ID", help="slot id, or its first digits ('slot ls')")
    p.add_argument(
        "--rekey", action="store_true", help="also make a new master key (old copies stay old)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list in (["--version"], ["-V"]):
        print(f"locker {__version__}")
        return EXIT_OK
    try:
        parser = _parser_for(args_list)
        args = parse(parser, args_list)
        if getattr(args, "command", None) == "help":
            return cmd_help(args, parser)
        if getattr(args, "command", None) == "completion":
            return cmd_completion(args, parser)
        spec: str | None = getattr(args, "handler", None)
        if spec is None and sys.stdin.isatty() and sys.stdout.isatty():
            spec = "cli.tui_commands:cmd_tui"  # bare `locker` on a terminal opens the app
        if getattr(args, "command", None) not in ("recover", "status") and not spec_is_tui(spec):
            _orphan_notice()
        if spec is None:
            from locker.cli.info_commands import cmd_overview

            return cmd_overview(args, parser)
        return _resolve(spec)(args)
    except LockerError as exc:
        return report(exc, exc.exit_code, exc.hint)
    except Terminated as exc:
        sys.stderr.write(f"locker: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\nlocker: interrupted\n")
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:  # the last line of defence (OS errors too): one line, no traceback
        message, hint = describe(exc)
        return report(exc, EXIT_ERROR, hint, message)
    finally:
        prompts = sys.modules.get("locker.cli.prompts")  # loaded only if it handed out secrets
        if prompts is not None:
            prompts.forget_all()


def _parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """The parser `main` needs for `argv`: the one command's, or the whole one where the help
    lists every command (no command, `help`, `completion`) or the command is unknown."""
    word = _command_word(argv)
    if word is None or word in ("help", "completion"):
        return build_parser()
    parser = build_parser(only=word)
    return parser if word in _subparsers(parser) else build_parser()


def _command_word(argv: list[str]) -> str | None:
    """The first argument that is neither an option nor the value of a common option."""
    takes_value = {o for a in _common_options()._actions if a.nargs != 0 for o in a.option_strings}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return None
        if not arg.startswith("-") or arg == "-":
            return arg
        i += 2 if arg in takes_value else 1
    return None


def cmd_help(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`locker help [COMMAND]`: the same text as `locker [COMMAND] --help`."""
    topic = getattr(args, "topic", None)
    if topic is None:
        parser.print_help()
        return EXIT_OK
    commands = _subparsers(parser)
    if topic not in commands:
        close = _closest(topic, list(commands), 0.5)
        hint = f"did you mean 'locker help {close}'? " if close else ""
        raise UsageError(f"unknown command {topic!r}", hint=f"{hint}'locker --help' lists them")
    commands[topic].print_help()
    return EXIT_OK


def cmd_completion(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`locker completion SHELL`: shtab's completion script for this very parser."""
    import shtab

    sys.stdout.write(shtab.complete(parser, shell=args.shell))
    return EXIT_OK


def spec_is_tui(spec: str | None) -> bool:
    """The app shows orphaned mounts itself, on its unlock screen."""
    return spec == "cli.tui_commands:cmd_tui"


def _resolve(spec: str) -> Handler:
    module, function = spec.split(":")
    handler: Handler = getattr(importlib.import_module(f"locker.{module}"), function)
    return handler


def _orphan_notice() -> None:
    """Warn about mounts left behind by a dead process; never fails the command itself."""
    try:
        from locker.mount.runtime import journal_dirs

        if not any(os.listdir(d) for d in journal_dirs()):
            return  # no record (the journal module, its dataclasses and JSON, are not needed)
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
    command = "locker recover"
    selected = os.environ.get("LOCKER_VAULT")  # recover looks only at that vault's mounts
    if selected and all(f.record.vault != os.path.realpath(selected) for f in left):
        one = len(left) == 1
        command = f"locker recover --vault {left[0].record.vault}" if one else "locker recover"
        command = command if one else "LOCKER_VAULT= " + command
    sys.stderr.write(f"locker: hint: run '{command}' to save or discard their files\n")


def report(exc: BaseException, code: int, hint: str | None, message: str | None = None) -> int:
    if os.environ.get("LOCKER_DEBUG") == "1":
        import traceback

        traceback.print_exception(exc)
    sys.stderr.write(f"locker: error: {message or exc}\n")
    if hint:
        sys.stderr.write(f"locker: hint: {hint}\n")
    return code


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so interpreter shutdown does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
