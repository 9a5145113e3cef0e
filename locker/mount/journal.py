"""The mount journal: one JSON record per mount in the user's private runtime directory.

A mount writes its record before it materialises anything and keeps the sha256 of every file
as last synced into the vault. If the mount process dies without locking (`kill -9`, a crash,
an OOM kill), its record outlives it: the next locker run sees a record whose process is gone
(or whose pid now belongs to another process), warns, and `locker recover` compares the
directory with the recorded hashes to show what changed since the last sync.

No vault, no crypto, no watchdog here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from locker.errors import LockerError
from locker.mount.process import boot_id, is_running, process_start
from locker.mount.runtime import journal_dirs, lookup_candidates

JOURNAL_VERSION = 1
LOCK_SIGNAL = signal.SIGUSR1  # what `locker lock` sends the pid a record names

STATE_MATERIALISING = "materialising"
STATE_MOUNTED = "mounted"
STATE_LOCKING = "locking"
# The final sync was committed (or failed): every file left in the directory is in the vault (or
# was never to be saved) except those the record lists as `kept`, which hold unsaved changes.
# Recovering such a record wipes everything else first and imports only from the kept files;
# `files` then holds only what those (and deletions the vault did not take) are compared with.
# If the record itself cannot be written (a full tmpfs), an empty marker file beside it says
# the same with nothing kept; without either, nothing is wiped.
STATE_WIPING = "wiping"
STATE_LOCKED = "locked"  # finished: left only for the `locker lock` that asked, to read the outcome
STATES = (STATE_MATERIALISING, STATE_MOUNTED, STATE_LOCKING, STATE_WIPING, STATE_LOCKED)
LOCKED_KEEP = 60.0  # a finished record nobody collected is removed after this many seconds


class Record:
    """One mount, as its journal file holds it. `files` maps entry names to sha256 hex.

    A plain class, not a dataclass: `status` and `lock` read records, and `dataclasses` would
    bring `inspect`, `ast` and `dis` to their start-up."""

    def __init__(
        self,
        *,
        mount_id: str,
        pid: int,
        vault: str,
        dir: str,
        started: float,
        idle_seconds: float,
        idle_deadline: float,
        hard_deadline: float,
        created_dir: bool = True,
        state: str = STATE_MATERIALISING,
        proc_start: str = "",
        boot_id: str = "",
        host: str = "",
        files: dict[str, str] | None = None,
        holders: list[dict[str, Any]] | None = None,
        wiped: int = 0,
        error: str = "",
        finished: float = 0.0,
        kept: list[str] | None = None,
    ) -> None:
        self.mount_id = mount_id
        self.pid = pid
        self.vault = vault
        self.dir = dir
        self.started = started
        self.idle_seconds = idle_seconds
        self.idle_deadline = idle_deadline
        self.hard_deadline = hard_deadline
        self.created_dir = created_dir
        self.state = state
        self.proc_start = proc_start
        self.boot_id = boot_id
        self.host = host
        self.files: dict[str, str] = {} if files is None else files
        # Written while locking: processes that still held files (pid, command, paths), and
        # how it ended: the number of files wiped, or the error that stopped it (then nothing
        # was wiped).
        self.holders: list[dict[str, Any]] = [] if holders is None else holders
        self.wiped = wiped
        self.error = error
        self.finished = finished
        self.kept: list[str] = [] if kept is None else kept  # "wiping": files not to be wiped

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]  # mutable: never a set member or dict key

    def __repr__(self) -> str:
        return f"Record({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    @classmethod
    def new(cls, vault: Path, directory: Path, **times: Any) -> Record:
        return cls(
            mount_id=directory.name,
            pid=os.getpid(),
            vault=str(vault.resolve()),
            dir=str(directory),
            proc_start=process_start(os.getpid()),
            boot_id=boot_id(),
            host=os.uname().nodename,  # gethostname(), without importing socket
            **times,
        )

    def to_json(self) -> dict[str, Any]:
        # The fields as they are (asdict would deep-copy them first: 0.5 ms for 500 files,
        # paid on each of the half-dozen writes of a mount's start and lock).
        return {"version": JOURNAL_VERSION, **vars(self)}

    @classmethod
    def from_json(cls, data: Any) -> Record:
        if not isinstance(data, dict) or data.get("version") != JOURNAL_VERSION:
            raise ValueError("not a version 1 journal record")
        fields = {k: v for k, v in data.items() if k != "version"}
        record = cls(**fields)
        record.validate()
        return record

    def validate(self) -> None:
        """Every field of the type it must have (a record may have been crafted or damaged)."""
        for name, kinds in _FIELD_TYPES.items():
            value = getattr(self, name)
            if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
                raise ValueError(f"malformed journal record: {name}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.files.items()):
            raise ValueError("malformed journal record: files")
        if not all(isinstance(k, str) for k in self.kept):
            raise ValueError("malformed journal record: kept")
        if not all(isinstance(h, dict) for h in self.holders):
            raise ValueError("malformed journal record: holders")
        if self.state not in STATES:
            raise ValueError(f"malformed journal record: state {self.state!r}")
        if (
            not self.mount_id
            or self.mount_id.startswith(".")
            or any(c in self.mount_id for c in "/\\\0")
        ):
            raise ValueError("malformed journal record: mount_id")
        if self.pid <= 0 or not os.path.isabs(self.dir) or "\0" in self.dir:
            raise ValueError("malformed journal record: pid or dir")

    def running(self) -> bool:
        return is_running(self.pid, self.proc_start, self.boot_id)

    def has_deadlines(self) -> bool:
        """A mount locks by itself (its idle time is more than zero); a `locker run` or
        `locker edit` directory has idle_seconds 0 and lives as long as its command."""
        return self.idle_seconds > 0


_NUMBER = (int, float)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "mount_id": (str,),
    "pid": (int,),
    "vault": (str,),
    "dir": (str,),
    "started": _NUMBER,
    "idle_seconds": _NUMBER,
    "idle_deadline": _NUMBER,
    "hard_deadline": _NUMBER,
    "created_dir": (bool,),
    "state": (str,),
    "proc_start": (str,),
    "boot_id": (str,),
    "host": (str,),
    "files": (dict,),
    "holders": (list,),
    "wiped": (int,),
    "error": (str,),
    "finished": _NUMBER,
    "kept": (list,),
}


def _same_file(a: os.stat_result, path: str | Path) -> bool:
    try:
        b = os.lstat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_mount_dir(record: Record) -> os.stat_result:
    """The stat of the record's directory if recovery may read and wipe it, else LockerError.

    A record is only a file in the runtime directory: its `dir` is trusted only if it is a real
    directory of this user, 0700, and either a direct child of one of this user's runtime bases
    (where mounts are made) or a `--dir` mount that is none of /, $HOME or a runtime base."""
    path = record.dir
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        raise LockerError(f"the journal names {path!r}, which is not a normalised absolute path")
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise LockerError(f"{path} is not a directory (or is a symbolic link)")
    if st.st_uid != os.getuid():
        raise LockerError(f"{path} belongs to another user")
    if stat.S_IMODE(st.st_mode) != 0o700:
        raise LockerError(f"{path} has mode {stat.S_IMODE(st.st_mode):o}, not 700: not a mount")
    bases = [b.path for b in lookup_candidates()]
    parent = os.path.dirname(path)
    if os.path.basename(path).startswith("mnt-"):  # the names make_mount_dir gives
        for base in bases:
            with contextlib.suppress(OSError):
                if _same_file(os.lstat(base), parent) and _same_file(st, path):
                    return st
    forbidden = ["/", os.path.expanduser("~"), *map(str, bases)]
    forbidden += [str(b / "journal") for b in bases]
    if os.environ.get("XDG_RUNTIME_DIR"):
        forbidden.append(os.environ["XDG_RUNTIME_DIR"])
    for other in forbidden:
        if other and (path == other or _same_file(st, other)):
            raise LockerError(f"{path} is not a mount directory; refusing to wipe it")
    return st


class Journal:
    """The journal directory: one `<mount id>.json` per mount, each replaced atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_of(self, mount_id: str) -> Path:
        return self.directory / f"{mount_id}.json"

    def marker_of(self, mount_id: str) -> Path:
        return self.directory / f"{mount_id}.wiping"

    def mark_wiping(self, mount_id: str) -> None:
        """Say "wiping, nothing kept" where the record cannot be rewritten: an empty file needs
        no data block, so it can still be made on a full tmpfs. OSError if even that fails."""
        fd = os.open(
            self.marker_of(mount_id),
            os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
        )
        os.close(fd)

    def write(self, record: Record) -> None:
        data = json.dumps(record.to_json(), indent=1, sort_keys=True).encode()
        tmp = self.directory / f".{record.mount_id}.{os.urandom(4).hex()}.tmp"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path_of(record.mount_id))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def read(self, mount_id: str) -> Record | None:
        """The record of `mount_id`, or None if there is none (or it cannot be read)."""
        try:
            return self._load(self.path_of(mount_id))
        except (OSError, ValueError, TypeError):
            return None

    def remove(self, mount_id: str) -> None:
        """The record first: a marker alone is cleared by `records`, while a record left without
        its marker would read as "mounted" and its files as deleted."""
        for path in (self.path_of(mount_id), self.marker_of(mount_id)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _load(self, path: Path) -> Record:
        record = _load(path)
        if os.path.lexists(self.marker_of(record.mount_id)) and record.state != STATE_LOCKED:
            record.state, record.files, record.kept = STATE_WIPING, {}, []
        return record

    def records(self) -> Iterator[Record]:
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return
        for name in names:
            stem, _, suffix = name.partition(".")
            if suffix == "wiping" and f"{stem}.json" not in names:
                # `remove` was killed between its two unlinks: the mount is gone.
                with contextlib.suppress(OSError):
                    os.unlink(self.directory / name)
            if name.startswith(".") or not name.endswith(".json"):
                continue
            try:
                yield self._load(self.directory / name)
            except (OSError, ValueError, TypeError):
                continue


def _load(path: Path) -> Record:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return Record.from_json(json.loads(f.read(16 * 1024 * 1024)))


def journals() -> list[Journal]:
    """Every journal directory of this user that exists, each once (runtime.journal_dirs)."""
    return [Journal(d) for d in journal_dirs()]


class Found(NamedTuple):
    record: Record
    journal: Journal
    running: bool


def all_mounts() -> list[Found]:
    """Active and orphaned mounts. Finished records (a lock's outcome) are not mounts; one
    that the `locker lock` which asked for it never collected is removed after a while."""
    found = []
    for j in journals():
        for r in j.records():
            if r.state != STATE_LOCKED:
                found.append(Found(r, j, r.running()))
            elif time.time() - r.finished > LOCKED_KEEP:
                j.remove(r.mount_id)
    return found


def orphans() -> list[Found]:
    return [f for f in all_mounts() if not f.running]
