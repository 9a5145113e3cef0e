"""The wipe's error branches on real failures (issue 10, item 15): a file it cannot zero or
unlink and a directory it cannot remove (a read-only bind mount inside the tree) are listed
with the system's reason, and everything else is still wiped.

The mount lives in a private mount namespace (`unshare --mount`) of a child process: it
vanishes with that process, whatever happens to the test.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import locker_env, require
from test_mount_session import Clocks, unstarted

from locker.mount import directory, tracker
from locker.mount import journal as jn
from locker.mount.directory import wipe_tree
from locker.mount.locking import REASON_COMMAND

_CHILD = r"""
import os, subprocess, sys
from pathlib import Path
from typing import Any
from locker.mount import directory
from locker.mount import journal as jn
from locker.mount import tracker
from locker.mount.directory import wipe_tree
from locker.mount.locking import REASON_COMMAND

root = Path(sys.argv[1])
ro = root / "ro"
subprocess.run(["mount", "--bind", ro, ro], check=True)
subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
out = wipe_tree(root, remove_root=True)
print(out.count)
for line in out.left:
    print(line)
print("g:", (ro / "g").read_text().strip())
"""


def test_what_the_wipe_cannot_remove_is_listed_and_the_rest_wiped(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "a bind mount needs root (CI runs as root)")
    unshare = require("unshare", "unshare (util-linux) makes the private mount namespace")
    root = tmp_path / "mnt"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("secret f\n")
    (root / "top").write_text("secret top\n")
    (root / "ro").mkdir()
    (root / "ro" / "g").write_text("secret g\n")
    r = subprocess.run(
        [unshare, "--mount", "--propagation", "private", sys.executable, "-c", _CHILD, root],
        capture_output=True,
        env=locker_env(tmp_path),
        check=False,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "2"  # a/b/f and top
    # each once: every pass met them again, and the list said so 25 and 5 times
    assert lines[1:-1] == ["ro/g: Read-only file system", "ro/: Device or resource busy"]
    assert lines[-1] == "g: secret g"  # not zeroed either: it could not be written
    assert sorted(os.listdir(root)) == ["ro"]
    assert os.listdir(root / "ro") == ["g"]


@pytest.mark.permissions
def test_a_directory_without_any_permission_is_wiped(tmp_path: Path) -> None:
    """Mode 000 (a tool's private dir, or `chmod -R 0`): its owner cannot list it, so the
    wipe opens it with O_PATH, makes it 0700 through that descriptor and goes on. Root
    passes without that; .ci/run runs this again as an unprivileged user."""
    root = tmp_path / "mnt"
    (root / "closed" / "inner").mkdir(parents=True)
    (root / "closed" / "inner" / "f").write_text("secret\n")
    (root / "closed" / "inner").chmod(0)
    (root / "closed").chmod(0)
    out = wipe_tree(root, remove_root=True)
    assert (out.count, out.left) == (1, [])
    assert not root.exists()


# -- a file the wipe cannot zero (issue 10: it was unlinked without a word) ------------------------

EIO = os.strerror(errno.EIO)


class _ZeroFails:
    """Stands in for `os` in mount/directory.py: writing zeros into (`pwrite`), or syncing
    (`fsync`), a file named `name` fails with EIO, as a failing disk does."""

    def __init__(self, name: str, call: str = "pwrite") -> None:
        self.name, self.call = name, call

    def __getattr__(self, attr: str) -> Any:
        return getattr(os, attr)

    def _check(self, fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name == self.name:
            raise OSError(errno.EIO, EIO)

    def pwrite(self, fd: int, data: Any, offset: int) -> int:
        if self.call == "pwrite":
            self._check(fd)
        return os.pwrite(fd, data, offset)

    def fsync(self, fd: int) -> None:
        if self.call == "fsync":
            self._check(fd)
        os.fsync(fd)


@pytest.mark.parametrize("mode", [0o600, 0o400], ids=["writable", "read-only"])
@pytest.mark.parametrize("call", ["pwrite", "fsync"])
def test_a_file_that_cannot_be_zeroed_is_deleted_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, mode: int
) -> None:
    """Deleted all the same (it must not stay readable), and named with the reason: its
    plaintext may still be on the medium."""
    root = tmp_path / "mnt"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "key").write_bytes(b"secret key")
    (root / "sub" / "key").chmod(mode)
    (root / "other").write_bytes(b"secret other")
    monkeypatch.setattr(directory, "os", _ZeroFails("key", call))
    monkeypatch.setattr(directory.runtime, "is_ram_backed", lambda path: False)  # fsync
    out = directory.wipe_tree(root, remove_root=True)
    monkeypatch.undo()
    assert (out.count, out.left, out.unzeroed) == (2, [], {"sub/key": EIO})
    assert not root.exists()
    note = f"could not zero 1 file before deleting it: sub/key ({EIO}); its content may remain on the disk"
    assert out.unzeroed_note() == note
    assert out.warnings() == [note]


def test_several_files_not_zeroed_are_said_in_one_line() -> None:
    out = directory.Wiped(2, ["d/: busy"], {"b": EIO, "a\x1b": EIO})
    note = (
        f"could not zero 2 files before deleting them: a\\x{{1b}} ({EIO}), b ({EIO}); their content "
        "may remain on the disk"
    )
    assert out.warnings() == ["could not wipe d/: busy", note]
    assert directory.Wiped(1).unzeroed_note() is None
    assert directory.Wiped(1).warnings() == []


@pytest.mark.parametrize("reason", [REASON_COMMAND, tracker.REASON_IDLE])
def test_the_lock_says_which_files_it_deleted_without_zeroing(
    filled_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reason: str
) -> None:
    """Said as it happens, in the result (the CLI exits 1) and, for `locker lock` in another
    shell, in the record the mount leaves it."""
    s = unstarted(filled_vault, tmp_path, Clocks())
    notes: list[str] = []
    s.notify = notes.append
    with s.vault:
        s.start()
        monkeypatch.setattr(directory, "os", _ZeroFails("b.key"))
        result = s.lock(reason)
    note = (
        f"could not zero 1 file before deleting it: sub/deep/b.key ({EIO}); its content may "
        "remain on the disk"
    )
    assert (result.wiped, result.not_wiped, result.unzeroed) == (4, [], note)
    assert notes[-1] == f"warning: {note}"
    records = list(s.journal.records())
    if reason == REASON_COMMAND:
        assert [(r.state, r.error) for r in records] == [(jn.STATE_LOCKED, note)]
    else:
        assert records == []
    assert not s.root.exists()


def test_a_directory_kept_whole_is_not_touched(tmp_path: Path) -> None:
    """ "." kept: the mount directory could not be listed at the final sync, so nothing in it
    is known to be saved."""
    root = tmp_path / "mnt"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "key").write_bytes(b"unsaved")
    out = wipe_tree(root, remove_root=True, keep=frozenset({"."}))
    assert (out.count, out.left, out.unzeroed) == (0, [], {})
    assert (root / "sub" / "key").read_bytes() == b"unsaved"
