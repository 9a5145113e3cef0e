"""What kind of drive a path lives on: its file system (from /proc/self/mountinfo), whether the
block device is removable (sysfs), FAT's limits on file size and names, and free space.

Plain facts for `export` and `mount`; Linux-only sources, and "unknown" wherever they are missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

FAT_TYPES = frozenset({"vfat", "msdos", "fat", "fuse.fusefat", "fusefat"})
EXFAT_TYPES = frozenset({"exfat", "fuse.exfat", "fuseblk.exfat"})
# Where a format 2 save may append in place (docs/FORMAT.md section 21): local file systems
# whose fsync makes a write into an existing file, and its growth, durable. Elsewhere (FAT,
# exFAT, FUSE, network file systems, anything unknown) every save writes a whole new file.
APPEND_TYPES = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "tmpfs"})
FAT_MAX_FILE = 4 * 1024**3 - 1
FAT_MAX_NAME_UNITS = 255  # UTF-16 code units in a long file name
_FAT_FORBIDDEN = set('"*/:<>?\\|') | {chr(c) for c in range(32)} | {"\x7f"}
_MOUNTINFO = Path("/proc/self/mountinfo")
_SYS_DEV_BLOCK = Path("/sys/dev/block")


class Drive(NamedTuple):
    """The mount a path lives on."""

    mount_point: str
    fstype: str
    device: str  # "major:minor"
    removable: bool

    @property
    def fat(self) -> bool:
        return self.fstype in FAT_TYPES

    @property
    def fat_like(self) -> bool:
        """FAT or exFAT: names are limited the same way."""
        return self.fat or self.fstype in EXFAT_TYPES

    def describe(self) -> str:
        """'FAT file system at /media/stick', '... on a removable drive at /media/stick'."""
        kind = "FAT" if self.fat else "exFAT" if self.fat_like else self.fstype
        removable = " on a removable drive" if self.removable else ""
        return f"{kind} file system{removable} at {self.mount_point}"


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounts() -> list[tuple[str, str, str]]:
    """(device "major:minor", mount point, file system type) of every mount; [] if unknown."""
    try:
        lines = _MOUNTINFO.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if sep and len(fields) >= 5 and tail:
            found.append((fields[2], _unescape(fields[4]), tail[0]))
    return found


def drive_of(path: Path) -> Drive | None:
    """The mount holding `path` (an existing file or directory), or None where unknown."""
    try:
        real = os.path.realpath(path)
        dev = os.stat(real).st_dev
    except OSError:
        return None
    wanted = f"{os.major(dev)}:{os.minor(dev)}"
    best: tuple[str, str] | None = None
    for device, point, fstype in _mounts():
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if device == wanted and inside and (best is None or len(point) > len(best[0])):
            best = (point, fstype)
    if best is None:
        return None
    return Drive(best[0], best[1], wanted, _removable(os.major(dev), os.minor(dev)))


def appends_in_place(path: Path) -> bool:
    """Whether a save of the file at `path` may append to it in place (APPEND_TYPES)."""
    drive = drive_of(path)
    return drive is not None and drive.fstype in APPEND_TYPES


def removable_drives() -> list[Drive]:
    """The mounted file systems on removable drives (where sysfs says so), by mount point:
    where a bundle most likely goes."""
    found: dict[str, Drive] = {}
    for device, point, fstype in _mounts():
        major, _, minor = device.partition(":")
        if major.isdigit() and minor.isdigit() and _removable(int(major), int(minor)):
            found.setdefault(point, Drive(point, fstype, device, True))
    return sorted(found.values(), key=lambda d: d.mount_point)


def _removable(major: int, minor: int) -> bool:
    """sysfs says the block device (or the disk a partition is on) is removable."""
    node = _SYS_DEV_BLOCK / f"{major}:{minor}"
    try:
        real = node.resolve(strict=True)
    except OSError:
        return False
    for candidate in (real, real.parent):
        try:
            return (candidate / "removable").read_text().strip() == "1"
        except OSError:
            continue
    return False


def free_bytes(directory: Path) -> int | None:
    """Bytes an unprivileged writer may still use there; None when the file system does not
    say (FUSE file systems such as fusefat report zero blocks)."""
    st = os.statvfs(directory)
    if st.f_blocks == 0:
        return None
    return st.f_bavail * st.f_frsize


def cluster_size(directory: Path) -> int:
    st = os.statvfs(directory)
    return max(st.f_frsize, st.f_bsize, 512)


def fat_name_problem(name: str) -> str | None:
    """Why FAT cannot hold a file called `name`, or None if it can."""
    bad = sorted({c for c in name if c in _FAT_FORBIDDEN})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        return f"FAT file names cannot contain {shown}"
    if name.endswith((" ", ".")):
        return "FAT file names cannot end in a space or a dot"
    if len(name.encode("utf-16-le")) // 2 > FAT_MAX_NAME_UNITS:
        return f"FAT file names are at most {FAT_MAX_NAME_UNITS} characters"
    return None
