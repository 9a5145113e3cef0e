"""format.py: pure framing. Strict parsing, hard KDF caps, canonical index, safe names."""

from __future__ import annotations

import contextlib
import json
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locker.errors import (
    EXIT_INTEGRITY,
    EXIT_USAGE,
    FormatError,
    InvalidNameError,
    KdfTooCostlyError,
    LockerError,
    UnsupportedVersionError,
)
from locker.store import format as fmt
from locker.store import index as index_mod
from locker.store.format import (
    MAGIC,
    SLOT_PASSPHRASE,
    SLOT_RECOVERY,
    Header,
    KdfCost,
    Slot,
    check_kdf_cost,
    check_name,
    check_tree,
    parse_header,
)
from locker.store.index import Entry, Index, LogEvent, decode_index, encode_index, sealed_length

GIB_KIB = 1024 * 1024


def pw_slot(slot_id: bytes = b"S" * 8, kdf: KdfCost | None = None) -> Slot:
    return Slot(
        SLOT_PASSPHRASE, slot_id, b"s" * 16, b"n" * 12, b"w" * 48, kdf or KdfCost(8192, 1, 1)
    )


def recovery_slot(slot_id: bytes = b"R" * 8) -> Slot:
    return Slot(SLOT_RECOVERY, slot_id, b"t" * 16, b"m" * 12, b"x" * 48)


def header(*slots: Slot, index_length: int = 100) -> Header:
    return Header(b"C" * 16, slots or (pw_slot(),), b"i" * 12, index_length, b"M" * 32)


# -- header ---------------------------------------------------------------------------------------


def test_header_round_trip_and_layout() -> None:
    h = header(pw_slot(), recovery_slot())
    data = h.encode()
    assert data.startswith(MAGIC + struct.pack(">HH", 1, 0) + b"C" * 16 + b"\x02")
    assert len(data) == h.size
    assert data.endswith(b"M" * 32)
    assert parse_header(data) == h
    # The reader may be given more than the header (the index follows it on disk).
    assert parse_header(data + b"trailing bytes of the index") == h


slot_strategy = st.one_of(
    st.builds(
        pw_slot,
        st.binary(min_size=8, max_size=8),
        st.builds(
            KdfCost,
            st.integers(8 * 16, 64 * 1024),
            st.integers(1, 16),
            st.integers(1, 16),
        ),
    ),
    st.builds(recovery_slot, st.binary(min_size=8, max_size=8)),
)


@settings(max_examples=50, deadline=None)
@given(
    slots=st.lists(slot_strategy, min_size=1, max_size=16, unique_by=lambda s: s.slot_id),
    index_length=st.integers(17, fmt.MAX_INDEX_SIZE),
)
def test_header_round_trip_property(slots: list[Slot], index_length: int) -> None:
    h = header(*slots, index_length=index_length)
    assert parse_header(h.encode()) == h


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_parse_header_on_garbage_raises_only_format_errors(data: bytes) -> None:
    with contextlib.suppress(FormatError):
        parse_header(MAGIC + struct.pack(">H", 1) + data)
    with contextlib.suppress(FormatError, UnsupportedVersionError):
        parse_header(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_single_byte_change_of_a_header_is_refused_or_parsed_faithfully(
    data: st.DataObject,
) -> None:
    """Parsing never crashes and never misreads: a changed header either fails to frame or
    re-encodes to exactly the changed bytes (canonical form; the MAC catches the rest)."""
    raw = bytearray(header(pw_slot(), recovery_slot()).encode())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= data.draw(st.integers(1, 255))
    try:
        parsed = parse_header(bytes(raw))
    except (FormatError, UnsupportedVersionError) as exc:
        assert exc.exit_code == EXIT_INTEGRITY
        return
    assert parsed.encode() == bytes(raw)


def test_bad_magic_is_not_a_container() -> None:
    with pytest.raises(FormatError, match="not a locker container"):
        parse_header(b"PK\x03\x04" + bytes(200))
    with pytest.raises(FormatError):
        parse_header(b"")


@pytest.mark.parametrize("version", [0, 3, 0xFFFF])
def test_unknown_version_is_refused(version: int) -> None:
    raw = bytearray(header().encode())
    raw[8:10] = struct.pack(">H", version)
    with pytest.raises(UnsupportedVersionError, match=f"version {version} is not supported") as e:
        parse_header(bytes(raw))
    assert e.value.exit_code == EXIT_INTEGRITY


def test_nonzero_flags_are_refused() -> None:
    raw = bytearray(header().encode())
    raw[11] = 1
    with pytest.raises(FormatError, match="flags"):
        parse_header(bytes(raw))


@pytest.mark.parametrize("count", [0, 17, 255])
def test_slot_count_bounds(count: int) -> None:
    raw = bytearray(header().encode())
    raw[28] = count
    with pytest.raises(FormatError):
        parse_header(bytes(raw))


def test_duplicate_slot_ids_are_refused() -> None:
    with pytest.raises(FormatError, match="share one slot id"):
        parse_header(header(pw_slot(b"A" * 8), recovery_slot(b"A" * 8)).encode())


def _slot_offset() -> int:
    return len(MAGIC) + 2 + 2 + 16 + 1


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, 9, "unknown key slot kind"),
        (0, 0, "unknown key slot kind"),
        (1, 1, "reserved byte"),
        (11, 0, "has length"),  # low byte of the body length
        (12, 16 + 1, "salt is"),  # salt length byte
    ],
)
def test_slot_framing_is_strict(offset: int, value: int, message: str) -> None:
    raw = bytearray(header().encode())
    raw[_slot_offset() + offset] = value
    with pytest.raises(FormatError, match=message):
        parse_header(bytes(raw))


def test_index_length_bounds() -> None:
    for bad in (0, 16, fmt.MAX_INDEX_SIZE + 1, 2**64 - 1):
        with pytest.raises(FormatError, match="index length"):
            parse_header(header(index_length=bad).encode())


def test_truncated_header_every_length() -> None:
    data = header(pw_slot(), recovery_slot()).encode()
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            parse_header(data[:cut])


# -- KDF caps -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cost",
    [
        KdfCost(0, 1, 1),
        KdfCost(8192, 0, 1),
        KdfCost(8192, 1, 0),
        KdfCost(4 * GIB_KIB + 1, 1, 1),  # memory > 4 GiB
        KdfCost(8192, 17, 1),  # time > 16
        KdfCost(8192, 1, 17),  # parallelism > 16
        KdfCost(3 * GIB_KIB, 3, 1),  # memory x time > 8 GiB
        KdfCost(2**32 - 1, 2**32 - 1, 2**32 - 1),
        KdfCost(8, 1, 2),  # below the 8 KiB per lane Argon2 needs
    ],
)
def test_kdf_caps_refuse(cost: KdfCost) -> None:
    with pytest.raises(KdfTooCostlyError) as e:
        check_kdf_cost(cost, ram_kib=64 * GIB_KIB)
    assert e.value.exit_code == EXIT_INTEGRITY


def test_kdf_cap_half_the_machine_memory() -> None:
    check_kdf_cost(KdfCost(GIB_KIB, 3, 4), ram_kib=2 * GIB_KIB)
    with pytest.raises(
        KdfTooCostlyError, match=r"more than half of the .* MiB of memory this process may use"
    ):
        check_kdf_cost(KdfCost(GIB_KIB + 1, 1, 1), ram_kib=2 * GIB_KIB)


@pytest.mark.parametrize(
    "cost",
    [
        KdfCost(8, 1, 1),
        KdfCost(256 * 1024, 3, 4),
        KdfCost(4 * GIB_KIB, 2, 16),
        KdfCost(128, 16, 16),
    ],
)
def test_kdf_caps_accept(cost: KdfCost) -> None:
    check_kdf_cost(cost, ram_kib=64 * GIB_KIB)


def test_crafted_kdf_is_refused_while_parsing_fast() -> None:
    """The cap is enforced by the header reader, before anything is derived, in < 100 ms."""
    crafted = header(pw_slot(kdf=KdfCost(2**32 - 1, 16, 16))).encode()
    start = time.perf_counter()
    with pytest.raises(KdfTooCostlyError):
        parse_header(crafted)
    assert time.perf_counter() - start < 0.1


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "a.b",
        "...",
        ".hidden",
        "dir/sub/file.pem",
        "ünïcödé/日本語/🔑",
        "name with spaces",
        "x" * 255,
        "/".join(["y" * 200] * 5),
    ],
)
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "/",
        "..",
        "../x",
        "a/../b",
        "a/..",
        ".",
        "./a",
        "a/./b",
        "a//b",
        "a/",
        "a\\b",
        "\\\\server\\share",
        "a\x00b",
        "line\nbreak",
        "tab\there",
        "del\x7f",
        "c1\x85control",
        "bidi\u202eexe.pem",
        "zero\u200bwidth",
        "line\u2028sep",
        "x" * 256,
        "/".join(["y" * 250] * 5),  # over 1024 bytes
        "\udc80",  # not encodable as UTF-8
    ],
)
def test_bad_names_are_usage_errors(name: str) -> None:
    with pytest.raises(InvalidNameError) as e:
        check_name(name)
    assert e.value.exit_code == EXIT_USAGE
    assert isinstance(e.value, LockerError)


def test_check_tree_refuses_file_and_directory_of_one_name() -> None:
    check_tree(["a/b", "a/c", "ab", "a.b/c"])
    with pytest.raises(InvalidNameError, match="would need 'a' to be a directory"):
        check_tree(["a", "a/b"])
    with pytest.raises(InvalidNameError):
        check_tree(["x/y/z", "x/y"])


# -- index ----------------------------------------------------------------------------------------


def make_entries(*specs: tuple[str, int]) -> list[Entry]:
    out, offset = [], 0
    for i, (name, size) in enumerate(specs):
        length = sealed_length(size)
        out.append(
            Entry(
                bytes([i]) * 16,
                name,
                size,
                10,
                20,
                bytes([i + 100]) * 16,
                "file",
                {},
                offset,
                length,
            )
        )
        offset += length
    return out


def sample_index() -> Index:
    return Index(
        make_entries(("a", 0), ("b/c", 70000), ("ü", 5)),
        [LogEvent(1, "init", (), "u", "h"), LogEvent(2, "add", ("a", "b/c"), "u", "h", "x")],
        {"5353535353535353": "laptop"},
        {"k": "v"},
    )


def data_length(index: Index) -> int:
    return sum(e.length for e in index.entries)


def test_sealed_length() -> None:
    assert sealed_length(0) == 16
    assert sealed_length(1) == 17
    assert sealed_length(65536) == 65536 + 16
    assert sealed_length(65537) == 65537 + 32
    assert sealed_length(3 * 65536) == 3 * 65536 + 48


def test_index_round_trip_and_canonical() -> None:
    index = sample_index()
    raw = encode_index(index)
    assert raw == index_mod.canonical_json(json.loads(raw))
    assert decode_index(raw, data_length(index)) == index


def _mutate(mutator) -> bytes:  # type: ignore[no-untyped-def]
    obj = json.loads(encode_index(sample_index()))
    mutator(obj)
    return index_mod.canonical_json(obj)


@pytest.mark.parametrize(
    ("mutator", "message"),
    [
        (lambda o: o.update(extra=1), "exactly the fields"),
        (lambda o: o["entries"][0].pop("attrs"), "exactly the fields"),
        (lambda o: o["entries"][0].update(size=-1), "size"),
        (lambda o: o["entries"][0].update(size=True), "size"),
        (lambda o: o["entries"][0].update(size=1.0), "size"),
        (lambda o: o["entries"][0].update(id="00" * 15), "id"),
        (lambda o: o["entries"][0].update(id="AA" * 16), "id"),
        (lambda o: o["entries"][0].update(salt="zz" * 16), "salt"),
        (lambda o: o["entries"][0].update(name="../x"), "unsafe name"),
        (lambda o: o["entries"][0].update(name="/abs"), "unsafe name"),
        (lambda o: o["entries"][1].update(name="a"), "name order"),
        (lambda o: o["entries"][1].update(name="0"), "name order"),
        (lambda o: o["entries"][1].update(offset=0), "does not start"),
        (lambda o: o["entries"][1].update(length=1), "does not start|ciphertext length"),
        (lambda o: o["entries"][2].update(length=99), "ciphertext length"),
        (lambda o: o["entries"][2].update(id=o["entries"][0]["id"]), "share one id"),
        (lambda o: o["entries"][0].update(attrs={"k": 1}), "attrs"),
        (lambda o: o["log"][0].update(names="a"), "names"),
        (lambda o: o["log"].extend([o["log"][0]] * 1000), "more than 1000"),
        (lambda o: o.update(entries={}), "lists"),
    ],
)
def test_index_validation(mutator, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FormatError, match=message):
        decode_index(_mutate(mutator), data_length(sample_index()))


def test_index_file_and_directory_conflict() -> None:
    index = Index(make_entries(("a", 1), ("a/b", 1)))
    with pytest.raises(FormatError, match="conflicting names"):
        decode_index(encode_index(index), data_length(index))


def test_index_must_be_canonical() -> None:
    raw = encode_index(sample_index())
    pretty = json.dumps(json.loads(raw), indent=1).encode()
    for bad in (pretty, raw + b" ", b" " + raw, raw.replace(b'"entries"', b'"entries" ', 1)):
        with pytest.raises(FormatError, match=r"canonical|JSON"):
            decode_index(bad, data_length(sample_index()))
    with pytest.raises(FormatError, match="UTF-8 JSON"):
        decode_index(b"\xff" + raw, data_length(sample_index()))


def test_index_data_section_length_must_match() -> None:
    raw = encode_index(sample_index())
    n = data_length(sample_index())
    with pytest.raises(FormatError, match="trailing data"):
        decode_index(raw, n + 1)
    with pytest.raises(FormatError, match="truncated"):
        decode_index(raw, n - 1)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_decode_index_on_garbage_raises_only_format_errors(data: bytes) -> None:
    with contextlib.suppress(FormatError):
        decode_index(data, 0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_decode_index_on_structured_garbage(data: st.DataObject) -> None:
    """Replace one field anywhere in a valid index by an arbitrary JSON value."""
    obj = json.loads(encode_index(sample_index()))
    target = data.draw(st.sampled_from(["root", "entry", "log"]))
    holder = {"root": obj, "entry": obj["entries"][1], "log": obj["log"][1]}[target]
    key = data.draw(st.sampled_from(sorted(holder)))
    holder[key] = data.draw(json_values)
    raw = index_mod.canonical_json(obj)
    try:
        decoded = decode_index(raw, data_length(sample_index()))
    except FormatError:
        return
    assert encode_index(decoded) == raw


def test_kdf_cost_of_parsed_slot_is_checked() -> None:
    ok = header(pw_slot(kdf=KdfCost(8, 1, 1)))
    assert parse_header(ok.encode()) == ok
    for bad in (KdfCost(0, 1, 1), KdfCost(8192, 17, 1), KdfCost(5 * GIB_KIB, 1, 1)):
        with pytest.raises(KdfTooCostlyError):
            parse_header(header(pw_slot(kdf=bad)).encode())
