"""Known-answer vectors: tests/vectors/*, made by scripts/gen_vectors.py, read as data.

Every vector is opened through the library and its outcome checked against its `expect:` line;
a handful also go through the real CLI in a subprocess. The generator is an independent writer
of formats 1 and 2 (it imports nothing from `locker`), so these tests also check that the
library's own writer, given the same deterministic randomness, produces the version 2 success
vectors byte for byte (appends, compactions and the upgrade of a version 1 file), and that
regenerating the vectors gives exactly the committed files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from conftest import LOCKER, locker_env

from locker.errors import (
    EXIT_BAD_KEY,
    EXIT_INTEGRITY,
    EXIT_OK,
    AuthenticationError,
    BadKeyError,
    FormatError,
    IntegrityError,
    KdfTooCostlyError,
    LockerError,
    UnsupportedVersionError,
)
from locker.store import crypto
from locker.store.format import KdfCost
from locker.vault import Vault, create
from locker.vault_info import info

ROOT = Path(__file__).resolve().parent.parent
VECTOR_DIR = ROOT / "tests" / "vectors"
GENERATOR = ROOT / "scripts" / "gen_vectors.py"
FORMAT_DOC = ROOT / "docs" / "FORMAT.md"

EXPECTS = {
    "success",
    "bad key",
    "header failure",
    "index failure",
    "payload failure",
    "format error",
    "kdf too costly",
    "unknown version",
}

# Vectors whose expected outcome the library does not meet yet: each is an open bug, reported
# with the file and line. strict=True makes the test fail once the bug is fixed, so the mark
# gets removed then.


@dataclass(frozen=True)
class VectorFile:
    name: str
    expect: str
    passphrase: bytes
    comments: tuple[str, ...]
    entries: dict[str, tuple[int, str]]  # name -> (size, sha256 hex)
    container: bytes


def parse_vector(path: Path) -> VectorFile:
    head, sep, container = path.read_bytes().partition(b"\n\n")
    if not sep:
        raise ValueError(f"{path.name}: no blank line after the header lines")
    fields: dict[str, list[str]] = {}
    for line in head.decode("utf-8").split("\n"):
        key, colon, value = line.partition(": ")
        if not colon or key not in {"expect", "passphrase", "key", "comment", "entry"}:
            raise ValueError(f"{path.name}: bad header line {line!r}")
        fields.setdefault(key, []).append(value)
    if len(fields.get("expect", [])) != 1 or len(fields.get("passphrase", [])) != 1:
        raise ValueError(f"{path.name}: needs exactly one expect: and one passphrase: line")
    entries = {}
    for value in fields.get("entry", []):
        name, digest, size = value.rsplit(" ", 2)
        if not digest.startswith("sha256=") or not size.startswith("size="):
            raise ValueError(f"{path.name}: bad entry line {value!r}")
        entries[name] = (int(size.removeprefix("size=")), digest.removeprefix("sha256="))
    return VectorFile(
        name=path.name,
        expect=fields["expect"][0],
        passphrase=fields["passphrase"][0].encode("utf-8"),
        comments=tuple(fields.get("comment", [])),
        entries=entries,
        container=container,
    )


def vector_names() -> list[str]:
    return sorted(p.name for p in VECTOR_DIR.iterdir() if p.is_file())


def vector_params() -> list[object]:
    return list(vector_names())


def load(name: str) -> VectorFile:
    return parse_vector(VECTOR_DIR / name)


def place(v: VectorFile, tmp_path: Path) -> Path:
    path = tmp_path / "vector.locker"
    path.write_bytes(v.container)
    return path


def read_all(vault: Vault) -> dict[str, tuple[int, str]]:
    return {
        e.name: (e.size, hashlib.sha256(vault.read_bytes(e.name)).hexdigest())
        for e in vault.entries()
    }


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_vectors", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_vectors"] = module
    spec.loader.exec_module(module)
    return module


# -- the vector set itself ---------------------------------------------------------------------------


def test_every_vector_parses_with_a_known_expectation() -> None:
    names = vector_names()
    assert len(names) >= 10
    for name in names:
        v = load(name)
        assert v.expect in EXPECTS, name
        assert bool(v.entries) <= (v.expect == "success"), name


def test_the_issue_s_required_cases_exist() -> None:
    required = {
        "success_basic": "success",
        "bad_key_wrong_passphrase": "bad key",
        "header_index_length_tampered": "header failure",
        "index_ciphertext_tampered": "index failure",
        "payload_chunk_tampered": "payload failure",
        "payload_chunks_swapped": "payload failure",
        "format_truncated_last_chunk": "format error",
        "format_extended_trailing_bytes": "format error",
        "kdf_memory_over_cap": "kdf too costly",
        "unknown_version_3": "unknown version",
        # format 2 (issue 15): both records, a torn record, a tie, an index outside the file,
        # overlapping entries, the v1 upgrade
        "v2_success_three_generations": "success",
        "v2_success_torn_record": "success",
        "v2_success_uncommitted_tail": "success",
        "v2_format_generation_tie": "format error",
        "v2_format_index_outside_file": "format error",
        "v2_format_entries_overlap": "format error",
        "v2_format_entry_overlaps_index": "format error",
        "v2_success_upgraded_from_v1": "success",
    }
    assert {name: load(name).expect for name in required} == required
    basic = load("success_basic")
    sizes = [size for size, _ in basic.entries.values()]
    assert 0 in sizes and max(sizes) > 2 * crypto.CHUNK_SIZE
    assert any("/" in name for name in basic.entries)


# -- through the library -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", vector_params())
def test_vector_through_library(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v = load(name)
    path = place(v, tmp_path)
    if v.expect == "success":
        with Vault.open(path, v.passphrase) as vault:
            assert read_all(vault) == v.entries
            assert vault.verify() == []
        return
    if v.expect == "payload failure":
        with Vault.open(path, v.passphrase) as vault:  # header and index are intact
            failures = vault.verify()
            failing = []
            for entry in vault.entries():
                try:
                    for _ in vault.chunks(entry.name):
                        pass
                except AuthenticationError:
                    failing.append(entry.name)
        assert failing, "no entry failed to decrypt"
        assert len(failures) == len(failing)
        return
    if v.expect == "kdf too costly":

        def no_derivation(*args: object, **kwargs: object) -> bytes:
            raise AssertionError("Argon2 ran on parameters beyond the caps")

        monkeypatch.setattr(crypto, "argon2id", no_derivation)
        with pytest.raises(KdfTooCostlyError):
            Vault.open(path, v.passphrase)
        return
    with pytest.raises(LockerError) as caught:
        Vault.open(path, v.passphrase)
    error = caught.value
    message = str(error)
    if v.expect == "bad key":
        assert type(error) is BadKeyError, message
        assert error.exit_code == EXIT_BAD_KEY
    elif v.expect == "header failure":
        assert type(error) is AuthenticationError, message
        assert message.startswith("container header"), message
    elif v.expect == "index failure":
        assert type(error) is AuthenticationError, message
        assert message.startswith("index"), message
    elif v.expect == "format error":
        assert type(error) is FormatError, f"{type(error).__name__}: {message}"
    elif v.expect == "unknown version":
        assert type(error) is UnsupportedVersionError, message
    else:
        pytest.fail(f"unhandled expectation {v.expect!r}")
    if v.expect != "bad key":
        assert isinstance(error, IntegrityError)
        assert error.exit_code == EXIT_INTEGRITY


@pytest.mark.parametrize(
    "name", [n for n in vector_names() if load(n).expect in {"kdf too costly", "unknown version"}]
)
def test_header_refusals_need_no_passphrase(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`info` parses the header without a passphrase; the caps and the version hold there too."""
    v = load(name)
    monkeypatch.setattr(crypto, "argon2id", None)
    expected = KdfTooCostlyError if v.expect == "kdf too costly" else UnsupportedVersionError
    with pytest.raises(expected):
        info(place(v, tmp_path))


# -- through the real CLI ------------------------------------------------------------------------------

CLI_CASES = [
    "success_basic",
    "success_second_slot",
    "bad_key_wrong_passphrase",
    "bad_key_container_id_tampered",
    "header_mac_tampered",
    "index_ciphertext_tampered",
    "payload_chunks_swapped",
    "format_truncated_last_chunk",
    "format_extended_trailing_bytes",
    "format_index_name_dotdot",
    "kdf_memory_over_cap",
    "unknown_version_3",
    "v2_success_three_generations",
    "v2_success_torn_record",
    "v2_format_generation_tie",
    "v2_header_record_mac_tampered",
    "v2_header_both_records_tampered",
    "v2_format_entries_overlap",
]


def run_cli(path: Path, passphrase: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`locker --vault PATH ARGS --passphrase-file F` with the test's own places (conftest's
    runtime bases, a private data dir, no keyring of the machine's)."""
    pwfile = path.with_name("passphrase.txt")
    pwfile.write_bytes(passphrase + b"\n")
    pwfile.chmod(0o600)
    return subprocess.run(
        [*LOCKER, "--vault", str(path), *args, "--passphrase-file", str(pwfile)],
        cwd=ROOT,
        env=locker_env(path.parent, {"PYTHONUTF8": "1"}),
        capture_output=True,
        timeout=120,
    )


def assert_one_error_line(proc: subprocess.CompletedProcess[bytes]) -> None:
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines and lines[0].startswith("locker: error: "), err
    assert all(line.startswith("locker: ") for line in lines), err


@pytest.mark.parametrize("name", CLI_CASES)
def test_vector_through_cli(name: str, tmp_path: Path) -> None:
    v = load(name)
    path = place(v, tmp_path)
    ls = run_cli(path, v.passphrase, "ls")
    if v.expect == "success":
        assert ls.returncode == EXIT_OK, ls.stderr
        assert ls.stdout.decode("utf-8").splitlines() == sorted(v.entries)
        big = max(v.entries, key=lambda n: v.entries[n][0])
        cat = run_cli(path, v.passphrase, "cat", big)
        assert cat.returncode == EXIT_OK, cat.stderr
        assert hashlib.sha256(cat.stdout).hexdigest() == v.entries[big][1]
    elif v.expect == "payload failure":
        assert ls.returncode == EXIT_OK, ls.stderr  # listing needs only the index
        verify = run_cli(path, v.passphrase, "verify")
        assert verify.returncode == EXIT_INTEGRITY
        assert_one_error_line(verify)
    else:
        expected = EXIT_BAD_KEY if v.expect == "bad key" else EXIT_INTEGRITY
        assert ls.returncode == expected, ls.stderr
        assert ls.stdout == b""
        assert_one_error_line(ls)


@pytest.mark.parametrize(
    ("name", "line"),
    [
        (
            "v2_success_damaged_record_in_force",
            "commit record A (claims generation 3) did not verify",
        ),
        ("v2_success_torn_record", "commit record A (claims generation 3) did not verify"),
        (
            "v2_success_newest_index_cut_off",
            "commit record A (claims generation 3) is unusable: commit record's",
        ),
        (
            "v2_success_newest_index_damaged",
            "commit record A (claims generation 3) verified, but its index did not open",
        ),
        ("v2_success_tie_damaged_record", "commit record A (claims generation 2) did not verify"),
        ("v2_success_three_generations", None),
    ],
)
def test_verify_reports_a_record_passed_over(name: str, line: str | None, tmp_path: Path) -> None:
    """A record passed over is said by every command (ls here), and verify exits 4."""
    v = load(name)
    path = place(v, tmp_path)
    ls = run_cli(path, v.passphrase, "ls")
    assert ls.returncode == EXIT_OK, ls.stderr
    proc = run_cli(path, v.passphrase, "verify")
    err = proc.stderr.decode("utf-8")
    if line is None:
        assert proc.returncode == EXIT_OK and err == "" and ls.stderr == b""
        return
    assert proc.returncode == EXIT_INTEGRITY, err
    warning, hint, error = err.splitlines()
    assert ls.stderr.decode("utf-8").splitlines() == [warning, hint]
    assert warning.startswith(f"locker: warning: {line}"), err
    assert "opened at generation 2" in warning
    assert hint.startswith("locker: hint: ") and "recover --generation 2" in hint
    assert error.startswith(f"locker: error: {line}") and "generation 2 is in force" in error


# -- vectors and code cannot drift -------------------------------------------------------------------


def test_regenerating_gives_identical_files(tmp_path: Path) -> None:
    out = tmp_path / "vectors"
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out)],
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == vector_names()
    for name in vector_names():
        assert (out / name).read_bytes() == (VECTOR_DIR / name).read_bytes(), name


@pytest.mark.parametrize("source", ["add_bytes", "add_file"])
def test_library_writer_reproduces_the_v2_success_vectors(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """create(), then each step's add_bytes() (or add_file(): the streaming sealer) or remove()
    calls and one commit(): appends and compactions give the bytes of the generator's
    independent version 2 writer. (The library writes no version 1 file any more; the version
    1 vectors, from the generator's version 1 writer, are read.)"""
    gen = load_generator()
    monkeypatch.setattr("getpass.getuser", lambda: gen.USER)  # vault imports it on first use
    monkeypatch.setattr("socket.gethostname", lambda: gen.HOST)
    assert gen.V2_LIBRARY_FLOW
    for name, steps in gen.V2_LIBRARY_FLOW.items():
        rng, clock = gen.Drbg(name), lambda: float(gen.CLOCK)
        path = tmp_path / f"{name}.locker"
        passphrase = load(name).passphrase
        create(path, passphrase, KdfCost(*gen.KDF), rng=rng, clock=clock)
        for step, items in steps:
            with Vault.open(path, passphrase, write=True, rng=rng, clock=clock) as vault:
                for i, (entry_name, data) in enumerate(items):
                    if step == "rm":
                        vault.remove(entry_name)
                    elif source == "add_bytes":
                        vault.add_bytes(entry_name, data)
                    else:
                        plain = tmp_path / f"{name}-{i}.plain"
                        plain.write_bytes(data)
                        vault.add_file(entry_name, plain)
                vault.commit()
        assert path.read_bytes() == load(name).container, name


def test_the_first_save_of_a_v1_file_is_the_generator_s_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A v1 file saved with no change: a compaction that copies every slot and every entry's
    ciphertext unchanged into a version 2 file, byte for byte the generator's."""
    gen = load_generator()
    v1, v2 = load("success_basic"), load("v2_success_upgraded_from_v1")
    path = place(v1, tmp_path)
    rng = gen.Drbg("v2_success_upgraded_from_v1")
    with Vault.open(path, v1.passphrase, write=True, rng=rng) as vault:
        vault.commit()
    assert path.read_bytes() == v2.container
    with Vault.open(path, v1.passphrase) as vault:
        assert read_all(vault) == v1.entries


def test_format_doc_worked_example_matches_the_generator() -> None:
    gen = load_generator()
    text = FORMAT_DOC.read_text(encoding="utf-8")
    begin, end = "<!-- BEGIN worked example -->", "<!-- END worked example -->"
    block = text.split(begin, 1)[1].split(end, 1)[0]
    body = block.strip().removeprefix("```").removesuffix("```").strip("\n")
    assert body == gen.worked_example()
