"""Recovering an orphaned mount never overwrites what changed in the vault since the mount
last synced: the library's plan, on a real vault and a real directory standing for the orphan
(the end-to-end kill -9 path is in test_mount_e2e.py)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from conftest import PASSPHRASE

from locker.mount import journal as jn
from locker.mount import recovery
from locker.mount import scan as sc
from locker.vault import Vault

NOW = time.mktime((2026, 3, 4, 5, 6, 7, 0, 0, -1))
STAMP = "20260304-050607"
START = {
    "a.txt": b"alpha\n",
    "b.txt": b"bravo\n",
    "c.txt": b"charlie\n",
    "d.txt": b"delta\n",
    "sub/e.key": b"echo\n",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def orphan(vault_path: Path, tmp_path: Path) -> jn.Record:
    """A vault holding START and an orphaned mount directory materialised from it."""
    root = tmp_path / "mnt-orphan"
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        for name, data in START.items():
            v.add_bytes(name, data)
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        v.commit()
    record = jn.Record.new(
        vault_path, root, started=NOW, idle_seconds=300, idle_deadline=NOW, hard_deadline=NOW
    )
    record.state = jn.STATE_MOUNTED
    record.files = {name: sha(data) for name, data in START.items()}
    return record


def vault_edit(path: Path, changes: dict[str, bytes | None]) -> None:
    """Change the vault behind the orphan's back (what `locker add --force` / `rm` do)."""
    with Vault.open(path, PASSPHRASE, write=True) as v:
        for name, data in changes.items():
            if data is None:
                v.remove(name)
            else:
                v.add_bytes(name, data, force=True)
        v.commit()


def recover(path: Path, record: jn.Record) -> tuple[recovery.RecoveryPlan, dict[str, bytes], str]:
    changes = sc.diff(Path(record.dir), record.files)
    with Vault.open(path, PASSPHRASE, write=True, purpose="recover") as v:
        plan = recovery.plan_recovery(v, record, changes, now=NOW)
        recovery.recover(v, record, changes, plan)
    with Vault.open(path, PASSPHRASE) as v:
        data = {e.name: v.read_bytes(e.name) for e in v.entries()}
        detail = v.log()[-1].detail
        assert v.log()[-1].event == "recover"
    return plan, data, detail


def test_changes_without_conflicts_are_saved_as_before(orphan: jn.Record, vault_path: Path) -> None:
    root = Path(orphan.dir)
    (root / "a.txt").write_bytes(b"alpha 2\n")
    (root / "b.txt").unlink()
    (root / "c.txt").rename(root / "c2.txt")
    (root / "new.txt").write_bytes(b"new\n")
    vault_edit(vault_path, {"d.txt": b"the vault changed another file\n"})
    plan, data, detail = recover(vault_path, orphan)
    assert plan.conflicts == []
    assert plan.renames == [("c.txt", "c2.txt")]
    assert data == {
        "a.txt": b"alpha 2\n",
        "c2.txt": b"charlie\n",
        "d.txt": b"the vault changed another file\n",
        "new.txt": b"new\n",
        "sub/e.key": b"echo\n",
    }
    assert detail == f"1 changed, 1 added, 1 deleted, 1 renamed from {orphan.dir}"


def test_changed_in_both_keeps_the_vault_and_saves_the_orphan_beside(
    orphan: jn.Record, vault_path: Path
) -> None:
    """The reviewer's case: edited in the mount, killed, then `locker add f --force`."""
    (Path(orphan.dir) / "a.txt").write_bytes(b"orphan's edit\n")
    vault_edit(vault_path, {"a.txt": b"newer, added after the crash\n"})
    plan, data, detail = recover(vault_path, orphan)
    saved = f"a.txt.recovered-{STAMP}"
    assert data["a.txt"] == b"newer, added after the crash\n"
    assert data[saved] == b"orphan's edit\n"
    [conflict] = plan.conflicts
    assert (conflict.name, conflict.mount, conflict.vault, conflict.saved_as) == (
        "a.txt",
        "changed",
        "changed",
        saved,
    )
    assert conflict.message() == (
        "a.txt: changed in the mount, but changed in the vault since the mount last saved; "
        f"kept the vault's version and saved the mount's as {saved}"
    )
    assert conflict.message(done=False).endswith(
        f"will keep the vault's version and will save the mount's as {saved}"
    )
    assert f"1 conflict: a.txt -> {saved}" in detail


def test_deleted_in_the_orphan_but_changed_in_the_vault_is_kept(
    orphan: jn.Record, vault_path: Path
) -> None:
    (Path(orphan.dir) / "b.txt").unlink()
    (Path(orphan.dir) / "c.txt").unlink()  # unchanged in the vault: deleted as asked
    (Path(orphan.dir) / "d.txt").unlink()  # deleted in the vault too: nothing to do
    vault_edit(vault_path, {"b.txt": b"bravo, newer\n", "d.txt": None})
    plan, data, detail = recover(vault_path, orphan)
    assert data["b.txt"] == b"bravo, newer\n"
    assert "c.txt" not in data and "d.txt" not in data
    [conflict] = plan.conflicts
    assert conflict.message() == (
        "b.txt: deleted in the mount, but changed in the vault since the mount last saved; "
        "kept the vault's version"
    )
    assert "kept b.txt" in detail


def test_changed_in_the_orphan_but_deleted_from_the_vault(
    orphan: jn.Record, vault_path: Path
) -> None:
    (Path(orphan.dir) / "sub" / "e.key").write_bytes(b"echo 2\n")
    vault_edit(vault_path, {"sub/e.key": None})
    plan, data, _ = recover(vault_path, orphan)
    assert "sub/e.key" not in data
    assert data[f"sub/e.key.recovered-{STAMP}"] == b"echo 2\n"
    [conflict] = plan.conflicts
    assert conflict.vault == "deleted"
    assert "kept" not in conflict.message()
    assert conflict.message().endswith(f"saved the mount's as sub/e.key.recovered-{STAMP}")


def test_added_in_both(orphan: jn.Record, vault_path: Path) -> None:
    root = Path(orphan.dir)
    (root / "same.txt").write_bytes(b"same\n")
    (root / "other.txt").write_bytes(b"orphan's\n")
    vault_edit(vault_path, {"same.txt": b"same\n", "other.txt": b"vault's\n"})
    plan, data, _ = recover(vault_path, orphan)
    assert data["same.txt"] == b"same\n"  # identical: no conflict
    assert data["other.txt"] == b"vault's\n"
    assert data[f"other.txt.recovered-{STAMP}"] == b"orphan's\n"
    assert [(c.name, c.vault) for c in plan.conflicts] == [("other.txt", "added")]


def test_changed_in_both_to_the_same_content_is_no_conflict(
    orphan: jn.Record, vault_path: Path
) -> None:
    """A sync that committed just before the kill, before the journal was updated."""
    (Path(orphan.dir) / "a.txt").write_bytes(b"synced\n")
    vault_edit(vault_path, {"a.txt": b"synced\n"})
    plan, data, _ = recover(vault_path, orphan)
    assert plan.conflicts == [] and plan.writes == []
    assert data["a.txt"] == b"synced\n" and len(data) == len(START)


def test_renamed_in_the_orphan_but_changed_in_the_vault(
    orphan: jn.Record, vault_path: Path
) -> None:
    root = Path(orphan.dir)
    (root / "c.txt").rename(root / "c-moved.txt")
    (root / "d.txt").rename(root / "d-moved.txt")
    (root / "b.txt").rename(root / "b-moved.txt")
    vault_edit(
        vault_path,
        {"c.txt": b"charlie, newer\n", "d.txt": None, "b-moved.txt": b"taken in the vault\n"},
    )
    plan, data, _ = recover(vault_path, orphan)
    # c: the vault's newer c.txt stays, the orphan's renamed copy is saved under its new name
    assert data["c.txt"] == b"charlie, newer\n" and data["c-moved.txt"] == b"charlie\n"
    # d: deleted from the vault since; the orphan's renamed copy is kept, not dropped
    assert "d.txt" not in data and data["d-moved.txt"] == b"delta\n"
    # b: unchanged in the vault, but the new name is taken there: saved beside it
    assert "b.txt" not in data and data["b-moved.txt"] == b"taken in the vault\n"
    assert data[f"b-moved.txt.recovered-{STAMP}"] == b"bravo\n"
    by_name = {c.name: c for c in plan.conflicts}
    assert set(by_name) == {"c.txt", "d.txt", "b-moved.txt"}
    assert (
        by_name["c.txt"]
        .message()
        .endswith("kept the vault's version and saved the mount's as c-moved.txt")
    )
    assert by_name["d.txt"].mount == "renamed to d-moved.txt"
    assert by_name["b-moved.txt"].mount == "renamed from b.txt"


def test_recovered_name_is_valid_and_unused() -> None:
    taken = {f"a.txt.recovered-{STAMP}", f"a.txt.recovered-{STAMP}-2/x"}
    assert recovery.recovered_name("a.txt", taken, NOW) == f"a.txt.recovered-{STAMP}-3"
    assert f"a.txt.recovered-{STAMP}-3" in taken
    long = "dir/" + "k" * 255
    name = recovery.recovered_name(long, set(), NOW)
    assert name.startswith("dir/kkk") and name.endswith(f".recovered-{STAMP}")
    assert len(name.rsplit("/", 1)[1].encode()) == 255
    wide = "é" * 127  # 254 bytes: cut on a character boundary
    assert recovery.recovered_name(wide, set(), NOW).encode().decode() == (
        "é" * ((255 - len(f".recovered-{STAMP}")) // 2) + f".recovered-{STAMP}"
    )
