"""Pure on-disk framing of formats 1 and 2: the v1 header, the v2 head and commit records, key
slots. No cryptography here.

Parsing is strict: one canonical encoding, every length checked against hard bounds before
anything is allocated or decrypted, and FormatError (not AuthenticationError) for bytes that
do not frame. docs/FORMAT.md is the specification this module implements.
"""

from __future__ import annotations

import os
import re
import struct
from typing import NamedTuple

from locker.errors import (
    FormatError,
    InvalidNameError,
    KdfTooCostlyError,
    UnsupportedVersionError,
)

MAGIC = b"\x89LKR\r\n\x1a\n"
VERSION = 2  # what a save writes
VERSION_SINCE = "0.2.0"  # the first locker release that reads VERSION
VERSION_1 = 1  # still read; its next save is a compaction that writes VERSION
BINDING_VERSION = 1  # the key wrap's own version: the same in v1 and v2 files
ID_SIZE = 16
SLOT_ID_SIZE = 8
SALT_SIZE = 16
NONCE_SIZE = 12
WRAPPED_KEY_SIZE = 48
MAC_SIZE = 32
TAG_SIZE = 16
MAX_SLOTS = 16
MAX_INDEX_SIZE = 64 * 1024 * 1024 + TAG_SIZE
MAX_NAME_BYTES = 1024
MAX_COMPONENT_BYTES = 255

SLOT_PASSPHRASE = 1
SLOT_RECOVERY = 2
SLOT_KEYFILE = 3
SLOT_KEYRING = 4
SLOT_PASSPHRASE_KEYFILE = 5
SLOT_X25519 = 6
SLOT_PKCS11 = 7


class SlotKind(NamedTuple):
    """How a slot kind frames its body: Argon2 parameters or not, and how many bytes of public,
    kind-specific data (an ephemeral key share) sit between them and the key-wrap nonce."""

    name: str
    kdf: bool
    extra: int


SLOT_KINDS = {
    SLOT_PASSPHRASE: SlotKind("passphrase", kdf=True, extra=0),
    SLOT_RECOVERY: SlotKind("recovery", kdf=False, extra=0),
    SLOT_KEYFILE: SlotKind("keyfile", kdf=False, extra=0),
    SLOT_KEYRING: SlotKind("keyring", kdf=False, extra=0),
    SLOT_PASSPHRASE_KEYFILE: SlotKind("passphrase+keyfile", kdf=True, extra=0),
    SLOT_X25519: SlotKind("x25519", kdf=False, extra=32),
    SLOT_PKCS11: SlotKind("pkcs11-p256", kdf=False, extra=65),
}
SLOT_KIND_NAMES = {code: kind.name for code, kind in SLOT_KINDS.items()}

KIB = 1024
MAX_KDF_MEMORY_KIB = 4 * 1024 * 1024  # 4 GiB
MAX_KDF_TIME = 16
MAX_KDF_PARALLELISM = 16
MAX_KDF_MEMORY_TIME_KIB = 8 * 1024 * 1024  # memory x time <= 8 GiB
MAX_KDF_TOTAL_WORK_KIB = 2 * MAX_KDF_MEMORY_TIME_KIB  # summed over all passphrase slots

_PREFIX = struct.Struct(">8sHH16sB")  # magic, version, flags, container id, slot count
_SLOT_HEAD = struct.Struct(">BB8sH")  # kind, reserved, slot id, body length
_KDF = struct.Struct(">III")  # memory KiB, time, parallelism
_TRAILER = struct.Struct(">12sQ")  # index nonce, index length


def slot_body_size(kind: int) -> int:
    """The fixed body length of a slot kind (docs/FORMAT.md, section 3)."""
    k = SLOT_KINDS[kind]
    return 1 + SALT_SIZE + (_KDF.size if k.kdf else 0) + k.extra + NONCE_SIZE + WRAPPED_KEY_SIZE


MAX_HEADER_SIZE = (
    _PREFIX.size
    + MAX_SLOTS * (_SLOT_HEAD.size + max(slot_body_size(k) for k in SLOT_KINDS))
    + _TRAILER.size
    + MAC_SIZE
)

# Version 2 (docs/FORMAT.md, sections 17 to 22)
HEAD_SIZE = 4096
RECORD_OFFSETS = (4096, 8192)  # record A, record B
RECORD_BLOCK_SIZE = 4096
DATA_AREA_START = 12288
_RECORD = struct.Struct(">QQQ12s")  # generation, index offset, index length, index nonce
RECORD_SIZE = _RECORD.size + MAC_SIZE  # 68
MAX_GENERATION = 2**64 - 1
RECORD_NAMES = ("A", "B")


class KdfCost(NamedTuple):
    """Argon2id parameters as stored in a passphrase slot (memory in KiB)."""

    memory_kib: int
    time_cost: int
    parallelism: int


class Slot(NamedTuple):
    """One wrapping of the master key. `kdf` is set for the kinds that run Argon2id; `extra`
    holds a kind's public data (the ephemeral share of an x25519 or pkcs11-p256 slot)."""

    kind: int
    slot_id: bytes
    salt: bytes
    nonce: bytes
    wrapped_key: bytes
    kdf: KdfCost | None = None
    extra: bytes = b""

    def binding(self, container_id: bytes) -> bytes:
        """AAD for the key wrap: everything about the slot except the wrapped key itself."""
        return MAGIC + struct.pack(">H", BINDING_VERSION) + container_id + _slot_without_key(self)


class Head:
    """What a v2 file's first 4096 bytes hold (and what both versions' keys depend on): the
    container id and the key slots. Never rewritten in place."""

    __slots__ = ("container_id", "slots")

    def __init__(self, container_id: bytes, slots: tuple[Slot, ...]) -> None:
        self.container_id = container_id
        self.slots = slots

    def _values(self) -> tuple[object, ...]:
        return (self.container_id, self.slots)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Head) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._values()!r}"

    def encode(self) -> bytes:
        """The v2 head: magic, version 2, flags, container id, slots, zero padding to 4096."""
        out = _PREFIX.pack(MAGIC, VERSION, 0, self.container_id, len(self.slots))
        out += b"".join(_encode_slot(slot) for slot in self.slots)
        if len(out) > HEAD_SIZE:
            raise ValueError("head over 4096 bytes")
        return out + bytes(HEAD_SIZE - len(out))


class Header(Head):
    """A version 1 header: the head's fields, then the index nonce and length, and the MAC."""

    __slots__ = ("index_length", "index_nonce", "mac")

    def __init__(
        self,
        container_id: bytes,
        slots: tuple[Slot, ...],
        index_nonce: bytes = b"",
        index_length: int = 0,
        mac: bytes = b"",
    ) -> None:
        super().__init__(container_id, slots)
        self.index_nonce = index_nonce
        self.index_length = index_length
        self.mac = mac

    def _values(self) -> tuple[object, ...]:
        return (*super()._values(), self.index_nonce, self.index_length, self.mac)

    def without_mac(self) -> bytes:
        """The exact bytes the header MAC covers: everything written before it."""
        out = [_PREFIX.pack(MAGIC, VERSION_1, 0, self.container_id, len(self.slots))]
        out += [_encode_slot(slot) for slot in self.slots]
        out.append(_TRAILER.pack(self.index_nonce, self.index_length))
        return b"".join(out)

    def encode(self) -> bytes:
        if len(self.mac) != MAC_SIZE:
            raise ValueError("header MAC not set")
        return self.without_mac() + self.mac

    @property
    def size(self) -> int:
        return len(self.without_mac()) + MAC_SIZE


def _slot_without_key(slot: Slot) -> bytes:
    kind = SLOT_KINDS[slot.kind]
    body = bytes([SALT_SIZE]) + slot.salt
    if kind.kdf:
        if slot.kdf is None:
            raise ValueError(f"{kind.name} slot without KDF parameters")
        body += _KDF.pack(slot.kdf.memory_kib, slot.kdf.time_cost, slot.kdf.parallelism)
    if len(slot.extra) != kind.extra:
        raise ValueError(f"{kind.name} slot needs {kind.extra} bytes of public data")
    body += slot.extra + slot.nonce
    length = len(body) + WRAPPED_KEY_SIZE
    return _SLOT_HEAD.pack(slot.kind, 0, slot.slot_id, length) + body


def _encode_slot(slot: Slot) -> bytes:
    return _slot_without_key(slot) + slot.wrapped_key


def machine_memory_kib() -> int:
    """Memory this process may use: physical memory, lowered by `ulimit -v` (RLIMIT_AS) and
    by the cgroup v2 `memory.max` of the process's cgroup, whichever is least."""
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        limit = MAX_KDF_MEMORY_KIB * 2 * KIB
    for other in (_rlimit_as(), _cgroup_memory_max()):
        if other is not None:
            limit = min(limit, other)
    return limit // KIB


def _rlimit_as() -> int | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def _cgroup_memory_max() -> int | None:
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            path = next((line[3:].strip() for line in f if line.startswith("0::")), None)
        if path is None:
            return None
        with open(f"/sys/fs/cgroup{path}/memory.max", encoding="ascii") as f:
            value = f.read().strip()
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return int(value) if value.isdigit() else None


def mib(kib: int) -> str:
    """A KiB count in MiB, exactly: `4096 MiB + 1 KiB`, never a rounded `4096 MiB`."""
    whole, rest = divmod(kib, KIB)
    return f"{whole} MiB + {rest} KiB" if rest else f"{whole} MiB"


def check_kdf_cost(cost: KdfCost, ram_kib: int | None = None) -> None:
    """Refuse Argon2 parameters that are zero or could exhaust the machine. Pure arithmetic."""
    ram = machine_memory_kib() if ram_kib is None else ram_kib
    m, t, p = cost.memory_kib, cost.time_cost, cost.parallelism
    if m == 0 or t == 0 or p == 0:
        raise KdfTooCostlyError("key slot has a zero Argon2 parameter: the file is corrupt")
    within_static_caps = (
        t <= MAX_KDF_TIME and p <= MAX_KDF_PARALLELISM and m * t <= MAX_KDF_MEMORY_TIME_KIB
    )
    if MAX_KDF_MEMORY_KIB >= m > ram // 2 and within_static_caps:
        raise KdfTooCostlyError(
            f"this vault needs {mib(m)} for Argon2, more than half of the {ram // KIB} MiB "
            "of memory this process may use",
            hint="open it on a machine with more memory, then 'locker passwd --kdf-memory' lower",
        )
    limit = MAX_KDF_MEMORY_KIB
    problems = []
    if m > limit:
        problems.append(f"memory {mib(m)} exceeds the cap of {mib(limit)}")
    if t > MAX_KDF_TIME:
        problems.append(f"time cost {t} exceeds the cap of {MAX_KDF_TIME}")
    if p > MAX_KDF_PARALLELISM:
        problems.append(f"parallelism {p} exceeds the cap of {MAX_KDF_PARALLELISM}")
    if m * t > MAX_KDF_MEMORY_TIME_KIB:
        problems.append(
            f"memory x time ({mib(m)} x {t}) exceeds the cap of {mib(MAX_KDF_MEMORY_TIME_KIB)}"
        )
    if problems:
        raise KdfTooCostlyError(
            "refusing to derive a key: " + "; ".join(problems),
            hint="the file was crafted or corrupted; locker never writes such parameters",
        )
    if m < 8 * p:
        raise KdfTooCostlyError(
            "key slot's Argon2 memory is below 8 KiB per lane: the file is corrupt"
        )


class _Reader:
    """Bounds-checked cursor over a byte string."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise FormatError(f"container is truncated inside the {what}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def read_version(data: bytes) -> int:
    """The format version of the file starting with `data`: magic, then 1 or 2, else raise
    (as soon as the version's two bytes are there, before anything else is checked)."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise FormatError("not a locker container (bad magic bytes)")
    if len(data) < len(MAGIC) + 2:
        raise FormatError("container is truncated inside the header")
    version = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 2], "big")
    if version not in (VERSION_1, VERSION):
        raise UnsupportedVersionError(
            f"container format version {version} is not supported "
            f"(this locker reads versions {VERSION_1} and {VERSION})",
            hint="open it with the locker release that wrote it" if version > VERSION else None,
        )
    return version


def parse_header(data: bytes) -> Header:
    """Parse a version 1 header from the start of `data` (which may run on past it)."""
    r = _Reader(data)
    if read_version(data) != VERSION_1:
        raise FormatError("not a version 1 header")
    container_id, slots = _parse_slots(r)
    nonce, index_length = _TRAILER.unpack(r.take(_TRAILER.size, "header"))
    if not TAG_SIZE < index_length <= MAX_INDEX_SIZE:
        raise FormatError(f"index length {index_length} is out of bounds")
    mac = r.take(MAC_SIZE, "header MAC")
    return Header(container_id, slots, nonce, index_length, mac)


def parse_head(data: bytes) -> Head:
    """Parse a version 2 head: the first HEAD_SIZE bytes of `data`."""
    if read_version(data) != VERSION:
        raise FormatError("not a version 2 head")
    if len(data) < HEAD_SIZE:
        raise FormatError("container is truncated inside the head")
    r = _Reader(data[:HEAD_SIZE])
    container_id, slots = _parse_slots(r)
    if any(data[r.pos : HEAD_SIZE]):
        raise FormatError("the head's padding after the key slots is not zero")
    return Head(container_id, slots)


def _parse_slots(r: _Reader) -> tuple[bytes, tuple[Slot, ...]]:
    """Prefix and key slots, as both versions frame them."""
    _magic, _version, flags, container_id, count = _PREFIX.unpack(r.take(_PREFIX.size, "header"))
    if flags != 0:
        raise FormatError(f"header flags {flags:#06x} are not defined")
    if not 1 <= count <= MAX_SLOTS:
        raise FormatError(f"header declares {count} key slots (1 to {MAX_SLOTS} allowed)")
    slots = tuple(_parse_slot(r) for _ in range(count))
    work = sum(s.kdf.memory_kib * s.kdf.time_cost for s in slots if s.kdf is not None)
    if work > MAX_KDF_TOTAL_WORK_KIB:
        raise KdfTooCostlyError(
            "refusing to derive keys: the passphrase slots together exceed 16 GiB x passes of Argon2 work",
            hint="the file was crafted or corrupted; locker never writes such parameters",
        )
    if len({s.slot_id for s in slots}) != len(slots):
        raise FormatError("two key slots share one slot id")
    return container_id, slots


class Record(NamedTuple):
    """A v2 commit record: one generation and where its index lies, with the MAC binding them
    to the head. In a v1 file the header's index fields make the one record (generation 0)."""

    generation: int
    index_offset: int
    index_length: int
    index_nonce: bytes
    mac: bytes = b""

    def fields(self) -> bytes:
        """The 36 bytes the record MAC covers after the head."""
        return _RECORD.pack(self.generation, self.index_offset, self.index_length, self.index_nonce)

    def encode(self) -> bytes:
        if len(self.mac) != MAC_SIZE:
            raise ValueError("record MAC not set")
        return self.fields() + self.mac


def parse_record(raw: bytes, file_size: int) -> Record | None:
    """One record's 68 bytes: None when empty (all zero); FormatError when unusable."""
    if len(raw) != RECORD_SIZE:
        raise FormatError("container is truncated inside a commit record")
    if not any(raw):
        return None
    generation, offset, length, nonce = _RECORD.unpack(raw[: _RECORD.size])
    if generation == 0:
        raise FormatError("commit record has generation 0 but is not empty")
    if offset < DATA_AREA_START:
        raise FormatError(f"commit record's index offset {offset} is inside the head or records")
    if not TAG_SIZE < length <= MAX_INDEX_SIZE:
        raise FormatError(f"commit record's index length {length} is out of bounds")
    if offset + length > file_size:
        raise FormatError("commit record's index lies past the end of the file")
    return Record(generation, offset, length, nonce, raw[_RECORD.size :])


def usable_records(data: bytes, file_size: int) -> list[tuple[int, Record]]:
    """Steps 8 and 9 of FORMAT.md section 20: the usable records of a v2 file whose first
    DATA_AREA_START bytes are `data`, as (position, record), the higher generation first.
    FormatError when none is usable."""
    return read_records(data, file_size)[0]


Unusable = tuple[int, int, str]  # position, the generation it claims, what is wrong


def read_records(data: bytes, file_size: int) -> tuple[list[tuple[int, Record]], list[Unusable]]:
    """usable_records, and what is wrong with each record that is neither usable nor empty.

    Two usable records of one generation are returned as they are: which of them is a damaged
    record is told by their MACs (section 20, step 12), so a tie needs the key."""
    if file_size < DATA_AREA_START or len(data) < DATA_AREA_START:
        raise FormatError("container is truncated inside the commit records")
    usable: list[tuple[int, Record]] = []
    problems: list[Unusable] = []
    for pos, at in enumerate(RECORD_OFFSETS):
        raw = data[at : at + RECORD_SIZE]
        try:
            record = parse_record(raw, file_size)
        except FormatError as exc:
            problems.append((pos, int.from_bytes(raw[:8], "big"), str(exc)))
            continue
        if record is not None:
            usable.append((pos, record))
    if not usable:
        raise FormatError(
            "no usable commit record ("
            + (
                "; ".join(
                    f"commit record {RECORD_NAMES[p]} is unusable: {w}" for p, _, w in problems
                )
                if problems
                else "both are empty: no committed generation"
            )
            + ")"
        )
    return sorted(usable, key=lambda item: -item[1].generation), problems


def _parse_slot(r: _Reader) -> Slot:
    kind, reserved, slot_id, length = _SLOT_HEAD.unpack(r.take(_SLOT_HEAD.size, "key slot"))
    if kind not in SLOT_KINDS:
        raise FormatError(f"unknown key slot kind {kind}")
    if reserved != 0:
        raise FormatError("key slot reserved byte is not zero")
    expected = slot_body_size(kind)
    if length != expected:
        raise FormatError(
            f"{SLOT_KIND_NAMES[kind]} key slot has length {length}, expected {expected}"
        )
    body = _Reader(r.take(length, "key slot"))
    salt_len = body.take(1, "key slot")[0]
    if salt_len != SALT_SIZE:
        raise FormatError(f"key slot salt is {salt_len} bytes, expected {SALT_SIZE}")
    salt = body.take(SALT_SIZE, "key slot")
    kdf = None
    if SLOT_KINDS[kind].kdf:
        kdf = KdfCost(*_KDF.unpack(body.take(_KDF.size, "key slot")))
        check_kdf_cost(kdf)
    extra = body.take(SLOT_KINDS[kind].extra, "key slot")
    nonce = body.take(NONCE_SIZE, "key slot")
    wrapped = body.take(WRAPPED_KEY_SIZE, "key slot")
    return Slot(kind, slot_id, salt, nonce, wrapped, kdf, extra)


# ---------------------------------------------------------------------------------------------
# Entry names


def check_name(name: str) -> str:
    """Return `name` if it is a safe relative path with `/` separators, else raise."""
    if not name:
        raise InvalidNameError("entry name is empty")
    if "\x00" in name:
        raise InvalidNameError(f"entry name {name!r} contains a NUL byte")
    if "\\" in name:
        raise InvalidNameError(
            f"entry name {name!r} contains a backslash", hint="use / between directories"
        )
    if name.startswith("/"):
        raise InvalidNameError(f"entry name {name!r} is absolute", hint="names are relative paths")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNameError(f"entry name {name!r} is not valid UTF-8") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise InvalidNameError(f"entry name is longer than {MAX_NAME_BYTES} bytes")
    # Printable ASCII holds none of the forbidden characters (C0 controls and DEL are not
    # printable): most names skip the search below.
    plain = name.isascii() and name.isprintable()
    for part in name.split("/"):
        if part in ("", ".", ".."):
            what = "'..'" if part == ".." else "an empty or '.' component"
            raise InvalidNameError(f"entry name {name!r} contains {what}")
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise InvalidNameError(f"entry name {name!r} has a component over 255 bytes")
        if not plain and _FORBIDDEN_RE.search(part):
            raise InvalidNameError(f"entry name {name!r} contains a control character")
    return name


# The characters no name may hold, pinned here rather than read from `unicodedata`, whose
# tables change with the Python version (U+13439..U+1343F were unassigned in Python 3.11 and
# are format characters from 3.12): exactly the code points of general category Cc, Cf, Zl
# and Zp in Unicode 14.0. C0/C1 controls, DEL, line and paragraph separators, and the
# bidi/format characters that can disguise a name on a terminal. Later Unicode versions
# only added to that set, so every name any locker version wrote stays valid. FORMAT.md
# section 9 lists the same ranges.
FORBIDDEN_NAME_CHARS = (
    (0x0000, 0x001F),
    (0x007F, 0x009F),
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
_FORBIDDEN_RE = re.compile(
    "[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in FORBIDDEN_NAME_CHARS) + "]"
)


def is_forbidden_char(c: str) -> bool:
    """Whether `c` is one of FORBIDDEN_NAME_CHARS (independent of Python's Unicode tables)."""
    return _FORBIDDEN_RE.fullmatch(c) is not None


def check_tree(names: list[str]) -> None:
    """Refuse a set of names that cannot coexist as files, like `a` and `a/b`."""
    known = set(names)
    for name in names:
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in known:
                raise InvalidNameError(
                    f"entry {name!r} would need {parent!r} to be a directory, but it is a file"
                )
