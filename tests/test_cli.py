"""The real `locker` command in subprocesses, on real files: every command of the CLI contract."""

from __future__ import annotations

import getpass
import json
import os
import pty
import random
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from conftest import (
    LOCKER,
    OTHER_PASSPHRASE,
    PASSPHRASE,
    SMALL_KDF_FLAGS,
    RunLocker,
    locker_env,
    require,
)

from locker.store.crypto import CHUNK_SIZE
from locker.vault import Vault
from locker.vault_info import info

LS_KEYS = {"name", "size", "kind", "created", "modified", "facts"}
LOG_KEYS = {"time", "event", "names", "user", "host", "detail"}
INFO_KEYS = {
    "path",
    "format_version",
    "container_id",
    "file_size",
    "header_size",
    "index_size",
    "index_offset",
    "generation",
    "data_size",
    "slot_count",
    "slots",
}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def ok(proc: subprocess.CompletedProcess[bytes]) -> subprocess.CompletedProcess[bytes]:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"Traceback" not in proc.stderr
    return proc


def error_lines(proc: subprocess.CompletedProcess[bytes]) -> list[str]:
    return proc.stderr.decode().splitlines()


def assert_one_error(proc: subprocess.CompletedProcess[bytes], code: int, pattern: str = "") -> str:
    """Exit `code`, exactly one `locker: error:` line, only hint/warning lines besides it."""
    assert proc.returncode == code, proc.stderr
    lines = error_lines(proc)
    errors = [line for line in lines if line.startswith("locker: error: ")]
    assert len(errors) == 1, lines
    others = [line for line in lines if line not in errors]
    assert all(line.startswith(("locker: hint: ", "locker: warning: ")) for line in others), lines
    assert "Traceback" not in proc.stderr.decode()
    if pattern:
        assert re.search(pattern, errors[0]), errors[0]
    return errors[0]


def data_section(path: Path, passphrase: bytes = PASSPHRASE) -> bytes:
    """The ciphertext of every entry in force, in name order (version 2 offsets are absolute)."""
    raw = path.read_bytes()
    with Vault.open(path, passphrase) as v:
        return b"".join(raw[e.offset : e.offset + e.length] for e in v.entries())


def entries(path: Path, passphrase: bytes = PASSPHRASE) -> dict[str, bytes]:
    with Vault.open(path, passphrase) as v:
        return {e.name: v.read_bytes(e.name) for e in v.entries()}


def put(vault: Path, root: Path, *names: str) -> None:
    """Set-up through the library (faster than a subprocess): add files of `root` by relative
    name, the way `locker add` names them (directories recursively, symlinks skipped)."""
    with Vault.open(vault, PASSPHRASE, write=True) as v:
        for name in names:
            path = root / name
            files = [path] if path.is_file() else sorted(path.rglob("*"))
            for f in files:
                if f.is_file() and not f.is_symlink():
                    v.add_file(f.relative_to(root).as_posix(), f)
        v.commit()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A small tree to add: files, a subdirectory, an empty file and symlinks."""
    root = tmp_path / "src"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.env").write_bytes(b"TOKEN=abc\n")
    (root / "sub" / "b.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    (root / "sub" / "deeper" / "c.key").write_bytes(random.Random(1).randbytes(CHUNK_SIZE + 3))
    (root / "empty").write_bytes(b"")
    (root / "link").symlink_to(root / "a.env")
    (root / "sub" / "dangling").symlink_to(tmp_path / "nowhere")
    return root


# -- init -----------------------------------------------------------------------------------------


def test_init_with_small_kdf_warns_and_writes_0600(
    run_locker: RunLocker, tmp_path: Path, pwfile: Path
) -> None:
    path = tmp_path / "new" / "v.locker"
    proc = ok(run_locker("init", "--vault", path, "--passphrase-file", pwfile, *SMALL_KDF_FLAGS))
    assert b"locker: warning: " in proc.stderr and b"OWASP" in proc.stderr
    assert b"created" in proc.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kdf = info(path)["slots"][0]["kdf"]
    assert (kdf["memory_mib"], kdf["time_cost"], kdf["parallelism"]) == (8, 1, 1)
    assert entries(path) == {}


def test_init_at_owasp_minimum_does_not_warn(
    run_locker: RunLocker, tmp_path: Path, pwfile: Path
) -> None:
    path = tmp_path / "v.locker"
    flags = ("--kdf-memory", "19", "--kdf-time", "2", "--kdf-parallelism", "1")
    proc = ok(run_locker("--vault", path, "--passphrase-file", pwfile, "init", *flags))
    assert b"warning" not in proc.stderr


@pytest.mark.slow
def test_init_default_kdf_is_256_mib_t3_p4(
    run_locker: RunLocker, tmp_path: Path, pwfile: Path
) -> None:
    path = tmp_path / "v.locker"
    start = time.monotonic()
    proc = ok(run_locker("init", "--vault", path, "--passphrase-file", pwfile))
    elapsed = time.monotonic() - start
    assert proc.stderr == b""  # the default is not weak
    facts = json.loads(ok(run_locker("info", "--json", "--vault", path)).stdout)
    assert facts["slots"][0]["kdf"] == {
        "algorithm": "argon2id",
        "memory_mib": 256,
        "time_cost": 3,
        "parallelism": 4,
    }
    print(f"init with the default KDF took {elapsed:.2f} s")


def test_init_refuses_to_overwrite(cli: RunLocker, vault_path: Path) -> None:
    before = vault_path.read_bytes()
    proc = cli("init", *SMALL_KDF_FLAGS)
    assert_one_error(proc, 1, "already exists")
    assert vault_path.read_bytes() == before


@pytest.mark.parametrize(
    "flags",
    [
        ("--kdf-memory", "0"),
        ("--kdf-time", "-1"),
        ("--kdf-parallelism", "0"),
        ("--kdf-memory", "lots"),
        ("--kdf-memory", "999999"),  # over the hard cap: refused as a usage error
        ("--kdf-time", "17"),
    ],
)
def test_init_bad_kdf_flags_are_usage_errors(
    run_locker: RunLocker, tmp_path: Path, pwfile: Path, flags: tuple[str, ...]
) -> None:
    path = tmp_path / "v.locker"
    proc = run_locker("init", "--vault", path, "--passphrase-file", pwfile, *flags)
    assert_one_error(proc, 2)
    assert not path.exists()


# -- add ------------------------------------------------------------------------------------------


def test_add_file_directory_as_and_symlinks(cli: RunLocker, vault_path: Path, src: Path) -> None:
    proc = ok(cli("add", src / "a.env"))
    assert proc.stdout == b"added a.env\n"
    proc = ok(cli("add", src / "sub"))
    assert b"skipping" in proc.stderr and b"dangling" in proc.stderr
    ok(cli("add", src / "empty", "--as", "cfg/empty.txt"))
    ok(cli("add", src / "sub", "--as", "copy/"))
    # A link to a file is read through and keeps its own name (certbot's live/ is all links).
    proc = ok(cli("add", src / "link", src / "empty"))
    assert proc.stdout == b"added link\nadded empty\n"
    (src / "linked-dir").symlink_to(src / "sub", target_is_directory=True)
    (src / "sub" / "loop").symlink_to(src / "sub", target_is_directory=True)
    proc = ok(cli("add", src / "linked-dir", "--force"))  # a named link to a directory is followed
    assert b"skipping symbolic link to a directory" in proc.stderr and b"loop" in proc.stderr
    assert_one_error(cli("add", src / "sub" / "dangling"), 1, "no such file or directory")
    got = entries(vault_path)
    c_key = (src / "sub" / "deeper" / "c.key").read_bytes()
    assert got == {
        "a.env": b"TOKEN=abc\n",
        "sub/b.pem": b"-----BEGIN CERTIFICATE-----\n",
        "sub/deeper/c.key": c_key,
        "cfg/empty.txt": b"",
        "empty": b"",
        "copy/b.pem": b"-----BEGIN CERTIFICATE-----\n",
        "copy/deeper/c.key": c_key,
        "link": b"TOKEN=abc\n",
        "linked-dir/b.pem": b"-----BEGIN CERTIFICATE-----\n",
        "linked-dir/deeper/c.key": c_key,
    }
    assert stat.S_IMODE(vault_path.stat().st_mode) == 0o600


def test_add_several_paths_in_one_commit(cli: RunLocker, vault_path: Path, src: Path) -> None:
    ok(cli("add", src / "a.env", src / "empty", src / "sub"))
    assert sorted(entries(vault_path)) == ["a.env", "empty", "sub/b.pem", "sub/deeper/c.key"]
    with Vault.open(vault_path, PASSPHRASE) as v:
        assert [e.event for e in v.log()] == ["init", "add"]


def test_add_force(cli: RunLocker, vault_path: Path, src: Path) -> None:
    ok(cli("add", src / "a.env"))
    (src / "a.env").write_bytes(b"TOKEN=new\n")
    before = vault_path.read_bytes()
    assert_one_error(cli("add", src / "a.env"), 1, "already exists")
    assert vault_path.read_bytes() == before
    ok(cli("add", src / "a.env", "--force"))
    assert entries(vault_path) == {"a.env": b"TOKEN=new\n"}


def test_add_as_takes_one_path_and_missing_paths_fail(
    cli: RunLocker, vault_path: Path, src: Path
) -> None:
    assert_one_error(cli("add", src / "a.env", src / "empty", "--as", "x"), 2)
    assert_one_error(cli("add", src / "missing"), 1, "no such file")
    assert entries(vault_path) == {}


# -- names ----------------------------------------------------------------------------------------

BAD_NAMES = ["/etc/passwd", "../escape", "a/../../b", "a\\b", "a//b", "a/", "x/./y"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_refused_by_add_as_and_mv(
    cli: RunLocker, vault_path: Path, src: Path, bad: str
) -> None:
    put(vault_path, src, "a.env")
    before = vault_path.read_bytes()
    assert_one_error(cli("add", src / "empty", "--as", bad), 2, "entry name")
    assert_one_error(cli("mv", "a.env", bad), 2, "entry name")
    assert vault_path.read_bytes() == before
    assert not list(vault_path.parent.glob(f".{vault_path.name}.tmp-*"))
    # (A NUL cannot be passed in argv; the library test refuses it: test_vault.py.)


def test_file_names_with_backslash_are_refused(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    weird = tmp_path / "we\\ird"
    weird.write_bytes(b"x")
    before = vault_path.read_bytes()
    assert_one_error(cli("add", weird), 2, "backslash")
    assert vault_path.read_bytes() == before


def test_unicode_names(cli: RunLocker, vault_path: Path, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"1")
    ok(cli("add", f, "--as", "日本/clé 🔑.pem"))
    assert ok(cli("ls")).stdout.decode() == "日本/clé 🔑.pem\n"
    assert ok(cli("cat", "日本/clé 🔑.pem")).stdout == b"1"


# -- ls / cat / get -------------------------------------------------------------------------------


def test_ls_plain_long_and_json(cli: RunLocker, vault_path: Path, src: Path) -> None:
    assert ok(cli("ls")).stdout == b""
    assert json.loads(ok(cli("ls", "--json")).stdout) == []
    put(vault_path, src, "a.env", "sub", "empty")
    names = ["a.env", "empty", "sub/b.pem", "sub/deeper/c.key"]
    assert ok(cli("ls")).stdout.decode().splitlines() == names
    rows = json.loads(ok(cli("ls", "--json")).stdout)
    assert [r["name"] for r in rows] == names
    assert all(set(r) == LS_KEYS for r in rows)
    assert [r["size"] for r in rows] == [10, 0, 28, CHUNK_SIZE + 3]
    assert all(r["kind"] == "file" and ISO.match(r["created"]) for r in rows)
    assert all(ISO.match(r["modified"]) for r in rows)
    long = ok(cli("ls", "-l")).stdout.decode().splitlines()
    assert len(long) == 4
    for line, row in zip(long, rows, strict=True):
        size, modified, name = line.split(maxsplit=2)
        assert (int(size), modified, name) == (row["size"], row["modified"], row["name"])


def test_cat(cli: RunLocker, vault_path: Path, src: Path) -> None:
    put(vault_path, src, "sub", "empty")
    big = (src / "sub" / "deeper" / "c.key").read_bytes()
    assert ok(cli("cat", "sub/deeper/c.key")).stdout == big
    assert ok(cli("cat", "empty")).stdout == b""
    assert_one_error(cli("cat", "nope"), 1, "no entry named")
    assert_one_error(cli("cat", "sub"), 2, "is a directory of 2 entries")  # as rm says


def test_cat_into_head_has_no_traceback(
    cli: RunLocker, vault_path: Path, tmp_path: Path, pwfile: Path
) -> None:
    big = tmp_path / "big"
    big.write_bytes(random.Random(3).randbytes(4 * 1024 * 1024))
    put(vault_path, tmp_path, "big")
    cat = subprocess.Popen(
        [*LOCKER, "--vault", vault_path, "--passphrase-file", pwfile, "cat", "big"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=locker_env(tmp_path),
    )
    assert cat.stdout is not None
    head = subprocess.run(["head", "-c1"], stdin=cat.stdout, capture_output=True, check=True)
    cat.stdout.close()
    _, stderr = cat.communicate(timeout=60)
    assert head.stdout == big.read_bytes()[:1]
    assert b"Traceback" not in stderr and b"Exception ignored" not in stderr, stderr
    assert stderr == b""
    assert cat.returncode == 0


def test_get_writes_0600_and_expands_directories(
    cli: RunLocker, vault_path: Path, src: Path, tmp_path: Path
) -> None:
    put(vault_path, src, "sub", "a.env", "empty")
    out = tmp_path / "out"
    out.mkdir()
    proc = ok(cli("get", "sub", "a.env", "empty", "--to", out))
    assert proc.stdout.decode().count("wrote ") == 4
    expected = {
        "sub/b.pem": (src / "sub" / "b.pem").read_bytes(),
        "sub/deeper/c.key": (src / "sub" / "deeper" / "c.key").read_bytes(),
        "a.env": b"TOKEN=abc\n",
        "empty": b"",
    }
    for name, content in expected.items():
        assert (out / name).read_bytes() == content
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "sub" / "deeper").stat().st_mode) == 0o700
    assert not [p for p in out.rglob(".*")]  # no temp files left
    # "sub/" with a trailing slash names the same directory.
    out2 = tmp_path / "out2"
    out2.mkdir()
    ok(cli("get", "sub/", "--to", out2))
    assert sorted(str(p.relative_to(out2)) for p in out2.rglob("*") if p.is_file()) == [
        "sub/b.pem",
        "sub/deeper/c.key",
    ]


def test_get_defaults_to_the_current_directory(
    run_locker: RunLocker, vault_path: Path, pwfile: Path, src: Path, tmp_path: Path
) -> None:
    common = ("--vault", vault_path, "--passphrase-file", pwfile)
    put(vault_path, src, "a.env")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    ok(run_locker("get", "a.env", *common, cwd=cwd))
    assert (cwd / "a.env").read_bytes() == b"TOKEN=abc\n"


def test_get_does_not_overwrite_without_force(
    cli: RunLocker, vault_path: Path, src: Path, tmp_path: Path
) -> None:
    put(vault_path, src, "a.env")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.env").write_bytes(b"mine")
    assert_one_error(cli("get", "a.env", "--to", out), 1, "already exists")
    assert (out / "a.env").read_bytes() == b"mine"
    ok(cli("get", "a.env", "--to", out, "--force"))
    assert (out / "a.env").read_bytes() == b"TOKEN=abc\n"
    assert stat.S_IMODE((out / "a.env").stat().st_mode) == 0o600


def test_get_never_writes_through_symlinks(
    cli: RunLocker, vault_path: Path, src: Path, tmp_path: Path
) -> None:
    put(vault_path, src, "sub", "a.env")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    assert_one_error(cli("get", "sub/b.pem", "--to", out), 1, "not a plain directory")
    assert_one_error(cli("get", "sub", "--to", out), 1, "not a plain directory")
    assert list(elsewhere.iterdir()) == []
    # A symlink in place of the file itself: refused, and with --force replaced, not followed.
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch")
    (out / "a.env").symlink_to(victim)
    assert_one_error(cli("get", "a.env", "--to", out), 1, "already exists")
    ok(cli("get", "a.env", "--to", out, "--force"))
    assert victim.read_bytes() == b"do not touch"
    assert not (out / "a.env").is_symlink()
    assert (out / "a.env").read_bytes() == b"TOKEN=abc\n"
    # The --to directory itself may be a symlink the user chose.
    chosen = tmp_path / "chosen"
    chosen.symlink_to(elsewhere, target_is_directory=True)
    ok(cli("get", "sub/b.pem", "--to", chosen))
    assert (elsewhere / "sub" / "b.pem").read_bytes() == (src / "sub" / "b.pem").read_bytes()


def test_get_errors(cli: RunLocker, vault_path: Path, src: Path, tmp_path: Path) -> None:
    put(vault_path, src, "a.env")
    assert_one_error(cli("get", "nope", "--to", tmp_path), 1, "no entry named")
    (tmp_path / "file").write_bytes(b"")
    assert_one_error(cli("get", "a.env", "--to", tmp_path / "file"), 2, "not a directory")
    assert_one_error(cli("get", "a.env", "--to", tmp_path / "no" / "dir"), 2, "cannot create")
    assert not (tmp_path / "no").exists()
    ok(cli("get", "a.env", "--to", tmp_path / "made"))  # a missing directory is made, 0700
    assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o700
    assert (tmp_path / "made" / "a.env").read_bytes() == b"TOKEN=abc\n"


def test_rm_r_and_mv_of_directories(cli: RunLocker, vault_path: Path, src: Path) -> None:
    put(vault_path, src, "sub", "a.env")
    assert_one_error(cli("rm", "sub"), 2, "is a directory of 2 entries")
    proc = ok(cli("mv", "sub", "moved"))
    assert (
        proc.stdout
        == b"renamed sub/b.pem -> moved/b.pem\nrenamed sub/deeper/c.key -> moved/deeper/c.key\n"
    )
    assert_one_error(cli("mv", "a.env", "moved/b.pem"), 1, "already exists")
    ok(cli("mv", "a.env", "moved/b.pem", "--force"))
    assert entries(vault_path)["moved/b.pem"] == b"TOKEN=abc\n"
    assert ok(cli("rm", "-r", "moved/")).stdout.count(b"removed") == 2
    assert entries(vault_path) == {}


# -- rm / mv --------------------------------------------------------------------------------------


def test_rm_and_mv(cli: RunLocker, vault_path: Path, src: Path) -> None:
    put(vault_path, src, "sub", "a.env")
    c_key = (src / "sub" / "deeper" / "c.key").read_bytes()
    assert ok(cli("rm", "sub/b.pem", "a.env")).stdout == b"removed sub/b.pem\nremoved a.env\n"
    assert entries(vault_path) == {"sub/deeper/c.key": c_key}
    before = vault_path.read_bytes()
    assert_one_error(cli("rm", "sub/deeper/c.key", "nope"), 1, "no entry named 'nope'")
    assert vault_path.read_bytes() == before  # all or nothing
    assert ok(cli("mv", "sub/deeper/c.key", "keys/c.key")).stdout.startswith(b"renamed")
    assert entries(vault_path) == {"keys/c.key": c_key}
    assert_one_error(cli("mv", "nope", "x"), 1, "no entry named")
    put(vault_path, src, "a.env")
    assert_one_error(cli("mv", "a.env", "keys/c.key"), 1, "already exists")
    assert_one_error(cli("mv", "a.env", "keys/c.key/x"), 2, "directory")
    assert entries(vault_path) == {"keys/c.key": c_key, "a.env": b"TOKEN=abc\n"}


# -- passwd / rekey / verify ---------------------------------------------------------------------


def test_passwd_rewraps_only_the_slot(
    cli: RunLocker, run_locker: RunLocker, vault_path: Path, src: Path, tmp_path: Path
) -> None:
    put(vault_path, src, "sub", "a.env")
    content = entries(vault_path)
    before = info(vault_path)
    data_before = data_section(vault_path)
    new = tmp_path / "new-pass"
    new.write_bytes(OTHER_PASSPHRASE + b"\n")
    proc = ok(cli("passwd", "--new-passphrase-file", new))
    assert b"no entry was re-encrypted" in proc.stdout
    after = info(vault_path)
    assert data_section(vault_path, OTHER_PASSPHRASE) == data_before
    assert after["header_size"] == before["header_size"]
    assert after["container_id"] == before["container_id"]
    assert after["slots"][0]["kdf"] == before["slots"][0]["kdf"]  # the cost is kept
    # A slot change is a compaction: the entries' ciphertext, the index, and no garbage (the
    # old slot and the older indexes left the file).
    assert after["data_size"] == len(data_before)
    assert after["generation"] == before["generation"] + 1
    # The index grew by the audit-log event.
    assert 0 < after["index_size"] - before["index_size"] < 200
    assert_one_error(cli("ls"), 3, "wrong passphrase")
    assert ok(run_locker("ls", "--vault", vault_path, "--passphrase-file", new)).stdout
    assert entries(vault_path, OTHER_PASSPHRASE) == content


def test_passwd_can_change_the_kdf(cli: RunLocker, vault_path: Path, tmp_path: Path) -> None:
    new = tmp_path / "new-pass"
    new.write_bytes(OTHER_PASSPHRASE)  # no trailing newline: the whole file
    proc = ok(cli("passwd", "--new-passphrase-file", new, "--kdf-memory", "9", "--kdf-time", "2"))
    assert b"OWASP" in proc.stderr
    kdf = info(vault_path)["slots"][0]["kdf"]
    assert (kdf["memory_mib"], kdf["time_cost"], kdf["parallelism"]) == (9, 2, 1)
    assert entries(vault_path, OTHER_PASSPHRASE) == {}


def test_passwd_both_from_stdin_is_a_usage_error(run_locker: RunLocker, vault_path: Path) -> None:
    before = vault_path.read_bytes()
    proc = run_locker(
        "passwd",
        *("--vault", vault_path, "--passphrase-file", "-", "--new-passphrase-file", "-"),
        input=PASSPHRASE + b"\nnew\n",
    )
    assert_one_error(proc, 2)
    assert vault_path.read_bytes() == before


def test_rekey_reencrypts(cli: RunLocker, vault_path: Path, src: Path) -> None:
    put(vault_path, src, "sub", "a.env", "empty")
    content = entries(vault_path)
    before = info(vault_path)
    data_before = data_section(vault_path)
    proc = ok(cli("rekey"))
    assert b"4 entries re-encrypted" in proc.stdout
    after = info(vault_path)
    data_after = data_section(vault_path)
    assert len(data_after) == len(data_before)
    assert data_after != data_before
    # Every 16-byte block differs: nothing was copied.
    assert all(
        data_after[i : i + 16] != data_before[i : i + 16] for i in range(0, len(data_after), 16)
    )
    assert after["slots"][0]["id"] == before["slots"][0]["id"]
    assert entries(vault_path) == content
    ok(cli("verify"))


def test_verify_ok_and_failing(cli: RunLocker, vault_path: Path, src: Path) -> None:
    put(vault_path, src, "sub", "a.env", "empty")
    proc = ok(cli("verify"))
    assert proc.stdout == b"ok: header, index and 4 entries verified\n"
    with Vault.open(vault_path, PASSPHRASE) as v:
        spans = {e.name: (e.offset, e.length) for e in v.entries()}
    raw = bytearray(vault_path.read_bytes())
    for name in ("a.env", "sub/deeper/c.key"):
        offset, length = spans[name]  # version 2: absolute
        raw[offset + length - 1] ^= 0x01  # the last tag byte
    vault_path.write_bytes(bytes(raw))
    proc = cli("verify")
    assert proc.returncode == 4
    assert proc.stdout == b""
    lines = error_lines(proc)
    assert len(lines) == 3 and all(line.startswith("locker: error: ") for line in lines)
    assert "'a.env'" in lines[0] and "'sub/deeper/c.key'" in lines[1]
    assert lines[2] == "locker: error: 2 of 4 entries failed verification"
    assert "Traceback" not in proc.stderr.decode()


# -- info / log -----------------------------------------------------------------------------------


def test_info_without_passphrase(run_locker: RunLocker, vault_path: Path) -> None:
    facts = json.loads(ok(run_locker("info", "--json", "--vault", vault_path)).stdout)
    assert set(facts) == INFO_KEYS
    assert facts["format_version"] == 2
    assert facts["slot_count"] == 1
    assert facts["file_size"] == vault_path.stat().st_size
    assert set(facts["slots"][0]) == {"kind", "id", "kdf"}
    assert facts["slots"][0]["kind"] == "passphrase"
    assert set(facts["slots"][0]["kdf"]) == {"algorithm", "memory_mib", "time_cost", "parallelism"}
    text = ok(run_locker("--vault", vault_path, "info")).stdout.decode()
    assert "locker v2" in text and "argon2id 8 MiB, t=1, p=1" in text
    assert_one_error(run_locker("info", "--vault", vault_path.parent / "missing"), 1, "no vault")


def test_log_records_every_command(
    cli: RunLocker, vault_path: Path, src: Path, tmp_path: Path
) -> None:
    new = tmp_path / "new-pass"
    new.write_bytes(PASSPHRASE + b"\n")
    ok(cli("add", src / "a.env", src / "empty"))
    ok(cli("rm", "empty"))
    ok(cli("mv", "a.env", "b.env"))
    ok(cli("passwd", "--new-passphrase-file", new))
    ok(cli("rekey"))
    rows = json.loads(ok(cli("log", "--json")).stdout)
    assert all(set(r) == LOG_KEYS for r in rows)
    assert [(r["event"], r["names"]) for r in rows] == [
        ("init", []),
        ("add", ["a.env", "empty"]),
        ("rm", ["empty"]),
        ("mv", ["a.env", "b.env"]),
        ("passwd", []),
        ("rekey", []),
    ]
    assert rows[-1]["detail"] == "1 entries re-encrypted"
    assert {r["user"] for r in rows} == {getpass.getuser()}
    assert {r["host"] for r in rows} == {socket.gethostname()}
    assert all(ISO.match(r["time"]) for r in rows)
    text = ok(cli("log")).stdout.decode().splitlines()
    assert len(text) == 6 and "mv" in text[3] and f"@{socket.gethostname()}" in text[3]


# -- global options -------------------------------------------------------------------------------


def test_common_options_before_and_after_the_command(
    run_locker: RunLocker, vault_path: Path, pwfile: Path, src: Path
) -> None:
    put(vault_path, src, "a.env")
    v, p = ("--vault", vault_path), ("--passphrase-file", pwfile)
    outputs = {
        ok(run_locker(*v, *p, "ls")).stdout,
        ok(run_locker("ls", *v, *p)).stdout,
        ok(run_locker(*v, "ls", *p)).stdout,
        ok(run_locker(*p, "ls", *v)).stdout,
    }
    assert outputs == {b"a.env\n"}


def test_locker_vault_environment_variable(
    run_locker: RunLocker, vault_path: Path, pwfile: Path, tmp_path: Path
) -> None:
    env = {"LOCKER_VAULT": str(vault_path)}
    assert ok(run_locker("ls", "--passphrase-file", pwfile, env=env)).stdout == b""
    facts = json.loads(ok(run_locker("info", "--json", env=env)).stdout)
    assert facts["path"] == str(vault_path)
    # --vault wins over the environment.
    other = tmp_path / "missing.locker"
    assert_one_error(run_locker("ls", "--vault", other, "--passphrase-file", pwfile, env=env), 1)


def test_default_vault_in_the_user_data_dir(
    run_locker: RunLocker, pwfile: Path, tmp_path: Path
) -> None:
    xdg = tmp_path / "xdg"
    env = {"XDG_DATA_HOME": str(xdg)}
    proc = run_locker("ls", "--passphrase-file", pwfile, env=env)
    line = assert_one_error(proc, 1, "no vault at")
    assert str(xdg / "locker" / "default.locker") in line
    assert b"locker: hint: " in proc.stderr and b"locker init" in proc.stderr
    ok(run_locker("init", "--passphrase-file", pwfile, *SMALL_KDF_FLAGS, env=env))
    assert (xdg / "locker" / "default.locker").is_file()
    assert ok(run_locker("ls", "--passphrase-file", pwfile, env=env)).stdout == b""


def test_a_damaged_key_slot_reads_as_a_wrong_passphrase_and_the_hint_says_so(
    cli: RunLocker, vault_path: Path
) -> None:
    data = bytearray(vault_path.read_bytes())
    data[29 + 12 + 41 + 5] ^= 1  # a byte of the passphrase slot's wrapped master key
    vault_path.write_bytes(bytes(data))
    proc = cli("ls")
    assert_one_error(proc, 3, "wrong passphrase")
    assert "damaged key slot" in proc.stderr.decode()


def test_passphrase_from_stdin(run_locker: RunLocker, vault_path: Path) -> None:
    """`--passphrase-file -`: the first line of stdin, its line ending (LF or CRLF) stripped."""
    for given in (PASSPHRASE, PASSPHRASE + b"\n", PASSPHRASE + b"\r\nsecond line\n"):
        proc = run_locker("ls", "--vault", vault_path, "--passphrase-file", "-", input=given)
        assert ok(proc).stdout == b""
    proc = run_locker("ls", "--vault", vault_path, "--passphrase-file", "-", input=b"wrong\n")
    assert_one_error(proc, 3, "wrong passphrase")
    proc = run_locker("ls", "--vault", vault_path, "--passphrase-file", "-", input=b"")
    assert_one_error(proc, 2, "empty")


def test_no_passphrase_and_no_terminal_is_a_usage_error(tmp_path: Path, vault_path: Path) -> None:
    proc = subprocess.run(  # a new session: no controlling terminal, even under a developer's
        [*LOCKER, "ls", "--vault", str(vault_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=locker_env(tmp_path),
        start_new_session=True,
        timeout=60,
        check=False,
    )
    assert_one_error(proc, 2, "no terminal")
    assert b"--passphrase-file" in proc.stderr


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("frobnicate",),
        ("add",),
        ("mv", "only-one"),
        ("ls", "--bogus"),
        ("init", "--kdf-memory", "lots"),
        ("get",),
        ("--passphrase-file", "/nonexistent/pass", "ls"),
    ],
)
def test_usage_errors(run_locker: RunLocker, vault_path: Path, args: tuple[str, ...]) -> None:
    proc = run_locker("--vault", vault_path, *args)
    assert_one_error(proc, 2)
    assert proc.stdout == b""


def test_missing_vault_gives_a_hint(run_locker: RunLocker, tmp_path: Path, pwfile: Path) -> None:
    for command in ("ls", "add", "cat"):
        args = {"add": ("add", pwfile), "rm": ("rm", "x"), "cat": ("cat", "x")}.get(
            command, (command,)
        )
        proc = run_locker(*args, "--vault", tmp_path / "nope.locker", "--passphrase-file", pwfile)
        assert_one_error(proc, 1, "no vault at")
        assert b"locker: hint: create one with 'locker init'" in proc.stderr
    assert not (tmp_path / "nope.locker").exists()


def test_not_a_container_is_an_integrity_error(
    run_locker: RunLocker, tmp_path: Path, pwfile: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"just some text, certainly not a vault\n" * 10)
    assert_one_error(run_locker("ls", "--vault", path, "--passphrase-file", pwfile), 4)
    assert_one_error(run_locker("info", "--vault", path), 4)


def test_locker_debug_shows_a_traceback(
    run_locker: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"nope\n")
    args = ("ls", "--vault", vault_path, "--passphrase-file", wrong)
    plain = run_locker(*args)
    assert plain.returncode == 3 and b"Traceback" not in plain.stderr
    debug = run_locker(*args, env={"LOCKER_DEBUG": "1"})
    assert debug.returncode == 3
    assert b"Traceback (most recent call last)" in debug.stderr
    assert b"BadKeyError" in debug.stderr
    assert debug.stderr.splitlines()[-2].startswith(b"locker: error: wrong passphrase")


def test_bare_locker_prints_status_and_commands(run_locker: RunLocker, vault_path: Path) -> None:
    proc = ok(run_locker("--vault", vault_path))
    out = proc.stdout.decode()
    assert f"vault {vault_path}: locker v2" in out
    for command in ("init", "add", "ls", "cat", "get", "rm", "mv", "passwd", "rekey", "verify"):
        assert command in out
    proc = ok(run_locker("--vault", vault_path.parent / "none.locker"))
    assert "'locker init' creates it" in proc.stdout.decode()


# -- start-up: what each command imports (its time is scripts/bench's, not a test's) ------------


# Never on these commands' path: the app, the libraries of other rooms, error-only helpers.
NEVER = (
    "textual", "rich", "yaml", "dotenv", "keyring", "pkcs11", "watchdog", "shtab",
    "cryptography.x509", "difflib", "traceback", "locker.tui", "locker.know.pki",
    "locker.slots.recovery", "locker.bundle",
    # What start-up no longer pays for (docs/PERFORMANCE.md): argparse's shutil, the argon2
    # package around its bindings, cryptography's cipher package around AESGCM, and the
    # modules only a save or a prompt needs.
    "shutil", "argon2", "cryptography.hazmat.primitives.ciphers", "secrets", "socket",
    "getpass",
)  # fmt: skip
# Commands that decrypt nothing: no cryptography, no argon2 (the store's header reader only).
NEVER_WITHOUT_KEYS = ("cryptography", "argon2", "_cffi_backend")
# ...and those that only read the mount journal: not even the vault.
NEVER_JOURNAL_ONLY = ("locker.vault", "locker.store", "locker.mount.session", "locker.mount.sync")
# Commands that open a vault or nothing: no dataclasses (its import brings inspect, ast, dis and
# tokenize, and each class it builds costs more than a NamedTuple or a plain class), and with
# no mount recorded, no mount journal (docs/PERFORMANCE.md, start-up round 4).
NEVER_OFF_THE_MOUNT = ("dataclasses", "inspect", "locker.mount.journal")
NEVER_BY_COMMAND = {
    "--version": (
        *NEVER_WITHOUT_KEYS, *NEVER_OFF_THE_MOUNT, "locker.store", "locker.mount", "threading",
    ),
    "info": (*NEVER_WITHOUT_KEYS, *NEVER_OFF_THE_MOUNT, "locker.vault", "locker.store.generations"),
    "log --help": (
        *NEVER_WITHOUT_KEYS, *NEVER_OFF_THE_MOUNT, "locker.store", "locker.mount", "hmac",
        "threading",
    ),
    "status": (*NEVER_WITHOUT_KEYS, *NEVER_JOURNAL_ONLY, "hmac", "threading", "dataclasses"),
    "lock": (*NEVER_WITHOUT_KEYS, *NEVER_JOURNAL_ONLY, "hmac", "threading", "dataclasses"),
    "ls": NEVER_OFF_THE_MOUNT,
    "ls -l": NEVER_OFF_THE_MOUNT,
}  # fmt: skip
# What each command may import in all (the interpreter's own start-up included): a ceiling a
# new top-level import trips, with room for Python versions to differ by a few modules.
BUDGET = {
    "--version": 79,
    "log --help": 82,
    "status": 92,
    "lock": 92,
    "info": 116,
    "ls": 142,
    "ls -l": 144,
}


def imported_by(env: dict[str, str], args: list[str]) -> list[str]:
    """The modules `python -X importtime -m locker ARGS` imports, in order.

    Without coverage's start-up hook (`scripts/test --cov` sets COVERAGE_PROCESS_START): its
    own imports are not locker's, and the count is of a `locker` as users start it."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "locker", *args],
        env={k: v for k, v in env.items() if k != "COVERAGE_PROCESS_START"},
        capture_output=True,
        check=True,
    )
    return [
        line.split("|")[-1].strip()
        for line in proc.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line and "imported package" not in line
    ]


@pytest.mark.parametrize("command", list(BUDGET))
def test_a_command_imports_only_what_it_needs(
    filled_vault: Path, pwfile: Path, tmp_path: Path, command: str
) -> None:
    env = locker_env(tmp_path)
    args = [*command.split(), "--vault", str(filled_vault), "--passphrase-file", str(pwfile)]
    modules = imported_by(env, ["--version"] if command == "--version" else args)
    assert "locker" in modules
    never = NEVER + NEVER_BY_COMMAND.get(command, ())
    banned = sorted({m for m in modules for n in never if m == n or m.startswith(n + ".")})
    assert banned == []
    assert len(modules) <= BUDGET[command], sorted(modules)


def test_version_in_process_imports_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from locker.cli.main import main\n"
        "assert main(['--version']) == 0\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    env = locker_env(tmp_path)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    loaded = set(proc.stdout.decode().split())
    assert not loaded & {"textual", "watchdog", "keyring", "cryptography", "argon2"}


def test_a_mistyped_command_still_gets_its_suggestion(run_locker: RunLocker) -> None:
    # difflib is loaded only on this path: the hint must survive the deferred import.
    proc = run_locker("lss")
    assert proc.returncode == 2
    assert "did you mean 'locker ls'?" in proc.stderr.decode()


# -- terminal prompts (a real pseudo-terminal) -------------------------------------------------


def run_in_pty(
    args: list[str],
    answers: list[tuple[bytes, bytes]],
    env: dict[str, str],
    timeout: float = 60,
    ahead: bytes = b"",
    echo_seen: list[bool] | None = None,
) -> tuple[int, bytes]:
    """Run locker on a new pseudo-terminal, answering each prompt the moment it appears.

    `ahead` is typed before locker starts (type-ahead, a paste); `echo_seen` collects, for each
    prompt, whether the terminal echoed input when the prompt was seen (the pty's settings are
    shared by both ends). A locker still running after `timeout` is a hang: it is killed and
    the test fails at once with what the terminal showed, instead of waiting for pytest's own
    timeout."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execve(sys.executable, [*LOCKER, *args], env)
        finally:
            os._exit(127)
    if ahead:
        os.write(fd, ahead)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"locker hung on the terminal (killed after {timeout} s): {output!r}")
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                output += data
            while pending and pending[0][0] in output:
                prompt, answer = pending.pop(0)
                if echo_seen is not None:
                    echo_seen.append(bool(termios.tcgetattr(fd)[3] & termios.ECHO))
                output = output.replace(prompt, b"<" + prompt.strip() + b">", 1)
                os.write(fd, answer + b"\n")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output


def test_passphrase_typed_the_moment_the_prompt_appears_is_not_echoed(
    tmp_path: Path, vault_path: Path
) -> None:
    """Issue 8 item 1: echo goes off before the prompt is written, so an answer sent the moment
    `Passphrase: ` shows (expect, tmux send-keys) is never echoed."""
    env = locker_env(tmp_path)
    for _ in range(3):
        echo: list[bool] = []
        code, out = run_in_pty(
            ["ls", "--vault", str(vault_path)],
            [(b"Passphrase: ", PASSPHRASE)],
            env,
            echo_seen=echo,
        )
        assert code == 0, out
        assert echo == [False] and PASSPHRASE not in out


def test_passphrase_typed_ahead_is_not_thrown_away(tmp_path: Path, vault_path: Path) -> None:
    """Issue 8 item 1: input that arrived before echo went off (a paste, type-ahead) is read,
    not flushed; locker used to drop it and wait forever."""
    code, out = run_in_pty(
        ["ls", "--vault", str(vault_path)], [], locker_env(tmp_path), ahead=PASSPHRASE + b"\n"
    )
    assert code == 0, out
    assert b"Passphrase: " in out


def test_empty_passphrase_at_the_prompt_is_refused_before_the_kdf(
    tmp_path: Path, vault_path: Path
) -> None:
    code, out = run_in_pty(
        ["ls", "--vault", str(vault_path)], [(b"Passphrase: ", b"")], locker_env(tmp_path)
    )
    assert code == 2, out
    assert b"no passphrase entered (it is empty)" in out and b"wrong" not in out


def test_init_and_passwd_ask_twice_on_a_terminal(tmp_path: Path) -> None:
    env = locker_env(tmp_path)
    path = tmp_path / "tty.locker"
    kdf = list(SMALL_KDF_FLAGS)
    code, out = run_in_pty(
        ["init", "--vault", str(path), *kdf],
        [(b"Passphrase: ", b"first"), (b"Repeat passphrase: ", b"second")],
        env,
    )
    assert code == 2, out
    assert b"differ" in out and not path.exists()
    code, out = run_in_pty(
        ["init", "--vault", str(path), *kdf],
        [(b"Passphrase: ", b"tty secret"), (b"Repeat passphrase: ", b"tty secret")],
        env,
    )
    assert code == 0, out
    assert b"tty secret" not in out  # not echoed
    code, out = run_in_pty(
        ["passwd", "--vault", str(path)],
        [
            (b"Passphrase: ", b"tty secret"),
            (b"New passphrase: ", b"next secret"),
            (b"Repeat new passphrase: ", b"next secret"),
        ],
        env,
    )
    assert code == 0, out
    assert entries(path, b"next secret") == {}


# -- the harness itself ---------------------------------------------------------------------------


def test_require_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require("sh", "a shell") == shutil.which("sh")
    assert require(True, "always") is True
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no such tool"):
        require("no-such-tool-for-locker", "no such tool")
    with pytest.raises(pytest.skip.Exception):
        require(False, "condition unmet")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no such tool"):
        require("no-such-tool-for-locker", "no such tool")


def test_end_of_input_at_the_prompt_is_a_usage_error(tmp_path: Path, vault_path: Path) -> None:
    code, out = run_in_pty(
        ["ls", "--vault", str(vault_path)], [(b"Passphrase: ", b"\x04")], locker_env(tmp_path)
    )
    assert code == 2, out
    assert b"no passphrase entered" in out and b"Traceback" not in out


def test_busy_is_reported_before_asking_for_a_passphrase(tmp_path: Path, vault_path: Path) -> None:
    with Vault.open(vault_path, PASSPHRASE, write=True):
        for args in (["rm", "x"], ["mount"]):
            code, out = run_in_pty([*args, "--vault", str(vault_path)], [], locker_env(tmp_path))
            assert code == 5, out
            assert b"Passphrase" not in out and b"in use by PID" in out


def test_init_warns_about_a_readable_passphrase_file_and_a_short_passphrase(
    run_locker: RunLocker, tmp_path: Path
) -> None:
    pw = tmp_path / "open.txt"
    pw.write_bytes(b"short\n")
    pw.chmod(0o644)
    proc = run_locker(
        "init", "--vault", tmp_path / "w.locker", "--passphrase-file", pw, *SMALL_KDF_FLAGS
    )
    assert proc.returncode == 0, proc.stderr
    assert b"can be read by other users (chmod 600" in proc.stderr
    assert b"shorter than 12 characters" in proc.stderr


def test_a_typed_passphrase_is_raw_bytes_never_echoed_or_printed(tmp_path: Path) -> None:
    """Bytes that are not valid UTF-8 are a passphrase like any other, the same as in a file."""
    env = locker_env(tmp_path)
    path = tmp_path / "bytes.locker"
    secret = b"s3cr\xe9t-passphrase"
    code, out = run_in_pty(
        ["init", "--vault", str(path), *SMALL_KDF_FLAGS],
        [(b"Passphrase: ", secret), (b"Repeat passphrase: ", secret)],
        env,
    )
    assert code == 0, out
    assert secret not in out and b"internal error" not in out
    pw = tmp_path / "bytes.txt"
    pw.write_bytes(secret + b"\n")
    pw.chmod(0o600)
    proc = subprocess.run(
        [*LOCKER, "ls", "--vault", str(path), "--passphrase-file", str(pw)],
        capture_output=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_vault_names_with_glob_characters_clean_only_their_own_temps(
    run_locker: RunLocker, tmp_path: Path, pwfile: Path
) -> None:
    vault = tmp_path / "a[1].locker"
    assert (
        run_locker(
            "init", "--vault", vault, "--passphrase-file", pwfile, *SMALL_KDF_FLAGS
        ).returncode
        == 0
    )
    own, other = (
        tmp_path / ".a[1].locker.tmp-aaaaaaaaaaaa",
        tmp_path / ".a1.locker.tmp-bbbbbbbbbbbb",
    )
    own.write_bytes(b"stale")
    other.write_bytes(b"another vault's save in progress")
    assert run_locker("add", pwfile, "--vault", vault, "--passphrase-file", pwfile).returncode == 0
    assert not own.exists() and other.exists()


def test_get_of_a_long_non_ascii_name(cli: RunLocker, vault_path: Path, tmp_path: Path) -> None:
    name = "é" * 127  # 254 bytes: a valid leaf, whose temp name must still fit
    src = tmp_path / "src.txt"
    src.write_bytes(b"x")
    ok(cli("add", src, "--as", name))
    ok(cli("get", name, "--to", tmp_path / "out"))
    assert (tmp_path / "out" / name).read_bytes() == b"x"


def test_the_short_passphrase_warning_counts_characters_not_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from locker.cli.prompts import new_passphrase

    pw = tmp_path / "pw"
    pw.touch(mode=0o600)
    for text, warned in (("ääääääääääää", False), ("ääääääääääa", True), ("\xe9" * 11, True)):
        pw.write_bytes(text.encode("utf-8") + b"\n")
        assert bytes(new_passphrase(str(pw), "passphrase")) == text.encode("utf-8")
        assert ("shorter than 12" in capsys.readouterr().err) is warned, text
