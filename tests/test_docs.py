"""The docs run: every ```console block of README.md and docs/guides/*.md is executed offline
and its output compared with what the page shows, so that the docs cannot drift.

The rules a page follows (docs/ARCHITECTURE.md says the same):

- A ```console block is run and checked. Anything that cannot run offline or in one shell,
  top to bottom (a foreground `locker mount` and what happens while it runs, ssh, a `kill -9`
  at a chosen moment, a `scripts/run` that installs), goes in a ```text block: shown, not run.
  A ```bash block is a script the page defines: it is run too (output not checked), so the
  console blocks after it can call what it defines.
- Each page runs in one fresh bash on a real terminal (a pty), top to bottom, so state
  carries from block to block. It starts with HOME and the working directory in an empty
  temp dir, `locker` from this checkout on PATH, no $LOCKER_VAULT, the test's own runtime
  dirs ($XDG_RUNTIME_DIR is RAM-backed).
- `$ CMD` lines are commands (continued by a trailing `\\` or by `> ` lines, as bash shows
  them); the lines up to the next `$ ` are what the terminal shows: stdout, stderr and
  prompts. A line `...` matches any number of lines. The exit code is not checked: show it
  with `echo $?` where it matters.
- Directives, HTML comments a reader never sees, take effect where they stand:
  `<!-- doc-test: cwd /tmp/demo home /root -->` what the page shows for the starting directory
  and for $HOME (the real ones are replaced by these; the start is home when both are equal);
  `<!-- doc-test: type "Passphrase: " correct horse -->` what is typed when a prompt ends the
  output (until changed; `Repeat ...` prompts get the same);
  and a hidden setup script, run but not shown:

      <!-- doc-test
      printf 'correct horse battery staple\\n' > pw
      -->

- Ignored when comparing: times and dates, `ls`'s `total N`, durations (`0.20 s`, `4m57s`), hex ids of 8 or more
  digits, PIDs, byte counts (`N bytes`, `header N`, size columns of `ls -l`), `user@host`,
  the uid in `locker-UID` and `/run/user/UID`, base64 lines of a PEM body, recovery keys, generated passphrases, age public keys and key-file fingerprints,
  trailing spaces.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import Places, locker_env

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs" / "guides").glob("*.md"))]
COMMAND_TIMEOUT = 120


@dataclass
class Step:
    """A command with the output the page shows (None: setup, not checked), or a `type`."""

    line: int
    command: str
    expected: list[str] | None = None
    typed: tuple[str, str] | None = None


@dataclass
class Page:
    path: Path
    steps: list[Step] = field(default_factory=list)
    cwd: str = "/tmp/demo"
    home: str = "/root"


def _directive(page: Page, number: int, text: str) -> None:
    words = shlex.split(text)
    if words and words[0] == "type" and len(words) >= 2:
        page.steps.append(Step(number, "", typed=(words[1], " ".join(words[2:]))))
        return
    settings = dict(zip(words[::2], words[1::2], strict=False))
    if not settings or set(settings) - {"cwd", "home"}:
        pytest.fail(f"{page.path.name}:{number}: unknown doc-test directive: {text}")
    page.cwd = settings.get("cwd", page.cwd)
    page.home = settings.get("home", page.home)


def parse(path: Path) -> Page:
    page = Page(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        declared = re.match(r"<!-- doc-test:\s*(.*?)\s*-->", line)
        if declared:
            _directive(page, i + 1, declared.group(1))
        elif line.strip() == "<!-- doc-test":
            start = i + 1
            while lines[i + 1].strip() != "-->":
                i += 1
            page.steps.append(Step(start + 1, "\n".join(lines[start : i + 1])))
            i += 1
        elif line.startswith("```console"):
            step: Step | None = None
            i += 1
            while not lines[i].startswith("```"):
                if lines[i].startswith("$ "):
                    command, first = lines[i][2:], i
                    while command.endswith("\\") or lines[i + 1].startswith("> "):
                        i += 1
                        more = lines[i][2:] if lines[i].startswith("> ") else lines[i]
                        command += "\n" + more  # bash joins `\` + newline itself
                    step = Step(first + 1, command, [])
                    page.steps.append(step)
                elif step is not None and step.expected is not None:
                    step.expected.append(lines[i])
                else:
                    pytest.fail(f"{path.name}:{i + 1}: output before the first `$ ` command")
                i += 1
        elif line.startswith("```bash"):
            start = i + 1
            while not lines[i + 1].startswith("```"):
                i += 1
            script = "\n".join(lines[start : i + 1])
            name = re.search(r"^# (\S+) ", script, re.M)
            if name and script.startswith("#!"):  # a script file: define it as a command
                body = script.split("\n", 1)[1]
                script = f"{name.group(1)}() (\n{body}\n)"
            page.steps.append(Step(start + 1, script))
            i += 1
        elif line.startswith("```"):
            while not lines[i + 1].startswith("```"):
                i += 1
            i += 1
        i += 1
    return page


HEX = re.compile(r"\b[0-9a-f]{8,}\b")
RULES = [
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\dZ?"), "<time>"),
    (re.compile(r"\b\d\d:\d\d(:\d\d)?\b"), "<time>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d\b"), "<date>"),
    (re.compile(r"^total \d+$"), "total <n>"),
    (re.compile(r"\b\d+(\.\d+)? s\b"), "<n> s"),
    (re.compile(r"\b(\d+h)?(\d+m)?\d+s\b|\b\d+h(\d+m)?\b|\b\d+m\b"), "<duration>"),
    (re.compile(r"\bPID \d+"), "PID <n>"),
    (re.compile(r"\b\d+ bytes\b"), "<n> bytes"),
    (re.compile(r"\b(header|index|data) \d+"), r"\1 <n>"),
    (re.compile(r"^\s*\d+(?=  <time>  )"), "<size>"),
    (re.compile(r"^([-dl][rwxsStT-]{9}) +\d+ +\S+ +\S+ +\d+ +\w{3} +\d+ +<time> "), r"\1 <ls> "),
    (re.compile(r"(?<![\w/])[\w.-]+@[\w.-]+(?=\s|$)"), "<user>@<host>"),
    (re.compile(r"\blocker-\d+\b"), "locker-<uid>"),
    (re.compile(r"/run/user/\d+"), "/run/user/<uid>"),
    (re.compile(r"^[A-Za-z0-9+/]{40,}={0,2}$"), "<base64>"),  # the body of a PEM key
    (re.compile(r"\b([0-9A-Z]{4}-){8}[0-9A-Z]{4}\b"), "<recovery key>"),
    (re.compile(r"\b([0-9A-Z]{4}-){6}[0-9A-Z]{4}\b"), "<generated passphrase>"),
    (re.compile(r"\b[0-9a-f]{4}(-[0-9a-f]{4}){3}\b"), "<fingerprint>"),
    (re.compile(r"\bage1[0-9a-z]{58}\b"), "<age public key>"),
]


def normalise(line: str) -> str:
    line = HEX.sub("<hex>", line.rstrip())
    for pattern, replacement in RULES:
        line = pattern.sub(replacement, line)
    return line


def matches(expected: list[str], actual: list[str]) -> bool:
    """`...` in expected matches any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


class Shell:
    """One bash on a pseudo-terminal for a page. Each command's output is read up to a marker;
    a prompt the page said what to type at is answered when it ends the output."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            try:
                os.chdir(cwd)
                os.execve("/bin/bash", ["bash", "--noprofile", "--norc", "--noediting"], env)
            finally:
                os._exit(127)
        self.count = 0
        self.typed: dict[str, str] = {}
        self.run("stty -echo cols 100")

    def run(self, command: str) -> str:
        self.count += 1
        marker = f"__doc_test_done_{self.count}__"
        # One compound command: bash reads all of it before running it, so nothing of the
        # script is left in the terminal's input for a prompt to take as typed. It starts
        # with the exit code the page's previous command left (for `echo $?`), not printf's.
        os.write(
            self.fd,
            f"{{ (exit ${{__doc_status:-0}}); {command}\n}}; __doc_status=$?; "
            f"printf '\\n%s\\n' {marker}\n".encode(),
        )
        out = b""
        answered = 0
        deadline = time.monotonic() + COMMAND_TIMEOUT
        end = f"\n{marker}\n".encode()
        while not out.replace(b"\r\n", b"\n").endswith(end):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not ready:
                pytest.fail(f"hung after {COMMAND_TIMEOUT} s: {command}\n{out.decode()}")
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                pytest.fail(f"the shell exited during: {command}\n{out.decode()}")
            out += chunk
            text = out[answered:].decode("utf-8", "replace")
            for prompt, answer in sorted(self.typed.items(), key=lambda pa: -len(pa[0])):
                if text.endswith(prompt):
                    os.write(self.fd, answer.encode() + b"\n")
                    answered = len(out)
                    break
        text = out.replace(b"\r\n", b"\n").decode("utf-8", "replace")
        return text[: -len(end)]

    def close(self) -> None:
        os.close(self.fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGHUP)
        os.waitpid(self.pid, 0)


def _prompts(prompt: str) -> list[str]:
    """A prompt and the one that repeats it (`Passphrase: ` and `Repeat passphrase: `)."""
    return [prompt, f"Repeat {prompt[0].lower()}{prompt[1:]}"]


@pytest.mark.parametrize("path", PAGES, ids=[p.name for p in PAGES])
def test_console_blocks_show_real_output(path: Path, tmp_path: Path, places: Places) -> None:
    page = parse(path)
    home = tmp_path / "home"
    work = home if page.cwd == page.home else tmp_path / "work"
    home.mkdir()
    work.mkdir(exist_ok=True)
    env = locker_env(
        tmp_path,
        {
            "HOME": str(home),
            "XDG_DATA_HOME": None,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PS1": "",
            "PS2": "",
            "TERM": "dumb",
            "COLUMNS": "100",
            "TZ": "UTC",
        },
    )
    shown = sorted(  # real path -> what the page shows, longest first
        [(str(home), page.home), (str(work), page.cwd), (str(places.shm), "/dev/shm")],
        key=lambda pair: -len(pair[0]),
    )
    shown.append((str(places.xdg), "/run/user/<uid>"))
    shell = Shell(work, env)
    failures = []
    try:
        for step in page.steps:
            if step.typed:
                for prompt in _prompts(step.typed[0]):
                    shell.typed[prompt] = step.typed[1]
                continue
            out = shell.run(step.command)
            if step.expected is None:
                continue
            for real, doc in shown:
                out = out.replace(real, doc)
            actual = [normalise(line) for line in out.splitlines()]
            expected = [normalise(line) for line in step.expected]
            if not matches(expected, actual):
                failures.append(
                    f"{path.relative_to(ROOT)}:{step.line}: $ {step.command}\n"
                    + "  the page shows:\n"
                    + "".join(f"    {line}\n" for line in step.expected)
                    + "  it printed:\n"
                    + "".join(f"    {line}\n" for line in out.splitlines())
                )
    finally:
        shell.close()
    assert not failures, "\n".join(failures)


def test_the_harness_reads_pages_by_its_rules(tmp_path: Path) -> None:
    """Hidden setup, directives, continuation lines, `...`, bash scripts, normalisation."""
    sample = tmp_path / "sample.md"
    sample.write_text(
        "<!-- doc-test: cwd /x home /h -->\n<!-- doc-test\ntouch f\n-->\n"
        '<!-- doc-test: type "Passphrase: " a b -->\n'
        "```console\n$ ls \\\n  f\nf\n$ for a in b; do\n>   echo a\n> done\n...\n```\n"
        "```text\n$ not run\n```\n"
        "```bash\n#!/bin/bash\n# tool ARG: does it\necho $1\n```\n"
    )
    page = parse(sample)
    assert (page.cwd, page.home) == ("/x", "/h")
    assert [(s.command, s.expected, s.typed) for s in page.steps] == [
        ("touch f", None, None),
        ("", None, ("Passphrase: ", "a b")),
        ("ls \\\n  f", ["f"], None),
        ("for a in b; do\n  echo a\ndone", ["..."], None),
        ("tool() (\n# tool ARG: does it\necho $1\n)", None, None),
    ]
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert not matches(["a", "...", "d"], ["a", "b"])
    assert normalise("2026-11-28T14:19:08Z  root@vm  add  x") == "<time>  <user>@<host>  add  x"
    assert normalise("took 0.20 s; PID 42; 1969 bytes; mnt-7343048d0f046102") == (
        "took <n> s; PID <n>; <n> bytes; mnt-<hex>"
    )
    assert normalise("-rw------- 1 dev dev 102 Nov 28 14:55 .env") == "-rw------- <ls> .env"


def test_a_command_sees_the_exit_code_of_the_command_before_it(tmp_path: Path) -> None:
    """`$ echo $?` on its own line shows the page's previous command's exit code, not the
    harness's own marker."""
    shell = Shell(tmp_path, locker_env(tmp_path, {"PS1": "", "PS2": "", "TERM": "dumb"}))
    try:
        shell.run("sh -c 'exit 5'")
        assert shell.run("echo $?").split() == ["5"]
        assert shell.run("echo $?").split() == ["0"]
    finally:
        shell.close()


def test_a_backslash_continued_line_is_one_command(tmp_path: Path) -> None:
    sample = tmp_path / "sample.md"
    sample.write_text("```console\n$ echo one \\\n    two\none two\n```\n")
    (step,) = parse(sample).steps
    shell = Shell(tmp_path, locker_env(tmp_path, {"PS1": "", "PS2": "", "TERM": "dumb"}))
    try:
        assert shell.run(step.command).split() == ["one", "two"]
    finally:
        shell.close()
