"""Shell completion (shtab) and the man page (argparse-manpage), both generated from the
parser, so that they list every command and option there is."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import RunLocker, require

from locker.cli.main import _subparsers, build_parser

ROOT = Path(__file__).resolve().parent.parent


def completions(script: str, words: list[str], tmp_path: Path) -> list[str]:
    """What bash offers for `words` (the last one being completed), the script sourced."""
    path = tmp_path / "locker.bash"
    path.write_text(script)
    line = " ".join(words)
    program = (
        f"source {path}\n"
        f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
        f"COMP_POINT={len(line)}\n"
        "_shtab_locker\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", program],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    return out.stdout.split()


def test_bash_completion_offers_commands_and_options(run_locker: RunLocker, tmp_path: Path) -> None:
    proc = run_locker("completion", "bash")
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout.decode()
    assert set(completions(script, ["locker", "lo"], tmp_path)) == {"lock", "log"}
    assert "--json" in completions(script, ["locker", "ls", "--j"], tmp_path)
    every = set(completions(script, ["locker", ""], tmp_path))
    assert set(_subparsers(build_parser())) <= every


def test_zsh_and_tcsh_scripts_are_valid(run_locker: RunLocker, tmp_path: Path) -> None:
    zsh = require("zsh", "zsh, to check the zsh completion script")
    proc = run_locker("completion", "zsh")
    assert proc.returncode == 0 and b"#compdef locker" in proc.stdout
    script = tmp_path / "_locker"
    script.write_bytes(proc.stdout)
    subprocess.run([zsh, "-n", script], check=True)
    assert run_locker("completion", "tcsh").returncode == 0


def test_completion_of_an_unknown_shell_is_a_usage_error(run_locker: RunLocker) -> None:
    proc = run_locker("completion", "fish")
    assert proc.returncode == 2 and b"invalid choice: 'fish'" in proc.stderr


def test_man_page_lists_every_command(tmp_path: Path) -> None:
    require(shutil.which("bash"), "bash for scripts/manpage")
    out = subprocess.run(
        [ROOT / "scripts" / "manpage"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith(".TH") or "\n.TH " in out
    for name in _subparsers(build_parser()):
        assert f"\\fBlocker\\fR \\fI\\,{name}\\/\\fR" in out, name
    man = shutil.which("man")
    if man:  # the page renders (groff), and says what --passphrase-file does
        page = tmp_path / "locker.1"
        page.write_text(out)
        shown = subprocess.run(
            [man, "-l", page],
            capture_output=True,
            text=True,
            check=True,
            env={"MANPAGER": "cat", "PATH": "/usr/bin:/bin", "COLUMNS": "100"},
        ).stdout
        assert "passphrase" in shown
