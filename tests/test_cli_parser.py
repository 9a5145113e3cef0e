"""The parser: no abbreviations, no secret echoed in an error, did-you-mean hints, help that
documents every command (arguments, an example), `locker help CMD`. Run in-process: these
are about parsing only, no vault is opened."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest
from conftest import RunLocker

from locker.cli.main import _subparsers, build_parser, main
from locker.errors import EXIT_USAGE

SECRET = "hunter2-is-a-secret"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own exits (--help, usage errors)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv",
    [
        ("ls", "--passphrase", SECRET),
        ("ls", f"--passphrase={SECRET}"),
        ("--passphrase", SECRET, "ls"),
        ("cat", "--passphrase", SECRET, "name"),
        ("passwd", "--new-passphrase", SECRET),
    ],
)
def test_passphrase_option_abbreviation_is_refused_without_echoing_the_value(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], tmp_path: Path
) -> None:
    """Issue 8 item 3: `--passphrase X` was taken as `--passphrase-file X`, and the error
    printed X."""
    code, out, err = run(capsys, *argv, "--vault", str(tmp_path / "none.locker"))
    assert code == EXIT_USAGE, err
    assert SECRET not in out + err
    assert "unknown option '--" in err and "its value is not shown" in err
    assert "did you mean '--" in err


def test_no_abbreviation_anywhere(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for p in [parser, *_subparsers(parser).values()]:
        assert p.allow_abbrev is False, p.prog
    code, _, err = run(capsys, "ls", "--js")
    assert code == EXIT_USAGE and "unknown option '--js'" in err
    code, _, err = run(capsys, "--vau", "x", "ls")
    assert code == EXIT_USAGE and "unknown option '--vau'" in err


@pytest.mark.parametrize(
    ("argv", "error", "hint"),
    [
        (("lss",), "unknown command 'lss'", "did you mean 'locker ls'?"),
        (("ad", "x"), "unknown command 'ad'", "did you mean 'locker add'?"),
        (
            ("ls", "--jsn"),
            "unknown option '--jsn'",
            "did you mean '--json'? see 'locker ls --help'",
        ),
        (("rm", "--recursive", "x"), "unknown option '--recursive'", "see 'locker rm --help'"),
        (("cat", "a", "b"), "unexpected argument 'b'", "see 'locker cat --help'"),
        (("--jsn",), "unknown option '--jsn'", "see 'locker --help'"),
        (("help", "lss"), "unknown command 'lss'", "did you mean 'locker help ls'?"),
    ],
)
def test_did_you_mean(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], error: str, hint: str
) -> None:
    """Issue 8 item 13: one error line and a hint naming the command's own help."""
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE and out == ""
    lines = err.splitlines()
    assert lines[0] == f"locker: error: {error}", err
    assert lines[1].startswith("locker: hint: ") and hint in lines[1], err
    assert len(lines) == 2


def test_help_command_shows_the_commands_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for name in _subparsers(parser):
        code, direct, _ = run(capsys, name, "--help")
        assert code == 0
        code, via_help, _ = run(capsys, "help", name)
        assert code == 0 and via_help == direct and direct.startswith(f"usage: locker {name}")
    code, top, _ = run(capsys, "help")
    assert code == 0 and top.startswith("usage: locker")


def test_every_command_documents_its_arguments_and_an_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each command's --help: every argument has a help text and there is an example. A new
    command gets its example from `command(..., example="locker ...")` in cli/main.py."""
    for name, p in _subparsers(build_parser()).items():
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"locker {name}: {action.dest} has no help text"
        text = p.format_help()
        assert "\nexample:\n  $ locker " in text, f"locker {name} --help shows no example"


def test_top_level_help_lists_environment_and_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for needle in ("LOCKER_VAULT", "LOCKER_DEBUG", "XDG_RUNTIME_DIR", "exit codes:", "locker help"):
        assert needle in out, needle
    for code_number in range(7):
        assert f"\n  {code_number}  " in out or f"  {code_number}  " in out


def test_usage_error_from_a_real_process(run_locker: RunLocker) -> None:
    """The same through the installed entry point: exit 2, the secret never shown."""
    proc: subprocess.CompletedProcess[bytes] = run_locker("ls", "--passphrase", SECRET)
    assert proc.returncode == EXIT_USAGE
    assert SECRET.encode() not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "flag",
    [
        ["--passphrase-file", "pw"],
        ["--recovery-key"],
        ["--pin-file", "pin"],  # a PIN for no module
        ["--pkcs11-token", "YubiKey PIV"],
    ],
)
def test_tui_refuses_the_unlock_options_it_does_not_use(
    run_locker: RunLocker, tmp_path: Path, flag: list[str]
) -> None:
    """Named, never silently ignored (the app would ask for a passphrase instead)."""
    proc = run_locker("tui", "--vault", tmp_path / "v.locker", *flag)
    assert proc.returncode == 2, proc.stderr
    error = proc.stderr.decode().splitlines()[0]
    assert error.startswith("locker: error: ") and flag[0] in error, error


@pytest.mark.parametrize(
    "flag",
    [
        ["--keyfile", "k"],
        ["--recovery-key-file", "r"],
        ["--identity", "id.txt"],
        ["--pkcs11-module", "/usr/lib/softhsm/libsofthsm2.so"],
        ["--pkcs11-module", "m.so", "--pkcs11-token", "t", "--pkcs11-key", "k", "--pin-file", "p"],
    ],
)
def test_tui_takes_the_key_options(run_locker: RunLocker, tmp_path: Path, flag: list[str]) -> None:
    """Taken (tried before the passphrase); here only the missing terminal stops the app."""
    proc = run_locker("tui", "--vault", tmp_path / "v.locker", *flag)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.decode().splitlines()[0] == "locker: error: the TUI needs a terminal"
