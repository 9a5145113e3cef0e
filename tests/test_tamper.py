"""Tamper sweeps: every changed or cut byte is an error (exit 3 or 4), never success, and never
different content; in a version 2 file, the bytes a reader never reads (the padding after each
commit record, an empty record B, garbage) change nothing, and damage to the commit record in
force opens exactly the generation before it (docs/FORMAT.md, sections 18 to 20).

The byte flips use two masks at every offset:
- 0x01, the smallest possible change (one bit): a length or count that is off by one, a KDF
  parameter that stays inside the caps, a flag bit; nothing may tolerate it.
- 0xFF, every bit of the byte: pushes length, count and cost fields far out of range, so the
  strict bounds checks (and the KDF caps, before anything is derived) are what must catch it.
"""

from __future__ import annotations

import concurrent.futures
import random
from pathlib import Path

import pytest
from conftest import PASSPHRASE, TINY_KDF, RunLocker

from locker.errors import (
    EXIT_BAD_KEY,
    EXIT_INTEGRITY,
    IntegrityError,
    LockerError,
    UnsupportedVersionError,
)
from locker.store.container import Sealed
from locker.store.crypto import CHUNK_SIZE
from locker.store.format import DATA_AREA_START, HEAD_SIZE, RECORD_OFFSETS, RECORD_SIZE
from locker.vault import Vault, create
from locker.vault_info import info

CONTENT = {
    "empty": b"",
    "a.txt": b"DATABASE_URL=postgres://u:p@h/db\n",
    "tls/server.key": b"-----BEGIN PRIVATE KEY-----\n" + b"MIIE" * 40 + b"\n",
}


def build(path: Path, content: dict[str, bytes], compact: bool = True) -> bytes:
    """A vault holding `content`: one generation (a compaction) or, with compact=False, the
    empty generation 1 in record A and `content` appended as generation 2 in record B."""
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        for name, data in content.items():
            v.add_bytes(name, data)
        v.record("add", tuple(content))
        v.commit(compact=compact)
    return path.read_bytes()


def open_and_read_everything(path: Path, truth: dict[str, bytes]) -> LockerError | None:
    """Open and read every entry through the library. Returns the error, or None on success.

    Fails the test at once if anything but a LockerError escapes, if a name is not one of the
    true names, or if a released chunk is not a prefix of the true content.
    """
    try:
        with Vault.open(path, PASSPHRASE) as v:
            names = [e.name for e in v.entries()]
            assert set(names) <= set(truth), f"unexpected names {names}"
            for name in names:
                released = b""
                for chunk in v.chunks(name):
                    released += chunk
                    assert truth[name].startswith(released), f"{name}: unverified bytes released"
                assert released == truth[name]
            assert names == sorted(truth)
            # The log is part of the index, so it came through the same authentication.
            assert [e.event for e in v.log()] == ["init", "add"]
    except LockerError as exc:
        return exc
    return None


def assert_refused(exc: LockerError | None, where: str) -> None:
    assert exc is not None, f"{where}: tampered container opened and read successfully"
    assert exc.exit_code in (EXIT_BAD_KEY, EXIT_INTEGRITY), f"{where}: {exc!r}"
    if exc.exit_code == EXIT_INTEGRITY:
        assert isinstance(exc, IntegrityError), f"{where}: {exc!r}"


def region_of(offset: int, facts: dict[str, int]) -> str:
    """Where `offset` lies in a one-generation v2 file: the head and record A ("header"), the
    bytes no reader reads ("unread": record padding, the empty record B), entries, index."""
    record_a = RECORD_OFFSETS[0]
    if offset < HEAD_SIZE or record_a <= offset < record_a + RECORD_SIZE:
        return "header"
    if offset < DATA_AREA_START:
        return "unread"
    if offset >= facts["index_offset"]:
        return "index"
    return "data"


def flip_offsets(size: int, facts: dict[str, int]) -> list[int]:
    """Every offset a reader reads, and every 61st of those it does not (plus their ends)."""
    unread = [o for o in range(size) if region_of(o, facts) == "unread"]
    sampled = set(unread[::61]) | {RECORD_OFFSETS[0] + RECORD_SIZE, RECORD_OFFSETS[1] - 1}
    sampled |= {RECORD_OFFSETS[1], RECORD_OFFSETS[1] + RECORD_SIZE - 1, DATA_AREA_START - 1}
    return [o for o in range(size) if region_of(o, facts) != "unread" or o in sampled]


@pytest.mark.parametrize("mask", [0x01, 0xFF])
def test_flip_every_byte(tmp_path: Path, mask: int) -> None:
    path = tmp_path / "v.locker"
    original = build(path, CONTENT)
    assert open_and_read_everything(path, CONTENT) is None
    facts = info(path)
    assert facts["format_version"] == 2
    outcomes: dict[tuple[str, str], int] = {}
    for offset in flip_offsets(len(original), facts):
        tampered = bytearray(original)
        tampered[offset] ^= mask
        path.write_bytes(bytes(tampered))
        exc = open_and_read_everything(path, CONTENT)
        region = region_of(offset, facts)
        where = f"offset {offset} ({region}) ^ {mask:#04x}"
        if region == "unread":  # never read, never authenticated: it changes nothing
            assert exc is None, f"{where}: {exc!r}"
            outcomes[(region, "opened unchanged")] = (
                outcomes.get((region, "opened unchanged"), 0) + 1
            )
            continue
        assert_refused(exc, where)
        assert exc is not None
        key = (region, type(exc).__name__)
        outcomes[key] = outcomes.get(key, 0) + 1
        if 8 <= offset < 10:  # the format version
            assert isinstance(exc, UnsupportedVersionError)
    # Every region was hit, and data tampering is an integrity failure, not "wrong passphrase".
    assert {region for region, _ in outcomes} == {"header", "unread", "index", "data"}
    assert {name for region, name in outcomes if region in ("index", "data")} <= {
        "AuthenticationError",
    }
    print(f"mask {mask:#04x}, {len(original)} bytes: {sorted(outcomes.items())}")


def opened_state(path: Path) -> dict[str, bytes] | LockerError:
    try:
        with Vault.open(path, PASSPHRASE) as v:
            return {e.name: v.read_bytes(e.name) for e in v.entries()}
    except LockerError as exc:
        return exc


@pytest.mark.parametrize("mask", [0x01, 0xFF])
def test_flips_in_a_two_generation_file(tmp_path: Path, mask: int) -> None:
    """Generation 1 (empty) in record A, generation 2 in record B. A flip in record B (in force)
    opens exactly generation 1 or is refused; a flip in record A opens generation 2 or is
    refused; a flip in generation 1's index (garbage to generation 2) or in the unread bytes
    opens generation 2; a flip in generation 2's index opens generation 1 (FORMAT.md section 20,
    step 13: record B is then passed over); every other flip is refused."""
    path = tmp_path / "v.locker"
    original = build(path, CONTENT, compact=False)
    facts = info(path)
    assert facts["generation"] == 2
    with Vault.open(path, PASSPHRASE) as v:
        assert v._container.position == 1
    gen1_index_end = DATA_AREA_START + int.from_bytes(
        original[RECORD_OFFSETS[0] + 16 : RECORD_OFFSETS[0] + 24], "big"
    )
    record_a = range(RECORD_OFFSETS[0], RECORD_OFFSETS[0] + RECORD_SIZE)
    record_b = range(RECORD_OFFSETS[1], RECORD_OFFSETS[1] + RECORD_SIZE)
    b_fields = original[RECORD_OFFSETS[1] + 8 : RECORD_OFFSETS[1] + 24]
    gen2_index_at = int.from_bytes(b_fields[:8], "big")
    gen2_index = range(gen2_index_at, gen2_index_at + int.from_bytes(b_fields[8:], "big"))
    counts: dict[str, int] = {}
    offsets = [*range(HEAD_SIZE - 8, HEAD_SIZE), *record_a, *record_b]
    offsets += [*range(DATA_AREA_START, gen1_index_end)]
    offsets += [*range(RECORD_OFFSETS[0] + RECORD_SIZE, RECORD_OFFSETS[1], 97)]
    offsets += [*range(gen1_index_end, len(original), 53)]
    for offset in offsets:
        tampered = bytearray(original)
        tampered[offset] ^= mask
        path.write_bytes(bytes(tampered))
        got = opened_state(path)
        where = f"offset {offset} ^ {mask:#04x}: {got!r}"
        if offset in record_b:
            allowed = ["gen 1", "refused"]
        elif offset in record_a:
            allowed = ["gen 2", "refused"]
        elif RECORD_OFFSETS[0] + RECORD_SIZE <= offset < gen1_index_end:
            allowed = ["gen 2"]
        elif offset in gen2_index:  # record B verifies, its index does not: A is tried
            allowed = ["gen 1"]
        else:
            allowed = ["refused"]
        outcome = (
            "refused"
            if isinstance(got, LockerError)
            else "gen 2"
            if got == CONTENT
            else "gen 1"
            if got == {}
            else "other"
        )
        assert outcome in allowed, where
        if isinstance(got, LockerError):
            assert_refused(got, where)
        counts[outcome] = counts.get(outcome, 0) + 1
    assert counts.get("gen 1") and counts.get("gen 2") and counts.get("refused")
    print(f"mask {mask:#04x}: {counts}")


def test_truncation_at_every_length(tmp_path: Path) -> None:
    path = tmp_path / "v.locker"
    original = build(path, CONTENT)
    facts = info(path)
    for cut in range(len(original)):
        path.write_bytes(original[:cut])
        exc = open_and_read_everything(path, CONTENT)
        assert exc is not None, f"cut at {cut} opened"
        # A cut anywhere (header, index or data) is an integrity failure, never "wrong passphrase".
        assert exc.exit_code == EXIT_INTEGRITY, f"cut at {cut} ({region_of(cut, facts)}): {exc!r}"


@pytest.mark.parametrize("extra", [b"\x00", b"x" * 16, bytes(CHUNK_SIZE + 16)])
def test_trailing_data_is_garbage(tmp_path: Path, extra: bytes) -> None:
    """Bytes after a version 2 file's last used byte are garbage (FORMAT.md section 19): they
    change nothing, and the next save leaves them or compacts them away. (A version 1 file
    with trailing bytes is refused: tests/vectors/format_extended_*.)"""
    path = tmp_path / "v.locker"
    original = build(path, CONTENT)
    path.write_bytes(original + extra)
    assert open_and_read_everything(path, CONTENT) is None


def multi_chunk_content() -> dict[str, bytes]:
    rnd = random.Random(11)
    return {
        "big.bin": rnd.randbytes(3 * CHUNK_SIZE + 1000),
        "twin1": rnd.randbytes(CHUNK_SIZE + 7),
        "twin2": rnd.randbytes(CHUNK_SIZE + 7),
        "zero": b"",
    }


def chunk_spans(path: Path, name: str) -> list[tuple[int, int]]:
    """(file offset, length) of each sealed chunk of one entry."""
    with Vault.open(path, PASSPHRASE) as v:
        e = v.entry(name)
    start = e.offset  # version 2: absolute
    spans, pos, end = [], start, start + e.length
    while pos < end:
        n = min(CHUNK_SIZE + 16, end - pos)
        spans.append((pos, n))
        pos += n
    return spans


def test_structural_attacks_on_a_multi_chunk_container(tmp_path: Path) -> None:
    """Reorder, splice and drop chunks, and swap two entries' ciphertexts."""
    path = tmp_path / "v.locker"
    truth = multi_chunk_content()
    original = build(path, truth)
    big = chunk_spans(path, "big.bin")
    (t1,), (t2,) = [chunk_spans(path, "twin1")[:1], chunk_spans(path, "twin2")[:1]]
    twin1_all, twin2_all = chunk_spans(path, "twin1"), chunk_spans(path, "twin2")

    def piece(span: tuple[int, int]) -> bytes:
        return original[span[0] : span[0] + span[1]]

    def replaced(pairs: list[tuple[tuple[int, int], bytes]]) -> bytes:
        out = bytearray(original)
        for (pos, n), data in pairs:
            assert len(data) == n
            out[pos : pos + n] = data
        return bytes(out)

    attacks = {
        "swap chunks 0 and 1": replaced([(big[0], piece(big[1])), (big[1], piece(big[0]))]),
        "chunk 1 over chunk 2": replaced([(big[2], piece(big[1]))]),
        "swap twin entries": replaced(
            [(s1, piece(s2)) for s1, s2 in zip(twin1_all, twin2_all, strict=True)]
            + [(s2, piece(s1)) for s1, s2 in zip(twin1_all, twin2_all, strict=True)]
        ),
        "twin1 first chunk into twin2": replaced([(t2, piece(t1))]),
        "drop last chunk of big": original[: big[-1][0]] + original[big[-1][0] + big[-1][1] :],
    }
    for label, data in attacks.items():
        path.write_bytes(data)
        exc = open_and_read_everything(path, truth)
        assert exc is not None and exc.exit_code == EXIT_INTEGRITY, label
    # Splicing from another container with the same passphrase fails too.
    other = tmp_path / "other.locker"
    other_bytes = build(other, truth)
    for pos, n in big:
        path.write_bytes(original[:pos] + other_bytes[pos : pos + n] + original[pos + n :])
        exc = open_and_read_everything(path, truth)
        assert exc is not None and exc.exit_code == EXIT_INTEGRITY


def test_stride_sweep_over_a_multi_chunk_container(tmp_path: Path) -> None:
    """Every head, record A and index byte and every 613th data byte (plus each chunk's first
    and last)."""
    path = tmp_path / "v.locker"
    truth = multi_chunk_content()
    original = build(path, truth)
    facts = info(path)
    offsets = set(range(HEAD_SIZE)) | set(range(RECORD_OFFSETS[0], RECORD_OFFSETS[0] + RECORD_SIZE))
    offsets |= set(range(facts["index_offset"], len(original)))
    offsets |= set(range(DATA_AREA_START, facts["index_offset"], 613))
    for name in truth:
        for pos, n in chunk_spans(path, name):
            offsets |= {pos, pos + n - 1}
    for offset in sorted(offsets):
        tampered = bytearray(original)
        tampered[offset] ^= 0x01
        path.write_bytes(bytes(tampered))
        assert_refused(open_and_read_everything(path, truth), f"offset {offset}")


def test_cli_sample_of_flips(tmp_path: Path, run_locker: RunLocker, pwfile: Path) -> None:
    """~20 flipped offsets through the real CLI (`cat` or `verify`): exit 3 or 4, and `cat` only ever prints a
    prefix of the true content (it may have streamed chunks that verified before the damage).

    `cat` reads the entry the flip landed in (big.bin for header and index flips).
    Both commands are run, at different offsets, on header, index and data flips.
    """
    pristine = tmp_path / "pristine.locker"
    truth = multi_chunk_content()
    original = build(pristine, truth)
    facts = info(pristine)
    data_start, index_at = DATA_AREA_START, facts["index_offset"]
    spans = {name: chunk_spans(pristine, name) for name in truth}
    big = spans["big.bin"]
    rnd = random.Random(2024)
    offsets = sorted(
        {
            0,  # magic
            9,  # version
            RECORD_OFFSETS[0] + RECORD_SIZE - 1,  # record A's MAC
            len(original) - 1,  # index tag
            *rnd.sample(range(HEAD_SIZE), 3),
            *rnd.sample(range(index_at, len(original)), 3),
            *(pos + rnd.randrange(n) for pos, n in big),  # one flip in every chunk of big.bin
            big[-1][0] + big[-1][1] - 1,  # the very last tag byte of big.bin
            *rnd.sample(range(data_start, index_at), 6),
        }
    )
    assert len(offsets) >= 20

    def entry_at(offset: int) -> str:
        for name, chunks in spans.items():
            if any(pos <= offset < pos + n for pos, n in chunks):
                return name
        return "big.bin"

    jobs = []
    for offset in offsets:
        path = tmp_path / f"flip-{offset}.locker"
        tampered = bytearray(original)
        tampered[offset] ^= 0xFF
        path.write_bytes(bytes(tampered))
        common = ("--vault", path, "--passphrase-file", pwfile)
        # One command per offset: cat wherever a verified prefix could come out (big.bin),
        # otherwise alternate between verify and cat.
        in_big = entry_at(offset) == "big.bin" and data_start <= offset < index_at
        if in_big or len(jobs) % 2:
            jobs.append((offset, "cat", entry_at(offset), ("cat", entry_at(offset), *common)))
        else:
            jobs.append((offset, "verify", "", (*common, "verify")))

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: run_locker(*job[3]), jobs))

    partial_cats = 0
    for (offset, what, name, _), proc in zip(jobs, results, strict=True):
        where = f"{what} {name} with offset {offset} flipped: {proc.stderr!r}"
        assert proc.returncode in (EXIT_BAD_KEY, EXIT_INTEGRITY), where
        assert b"Traceback" not in proc.stderr, where
        assert proc.stderr.startswith(b"locker: error: "), where
        if what == "cat":
            assert truth[name].startswith(proc.stdout), where
            assert len(proc.stdout) < max(1, len(truth[name])), where
            assert len(proc.stdout) % CHUNK_SIZE == 0, where  # whole verified chunks only
            partial_cats += bool(proc.stdout)
        else:
            assert proc.stdout == b"", where
    # Damage in chunks 1..3 of big.bin lets cat stream the verified chunks before it.
    assert partial_cats >= 3
    assert {what for _, what, _, _ in jobs} == {"cat", "verify"}


def test_wrong_passphrase_and_tampering_are_told_apart(
    tmp_path: Path, run_locker: RunLocker, pwfile: Path
) -> None:
    path = tmp_path / "v.locker"
    original = build(path, CONTENT)
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"not the passphrase\n")
    proc = run_locker("--vault", path, "--passphrase-file", wrong, "ls")
    assert proc.returncode == EXIT_BAD_KEY
    assert b"wrong passphrase" in proc.stderr
    tampered = bytearray(original)
    tampered[RECORD_OFFSETS[0] + RECORD_SIZE - 1] ^= 1  # the MAC of the only commit record
    path.write_bytes(bytes(tampered))
    proc = run_locker("--vault", path, "--passphrase-file", pwfile, "ls")
    assert proc.returncode == EXIT_INTEGRITY
    assert b"header failed authentication" in proc.stderr
    # info needs no key; it still reads the (framing-valid) header.
    assert run_locker("--vault", path, "info").returncode == 0


def test_sealed_read_is_used_by_info_only(tmp_path: Path) -> None:
    """info() must not accept a file that is not a container either."""
    path = tmp_path / "not-a-vault"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(400))
    with pytest.raises(IntegrityError):
        info(path)
    with pytest.raises(IntegrityError):
        Sealed.read(path)
