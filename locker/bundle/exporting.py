"""Exporting a protected bundle: pick the entries, refuse a target that cannot hold them,
write the bundle under a temporary name beside the target (held by a writer lock), verify every
entry from the drive against the source, and only then rename it to its final name.

A bundle is an ordinary container (its own master key and passphrase slot, and an X25519 slot
per recipient), so every command reads it with `--vault BUNDLE`. A bundle under its final name
is always complete and verified; what a killed export leaves is bundle/interrupted.py's.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from locker.bundle import interrupted
from locker.errors import ExistsError, IntegrityError, LockerError, NotFoundError, UsageError
from locker.readable import readable_secret
from locker.store import drives
from locker.store.format import DATA_AREA_START, SLOT_X25519, Head, KdfCost, Slot
from locker.store.index import Entry, Index, encode_index, sealed_length
from locker.store.keys import Opener, Random
from locker.store.safefs import fsync_dir, open_dir
from locker.text import plural, size_text
from locker.vault import DEFAULT_KDF, Clock, Key, Vault

_SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
GENERATED_BITS = 128


@dataclass
class Exported:
    path: Path
    bundle_id: str
    names: list[str]
    size: int
    drive: drives.Drive | None
    unlogged: str | None = None  # why the export is not in the audit log, if it is not


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
    for d in draft:  # laid out as a compaction lays them out: from the data area's start
        d.offset, d.length = DATA_AREA_START + data, sealed_length(d.size)
        data += d.length
    index = len(encode_index(Index(draft))) + 4096  # + tag and the bundle's own log events
    return DATA_AREA_START + index + data


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
    interrupted.clean_stale_exports(target.parent)
    free = free_space(target.parent)
    needed = size + 4 * drives.cluster_size(target.parent)
    if free is not None and free < needed:
        raise LockerError(
            f"not enough free space in {target.parent}: the bundle needs {size_text(needed)}, "
            f"{size_text(free)} is free; nothing was written",
            hint="free some space, choose another drive, or export fewer entries",
        )
    temp = target.with_name(interrupted.TEMP_PREFIX + rng(8).hex())
    # The bundle gets its final name, and that name its fsync, through this one descriptor:
    # it is named in the directory the export began in or nowhere, never in the empty mount
    # point a drive unmounted during the export (even lazily) leaves behind.
    dir_fd = open_dir(target.parent, follow=True)
    record = interrupted.record_export(temp)
    try:
        bundle_id, size = _write_and_verify(
            vault, temp, (dir_fd, target), names, (passphrase, recipients), cost, rng, clock
        )
    except OSError as exc:
        interrupted.remove_export(temp, dir_fd)
        if exc.errno in _SPACE_ERRORS or (free is None and exc.errno == errno.EPERM):
            raise LockerError(
                f"not enough free space in {target.parent}: the bundle needs {size_text(needed)} "
                f"(the file system said: {exc.strerror}); nothing was left there",
                hint="free some space, choose another drive, or export fewer entries",
            ) from None
        raise LockerError(f"cannot write the bundle to {target.parent}: {exc.strerror}") from None
    except BaseException:
        interrupted.remove_export(temp, dir_fd)
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
        bundle.commit(compact=True)  # one generation: nothing of the making in the file
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
    interrupted.remove_export(temp, dir_fd)  # its lock file
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

    def kek(self, header: Head, slot: Slot) -> bytes | None:
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
