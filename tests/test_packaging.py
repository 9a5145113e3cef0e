"""What a user's `pip install locker` gets: every file the package reads at run time, not only
its modules (an editable install, as the tests use, would hide a file left out of the wheel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_regular_install_has_every_file_of_the_package(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--target", str(target), str(ROOT)],
        check=True, capture_output=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    wanted = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "locker").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    installed = {
        p.relative_to(target).as_posix()
        for p in (target / "locker").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert wanted - installed == set()
    assert "locker/tui/locker.tcss" in wanted  # the stylesheet the app loads at start
