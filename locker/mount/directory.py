"""The mount directory itself: where it is made, and wiping it.

Plain files in a private 0700 directory (no FUSE, no root): RAM-backed where the system offers
one. Wiping zeroes each file in place and then unlinks it, file by file, so the plaintext does
not linger in freed pages of a disk-backed fallback. It walks by directory descriptors and never
follows a symlink, and never zeroes a file that has another hard link.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from locker.errors import LockerError, UsageError
from locker.mount import runtime
from locker.text import plural, printable


def make_mount_dir(requested: str | None) -> tuple[Path, bool, str | None]:
    """(directory, created by us, warning). A given --dir must be missing or an empty directory."""
    if requested:
        path = Path(requested).absolute()
        created = False
        try:
            os.mkdir(path, 0o700)
            created = True
        except FileNotFoundError:
            raise UsageError(f"the parent of {path} does not exist") from None
        except FileExistsError:
            pass
        if not created:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                raise UsageError(f"{path} is not a directory of yours")
            if os.listdir(path):
                raise UsageError(f"{path} is not empty", hint="mount into a new or empty directory")
            os.chmod(path, 0o700)
        return path, created, _dir_warning(path)
    base = runtime.ram_base()  # never on disk: refused there unless --dir asks for it
    path = base.path / f"mnt-{os.urandom(8).hex()}"
    os.mkdir(path, 0o700)
    return path, True, None


def _dir_warning(path: Path) -> str | None:
    """Why a --dir is not as safe as tmpfs, or None: a disk keeps the plaintext, and ramfs has
    timestamps too coarse to see every rewrite (the final sync reads every file anyway)."""
    kind = runtime.filesystem_type(path)
    if kind == "tmpfs":
        return None
    if kind == "ramfs":
        return (
            f"{path} is on ramfs, not tmpfs: it has no size limit and its coarse timestamps "
            "make each sync read more"
        )
    return f"{path} is not RAM-backed (tmpfs): plaintext may reach the disk"


_ZEROS = memoryview(bytes(1024 * 1024))


def _zero_fd(fd: int, size: int) -> None:
    done = 0
    while done < size:
        done += os.pwrite(fd, _ZEROS[: min(size - done, len(_ZEROS))], done)


_O_PATH = getattr(os, "O_PATH", 0)


def _zero_listed_file(dir_fd: int, name: str, durable: bool) -> bool | str | None:
    """`_zero_at` for a name the listing says is a regular file, in three system calls where
    it is writable: opened for writing (never through a symlink, never waiting on a FIFO),
    checked on the descriptor (a regular file, no other hard link), zeroed. A file that cannot
    be opened so (read-only, or no longer a regular file) takes `_zero_at`'s way. True if
    zeroed; False if it is not a file to zero; None if the name is a directory by now; the
    reason if it is a regular file that could not be zeroed."""
    try:
        fd = os.open(
            name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except IsADirectoryError:
        return None
    except OSError:
        return _zero_at(dir_fd, name, durable)
    try:
        return _zero_open(fd, durable)
    except OSError as exc:
        return _why(exc)
    finally:
        os.close(fd)


def _zero_open(fd: int, durable: bool, same_as: os.stat_result | None = None) -> bool:
    """Zero the file open for writing as `fd` if it is a regular file with no other hard link
    (and the file `same_as` describes); made 0600 first if it is not (root can write anyway)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        return False
    if same_as is not None and (st.st_dev, st.st_ino) != (same_as.st_dev, same_as.st_ino):
        return False
    if stat.S_IMODE(st.st_mode) & 0o600 != 0o600:
        os.fchmod(fd, 0o600)
    _zero_fd(fd, st.st_size)
    if durable:
        os.fsync(fd)  # on a disk the zeros reach it before the blocks are freed
    return True


def _zero_at(dir_fd: int, name: str, durable: bool) -> bool | str:
    """Zero the file `name` in `dir_fd` in place if it is a regular file with no other hard
    link (checked on the opened descriptor); a read-only one is made 0600 first. True if
    zeroed, False if it is not such a file, the reason if it is and could not be zeroed.
    It never opens anything but a regular file for writing (a device's open may act)."""
    try:
        fd = os.open(
            name,
            (_O_PATH or os.O_RDONLY | os.O_NONBLOCK) | os.O_NOFOLLOW | os.O_CLOEXEC,
            dir_fd=dir_fd,
        )
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return False
        via = f"/proc/self/fd/{fd}"
        try:
            if stat.S_IMODE(st.st_mode) & 0o600 != 0o600:
                os.chmod(via, 0o600)  # follows the descriptor's magic link: the same inode
            wfd = os.open(via, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # no /proc: open the name again and make sure it is the same file
            # A symlink swapped in meanwhile: Python < 3.13 says so by ValueError (ENOTSUP).
            with contextlib.suppress(OSError, ValueError, NotImplementedError):
                os.chmod(name, 0o600, dir_fd=dir_fd, follow_symlinks=False)
            try:
                wfd = os.open(
                    name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
                )
            except OSError as exc:  # the reason, if the name is still this file
                return _why(exc) if _same(name, dir_fd, st) else False
        try:
            return _zero_open(wfd, durable, same_as=st)
        finally:
            os.close(wfd)
    except OSError as exc:
        return _why(exc)
    finally:
        os.close(fd)


def _same(name: str, dir_fd: int, st: os.stat_result) -> bool:
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


WIPE_PASSES = 5  # a directory refilled while it is wiped is listed and wiped this many times


@dataclass
class Wiped:
    """What a wipe did: files removed, what it could not remove (each with the reason), and
    the files it removed without zeroing them first (name: reason): a write or fsync failed
    (EIO), and their content may still be on the medium."""

    count: int = 0
    left: list[str] = field(default_factory=list)
    unzeroed: dict[str, str] = field(default_factory=dict)

    def unzeroed_note(self) -> str | None:
        """The one line that tells the user about `unzeroed`, or None."""
        if not self.unzeroed:
            return None
        names = ", ".join(f"{printable(n)} ({why})" for n, why in sorted(self.unzeroed.items()))
        one = len(self.unzeroed) == 1
        return (
            f"could not zero {plural(len(self.unzeroed), 'file')} before deleting "
            f"{'it' if one else 'them'}: {names}; {'its' if one else 'their'} content may "
            "remain on the disk"
        )

    def warnings(self) -> list[str]:
        """What the user must hear: each name not wiped, and the files deleted unzeroed."""
        note = self.unzeroed_note()
        return [f"could not wipe {what}" for what in self.left] + ([note] if note else [])


def _open_subdir(dir_fd: int, name: str) -> int:
    """Open the directory `name` in `dir_fd` without following a symlink; one of ours that we
    cannot read (mode 000) is made 0700 first, through a descriptor that cannot be swapped."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except PermissionError:
        if not _O_PATH:
            raise
    pfd = os.open(name, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        via = f"/proc/self/fd/{pfd}"
        os.chmod(via, 0o700)
        return os.open(via, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(pfd)


_FILE, _DIR, _OTHER = "file", "dir", "other"


def _listing(dir_fd: int, wanted: Callable[[str], bool]) -> list[tuple[str, str]]:
    """(name, kind) of what the directory holds, from its listing alone where the file system
    gives each name's type (a stat where it does not); OSError if it cannot be listed."""
    found = []
    with os.scandir(dir_fd) as listing:
        for entry in listing:
            if not wanted(entry.name):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    kind = _DIR
                else:
                    kind = _FILE if entry.is_file(follow_symlinks=False) else _OTHER
            except OSError:
                kind = _OTHER  # gone since it was listed: unlinking it says so
            found.append((entry.name, kind))
    return found


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class _Wiper:
    """One wipe: walks by directory descriptors, never follows a symlink, keeps `keep` (entry
    names, '/'-separated) and the directories that lead to them, and carries on past anything
    it cannot remove, noting it."""

    def __init__(self, durable: bool, keep: frozenset[str]) -> None:
        self.durable, self.keep = durable, keep
        self.keep_dirs = {n.rsplit("/", i)[0] for n in keep for i in range(1, n.count("/") + 1)}
        self.out = Wiped()

    def _note(self, line: str) -> None:
        """List what could not be removed, once however often a pass meets it again."""
        if line not in self.out.left:
            self.out.left.append(line)

    def until_empty(self, dir_fd: int, prefix: str) -> bool:
        """Wipe the directory's content, listing it again while something reappears (a writer
        that recreates files by path). True once nothing but what is kept is left."""
        with contextlib.suppress(OSError):
            os.fchmod(dir_fd, 0o700)
        unlisted = ""  # why the last pass could not list it: tried again, said if it stays
        for _ in range(WIPE_PASSES):
            try:
                listed = _listing(dir_fd, lambda n: prefix + n not in self.keep)
            except OSError as exc:
                unlisted = f"{prefix or './'}: {_why(exc)}"
                continue
            unlisted = ""
            listed = [e for e in listed if not self._only_kept_below(dir_fd, e[0], prefix)]
            if not listed:
                # Nothing is left below: what was noted there (a listing that failed once,
                # a directory not empty then) is wiped by now.
                self.out.left = [n for n in self.out.left if not n.startswith(prefix)]
                return True
            for name, kind in listed:
                self._wipe_entry(dir_fd, name, prefix, kind)
        if unlisted:
            self._note(unlisted)
        return False

    def _only_kept_below(self, dir_fd: int, name: str, prefix: str) -> bool:
        """A directory that leads to kept files and holds nothing else any more."""
        rel = prefix + name
        if rel not in self.keep_dirs:
            return False
        try:
            sub = _open_subdir(dir_fd, name)
        except OSError:
            return False
        try:
            return all(
                rel + "/" + n in self.keep or self._only_kept_below(sub, n, rel + "/")
                for n in os.listdir(sub)
            )
        except OSError:
            return False
        finally:
            os.close(sub)

    def _wipe_entry(self, dir_fd: int, name: str, prefix: str, kind: str) -> None:
        """Zero (a regular file) and unlink one name, or wipe and remove a directory; `kind`
        is what the listing said it was (the file's descriptor is checked again)."""
        rel = prefix + name
        zeroed = _zero_listed_file(dir_fd, name, self.durable) if kind == _FILE else False
        if zeroed is None:
            kind = _DIR  # replaced by a directory since it was listed
        if kind == _DIR:
            self._wipe_subdir(dir_fd, name, rel)
            return
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return
        except OSError as exc:
            self._note(f"{rel}: {_why(exc)}")
            return
        self.out.count += 1
        if isinstance(zeroed, str):  # gone, but its content may still be on the medium
            self.out.unzeroed[rel] = zeroed

    def _wipe_subdir(self, dir_fd: int, name: str, rel: str) -> None:
        try:
            sub = _open_subdir(dir_fd, name)
        except FileNotFoundError:
            return
        except OSError as exc:
            try:  # replaced by a symlink or a file since: remove just the name
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            except OSError:
                self._note(f"{rel}/: {_why(exc)}")
            return
        try:
            empty = self.until_empty(sub, rel + "/")
        finally:
            os.close(sub)
        if rel in self.keep_dirs:
            return
        try:
            os.rmdir(name, dir_fd=dir_fd)
        except NotADirectoryError:  # swapped for a symlink after it was opened
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if empty:  # refilled after the last pass: listed again by the caller's next pass
                return
            self._note(f"{rel}/: {_why(exc)}")


def wipe_tree(
    root: Path,
    remove_root: bool,
    expect: tuple[int, int] | None = None,
    keep: frozenset[str] = frozenset(),
) -> Wiped:
    """Zero and unlink every file under `root` (editor litter included), file by file, then
    remove the directories, except the files named in `keep` (and the directories leading to
    them; "." keeps the whole directory, which is then not touched). `expect` is the (st_dev,
    st_ino) the directory must still have: one replaced since is not touched. A directory refilled while it is wiped is wiped again; what cannot be
    removed is skipped and listed in the result, and the wipe carries on with the rest."""
    if "." in keep:  # the directory could not be listed when it was saved: nothing is known
        return Wiped()
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return Wiped()
    except OSError as exc:
        return Wiped(0, [f"{root}: {_why(exc)}"])
    wiper = _Wiper(durable=not runtime.is_ram_backed(root), keep=keep)
    try:
        st = os.fstat(root_fd)
        if expect is not None and (st.st_dev, st.st_ino) != expect:
            raise LockerError(f"{root} was replaced by another directory; it was not wiped")
        for _ in range(WIPE_PASSES):
            empty = wiper.until_empty(root_fd, "")
            if not empty and not wiper.out.left:  # refilled on every pass, nothing else amiss
                wiper.out.left.append(f"{root}: files kept reappearing while it was wiped")
            if not remove_root or keep or not empty:
                break
            try:
                now = os.lstat(root)
                if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                    os.rmdir(root)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:
                    wiper.out.left.append(f"{root}: {_why(exc)}")
                    break
        else:
            wiper.out.left.append(f"{root}: files kept reappearing while it was wiped")
    finally:
        os.close(root_fd)
    return wiper.out
