"""Runtime bases: RAM-backed first, never plaintext on disk by default, squatting-proof, and
every test's bases its own (conftest's `places` feeds `runtime.places()` through the env)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Places, locker_env, require

from locker.errors import LockerError
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import runtime as rt


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


@pytest.fixture
def ram(places: Places) -> Places:
    require(rt.is_ram_backed(places.shm), "a RAM-backed /dev/shm")
    return places


def test_places_come_from_the_environment(places: Places, tmp_path: Path) -> None:
    """Every base this test's code looks at or makes is inside the test's own places."""
    where = rt.places()
    assert (where.run_user, where.shm, where.tmp) == (places.run_user, places.shm, places.tmp)
    (places.run_user / str(os.getuid())).mkdir(mode=0o700)
    rt.runtime_base()
    for base in rt.lookup_candidates():
        assert _inside(base.path, places.all()), base
    # ... and in a subprocess too: it inherits the environment.
    code = "from locker.mount import runtime as rt; print(rt.ram_base().path)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=locker_env(tmp_path),
        check=True,
    ).stdout
    assert _inside(Path(out.strip()), places.all())


def test_bad_places_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rt.PLACES_ENV, "not json")
    with pytest.raises(LockerError, match="LOCKER_RUNTIME_PLACES"):
        rt.places()
    monkeypatch.setenv(rt.PLACES_ENV, json.dumps({"run_user": "x", "shm": "/s", "tmp": "/t"}))
    with pytest.raises(LockerError, match="absolute"):
        rt.places()


def test_ram_backed_runtime_dir_comes_first(ram: Places) -> None:
    assert rt.is_ram_backed(ram.xdg)
    assert rt.ram_base().path == ram.xdg / "locker"
    assert rt.runtime_base().path == ram.xdg / "locker"


def test_on_disk_xdg_runtime_dir_loses_to_shm(
    ram: Places, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8 item 7: an on-disk $XDG_RUNTIME_DIR no longer wins over a RAM-backed /dev/shm."""
    disk = tmp_path / "disk-xdg"
    disk.mkdir(mode=0o700)
    require(not rt.is_ram_backed(disk), "tmp_path on a disk")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(disk))
    ours = ram.shm / f"locker-{os.getuid()}"
    assert rt.ram_base() == rt.RuntimeBase(ours, True)
    assert rt.runtime_base().path == ours
    path, created, warning = mountdir.make_mount_dir(None)
    assert (path.parent, created, warning) == (ours, True, None)
    path.rmdir()
    # A mount under either base is seen from a shell with either variable.
    assert disk / "locker" in [b.path for b in rt.lookup_candidates()]
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert ours in [b.path for b in rt.lookup_candidates()]


def test_squatted_shm_name_gets_a_fresh_private_dir(
    ram: Places, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 9 item 6: another user made /dev/shm/locker-UID first (here a symlink to a place
    of theirs; as root also a directory they own). The mount goes to a fresh unpredictable
    directory of ours under /dev/shm, never to the disk, and is found again from anywhere."""
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    squatted = ram.shm / f"locker-{os.getuid()}"
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    squatted.symlink_to(theirs)
    squats = [squatted]
    if os.getuid() == 0:
        foreign = ram.shm / f"locker-{os.getuid()}-00000000"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        squats.append(foreign)
    base = rt.ram_base()
    assert base.path.parent == ram.shm and base.path not in squats and base.ram_backed
    assert base.path.name.startswith(f"locker-{os.getuid()}-")
    st = os.lstat(base.path)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert rt.ram_base() == base  # the next mount reuses it
    assert list(theirs.iterdir()) == []
    path, _, _ = mountdir.make_mount_dir(None)
    assert path.parent == base.path
    found = [b.path for b in rt.lookup_candidates()]
    assert base.path in found and not any(p in found for p in squats[1:])
    journal = jn.Journal(rt.runtime_base().journal_dir)
    assert journal.directory == base.path / "journal"
    assert journal.directory in [j.directory for j in jn.journals()]
    path.rmdir()


def test_no_ram_backed_base_refuses_to_mount(
    places: Places, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9 item 6: with no RAM-backed base the plaintext would go to disk: refused (the
    journal, which holds no plaintext, may still live on disk)."""
    disk = tmp_path / "disk"
    for name in ("run", "shm", "tmp"):
        (disk / name).mkdir(parents=True, mode=0o700)
    require(not rt.is_ram_backed(disk), "tmp_path on a disk")
    spec = {"run_user": str(disk / "run"), "shm": str(disk / "shm"), "tmp": str(disk / "tmp")}
    monkeypatch.setenv(rt.PLACES_ENV, json.dumps(spec))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(disk / "run"))
    with pytest.raises(LockerError, match="no RAM-backed runtime directory") as err:
        mountdir.make_mount_dir(None)
    assert err.value.hint is not None and "--dir" in err.value.hint
    assert not (disk / "shm" / f"locker-{os.getuid()}" / "mnt").exists()
    assert not any(p.name.startswith("mnt-") for p in disk.rglob("*"))
    assert not rt.runtime_base().ram_backed  # the journal may go on disk
    given = tmp_path / "given"
    path, created, warning = mountdir.make_mount_dir(str(given))  # --dir asks for it
    assert (path, created) == (given, True) and warning and "not RAM-backed" in warning


def test_foreign_or_symlinked_private_dir_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(LockerError, match="symbolic link"):
        rt.ensure_private_dir(link)
    if os.getuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        with pytest.raises(LockerError, match="another user"):
            rt.ensure_private_dir(foreign)
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    rt.ensure_private_dir(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700
    with pytest.raises(LockerError, match="cannot create"):
        rt.ensure_private_dir(tmp_path / "no" / "such")


@pytest.mark.parametrize("tmpdir", [None, "given", "missing"])
def test_system_temp_dir_is_tempfiles_choice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tmpdir: str | None
) -> None:
    """Without $LOCKER_RUNTIME_PLACES the temp place is tempfile.gettempdir()'s (found without
    importing tempfile, which every command's orphan check would otherwise pay for)."""
    import tempfile

    monkeypatch.delenv(rt.PLACES_ENV, raising=False)
    for name in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.delenv(name, raising=False)
    if tmpdir:
        monkeypatch.setenv("TMPDIR", str(tmp_path / tmpdir))
    (tmp_path / "given").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches its answer
    assert rt.places().tmp == Path(tempfile.gettempdir())


def test_a_tests_own_undo_keeps_its_places(places: Places, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that calls `monkeypatch.undo()` to end a fault it injected keeps its runtime
    bases and data dir: conftest's `places` sets them with a monkeypatch of its own."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/elsewhere")
    monkeypatch.undo()
    assert os.environ["XDG_RUNTIME_DIR"] == str(places.xdg)
    assert os.environ[rt.PLACES_ENV] == places.env()[rt.PLACES_ENV]
    assert "LOCKER_VAULT" not in os.environ
