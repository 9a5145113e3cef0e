"""What a new user hit (issue 8): silent skips in `add DIR`, secrets from pipes, OS errors
without a path, and messages that said the wrong thing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LOCKER, PASSPHRASE, RunLocker, locker_env, require

from locker.vault import Vault


def names(vault: Path) -> list[str]:
    with Vault.open(vault, PASSPHRASE) as v:
        return v.names()


def read(vault: Path, name: str) -> bytes:
    with Vault.open(vault, PASSPHRASE) as v:
        return b"".join(v.chunks(name))


def modes_count() -> list[str]:
    """A command prefix under which file modes bind: nothing for a normal user; for root,
    setpriv dropping the two capabilities that let root read any directory."""
    if os.getuid() != 0:
        return []
    setpriv = require("setpriv", "setpriv (util-linux) to drop root's DAC override")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.mark.permissions
def test_add_dir_with_an_unreadable_subdirectory_adds_nothing(
    tmp_path: Path, vault_path: Path, pwfile: Path
) -> None:
    """Issue 8 item 2: `chmod 000 d/sub; locker add d` added the rest and exited 0."""
    tree = tmp_path / "d"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.key").write_bytes(b"a")
    (tree / "sub" / "b.key").write_bytes(b"b")
    (tree / "sub").chmod(0)
    before = vault_path.read_bytes()
    try:
        proc = subprocess.run(
            [
                *modes_count(),
                *LOCKER,
                "add",
                tree,
                "--vault",
                vault_path,
                "--passphrase-file",
                pwfile,
            ],
            capture_output=True,
            env=locker_env(tmp_path),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    finally:
        (tree / "sub").chmod(0o700)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.decode().splitlines()[0] == (
        f"locker: error: cannot read the directory {tree / 'sub'}: Permission denied; "
        "nothing was added"
    )
    assert proc.stdout == b"" and vault_path.read_bytes() == before


def test_add_from_standard_input_and_pipes(
    cli: RunLocker, vault_path: Path, tmp_path: Path, pwfile: Path
) -> None:
    """Issue 8 item 5: `add - --as NAME` reads stdin; `/dev/stdin` and `<(cmd)` are read as
    the pipes they are (their link used to be resolved to `pipe:[...]`)."""
    proc = cli("add", "-", "--as", "api/token", input=b"s3cret\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"added api/token\n"
    proc = cli("add", "/dev/stdin", "--as", "from-dev-stdin", input=b"piped")
    assert proc.returncode == 0, proc.stderr
    script = (
        '"$0" -m locker add <(printf process-substitution) --as subst --vault "$1" '
        '--passphrase-file "$2"'
    )
    proc = subprocess.run(
        ["bash", "-c", script, sys.executable, str(vault_path), str(pwfile)],
        capture_output=True,
        env=locker_env(tmp_path),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert read(vault_path, "api/token") == b"s3cret\n"
    assert read(vault_path, "from-dev-stdin") == b"piped"
    assert read(vault_path, "subst") == b"process-substitution"


def test_pipes_need_a_name_and_stdin_cannot_be_both(
    cli: RunLocker, run_locker: RunLocker, vault_path: Path
) -> None:
    for args, text in (
        (("add", "-"), "name the entry with --as NAME"),
        (("add", "/dev/stdin"), "name the entry with --as NAME"),
    ):
        proc = cli(*args, input=b"x")
        if args[1] == "/dev/stdin" and proc.returncode == 0:
            pytest.fail("a pipe was added under a made-up name")
        assert proc.returncode == 2 and text in proc.stderr.decode(), proc.stderr
    proc = run_locker("add", "-", "--as", "x", "--vault", vault_path, "--passphrase-file", "-")
    assert proc.returncode == 2
    assert b"cannot hold both the passphrase and the entry" in proc.stderr
    assert names(vault_path) == []


def test_vault_that_is_a_directory_is_named(
    cli: RunLocker, run_locker: RunLocker, tmp_path: Path
) -> None:
    """Issue 8 item 9: `--vault DIR` said `error: Is a directory: 3`."""
    (tmp_path / "f").write_bytes(b"f")
    for args in (("ls",), ("info",), ("add", "f")):
        proc = run_locker(*args, "--vault", tmp_path, "--passphrase-file", tmp_path / "pw")
        err = proc.stderr.decode()
        assert proc.returncode == 2, err
        assert err.splitlines()[0] == f"locker: error: {tmp_path} is a directory, not a vault"


def test_os_errors_read_as_sentences(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError that reaches main: the path when it has one, never a descriptor number."""
    from locker.cli import main as cli_main

    for filename, text in (
        (3, "is a directory (errno 21)"),
        ("/x/y", "cannot use /x/y: is a directory"),
    ):
        exc = IsADirectoryError(21, "Is a directory")
        exc.filename = filename

        def boom(args: object, exc: OSError = exc) -> int:
            raise exc

        monkeypatch.setattr(cli_main, "_resolve", lambda spec: boom)
        assert cli_main.main(["info"]) == 1
        assert capsys.readouterr().err == f"locker: error: {text}\n"


def test_names_that_cannot_fit_the_tree_are_said_the_right_way_round(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    """Issue 8 item 14: `add FILE --as D` where D is a directory of entries."""
    f = tmp_path / "f.txt"
    f.write_bytes(b"f")
    assert cli("add", f, "--as", "d/a").returncode == 0
    proc = cli("add", f, "--as", "d")
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[0] == (
        "locker: error: 'd' is a directory of 1 entry in the vault; an entry cannot have its name"
    )
    proc = cli("add", f, "--as", "d/a/x")
    assert proc.returncode == 2
    assert "'d/a' is an entry (a file) in the vault; 'd/a/x' cannot go under it" in (
        proc.stderr.decode()
    )
    proc = cli("add", f, "--as", "")
    assert proc.returncode == 2 and b"--as needs a name" in proc.stderr
    assert names(vault_path) == ["d/a"]


def test_get_into_a_missing_parent_fails_before_the_prompt(
    run_locker: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    """No --passphrase-file and no terminal: had locker got as far as the prompt, it would
    say there is no terminal."""
    target = tmp_path / "no" / "such"
    proc = run_locker("get", "x", "--to", target, "--vault", vault_path)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[0] == (
        f"locker: error: cannot create {target}: its parent {target.parent} does not exist"
    )


def test_plurals(run_locker: RunLocker, vault_path: Path) -> None:
    proc = run_locker("--vault", vault_path)
    assert b", 1 key slot\n" in proc.stdout, proc.stdout
