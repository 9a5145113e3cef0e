"""The TUI's import dialog, driven by Pilot against real bundles (made by `locker.bundle`'s own
export) and a real vault: the preview names the collisions, the default stops before anything
is written, skip/overwrite/rename do what `locker import --on-conflict` does, every error is
one line in the dialog with the vault byte-identical, and a lock takes the dialog, the open
bundle and the typed passphrase away."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import MOUNT_FILES, PASSPHRASE, SMALL_KDF
from textual.widgets import DataTable, Input, Select
from tui_helpers import SIZE, make_app, run, type_text, unlock, wait_for

from locker import bundle
from locker.tui.screens.main import MainScreen
from locker.tui.screens.unlock import UnlockScreen
from locker.vault import Vault, create

BUNDLE_PASSPHRASE = b"bundle words here"
IN_BUNDLE = {
    "a.txt": b"alpha from the bundle\n",  # the vault (MOUNT_FILES) has a.txt
    "new/one.txt": b"one\n",
    "new/two.txt": b"two\n",
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def contents(path: Path) -> dict[str, bytes]:
    with Vault.open(path, PASSPHRASE) as v:
        return {name: b"".join(v.chunks(name)) for name in v.names()}


def make_bundle(tmp_path: Path, recipients: list[bytes] | None = None) -> Path:
    """A bundle of IN_BUNDLE, written and verified by the export the CLI uses."""
    source = tmp_path / "source.locker"
    create(source, PASSPHRASE, SMALL_KDF)
    target = tmp_path / "stick" / "keys.locker"
    target.parent.mkdir()
    with Vault.open(source, PASSPHRASE, write=True) as v:
        for name, data in IN_BUNDLE.items():
            v.add_bytes(name, data)
        v.commit()
        secret = None if recipients else BUNDLE_PASSPHRASE
        bundle.export(v, target, sorted(IN_BUNDLE), secret, SMALL_KDF, recipients=recipients or [])
    return target


@pytest.fixture
def keys_bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path)


def problem(app: Any) -> str:
    return str(app.screen.query_one("#problem").render())


def result(app: Any) -> str:
    return str(app.screen.query_one("#result").render())


async def open_dialog(pilot: Any, source: Path | str) -> Any:
    from locker.tui.screens.bundle_import import ImportModal

    await pilot.press("b")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ImportModal), "the dialog")
    pilot.app.screen.query_one("#source", Input).value = str(source)
    return pilot.app.screen


async def open_bundle(pilot: Any, passphrase: bytes = BUNDLE_PASSPHRASE) -> None:
    field = pilot.app.screen.query_one("#bundle-passphrase", Input)
    field.focus()
    await wait_for(pilot, lambda: pilot.app.focused is field, "the passphrase field")
    await type_text(pilot, passphrase.decode())
    await pilot.press("enter")


async def opened(pilot: Any, dialog: Any) -> None:
    await wait_for(pilot, lambda: dialog.bundle is not None or problem(pilot.app), "the bundle")
    assert dialog.bundle is not None, problem(pilot.app)


async def unlocked_and_open(pilot: Any, source: Path) -> Any:
    """Unlock, open the dialog on `source`, open the bundle with its passphrase."""
    await unlock(pilot)
    dialog = await open_dialog(pilot, source)
    await open_bundle(pilot)
    await opened(pilot, dialog)
    return dialog


def rows(dialog: Any) -> list[list[str]]:
    table = dialog.query_one("#preview", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_the_preview_names_the_collisions_and_the_default_refuses(
    filled_vault: Path, keys_bundle: Path
) -> None:
    before = digest(filled_vault)

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            dialog = await unlocked_and_open(pilot, keys_bundle)
            assert rows(dialog) == [
                ["a.txt", "22 bytes", "exists: stops the import"],
                ["new/one.txt", "4 bytes", "new"],
                ["new/two.txt", "4 bytes", "new"],
            ]
            assert "1 of these names the vault has already" in str(
                dialog.query_one("#summary").render()
            )
            assert dialog.query_one("#run").disabled  # nothing is overwritten silently
            assert "choose what happens to them" in problem(app)
            assert dialog.query_one("#bundle-passphrase", Input).value == ""
            dialog.query_one("#names", Input).value = "new/"
            await wait_for(pilot, lambda: not dialog.query_one("#run").disabled, "only new/")
            assert [r[2] for r in rows(dialog)] == ["new", "new"]

    run(go)
    assert digest(filled_vault) == before


@pytest.mark.parametrize(
    ("policy", "said", "a_txt", "also"),
    [
        ("skip", "skipped a.txt (exists in the vault)", MOUNT_FILES["a.txt"], {}),
        ("overwrite", "replaced a.txt", IN_BUNDLE["a.txt"], {}),
        (
            "rename",
            "imported a.txt as a.txt.imported",
            MOUNT_FILES["a.txt"],
            {"a.txt.imported": IN_BUNDLE["a.txt"]},
        ),
    ],
)
def test_each_policy_imports_as_the_cli_does_in_one_save(
    filled_vault: Path,
    keys_bundle: Path,
    policy: str,
    said: str,
    a_txt: bytes,
    also: dict[str, bytes],
) -> None:
    with Vault.open(filled_vault, PASSPHRASE) as v:
        generation = v.generation

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            dialog = await unlocked_and_open(pilot, keys_bundle)
            dialog.query_one("#on-conflict", Select).value = policy
            await wait_for(pilot, lambda: not dialog.query_one("#run").disabled, "Import on")
            await pilot.click("#run")
            await wait_for(pilot, lambda: "imported from bundle" in result(app), "the result")
            assert said in result(app).splitlines()
            assert dialog.bundle is None  # closed once imported
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the list")

    run(go)
    held = contents(filled_vault)
    assert held["a.txt"] == a_txt
    assert held["new/one.txt"] == b"one\n" and held["new/two.txt"] == b"two\n"
    for name, data in also.items():
        assert held[name] == data
    with Vault.open(filled_vault, PASSPHRASE) as v:
        imports = [e for e in v.log() if e.event == "import"]
        assert len(imports) == 1 and str(keys_bundle) in imports[0].detail
        assert v.generation == generation + 1  # one save


def test_every_error_is_one_line_and_the_vault_is_untouched(
    filled_vault: Path, keys_bundle: Path, tmp_path: Path
) -> None:
    before = digest(filled_vault)
    tampered = tmp_path / "tampered.locker"
    data = bytearray(keys_bundle.read_bytes())
    data[30] ^= 0x01  # in the header
    tampered.write_bytes(bytes(data))
    missing = tmp_path / "nowhere.locker"

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            dialog = await open_dialog(pilot, missing)
            await open_bundle(pilot)
            await wait_for(pilot, lambda: problem(app), "the missing bundle")
            assert problem(app) == f"error: no bundle at {missing}"
            dialog.query_one("#source", Input).value = str(filled_vault)
            await open_bundle(pilot)
            await wait_for(pilot, lambda: "itself" in problem(app), "the vault itself")
            assert problem(app) == "error: cannot import a vault into itself"
            dialog.query_one("#source", Input).value = str(keys_bundle)
            await open_bundle(pilot, b"not the words")
            await wait_for(pilot, lambda: "wrong" in problem(app), "the wrong passphrase")
            assert problem(app).splitlines()[0] == "error: wrong passphrase"
            assert dialog.bundle is None
            await focus_and_enter(pilot, "#bundle-passphrase")  # empty
            await wait_for(pilot, lambda: "type the bundle" in problem(app), "no passphrase")
            dialog.query_one("#source", Input).value = str(tampered)
            dialog.say("")
            await open_bundle(pilot)
            await wait_for(pilot, lambda: problem(app), "the tampered bundle's error")
            assert problem(app).startswith("error: ") and len(problem(app).splitlines()) <= 2
            assert dialog.bundle is None
            dialog.query_one("#source", Input).value = str(keys_bundle)
            dialog.query_one("#identity", Input).value = str(tmp_path / "no-id.txt")
            await focus_and_enter(pilot, "#identity")
            await wait_for(pilot, lambda: "no-id.txt" in problem(app), "the identity file")
            assert problem(app).startswith("error: ") and len(problem(app).splitlines()) <= 2

    run(go)
    assert digest(filled_vault) == before


async def focus_and_enter(pilot: Any, selector: str) -> None:
    field = pilot.app.screen.query_one(selector)
    field.focus()
    await wait_for(pilot, lambda: pilot.app.focused is field, selector)
    await pilot.press("enter")


def test_a_bundle_made_for_a_recipient_opens_with_its_identity(
    filled_vault: Path, tmp_path: Path
) -> None:
    from locker.slots import recipient

    identity = recipient.new_identity()
    idfile = tmp_path / "id.txt"
    idfile.write_text(recipient.identity_file(identity, "2026-11-30T00:00:00Z"))
    idfile.chmod(0o600)
    made = make_bundle(tmp_path, [recipient.public_key(identity)])
    other = tmp_path / "other-id.txt"
    other.write_text(recipient.identity_file(recipient.new_identity(), "2026-11-30T00:00:00Z"))
    other.chmod(0o600)
    before = digest(filled_vault)

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            dialog = await open_dialog(pilot, made)
            dialog.query_one("#identity", Input).value = str(other)
            await focus_and_enter(pilot, "#identity")
            await wait_for(pilot, lambda: problem(app), "another identity's error")
            assert problem(app).startswith("error: ") and len(problem(app).splitlines()) <= 2
            assert dialog.bundle is None and digest(filled_vault) == before
            dialog.query_one("#identity", Input).value = str(idfile)
            dialog.query_one("#names", Input).value = "new/"
            await focus_and_enter(pilot, "#identity")
            await opened(pilot, dialog)
            await wait_for(pilot, lambda: not dialog.query_one("#run").disabled, "Import on")
            await pilot.click("#run")
            await wait_for(pilot, lambda: "imported from bundle" in result(app), "the result")
            assert result(app).splitlines()[:2] == ["imported new/one.txt", "imported new/two.txt"]

    run(go)
    assert contents(filled_vault)["new/one.txt"] == b"one\n"


def test_a_lock_takes_the_dialog_and_the_open_bundle_away(
    filled_vault: Path, keys_bundle: Path
) -> None:
    before = digest(filled_vault)

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            dialog = await unlocked_and_open(pilot, keys_bundle)
            assert keys_bundle in open_files()
            app.lock_now("test")
            await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen), "locked")
            await pilot.pause()
            assert dialog.bundle is None and keys_bundle not in open_files()
            assert all(not isinstance(s, type(dialog)) for s in app.screen_stack)
            shown = "".join(str(w.render()) for w in app.screen.query("*"))
            assert BUNDLE_PASSPHRASE.decode() not in shown
            assert "new/one.txt" not in shown and "a.txt" not in shown

    run(go)
    assert digest(filled_vault) == before


def open_files() -> set[Path]:
    """What this process holds open."""
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            found.add(Path(os.readlink(fd)))
        except OSError:
            continue
    return found


def test_the_preview_is_the_plan_the_import_follows() -> None:
    """bundle.plan (the preview) and import_bundle share their decisions."""
    steps = bundle.plan(["a", "b", "a.imported"], ["a", "x"], "rename")
    assert [(s.name, s.as_name, s.exists) for s in steps] == [
        ("a", "a.imported-2", True),
        ("b", "b", False),
        ("a.imported", "a.imported", False),
    ]
    assert [s.as_name for s in bundle.plan(["a", "b"], ["a"], "skip")] == [None, "b"]
    assert [s.as_name for s in bundle.plan(["a", "b"], ["a"], "overwrite")] == ["a", "b"]


def test_bundles_on_removable_drives_are_offered_first_and_never_the_vault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from locker.tui.screens import bundle_import, export

    stick, here = tmp_path / "stick", tmp_path / "here"
    for folder, names in ((stick, ["b.locker", "a.locker", "notes.txt"]), (here, ["v.locker"])):
        folder.mkdir()
        for name in names:
            (folder / name).write_bytes(b"x")
    (here / "dir.locker").mkdir()
    drive = "FAT file system on a removable drive"
    monkeypatch.setattr(export, "places", lambda cwd, home: [(stick, drive), (cwd, "here")])
    found = bundle_import.found_bundles(here, tmp_path, here / "v.locker")
    assert found == [(stick / "a.locker", drive), (stick / "b.locker", drive)]


def test_import_dialog_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snap_compare: Any
) -> None:
    """The dialog with a bundle open: the preview, one collision, the choice for it."""
    import time

    from conftest import counter_rng
    from textual.pilot import Pilot

    from locker.tui.screens import bundle_import

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.chdir(tmp_path)
    make_bundle(tmp_path)
    when = lambda: 1_767_225_600.0  # noqa: E731
    vault = Path("demo.locker")
    create(vault, PASSPHRASE, SMALL_KDF, rng=counter_rng(), clock=when)
    with Vault.open(vault, PASSPHRASE, write=True, rng=counter_rng(1), clock=when) as v:
        v.add_bytes("a.txt", b"alpha\n")
        v.commit()
    stick = (Path("/media/stick/keys.locker"), "FAT file system on a removable drive")
    monkeypatch.setattr(bundle_import, "found_bundles", lambda cwd, home, vault: [stick])

    async def previewed(pilot: Pilot[Any]) -> None:
        await unlock(pilot)
        dialog = await open_dialog(pilot, "stick/keys.locker")
        await open_bundle(pilot)
        await opened(pilot, dialog)
        await pilot.pause()

    assert snap_compare(make_app(vault), run_before=previewed, terminal_size=(100, 36))


def test_import_is_in_the_palette_and_loads_only_when_asked_for(filled_vault: Path) -> None:
    import subprocess
    import sys

    async def go() -> None:
        app = make_app(filled_vault)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            assert "Import" in {c.title for c in app.get_system_commands(app.screen)}

    run(go)
    code = (
        "import sys, locker.tui.app, locker.tui.screens.main\n"
        "print(sorted(m for m in sys.modules if m.endswith('bundle_import')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
