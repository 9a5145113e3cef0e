"""The wipe's error branches on real failures (issue 10, item 15): a file it cannot zero or
unlink and a directory it cannot remove (a read-only bind mount inside the tree) are listed
with the system's reason, and everything else is still wiped.

The mount lives in a private mount namespace (`unshare --mount`) of a child process: it
vanishes with that process, whatever happens to the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import locker_env, require

from locker.mount.directory import wipe_tree

_CHILD = r"""
import os, subprocess, sys
from pathlib import Path
from locker.mount.directory import wipe_tree

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
