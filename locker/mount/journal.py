"""The mount journal: one JSON record per mount in the user's private runtime directory.

A mount writes its record before it materialises anything and keeps the sha256 of every file
as last synced into the vault. If the mount process dies without locking (`kill -9`, a crash,
an OOM kill), its record outlives it: the next locker run sees a record whose process is gone
(or whose pid now belongs to another process), warns, and `locker recover` compares the
directory with the recorded hashes to show what changed since the last sync.

Also the plain file-system helpers the mount and recovery share: where the private runtime
directories are, which names are editor litter, and scanning a tree into stat records.
No vault, no crypto, no watchdog here.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from locker.errors import LockerError

JOURNAL_VERSION = 1

# Editor swap, backup and lock files, and locker's own temp names: new files with such names are
# never synced (and are wiped on lock). An entry the vault holds is synced whatever its name.
IGNORED = (".*.sw?", ".*.swx", "*~", "4913", ".#*", ".locker-????????????????.tmp")

STATE_MATERIALISING = "materialising"
STATE_MOUNTED = "mounted"
STATE_LOCKING = "locking"
# The final sync was committed: everything left in the directory is in the vault (or was never
# to be saved). A record found in this state is only wiped, never imported from.
STATE_WIPING = "wiping"
STATE_LOCKED = "locked"  # finished: left only for the `locker lock` that asked, to read the outcome
STATES = (STATE_MATERIALISING, STATE_MOUNTED, STATE_LOCKING, STATE_WIPING, STATE_LOCKED)
LOCKED_KEEP = 60.0  # a finished record nobody collected is removed after this many seconds


def is_ignored(name: str) -> bool:
    """True for a file name (last component) that looks like editor litter: a new file with such
    a name is not synced (an entry already in the vault is, whatever its name)."""
    leaf = name.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(leaf, pattern) for pattern in IGNORED)


# -- private runtime directories -----------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeBase:
    """The per-user directory that holds mount directories and the journal."""

    path: Path
    ram_backed: bool

    @property
    def journal_dir(self) -> Path:
        return self.path / "journal"


# Where logind makes each user's runtime directory: a shell without $XDG_RUNTIME_DIR (su,
# sudo -u, cron) must still find the mounts made under it. A module attribute, for tests.
RUN_USER = Path("/run/user")


def _own_dir(path: str | Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def _candidates() -> list[RuntimeBase]:
    """Where new mounts go, in order of preference: $XDG_RUNTIME_DIR, /dev/shm, the temp dir."""
    uid = os.getuid()
    found = []
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and _own_dir(xdg):
        found.append(RuntimeBase(Path(xdg) / "locker", True))
    # A world-writable place: ensure_private_dir refuses a directory someone else made there.
    if os.path.isdir("/dev/shm"):  # noqa: S108
        found.append(RuntimeBase(Path(f"/dev/shm/locker-{uid}"), True))  # noqa: S108
    found.append(RuntimeBase(Path(tempfile.gettempdir()) / f"locker-{uid}", False))
    return found


def _lookup_candidates() -> list[RuntimeBase]:
    """Every base a mount of this user may live under, whatever this shell's environment says:
    the creation candidates plus /run/user/UID (if it exists and is ours)."""
    found = _candidates()
    run_user = RUN_USER / str(os.getuid())
    if _own_dir(run_user):
        found.insert(1, RuntimeBase(run_user / "locker", True))
    return found


def runtime_base() -> RuntimeBase:
    """The first usable base ($XDG_RUNTIME_DIR, /dev/shm, temp dir), created 0700 if needed."""
    errors = []
    for base in _candidates():
        try:
            ensure_private_dir(base.path)
            ensure_private_dir(base.journal_dir)
            return base
        except LockerError as exc:
            errors.append(str(exc))
    raise LockerError("no private runtime directory is usable: " + "; ".join(errors))


def ensure_private_dir(path: Path) -> None:
    """Create `path` 0700, or accept it if it is a real directory of ours that nobody else can use."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise LockerError(f"cannot create {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise LockerError(f"{path} is not a directory (or is a symbolic link)")
    if st.st_uid != os.getuid():
        raise LockerError(f"{path} belongs to another user; refusing to use it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def filesystem_type(path: Path) -> str:
    """The file-system type holding `path` (from /proc/self/mounts), or '' if unknown."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return ""
    target = os.path.realpath(path)
    best, kind = "", ""
    for parts in mounts:
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


def is_ram_backed(path: Path) -> bool:
    return filesystem_type(path) in ("tmpfs", "ramfs")


# -- processes -----------------------------------------------------------------------------------


def _proc_stat(pid: int) -> list[bytes]:
    """Fields 3.. of /proc/PID/stat (state first), or [] if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return []
    return data[data.rfind(b")") + 2 :].split()


def process_start(pid: int) -> str:
    """The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or ''."""
    fields = _proc_stat(pid)
    return fields[19].decode() if len(fields) > 19 else ""


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def is_running(pid: int, start: str, boot: str) -> bool:
    """True if `pid` is still the process that wrote the record (same boot, same start time)."""
    if boot and boot_id() and boot != boot_id():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _proc_stat(pid)
    if fields and fields[0] in (b"Z", b"X"):  # exited, not yet reaped by its parent
        return False
    now = fields[19].decode() if len(fields) > 19 else ""
    return not (start and now and now != start)


def process_name(pid: int) -> str:
    """The command of `pid`, from /proc/PID/cmdline (else /proc/PID/comm)."""
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        if args:
            text = " ".join([os.path.basename(args[0]), *args[1:]])
            return text if len(text) <= 100 else text[:97] + "..."
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text(errors="replace").strip()
    return "?"


# -- records -------------------------------------------------------------------------------------


@dataclass
class Record:
    """One mount, as its journal file holds it. `files` maps entry names to sha256 hex."""

    mount_id: str
    pid: int
    vault: str
    dir: str
    started: float
    idle_seconds: float
    idle_deadline: float
    hard_deadline: float
    created_dir: bool = True
    state: str = STATE_MATERIALISING
    proc_start: str = ""
    boot_id: str = ""
    host: str = ""
    files: dict[str, str] = field(default_factory=dict)
    # Written while locking: processes that still held files (pid, command, paths), and how it
    # ended: the number of files wiped, or the error that stopped it (then nothing was wiped).
    holders: list[dict[str, Any]] = field(default_factory=list)
    wiped: int = 0
    error: str = ""
    finished: float = 0.0

    @classmethod
    def new(cls, vault: Path, directory: Path, **times: Any) -> Record:
        return cls(
            mount_id=directory.name,
            pid=os.getpid(),
            vault=str(vault.resolve()),
            dir=str(directory),
            proc_start=process_start(os.getpid()),
            boot_id=boot_id(),
            host=socket.gethostname(),
            **times,
        )

    def to_json(self) -> dict[str, Any]:
        return {"version": JOURNAL_VERSION, **asdict(self)}

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
    bases = [b.path for b in _lookup_candidates()]
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

    def write(self, record: Record) -> None:
        data = json.dumps(record.to_json(), indent=1, sort_keys=True).encode()
        tmp = self.directory / f".{record.mount_id}.{secrets.token_hex(4)}.tmp"
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
            return _load(self.path_of(mount_id))
        except (OSError, ValueError, TypeError):
            return None

    def remove(self, mount_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path_of(mount_id))

    def records(self) -> Iterator[Record]:
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return
        for name in names:
            if name.startswith(".") or not name.endswith(".json"):
                continue
            try:
                yield _load(self.directory / name)
            except (OSError, ValueError, TypeError):
                continue


def _load(path: Path) -> Record:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return Record.from_json(json.loads(f.read(16 * 1024 * 1024)))


def journals() -> list[Journal]:
    """Every journal directory of this user that exists, each once: all the bases a mount may
    live under are searched, not only the one this shell's environment points at."""
    found, seen = [], set()
    for base in _lookup_candidates():
        try:
            st = os.lstat(base.journal_dir)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            continue
        if (st.st_dev, st.st_ino) not in seen:  # $XDG_RUNTIME_DIR is usually /run/user/UID
            seen.add((st.st_dev, st.st_ino))
            found.append(Journal(base.journal_dir))
    return found


@dataclass
class Found:
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


# -- scanning a mount directory ------------------------------------------------------------------


@dataclass(frozen=True)
class FileStat:
    """What changes when a file is written or replaced: compared before anything is read."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@dataclass
class Scan:
    files: dict[str, FileStat] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # symlinks, sockets, fifos


def scan_tree(root: Path, known: Collection[str] = ()) -> Scan:
    """Regular files under `root` by entry name ('/'-separated), never following symlinks.
    Editor litter is left out unless its name is in `known` (an entry the vault holds)."""
    scan = Scan()

    def walk(directory: Path, prefix: str) -> None:
        try:
            items = list(os.scandir(directory))
        except FileNotFoundError:
            return
        for item in items:
            name = prefix + item.name
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                walk(Path(item.path), name + "/")
            elif stat.S_ISREG(st.st_mode):
                if name in known or not is_ignored(name):
                    scan.files[name] = FileStat.of(st)
            else:
                scan.skipped.append(name)

    walk(root, "")
    return scan


def read_regular(path: Path) -> tuple[bytes, FileStat]:
    """The whole content of a regular file (never through a symlink) and its stat."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LockerError(f"{path} is not a regular file")
        return f.read(), FileStat.of(st)


def sha256_file(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class Changes:
    """What a mount directory holds that the vault does not (as of the last recorded sync)."""

    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.deleted or self.renamed)

    def lines(self) -> list[str]:
        out = [f"changed  {n}" for n in self.changed]
        out += [f"added    {n}" for n in self.added]
        out += [f"deleted  {n}" for n in self.deleted]
        out += [f"renamed  {a} -> {b}" for a, b in self.renamed]
        return out

    def summary(self) -> str:
        return change_summary(
            len(self.changed), len(self.added), len(self.deleted), len(self.renamed)
        )


def change_summary(changed: int, added: int, deleted: int, renamed: int) -> str:
    """'3 changed, 1 added, 1 deleted' (only the kinds that happened), or 'no changes'."""
    counts = (changed, "changed"), (added, "added"), (deleted, "deleted"), (renamed, "renamed")
    return ", ".join(f"{n} {label}" for n, label in counts if n) or "no changes"


def pair_renames(
    added: dict[str, str], deleted: dict[str, str]
) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Match deleted and added names with the same content hash: those are renames."""
    by_hash: dict[str, list[str]] = {}
    for name, digest in sorted(deleted.items()):
        by_hash.setdefault(digest, []).append(name)
    renamed, still_added = [], []
    for name, digest in sorted(added.items()):
        olds = by_hash.get(digest)
        if olds:
            renamed.append((olds.pop(0), name))
        else:
            still_added.append(name)
    paired = {old for old, _ in renamed}
    return still_added, sorted(n for n in deleted if n not in paired), renamed


def diff(root: Path, recorded: dict[str, str]) -> Changes:
    """Compare every file under `root` with the recorded hashes (recovery: no stat shortcut)."""
    current = {name: sha256_file(root / name) for name in scan_tree(root, recorded).files}
    changed = sorted(n for n, h in current.items() if n in recorded and recorded[n] != h)
    added, deleted, renamed = pair_renames(
        {n: h for n, h in current.items() if n not in recorded},
        {n: h for n, h in recorded.items() if n not in current},
    )
    return Changes(changed, added, deleted, renamed)
