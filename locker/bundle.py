"""Protected bundles: export entries into a new locker container on a drive, verify it from
the drive, and import a bundle's entries into a vault.

A bundle is an ordinary container (its own master key and passphrase slot), so every command
reads it with `--vault BUNDLE`. Export writes it under a temporary name beside the target,
held by a writer lock, verifies every entry against the source, and only then renames it to
its final name: a bundle under its final name is always complete and verified. Temporaries a
killed export left behind are removed by the next export into that directory or by `recover`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from locker.errors import (
    BusyError,
    ExistsError,
    IntegrityError,
    LockerError,
    NotFoundError,
    UsageError,
)
from locker.mount.runtime import ensure_private_dir, lookup_candidates, runtime_base
from locker.readable import readable_secret
from locker.store import drives
from locker.store.format import (
    MAX_HEADER_SIZE,
    SLOT_X25519,
    Header,
    KdfCost,
    Slot,
    check_name,
    check_tree,
)
from locker.store.index import Entry, Index, encode_index, sealed_length
from locker.store.keys import Opener, Random
from locker.store.lockfile import WriterLock, lock_path
from locker.store.safefs import fsync_dir, open_dir
from locker.text import plural, size_text
from locker.vault import DEFAULT_KDF, Clock, Key, Vault

TEMP_PREFIX = ".locker-export-"
_TEMP_NAME = re.compile(r"^\.?\.locker-export-([0-9a-f]{16})(?:$|\.)")
_SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
CONFLICT_POLICIES = ("skip", "overwrite", "rename")
GENERATED_BITS = 128


@dataclass
class Exported:
    path: Path
    bundle_id: str
    names: list[str]
    size: int
    drive: drives.Drive | None
    unlogged: str | None = None  # why the export is not in the audit log, if it is not


@dataclass
class Imported:
    bundle_id: str
    added: list[tuple[str, str]] = field(default_factory=list)  # (name in bundle, name here)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def select(vault: Vault, names: Iterable[str]) -> list[str]:
    """Exact entry names, or every entry under a directory name; no names means everything."""
    known = sorted(e.name for e in vault.entries())
    wanted = list(names)
    if not wanted:
        return known
    picked: list[str] = []
    for name in wanted:
        under = [k for k in known if k.startswith(name.rstrip("/") + "/")]
        if name in known:
            picked.append(name)
        elif under:
            picked.extend(under)
        else:
            raise NotFoundError(f"no entry named {name!r}", hint="'locker ls' lists the entries")
    return list(dict.fromkeys(picked))


# -- export --------------------------------------------------------------------------------------


def generated_passphrase() -> bytearray:
    """A new bundle passphrase of GENERATED_BITS, in groups read aloud and typed easily."""
    return bytearray(readable_secret(GENERATED_BITS).encode("ascii"))


def starting(entries: list[Entry], target: Path, drive: drives.Drive | None) -> str:
    """What an export says before it writes: how much, and where to."""
    total = sum(e.size for e in entries)
    where = f" ({drive.describe()})" if drive and (drive.fat_like or drive.removable) else ""
    return (
        f"exporting {plural(len(entries), 'entry', 'entries')} ({size_text(total)}) "
        f"to {target}{where}"
    )


def finished(
    done: Exported, recipients: int, passphrase: bool, generated: str | None = None
) -> list[str]:
    """What a finished export says: verified, what opens the bundle, and the `generated`
    passphrase (the one time it is shown)."""
    lines = [
        f"verified: {plural(len(done.names), 'entry', 'entries')} read back from {done.path} "
        f"({size_text(done.size)}; bundle {done.bundle_id})"
    ]
    if recipients:
        who = f"the identity of {plural(recipients, 'recipient')}"
        lines.append(f"opens with {who}" + (" or the passphrase" if passphrase else " only"))
    if generated is not None:
        lines.append("bundle passphrase (shown once and stored nowhere; write it down now):")
        lines.append(f"    {generated}")
    return lines


def bundle_size(entries: list[Entry]) -> int:
    """An upper bound on the size of a bundle holding `entries` with one passphrase slot."""
    draft = [
        Entry(bytes(16), e.name, e.size, e.created, e.modified, bytes(16), e.kind, dict(e.attrs))
        for e in entries
    ]
    data = 0
    for d in draft:
        d.offset, d.length = data, sealed_length(d.size)
        data += d.length
    index = len(encode_index(Index(draft))) + 4096  # + tag and the bundle's own log events
    return MAX_HEADER_SIZE + index + data


def check_target(target: Path, size: int, entries: list[Entry]) -> drives.Drive | None:
    """Refuse, before anything is written, a bundle that cannot exist at `target`."""
    directory = target.parent
    if not directory.is_dir():
        raise NotFoundError(f"no directory {directory} to write the bundle into")
    if os.path.lexists(target):
        raise ExistsError(f"{target} already exists", hint="choose another bundle name")
    drive = drives.drive_of(directory)
    if drive is not None and drive.fat_like:
        problem = drives.fat_name_problem(target.name)
        if problem:
            raise UsageError(
                f"cannot name the bundle {target.name!r} on a {drive.describe()}: {problem}"
            )
    if drive is not None and drive.fat and size > drives.FAT_MAX_FILE:
        big = [e for e in entries if e.size > drives.FAT_MAX_FILE]
        what = f"entry {big[0].name!r} is" if big else f"the bundle would be {size_text(size)},"
        raise UsageError(
            f"{what} over 4 GiB, the largest file FAT can hold",
            hint="export fewer entries per bundle, or use a drive formatted exFAT or ext4",
        )
    return drive


def export(
    vault: Vault,
    target: Path,
    names: list[str],
    passphrase: bytes | bytearray | None,
    cost: KdfCost = DEFAULT_KDF,
    *,
    recipients: Sequence[bytes] = (),
    rng: Random = os.urandom,
    clock: Clock = time.time,
    free_space: Callable[[Path], int | None] = drives.free_bytes,
) -> Exported:
    """Write the entries `names` of `vault` into a new bundle at `target` and verify it there.

    The bundle opens with `passphrase` and with each of the X25519 `recipients`' identities
    (at least one of the two). `vault` may be open for reading only, beside a mount or another
    writer: what it reads is its last saved state. The "export" event is left beside it for
    its next save to merge into the audit log (store/deferred.py), so the vault is not
    rewritten.
    """
    if passphrase is None and not recipients:
        raise UsageError("a bundle needs a passphrase or a recipient")
    target = Path(os.path.abspath(target))
    entries = [vault.entry(n) for n in names]
    size = bundle_size(entries)
    drive = check_target(target, size, entries)
    clean_stale_exports(target.parent)
    free = free_space(target.parent)
    needed = size + 4 * drives.cluster_size(target.parent)
    if free is not None and free < needed:
        raise LockerError(
            f"not enough free space in {target.parent}: the bundle needs {size_text(needed)}, "
            f"{size_text(free)} is free; nothing was written",
            hint="free some space, choose another drive, or export fewer entries",
        )
    temp = target.with_name(TEMP_PREFIX + rng(8).hex())
    # The bundle gets its final name, and that name its fsync, through this one descriptor:
    # it is named in the directory the export began in or nowhere, never in the empty mount
    # point a drive unmounted during the export (even lazily) leaves behind.
    dir_fd = open_dir(target.parent, follow=True)
    record = _record_export(temp)
    try:
        bundle_id, size = _write_and_verify(
            vault, temp, (dir_fd, target), names, (passphrase, recipients), cost, rng, clock
        )
    except OSError as exc:
        _remove_export(temp, dir_fd)
        if exc.errno in _SPACE_ERRORS or (free is None and exc.errno == errno.EPERM):
            raise LockerError(
                f"not enough free space in {target.parent}: the bundle needs {size_text(needed)} "
                f"(the file system said: {exc.strerror}); nothing was left there",
                hint="free some space, choose another drive, or export fewer entries",
            ) from None
        raise LockerError(f"cannot write the bundle to {target.parent}: {exc.strerror}") from None
    except BaseException:
        _remove_export(temp, dir_fd)
        raise
    finally:
        os.close(dir_fd)
        with contextlib.suppress(OSError):
            os.unlink(record)
    done = Exported(target, bundle_id, names, size, drive)
    try:
        vault.record_deferred("export", tuple(names), f"bundle {bundle_id} to {target}")
    except LockerError as exc:
        done.unlogged = str(exc)
    return done


def _write_and_verify(
    vault: Vault,
    temp: Path,
    into: tuple[int, Path],
    names: list[str],
    keys: tuple[bytes | bytearray | None, Sequence[bytes]],
    cost: KdfCost,
    rng: Random,
    clock: Clock,
) -> tuple[str, int]:
    """Write the bundle under `temp`, verify it, and rename it to its final name in the
    directory `into` holds; its id and size."""
    passphrase, recipients = keys
    dir_fd, target = into
    # Recipients only: the first slot's passphrase is random and the slot is dropped before
    # the bundle is written with its entries.
    first = passphrase if passphrase is not None else rng(32).hex().encode()
    with Vault.new(temp, first, cost, purpose="export", rng=rng, clock=clock) as bundle:
        bundle_id = bundle.container_id.hex()
        verify_with: Key = first
        if recipients:
            verify_with = _add_recipients(bundle, recipients, rng)
            if passphrase is None:
                bundle.remove_slot(bundle.unlocked_slot)
            else:
                verify_with = first
        for name in names:
            bundle.copy_entry(vault, name)
        bundle.record("export", (), f"from vault {vault.container_id.hex()}")
        bundle.commit()
        _verify_from_drive(temp, verify_with, vault, names)
        try:
            _rename_noreplace(dir_fd, temp.name, target.name)
        except FileExistsError:
            raise ExistsError(
                f"{target} appeared while exporting; the bundle was not written",
                hint="choose another bundle name",
            ) from None
        except FileNotFoundError:
            raise LockerError(
                f"{target.parent} is no longer the directory the export began in (was its "
                "drive removed or unmounted?); no bundle was written",
                hint="put the drive back and export again",
            ) from None
        fsync_dir(dir_fd)
        size = os.stat(target.name, dir_fd=dir_fd).st_size
    _remove_export(temp, dir_fd)  # its lock file
    return bundle_id, size


def _rename_noreplace(dir_fd: int, src: str, dst: str) -> None:
    """Rename `src` to `dst` in the directory `dir_fd`, or raise FileExistsError if `dst`
    exists: in one step, so a file made at `dst` by someone else after any check is never
    replaced."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)  # glibc 2.28+, musl 1.2.4+
    if renameat2 is not None:
        rename_noreplace = 1
        if renameat2(dir_fd, os.fsencode(src), dir_fd, os.fsencode(dst), rename_noreplace) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # else: flag unsupported
            raise OSError(err, os.strerror(err), dst)  # EEXIST: FileExistsError
    try:
        os.link(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)  # never replaces a name either
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):  # no hard links
            raise
        try:
            os.stat(dst, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            os.rename(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst) from None
    os.unlink(src, dir_fd=dir_fd)


def _add_recipients(bundle: Vault, recipients: Sequence[bytes], rng: Random) -> list[Opener]:
    """An x25519 slot for each recipient; returns an opener for the first one's slot."""
    from locker.slots import recipient

    opener: list[Opener] = []
    for public in recipients:
        slot, kek = recipient.new_recipient_slot(rng, public)
        bundle.add_slot(slot, kek, label=recipient.format_recipient(public))
        opener = opener or [_KnownSlot(slot.slot_id, kek)]
    return opener


class _KnownSlot:
    """Opens the one slot whose KEK the exporter made: verifying a recipients-only bundle
    needs no identity."""

    what = "recipient"
    kinds = (SLOT_X25519,)

    def __init__(self, slot_id: bytes, kek: bytes) -> None:
        self._slot_id, self._kek = slot_id, kek

    def kek(self, header: Header, slot: Slot) -> bytes | None:
        return self._kek if slot.slot_id == self._slot_id else None

    def renew(self, rng: Random, slot: Slot) -> tuple[Slot, bytes]:
        raise LockerError("internal error: the exporter's opener renews nothing")


def _verify_from_drive(path: Path, key: Key, source: Vault, names: list[str]) -> None:
    """Re-open the bundle from the drive (page cache dropped) and compare every entry, content
    and metadata, with the source."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    with Vault.open(path, key) as bundle:
        held = sorted(e.name for e in bundle.entries())
        if held != sorted(names):
            raise IntegrityError(f"the bundle at {path} does not hold the exported entries")
        for name in names:
            a, b = source.entry(name), bundle.entry(name)
            same_meta = (a.size, a.created, a.modified, a.kind, a.attrs) == (
                b.size,
                b.created,
                b.modified,
                b.kind,
                b.attrs,
            )
            if not same_meta or _digest(source.chunks(name)) != _digest(bundle.chunks(name)):
                raise IntegrityError(f"entry {name!r} reads back differently from the drive")


def _digest(chunks: Iterable[bytes]) -> bytes:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.digest()


# -- interrupted exports -------------------------------------------------------------------------


def _exports_dir() -> Path:
    directory = runtime_base().path / "exports"
    ensure_private_dir(directory)
    return directory


def _record_export(temp: Path) -> Path:
    """Note the temporary bundle in the runtime directory, for `recover` to find."""
    record = _exports_dir() / temp.name
    record.write_text(json.dumps({"temp": str(temp), "pid": os.getpid()}), encoding="utf-8")
    return record


def _remove_export(temp: Path, dir_fd: int | None = None) -> None:
    """Remove a temporary bundle and everything beside it that its writer made: in the
    directory `temp` names and, if given, in the directory `dir_fd` (they differ when the
    drive went away during the export)."""
    for where in (None, dir_fd) if dir_fd is not None else (None,):
        with contextlib.suppress(OSError):
            for name in os.listdir(temp.parent if where is None else where):
                if name in (temp.name, lock_path(temp).name) or name.startswith(
                    f".{temp.name}.tmp-"
                ):
                    with contextlib.suppress(OSError):
                        os.unlink(temp.parent / name if where is None else name, dir_fd=where)


def clean_stale_exports(directory: Path) -> list[Path]:
    """Remove the temporaries of exports into `directory` whose writer is gone; return them.

    An export holds the writer lock of its temporary name while it runs, so a lock that can
    be taken means nobody is writing that bundle any more.
    """
    try:
        listing = os.listdir(directory)
    except OSError:
        return []
    ids = sorted({m.group(1) for m in map(_TEMP_NAME.match, listing) if m})
    removed = []
    for ident in ids:
        temp = directory / (TEMP_PREFIX + ident)
        try:
            lock = WriterLock(temp, "cleanup").acquire()
        except (BusyError, LockerError):
            continue
        try:
            _remove_export(temp)
        finally:
            lock.release()
            with contextlib.suppress(OSError):
                os.unlink(lock_path(temp))
        removed.append(temp)
    return removed


def recover_exports() -> list[Path]:
    """What `recover` does for exports: clean up after every interrupted one it knows of whose
    drive is reachable; the record of one on a drive that is away is kept for next time."""
    removed: list[Path] = []
    for base in lookup_candidates():
        records = base.path / "exports"
        try:
            listing = sorted(os.listdir(records))
        except OSError:
            continue
        for name in listing:
            try:
                temp = Path(json.loads((records / name).read_text(encoding="utf-8"))["temp"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if not temp.parent.is_dir():
                continue
            removed.extend(clean_stale_exports(temp.parent))
            if not os.path.lexists(temp) or temp in removed:
                with contextlib.suppress(OSError):
                    os.unlink(records / name)
    return removed


# -- import --------------------------------------------------------------------------------------


def _fold(name: str) -> str:
    """Names that FAT, macOS or Windows would take for the same file fold to the same key."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


def check_bundle_names(names: list[str], existing: list[str]) -> None:
    """Every name from a bundle is untrusted: refuse unsafe ones, duplicates, and names that
    differ from another (in the bundle or the vault) only in case or Unicode normalisation."""
    for name in names:
        check_name(name)
    if len(set(names)) != len(names):
        raise IntegrityError("the bundle names one entry twice; nothing was imported")
    in_bundle: dict[str, str] = {}
    in_vault: dict[str, list[str]] = {}
    for name in existing:
        in_vault.setdefault(_fold(name), []).append(name)
    for name in names:
        other = in_bundle.setdefault(_fold(name), name)
        if other == name:
            other = next((n for n in in_vault.get(_fold(name), []) if n != name), name)
        if other != name:
            raise LockerError(
                f"the bundle's entry {name!r} differs from {other!r} only in case or Unicode "
                "normalisation; nothing was imported",
                hint="rename one of them ('locker mv') and import again",
            )


def _free_name(name: str, taken: set[str]) -> str:
    candidate, n = f"{name}.imported", 1
    while candidate in taken:
        n += 1
        candidate = f"{name}.imported-{n}"
    return candidate


def import_bundle(
    vault: Vault, bundle: Vault, names: list[str], on_conflict: str | None
) -> Imported:
    """Stage the bundle's entries `names` into `vault` with their metadata, then commit once.

    Without a conflict policy any name that exists already stops the import before anything
    is written. A chunk of the bundle that fails to verify aborts the commit: nothing is saved.
    """
    existing = vault.names()
    check_bundle_names(names, existing)
    conflicts = [n for n in names if n in existing]
    if conflicts and on_conflict is None:
        raise ExistsError(
            f"{plural(len(conflicts), 'entry', 'entries')} of the bundle exist in the vault "
            f"already: {', '.join(conflicts)}; nothing was imported",
            hint="pass --on-conflict skip, overwrite or rename",
        )
    result = Imported(bundle.container_id.hex())
    taken = set(existing) | set(names)
    for name in names:
        if name in conflicts and on_conflict == "skip":
            result.skipped.append(name)
            continue
        as_name = name
        if name in conflicts and on_conflict == "rename":
            as_name = _free_name(name, taken)
            taken.add(as_name)
        elif name in conflicts:
            result.replaced.append(name)
        vault.copy_entry(bundle, name, as_name, force=on_conflict == "overwrite")
        result.added.append((name, as_name))
    check_tree(vault.names())
    moved = tuple(a for _, a in result.added)
    source = os.path.abspath(bundle.path)
    vault.record("import", moved, f"bundle {result.bundle_id} from {source}")
    vault.commit()
    return result
