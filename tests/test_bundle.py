"""export / import: protected bundles on a real FAT file system (mkfs.fat + fusefat), free
space, kill -9 mid-export, wrong passphrase, tampering, and crafted names."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    LOCKER,
    PASSPHRASE,
    SMALL_KDF,
    SMALL_KDF_FLAGS,
    SUBPROCESS_TIMEOUT,
    FatImage,
    RunLocker,
    locker_env,
    require,
    write_random_file,
)

from locker import bundle
from locker.bundle import exporting
from locker.errors import LockerError, UsageError
from locker.readable import ALPHABET, readable_secret
from locker.store import container as ct
from locker.store import keys
from locker.store.index import Entry, Index
from locker.vault import Vault, create

BUNDLE_PASSPHRASE = b"a different bundle passphrase"
FILES = {
    "tls/site.key": b"-----BEGIN PRIVATE KEY-----\n",
    "tls/site.crt": b"cert\n",
    "a.env": b"X=1\n",
}


@pytest.fixture
def bpw(tmp_path: Path) -> Path:
    path = tmp_path / "bundle-passphrase.txt"
    path.write_bytes(BUNDLE_PASSPHRASE + b"\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def source(vault_path: Path) -> Path:
    from locker.know.facts import recogniser

    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        v.recogniser = recogniser()  # as the CLI does: the facts travel with the bundle
        for name, data in FILES.items():
            v.add_bytes(name, data)
        v.commit()
    return vault_path


def ls_json(run_locker: RunLocker, vault: Path, pw: Path) -> list[dict[str, object]]:
    out = run_locker("ls", "--json", "--vault", vault, "--passphrase-file", pw)
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, object]] = json.loads(out.stdout)
    return rows


def log_json(run_locker: RunLocker, vault: Path, pw: Path) -> list[dict[str, object]]:
    out = run_locker("log", "--json", "--vault", vault, "--passphrase-file", pw)
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, object]] = json.loads(out.stdout)
    return rows


def import_into(
    run_locker: RunLocker, bundle: Path, vault: Path, pw: Path, bpw: Path, *args: str
) -> subprocess.CompletedProcess[bytes]:
    """`locker import BUNDLE --vault V --passphrase-file P --bundle-passphrase-file B ARGS`."""
    return run_locker(
        "import",
        bundle,
        "--vault",
        vault,
        "--passphrase-file",
        pw,
        "--bundle-passphrase-file",
        bpw,
        *args,
    )


def export(cli: RunLocker, target: Path, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return cli("export", target, *args, *SMALL_KDF_FLAGS)


def test_export_onto_fat_verify_then_import_into_another_vault(
    cli, run_locker, source, pwfile, bpw, fat_image, tmp_path
):
    fat = fat_image()
    target = fat.mount_point / "keys.locker"
    out = export(cli, target, "--bundle-passphrase-file", bpw)
    assert out.returncode == 0, out.stderr
    assert b"verified: 3 entries" in out.stdout  # read back through the FAT mount
    assert b"FAT file system" in out.stdout
    assert fat.listing() == ["keys.locker"]  # no temporary, no lock file left beside it

    # The stick as another machine reads it: unmounted (fusefat writes its tables and exits,
    # as before a user pulls the drive), checked by fsck.fat, and the bundle copied off the
    # image by another FAT implementation (mtools). Not read through fusefat again: a second
    # read of a file's last cluster through one descriptor (after the page cache dropped its
    # pages: memory reclaim under load, or any other open of the file) makes fusefat seek to
    # the wrong place and return short, wrong bytes (test_fusefat_rereads_a_last_cluster_wrong),
    # which failed this test once under load with "container is truncated inside the index".
    copied = read_off_the_stick(fat, "keys.locker", tmp_path / "elsewhere")

    bundle_rows = ls_json(run_locker, copied, bpw)
    assert [r["name"] for r in bundle_rows] == sorted(FILES)
    assert bundle_rows == ls_json(run_locker, source, pwfile)  # sizes and times kept
    checked = run_locker("verify", "--vault", copied, "--passphrase-file", bpw)
    assert checked.returncode == 0, checked.stderr

    other = tmp_path / "other.locker"
    create(other, PASSPHRASE, SMALL_KDF)
    done = import_into(run_locker, copied, other, pwfile, bpw)
    assert done.returncode == 0, done.stderr
    assert ls_json(run_locker, other, pwfile) == bundle_rows
    assert any(r["facts"] for r in bundle_rows)  # recognised again on import, and the same
    for name, data in FILES.items():
        cat = run_locker("cat", name, "--vault", other, "--passphrase-file", pwfile)
        assert cat.stdout == data

    bundle_id = json.loads(run_locker("info", "--json", "--vault", copied).stdout)["container_id"]
    exported = [e for e in log_json(run_locker, source, pwfile) if e["event"] == "export"]
    assert len(exported) == 1
    assert exported[0]["names"] == sorted(FILES)
    assert bundle_id in str(exported[0]["detail"]) and str(target) in str(exported[0]["detail"])
    imported = [e for e in log_json(run_locker, other, pwfile) if e["event"] == "import"]
    assert len(imported) == 1 and bundle_id in str(imported[0]["detail"])
    assert imported[0]["names"] == sorted(FILES)


def read_off_the_stick(fat: FatImage, name: str, directory: Path) -> Path:
    """Unmount `fat`, check its file system with fsck.fat and copy `name` off the image with
    mtools (another FAT implementation than the fusefat that wrote it) into `directory`."""
    mcopy = require("mcopy", "mcopy (Debian mtools) reads the FAT image without fusefat")
    fat.unmount()
    fat.reap()  # fusefat has written its FAT and exited
    fsck_fat = require("fsck.fat", "fsck.fat (Debian dosfstools) checks the FAT image")
    fsck = subprocess.run([fsck_fat, "-n", fat.image], capture_output=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr  # no lost clusters, sizes match
    directory.mkdir()
    copy = directory / name
    subprocess.run(
        [mcopy, "-n", "-i", fat.image, f"::{name}", copy],
        check=True,
        capture_output=True,
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    )
    return copy


def test_fusefat_rereads_a_last_cluster_wrong(fat_image: Callable[..., FatImage]) -> None:
    """Why the FAT tests read a bundle back off the image, not through fusefat again: after
    a descriptor has read to the end of a file, fusefat serves a second read of the file's
    last cluster from the wrong offset in it, short. A read of a file whose page cache was
    dropped meanwhile is such a read (here dropped on purpose: reclaim does it under load).
    If this fails, fusefat was fixed, and the FAT tests may read through it again."""
    fat = fat_image()
    path = fat.mount_point / "f.bin"
    data = bytes(i % 251 for i in range(10000))  # its last cluster (2 KiB) starts at 8192
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.pread(fd, 4096, 8192) == data[8192:]
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        again = os.pread(fd, 4096, 8192)
    finally:
        os.close(fd)
    assert len(again) < len(data) - 8192 and again != data[8192 : 8192 + len(again)]
    assert path.read_bytes() == data  # a new descriptor reads it right: the file is whole


def test_directory_names_select_everything_under_them(cli, run_locker, source, bpw, tmp_path):
    target = tmp_path / "tls.locker"
    assert export(cli, target, "tls", "--bundle-passphrase-file", bpw).returncode == 0
    assert [r["name"] for r in ls_json(run_locker, target, bpw)] == ["tls/site.crt", "tls/site.key"]
    missing = export(cli, tmp_path / "x.locker", "nope", "--bundle-passphrase-file", bpw)
    assert missing.returncode == 1 and b"no entry named 'nope'" in missing.stderr
    assert not (tmp_path / "x.locker").exists()


def test_too_small_fat_image_gives_the_free_space_error_and_leaves_nothing(
    cli, run_locker, vault_path, pwfile, bpw, fat_image, tmp_path
):
    fat = fat_image(size_mib=1)
    write_random_file(tmp_path / "big.bin", 3 * 1024 * 1024)
    assert cli("add", tmp_path / "big.bin").returncode == 0
    before = vault_path.read_bytes()
    out = export(cli, fat.mount_point / "big.locker", "--bundle-passphrase-file", bpw)
    assert out.returncode == 1
    assert re.search(
        rb"locker: error: not enough free space in .*: the bundle needs 3\.\d MiB", out.stderr
    ), out.stderr
    assert fat.listing() == []
    assert vault_path.read_bytes() == before  # no export event for an export that failed


def test_free_space_is_checked_before_anything_is_written(source, tmp_path):
    target = tmp_path / "out" / "b.locker"
    target.parent.mkdir()
    with Vault.open(source, PASSPHRASE, write=True) as v, pytest.raises(LockerError) as err:
        bundle.export(
            v, target, sorted(FILES), BUNDLE_PASSPHRASE, SMALL_KDF, free_space=lambda _: 1000
        )
    assert "not enough free space" in str(err.value) and "nothing was written" in str(err.value)
    assert os.listdir(target.parent) == []


def test_a_file_made_at_the_target_during_the_export_is_never_replaced(
    source, tmp_path, monkeypatch
):
    """A colleague's file appears at the bundle's name after every check has passed (here:
    the last check is told nothing is there): the export fails and the file is untouched."""
    target = tmp_path / "out" / "b.locker"
    target.parent.mkdir()
    verify, lexists = exporting._verify_from_drive, os.path.lexists
    verified = []

    def verify_then_race(path, *args):
        verify(path, *args)
        target.write_bytes(b"a colleague's bundle\n")
        verified.append(path)

    monkeypatch.setattr(exporting, "_verify_from_drive", verify_then_race)
    monkeypatch.setattr(
        os.path, "lexists", lambda p: False if verified and p == target else lexists(p)
    )
    with Vault.open(source, PASSPHRASE, write=True) as v, pytest.raises(LockerError) as err:
        bundle.export(v, target, sorted(FILES), BUNDLE_PASSPHRASE, SMALL_KDF)
    assert "appeared while exporting" in str(err.value)
    assert target.read_bytes() == b"a colleague's bundle\n"
    assert os.listdir(target.parent) == ["b.locker"]  # the temporary bundle is gone


def test_fat_refuses_names_it_cannot_hold_and_files_over_4_gib(source, fat_image):
    fat = fat_image()
    with pytest.raises(UsageError, match="FAT file names cannot contain ':'"):
        bundle.check_target(fat.mount_point / "a:b.locker", 1000, [])
    huge = Entry(bytes(16), "disk.img", 5 * 1024**3, 0, 0, bytes(16))
    size = bundle.bundle_size([huge])
    with pytest.raises(UsageError, match=r"entry 'disk.img' is over 4 GiB"):
        bundle.check_target(fat.mount_point / "b.locker", size, [huge])
    assert fat.listing() == []


@pytest.mark.parametrize("cleaner", ["export", "recover"])
def test_kill_9_during_export_leaves_no_bundle_and_the_temp_is_cleaned(
    cli, run_locker, vault_path, pwfile, bpw, big_file_dir, tmp_path, cleaner
):
    write_random_file(big_file_dir / "big.bin", 64 * 1024 * 1024)
    assert cli("add", big_file_dir / "big.bin").returncode == 0
    out_dir = tmp_path / "stick"
    out_dir.mkdir()
    target = out_dir / "big.locker"
    proc = subprocess.Popen(
        [
            *LOCKER,
            "export",
            str(target),
            "--vault",
            str(vault_path),
            "--passphrase-file",
            str(pwfile),
            "--bundle-passphrase-file",
            str(bpw),
            *SMALL_KDF_FLAGS,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=locker_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while not any(n.startswith(".locker-export-") for n in os.listdir(out_dir)):
            assert proc.poll() is None, "export finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not target.exists()
    assert any(n.startswith(".locker-export-") for n in os.listdir(out_dir))

    if cleaner == "recover":
        done = run_locker("recover")
        assert done.returncode == 0, done.stderr
        assert b"removed an interrupted export" in done.stdout
        assert os.listdir(out_dir) == []
    else:
        done = cli(
            "export",
            out_dir / "again.locker",
            "big.bin",
            "--bundle-passphrase-file",
            bpw,
            *SMALL_KDF_FLAGS,
        )
        assert done.returncode == 0, done.stderr
        assert os.listdir(out_dir) == ["again.locker"]


def test_wrong_bundle_passphrase_exits_3(cli, run_locker, source, pwfile, bpw, tmp_path):
    target = tmp_path / "b.locker"
    assert export(cli, target, "--bundle-passphrase-file", bpw).returncode == 0
    before = source.read_bytes()
    out = cli("import", target, "--bundle-passphrase-file", pwfile)
    assert out.returncode == 3
    assert out.stderr.startswith(b"locker: error: wrong passphrase")
    assert source.read_bytes() == before
    assert run_locker("ls", "--vault", target, "--passphrase-file", pwfile).returncode == 3


@pytest.mark.parametrize("where", ["header", "index", "data"])
def test_tampered_bundle_exits_4_and_imports_nothing(
    run_locker, source, pwfile, bpw, tmp_path, where
):
    target = tmp_path / "b.locker"
    with Vault.open(source, PASSPHRASE, write=True) as v:
        bundle.export(v, target, sorted(FILES), BUNDLE_PASSPHRASE, SMALL_KDF)
    sealed = ct.Sealed.read(target)
    assert sealed.version == 2 and len(sealed.records) == 1  # one generation: a compaction
    record = sealed.records[0][1]
    data_at = sealed.data_start  # the bundle's first entry: entries come before the index
    offset = {"header": 30, "index": record.index_offset + 5, "data": data_at + 3}[where]
    sealed.close()
    data = bytearray(target.read_bytes())
    data[offset] ^= 0x01
    target.write_bytes(bytes(data))
    other = tmp_path / "other.locker"
    create(other, PASSPHRASE, SMALL_KDF)
    before, listing = other.read_bytes(), sorted(os.listdir(tmp_path))
    out = import_into(run_locker, target, other, pwfile, bpw)
    assert out.returncode == 4, out.stderr
    assert out.stderr.startswith(b"locker: error: ")
    assert other.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing  # no temporary left beside the vault


def craft_bundle(
    path: Path,
    names: list[str],
    monkeypatch: pytest.MonkeyPatch,
    attrs: dict[str, str] | None = None,
) -> None:
    """A bundle made by an attacker: valid crypto, names our writer would never produce (so
    its checks of what it writes are switched off here)."""
    from locker.store.index import encode_index

    monkeypatch.setattr(ct, "encode_for_writing", lambda index, _: encode_index(index))
    monkeypatch.setattr(ct, "verify_written", lambda *_: None)
    rng = os.urandom
    container_id, master = rng(16), bytearray(rng(32))
    slot = keys.new_passphrase_slot(rng, SMALL_KDF)
    slot = keys.wrap_master(
        container_id, slot, keys.passphrase_kek(BUNDLE_PASSPHRASE, slot), master
    )
    from locker.store.sources import Plaintext

    planned = [
        ct.Planned(Entry(rng(16), name, 4, 0, 0, rng(16), attrs=attrs or {}), Plaintext(b"evil"))
        for name in names
    ]
    index = Index([p.entry for p in planned])
    ct.write_container(path, container_id, [slot], master, index, planned, rng)
    monkeypatch.undo()


NFC = unicodedata.normalize("NFC", "caf\u00e9.key")
NFD = unicodedata.normalize("NFD", "caf\u00e9.key")


@pytest.mark.parametrize(
    ("names", "code", "message"),
    [
        (["../escape.key"], 4, b"unsafe name"),
        (["/etc/passwd"], 4, b"unsafe name"),
        (["a\x00b"], 4, b"unsafe name"),
        (["dup.key", "dup.key"], 4, b"name order"),
        (["Site.key", "site.key"], 1, b"only in case or Unicode normalisation"),
        ([NFC, NFD], 1, b"only in case or Unicode normalisation"),
    ],
    ids=["dotdot", "absolute", "nul", "duplicate", "case", "normalisation"],
)
def test_crafted_bundle_names_are_refused_with_nothing_written(
    run_locker, source, pwfile, bpw, tmp_path, names, code, message, monkeypatch
):
    evil = tmp_path / "evil.locker"
    craft_bundle(evil, names, monkeypatch)
    before = source.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    out = import_into(run_locker, evil, source, pwfile, bpw, "--on-conflict", "overwrite")
    assert out.returncode == code, out.stderr
    assert message in out.stderr
    assert out.stderr.count(b"locker: error:") == 1
    assert source.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing
    assert not (tmp_path.parent / "escape.key").exists()


def test_a_bundle_name_colliding_by_case_with_the_vault_is_refused(
    run_locker, source, pwfile, bpw, tmp_path, monkeypatch
):
    evil = tmp_path / "evil.locker"
    craft_bundle(evil, ["A.ENV"], monkeypatch)
    before = source.read_bytes()
    out = import_into(run_locker, evil, source, pwfile, bpw)
    assert out.returncode == 1
    assert b"'A.ENV' differs from 'a.env' only in case" in out.stderr
    assert source.read_bytes() == before


def test_conflicts_stop_the_import_unless_a_policy_is_given(
    cli, run_locker, source, pwfile, bpw, tmp_path
):
    target = tmp_path / "b.locker"
    assert export(cli, target, "tls", "--bundle-passphrase-file", bpw).returncode == 0
    before = source.read_bytes()
    out = cli("import", target, "--bundle-passphrase-file", bpw)
    assert out.returncode == 1
    assert b"tls/site.crt, tls/site.key; nothing was imported" in out.stderr
    assert b"--on-conflict" in out.stderr
    assert source.read_bytes() == before

    out = cli("import", target, "--bundle-passphrase-file", bpw, "--on-conflict", "skip")
    assert out.returncode == 0 and b"skipped tls/site.key" in out.stdout
    out = cli("import", target, "--bundle-passphrase-file", bpw, "--on-conflict", "rename")
    assert b"imported tls/site.key as tls/site.key.imported" in out.stdout
    out = cli(
        "import",
        target,
        "tls/site.key",
        "--bundle-passphrase-file",
        bpw,
        "--on-conflict",
        "overwrite",
    )
    assert out.returncode == 0 and b"replaced tls/site.key" in out.stdout
    names = [r["name"] for r in ls_json(run_locker, source, pwfile)]
    assert names == [
        "a.env",
        "tls/site.crt",
        "tls/site.crt.imported",
        "tls/site.key",
        "tls/site.key.imported",
    ]


def test_generated_passphrase_is_shown_once_and_opens_the_bundle(cli, run_locker, source, tmp_path):
    target = tmp_path / "b.locker"
    out = export(cli, target, "--generate-passphrase")
    assert out.returncode == 0, out.stderr
    found = re.findall(rb"^    ([0-9A-Z]{4}(?:-[0-9A-Z]{4})+)$", out.stdout, re.M)
    assert len(found) == 1
    secret = found[0]
    assert len(secret.replace(b"-", b"")) * 5 >= 128
    assert not set(secret.decode()) - set(ALPHABET + "-")
    for path in tmp_path.rglob("*"):  # written nowhere
        if path.is_file():
            assert secret not in path.read_bytes()
    ok = run_locker("ls", "--vault", target, "--passphrase-file", "-", input=secret + b"\n")
    assert ok.returncode == 0 and b"tls/site.key" in ok.stdout


def test_readable_secret_has_no_look_alikes_and_enough_bits():
    assert not set("01IO") & set(ALPHABET) and len(set(ALPHABET)) == 32
    fixed = readable_secret(128, rng=lambda n: bytes(range(n)))
    assert fixed == readable_secret(128, rng=lambda n: bytes(range(n)))
    groups = fixed.split("-")
    assert len(groups) == 7 and all(len(g) == 4 for g in groups)
    assert len({readable_secret() for _ in range(50)}) == 50


@pytest.mark.parametrize("with_passphrase", [False, True], ids=["recipients-only", "both"])
def test_recipient_bundles_open_with_the_identity_and_import(
    cli, run_locker, source, pwfile, bpw, tmp_path, with_passphrase
):
    from locker.slots import recipient

    identity = recipient.new_identity()
    idfile = tmp_path / "id.txt"
    idfile.write_text(recipient.identity_file(identity, "2026-11-30T00:00:00Z"))
    idfile.chmod(0o600)
    public = recipient.format_recipient(recipient.public_key(identity))
    target = tmp_path / "r.locker"
    extra = ("--bundle-passphrase-file", bpw) if with_passphrase else ()
    out = export(cli, target, "tls", "--recipient", public, *extra)
    assert out.returncode == 0, out.stderr
    assert b"verified: 2 entries" in out.stdout
    kinds = [
        s["kind"]
        for s in json.loads(run_locker("info", "--json", "--vault", target).stdout)["slots"]
    ]
    assert sorted(kinds) == sorted(["x25519", *(["passphrase"] if with_passphrase else [])])
    listed = run_locker("ls", "--vault", target, "--identity", idfile)
    assert listed.returncode == 0 and listed.stdout.split() == [b"tls/site.crt", b"tls/site.key"]
    other = tmp_path / "other.locker"
    create(other, PASSPHRASE, SMALL_KDF)
    done = run_locker(
        "import",
        target,
        "--vault",
        other,
        "--passphrase-file",
        pwfile,
        "--bundle-identity",
        idfile,
    )
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in ls_json(run_locker, other, pwfile)] == [
        "tls/site.crt",
        "tls/site.key",
    ]
    wrong = recipient.format_identity(recipient.new_identity())
    (tmp_path / "wrong.txt").write_text(wrong + "\n")
    refused = run_locker("ls", "--vault", target, "--identity", tmp_path / "wrong.txt")
    assert refused.returncode == 3


def test_facts_a_bundle_claims_are_recognised_again_on_import(
    run_locker, source, pwfile, bpw, tmp_path, monkeypatch
):
    """A crafted bundle cannot make inspect report a certificate it does not hold."""
    claim = json.dumps({"type": "certificate", "subject": "CN=forged", "not_after": "2020-01-01"})
    evil = tmp_path / "evil.locker"
    craft_bundle(evil, ["forged.crt"], monkeypatch, attrs={"facts": claim})
    out = import_into(run_locker, evil, source, pwfile, bpw)
    assert out.returncode == 0, out.stderr
    [entry] = [e for e in ls_json(run_locker, source, pwfile) if e["name"] == "forged.crt"]
    assert "forged" not in json.dumps(entry.get("facts"))
