"""Every error locker raises, each carrying the exit code the CLI maps it to.

Callers test for the class; the CLI prints `str(error)` and, where set, `hint`.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BAD_KEY = 3
EXIT_INTEGRITY = 4
EXIT_BUSY = 5
EXIT_ATTENTION = 6


class LockerError(Exception):
    """Base class: a one-line message a user can act on, plus an optional hint."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(LockerError):
    """The command line or an argument value is wrong."""

    exit_code = EXIT_USAGE


class BadKeyError(LockerError):
    """No key slot opens with the passphrase or key given."""

    exit_code = EXIT_BAD_KEY


class IntegrityError(LockerError):
    """Tampered, corrupt or truncated data, or not a locker container at all."""

    exit_code = EXIT_INTEGRITY


class FormatError(IntegrityError):
    """The bytes do not parse as format v1: framing, bounds or canonical form is wrong.

    Header framing is checked before any key is derived; the index's schema, names and
    layout are checked right after it decrypts. Either way it is told apart from
    AuthenticationError (a MAC or tag that did not verify).
    """


class UnsupportedVersionError(IntegrityError):
    """The container declares a format version this build cannot read."""


class KdfTooCostlyError(FormatError):
    """A key slot asks for Argon2 parameters beyond the hard caps (or zero)."""


class AuthenticationError(IntegrityError):
    """A MAC or AEAD tag did not verify: the data was changed after it was written."""


class BusyError(LockerError):
    """Another process is the vault's writer (a second writer, or a mount)."""

    exit_code = EXIT_BUSY


class NotFoundError(LockerError):
    """A named entry, vault or file does not exist."""


class ExistsError(LockerError):
    """The target exists and the command was not told to replace it."""


class InvalidNameError(UsageError):
    """An entry name that could escape a directory or is not portable."""


DEBUG_HINT = "rerun with LOCKER_DEBUG=1 for details"


def describe(exc: BaseException) -> tuple[str, str | None]:
    """(message, hint) as `locker: error: ...` / `locker: hint: ...` say them, for any error:
    the CLI's last line of defence and the TUI's error states alike."""
    if isinstance(exc, LockerError):
        return str(exc), exc.hint
    if isinstance(exc, OSError):  # a sentence with the path; never a bare descriptor number
        what = (exc.strerror or type(exc).__name__).lower()
        where = exc.filename if isinstance(exc.filename, str) else None
        return (f"cannot use {where}: {what}" if where else f"{what} (errno {exc.errno})"), None
    return f"internal error ({type(exc).__name__})", DEBUG_HINT
