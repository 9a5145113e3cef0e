"""The editor locker starts keeps what is typed inside the mount: a real vim, run headless,
yanks a secret line and quits; no viminfo file appears in its home (issue 9.7)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import require

from locker.mount.editor import private_editor


def test_vim_gets_no_viminfo_and_other_editors_run_as_they_are() -> None:
    assert private_editor("vim", "/m/a")[:3] == ["vim", "-i", "NONE"]
    assert private_editor("/usr/bin/nvim -p", "/m/a")[:4] == ["/usr/bin/nvim", "-p", "-i", "NONE"]
    assert private_editor("nano", "/m/a") == ["nano", "--", "/m/a"]


def test_real_vim_leaves_no_viminfo_behind(tmp_path: Path) -> None:
    vim = require("vim", "vim is needed to check what it writes outside the mount")
    home = tmp_path / "home"
    home.mkdir()
    secret = tmp_path / "mnt" / "key.txt"
    secret.parent.mkdir()
    secret.write_text("SECRET-LINE\n")
    script = ["-N", "-es", "-c", "normal yy", "-c", "/SECRET", "-c", "wq"]
    env = {**os.environ, "HOME": str(home), "VIMINIT": ""}

    def run(argv: list[str]) -> None:
        editor, path = argv[:-2], argv[-1]
        subprocess.run([*editor, *script, path], env=env, timeout=60, check=False)

    run([vim, "--", str(secret)])  # as it is: the yank lands in ~/.viminfo
    assert any("SECRET" in p.read_text(errors="replace") for p in home.rglob("*info*"))
    for p in list(home.rglob("*")):
        if p.is_file():
            p.unlink()
    run(private_editor(vim, str(secret)))
    leaked = [p for p in home.rglob("*") if p.is_file() and b"SECRET" in p.read_bytes()]
    assert leaked == []
