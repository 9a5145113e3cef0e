"""Reading secrets for the CLI: passphrase files, terminal prompts, and process hardening.

The only module that prompts. Secrets are returned as bytearrays, never `str`, where the
standard library allows (getpass itself returns a `str`, which cannot be erased). Every
bytearray returned here is zeroed by `forget_all`, which the CLI calls when a command ends;
the copies made on the way (a typed line, a second typing) are zeroed at once.
"""

from __future__ import annotations

import os
import stat
import sys

from locker.errors import UsageError
from locker.mount.process import harden_process

SHORT_PASSPHRASE = 12

_handed_out: list[bytearray] = []


def forget(secret: bytearray) -> None:
    """Overwrite `secret` with zero bytes, in place."""
    secret[:] = bytes(len(secret))


def forget_all() -> None:
    """Zero every secret this module has returned (the command that asked for them is done)."""
    while _handed_out:
        forget(_handed_out.pop())


def _kept(secret: bytearray) -> bytearray:
    _handed_out.append(secret)
    return secret


def warn(message: str) -> None:
    sys.stderr.write(f"locker: warning: {message}\n")


def read_secret_file(spec: str, what: str) -> bytearray:
    """First line of FILE (or stdin for '-'), newline stripped, as bytes."""
    try:
        if spec == "-":
            line = sys.stdin.buffer.readline()
        else:
            with open(spec, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                if stat.S_ISREG(mode) and mode & 0o077:
                    warn(f"{what} file {spec} can be read by other users (chmod 600 {spec})")
                line = f.readline()
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {spec}: {exc.strerror}") from None
    secret = _kept(bytearray(line.rstrip(b"\r\n") if line.endswith(b"\n") else line))
    if not secret:
        raise UsageError(f"the {what} file {spec} is empty")
    return secret


def _prompt(label: str) -> bytearray:
    """Ask on the controlling terminal, echo off, and return the line as raw bytes.

    The terminal, not stdin, so `producer | locker add /dev/stdin` still works; raw bytes, not
    getpass's decoded `str`, so a passphrase is never a string and never fails to decode.
    """
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        own = True
    except OSError:
        if not sys.stdin.isatty():
            raise UsageError(
                "no terminal to ask for the passphrase",
                hint="pass --passphrase-file FILE (or '-' for standard input)",
            ) from None
        fd, own = sys.stdin.fileno(), False
    try:
        return _read_without_echo(fd, label)
    finally:
        if own:
            os.close(fd)


def _read_without_echo(fd: int, label: str) -> bytearray:
    """Echo off first, then the prompt, then read: a passphrase typed or pasted the moment the
    prompt appears is neither echoed nor thrown away. Typed-ahead input is never flushed
    (TCSANOW, not TCSAFLUSH), on the way in or out."""
    import termios

    before = termios.tcgetattr(fd)
    quiet = termios.tcgetattr(fd)
    quiet[3] &= ~termios.ECHO
    line = bytearray()
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        os.write(fd, label.encode())
        while not line.endswith(b"\n"):
            chunk = os.read(fd, 1024)
            if not chunk:
                if not line:
                    raise UsageError("no passphrase entered")
                break
            line += chunk
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, before)
        os.write(fd, b"\n")
    secret = _kept(bytearray(line.rstrip(b"\r\n")))
    forget(line)
    return secret


def passphrase(spec: str | None) -> bytearray:
    """The passphrase from --passphrase-file, else the terminal; hardens the process first."""
    harden_process()
    if spec:
        return read_secret_file(spec, "passphrase")
    secret = _prompt("Passphrase: ")
    if not secret:  # refused before the key derivation spends its seconds on it
        raise UsageError("no passphrase entered (it is empty)")
    return secret


def ask(label: str) -> bytearray:
    """Any other secret typed on the terminal (a recovery key, a PIN); hardens the process first."""
    harden_process()
    return _prompt(label)


def new_passphrase(spec: str | None, what: str = "new passphrase") -> bytearray:
    """A passphrase being set: from a file, or typed twice on the terminal."""
    harden_process()
    if spec:
        secret = read_secret_file(spec, what)
    else:
        secret = _prompt(f"{what.capitalize()}: ")
        if not secret:
            raise UsageError("the passphrase is empty")
        again = _prompt(f"Repeat {what}: ")
        import hmac  # here: `lock` and `status` import this module for `warn` alone

        same = hmac.compare_digest(again, secret)
        forget(again)
        if not same:
            forget(secret)
            raise UsageError("the two passphrases differ; nothing was changed")
    characters = sum(1 for b in secret if b & 0xC0 != 0x80)  # UTF-8 lead bytes: no `str` copy
    if characters < SHORT_PASSPHRASE:
        warn(
            f"the {what} is shorter than {SHORT_PASSPHRASE} characters; "
            "a stolen vault is only as strong as it"
        )
    return secret


def secret(spec: str | None, what: str) -> bytearray:
    """A secret other than the vault's (a bundle's passphrase): from a file, else asked once."""
    harden_process()
    return read_secret_file(spec, what) if spec else _prompt(f"{what.capitalize()}: ")
