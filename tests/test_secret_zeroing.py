"""Passphrases the CLI reads are bytearrays, and they are zeroed once the command is done;
the copies made on the way (the typed line, the second typing of a new passphrase) at once
(issue 10, item 5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import locker_env

from locker.cli import prompts
from locker.errors import UsageError

# Runs a whole command through main() and reports every secret prompts handed out.
_PROBE = """
import sys
from locker.cli import prompts
from locker.cli.main import main

seen = []
for name in ("read_secret_file", "_prompt"):
    real = getattr(prompts, name)
    def spy(*a, _real=real, **k):
        secret = _real(*a, **k)
        seen.append((secret, bytes(secret)))
        return secret
    setattr(prompts, name, spy)
code = main(sys.argv[1:])
print(code, len(seen), all(len(b) and not any(s) for s, b in seen), all(b for s, b in seen))
"""


def _probe(tmp_path: Path, *args: str) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        env=locker_env(tmp_path),
        cwd=tmp_path,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert r.stdout, r.stderr
    return r.stdout.decode().splitlines()[-1].split()


def test_init_and_ls_zero_every_passphrase_they_read(tmp_path: Path, pwfile: Path) -> None:
    vault = tmp_path / "v.locker"
    flags = ("--kdf-memory", "8", "--kdf-time", "1", "--kdf-parallelism", "1")
    common = ("--vault", str(vault), "--passphrase-file", str(pwfile))
    assert _probe(tmp_path, "init", *common, *flags) == ["0", "1", "True", "True"]
    assert _probe(tmp_path, "ls", *common) == ["0", "1", "True", "True"]
    # and when the command fails (wrong passphrase): zeroed all the same
    wrong = tmp_path / "wrong.txt"
    wrong.write_bytes(b"not it\n")
    out = _probe(tmp_path, "ls", "--vault", str(vault), "--passphrase-file", str(wrong))
    assert out == ["3", "1", "True", "True"]


def test_passphrase_file_buffer_is_zero_after_forget_all(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_bytes(b"correct horse\n")
    secret = prompts.read_secret_file(str(f), "passphrase")
    assert secret == b"correct horse"
    prompts.forget_all()
    assert secret == bytes(len("correct horse"))


def _typed(monkeypatch: pytest.MonkeyPatch, *lines: bytes) -> list[bytearray]:
    given = [bytearray(x) for x in lines]
    queue = list(given)
    monkeypatch.setattr(prompts, "harden_process", lambda: None)  # not this test's process
    monkeypatch.setattr(prompts, "_prompt", lambda label: queue.pop(0))  # the terminal's lines
    return given


def test_new_passphrase_zeroes_the_second_typing(monkeypatch: pytest.MonkeyPatch) -> None:
    first, again = _typed(monkeypatch, b"a long new passphrase", b"a long new passphrase")
    secret = prompts.new_passphrase(None)
    assert secret is first and secret == b"a long new passphrase"
    assert again == bytes(len(again))


def test_new_passphrase_zeroes_both_typings_when_they_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, again = _typed(monkeypatch, b"a long new passphrase", b"a long new passphrasf")
    with pytest.raises(UsageError, match="differ"):
        prompts.new_passphrase(None)
    assert first == bytes(len(first))
    assert again == bytes(len(again))
