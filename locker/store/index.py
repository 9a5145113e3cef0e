"""The encrypted index (formats 1 and 2): every entry's name, size, times and place in the
file, and the audit log. Canonical JSON, strictly validated after it decrypts.

Pure data: no cryptography here. docs/FORMAT.md specifies it.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, NamedTuple

from locker.errors import FormatError, InvalidNameError, LockerError
from locker.store.format import (
    DATA_AREA_START,
    ID_SIZE,
    MAX_INDEX_SIZE,
    SALT_SIZE,
    SLOT_ID_SIZE,
    TAG_SIZE,
    check_name,
    check_tree,
)

MAX_LOG_EVENTS = 1000
MAX_LOG_NAMES = 100  # names a writer keeps per log event; the event's detail counts the rest
MAX_LOG_BYTES = 8 * 1024 * 1024  # a writer keeps the newest events that fit in this much JSON
MAX_INDEX_PLAINTEXT = MAX_INDEX_SIZE - TAG_SIZE


class Entry:
    """What the index knows about one entry. offset/length locate its STREAM in the data section."""

    __slots__ = (
        "attrs",
        "content_salt",
        "created",
        "entry_id",
        "kind",
        "length",
        "modified",
        "name",
        "offset",
        "size",
    )

    def __init__(
        self,
        entry_id: bytes,
        name: str,
        size: int,
        created: int,
        modified: int,
        content_salt: bytes,
        kind: str = "file",
        attrs: dict[str, str] | None = None,
        offset: int = 0,
        length: int = 0,
    ) -> None:
        self.entry_id = entry_id
        self.name = name
        self.size = size
        self.created = created
        self.modified = modified
        self.content_salt = content_salt
        self.kind = kind
        self.attrs: dict[str, str] = {} if attrs is None else attrs
        self.offset = offset
        self.length = length

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in Entry.__slots__)

    def __eq__(self, other: object) -> bool:
        return self._values() == other._values() if isinstance(other, Entry) else NotImplemented

    def __repr__(self) -> str:
        return "Entry(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in Entry.__slots__) + ")"

    def copy(self) -> Entry:
        """A copy whose fields can be set; `attrs` is the same dict (replace it, never change it
        in place)."""
        return Entry(
            self.entry_id,
            self.name,
            self.size,
            self.created,
            self.modified,
            self.content_salt,
            self.kind,
            self.attrs,
            self.offset,
            self.length,
        )


class LogEvent(NamedTuple):
    time: int
    event: str
    names: tuple[str, ...] = ()
    user: str = ""
    host: str = ""
    detail: str = ""


class Placement(NamedTuple):
    """Where a v2 index may put entries: the file's size and the index's own byte range."""

    file_size: int
    index_offset: int
    index_length: int


class IndexAt(NamedTuple):
    """Where a v2 writer puts a new index: at `offset`, the last bytes of the file."""

    offset: int


class Index:
    """The decrypted index: entries in name order, the audit log, slot labels, settings."""

    __slots__ = ("entries", "log", "settings", "slot_labels")

    def __init__(
        self,
        entries: list[Entry] | None = None,
        log: list[LogEvent] | None = None,
        slot_labels: dict[str, str] | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.entries: list[Entry] = [] if entries is None else entries
        self.log: list[LogEvent] = [] if log is None else log
        self.slot_labels: dict[str, str] = {} if slot_labels is None else slot_labels
        self.settings: dict[str, str] = {} if settings is None else settings

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Index):
            return NotImplemented
        mine = (self.entries, self.log, self.slot_labels, self.settings)
        return mine == (other.entries, other.log, other.slot_labels, other.settings)


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _entry_json(e: Entry) -> dict[str, Any]:
    return {
        "id": e.entry_id.hex(),
        "name": e.name,
        "kind": e.kind,
        "size": e.size,
        "created": e.created,
        "modified": e.modified,
        "salt": e.content_salt.hex(),
        "offset": e.offset,
        "length": e.length,
        "attrs": e.attrs,
    }


def _event_json(ev: LogEvent) -> dict[str, Any]:
    return {
        "time": ev.time,
        "event": ev.event,
        "names": list(ev.names),
        "user": ev.user,
        "host": ev.host,
        "detail": ev.detail,
    }


def encode_index(index: Index) -> bytes:
    """Serialise entries in name order with contiguous offsets (the caller lays out data so)."""
    return canonical_json(
        {
            "entries": [_entry_json(e) for e in index.entries],
            "log": [_event_json(ev) for ev in index.log],
            "slots": index.slot_labels,
            "settings": index.settings,
        }
    )


def log_event(
    time: int, event: str, names: tuple[str, ...], user: str, host: str, detail: str
) -> LogEvent:
    """A log event as a writer records it: at most MAX_LOG_NAMES names, the rest counted.

    Without the cap, 67 saves that each name 1000 long names (`add --force` from cron) would
    grow the log past what the index may hold.
    """
    if len(names) > MAX_LOG_NAMES:
        count = f"{len(names)} names, the first {MAX_LOG_NAMES} listed"
        detail = f"{detail}; {count}" if detail else count
        names = names[:MAX_LOG_NAMES]
    return LogEvent(time, event, names, user, host, detail)


def trim_log(log: list[LogEvent]) -> list[LogEvent]:
    """The newest events a writer keeps: at most MAX_LOG_EVENTS, at most MAX_LOG_BYTES of JSON."""
    kept: list[LogEvent] = []
    size = 0
    for ev in reversed(log[-MAX_LOG_EVENTS:]):
        size += len(canonical_json(_event_json(ev))) + 1
        if size > MAX_LOG_BYTES and kept:
            break
        kept.append(ev)
    kept.reverse()
    return kept


def encode_for_writing(index: Index, data_section_length: int | IndexAt) -> bytes:
    """Encode `index` for a save, refusing what a reader would refuse to read.

    The log is trimmed first (trim_log); then the encoding is checked against the reader's
    size cap and decoded again by the reader's own validation, before any file is made.
    """
    index.log = trim_log(index.log)
    plain = encode_index(index)
    if len(plain) > MAX_INDEX_PLAINTEXT:
        raise LockerError(
            f"the vault's index would be {len(plain) / 2**20:.1f} MiB, over the "
            f"{MAX_INDEX_PLAINTEXT // 2**20} MiB every reader accepts; nothing was saved",
            hint="remove entries or use shorter names",
        )
    if isinstance(data_section_length, IndexAt):
        at, length = data_section_length.offset, len(plain) + TAG_SIZE
        where: int | Placement = Placement(at + length, at, length)
    else:
        where = data_section_length
    try:
        decode_index(plain, where)
    except FormatError as exc:
        raise LockerError(f"refusing to save a vault no reader would open: {exc}") from None
    return plain


def _want(obj: Any, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or obj.keys() != keys:
        raise FormatError(f"index {what} does not have exactly the fields {sorted(keys)}")
    return obj


def _int(v: Any, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise FormatError(f"index field {what} is not an integer in range")
    return v


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise FormatError(f"index field {what} is not a string")
    return v


_LOWER_HEX = frozenset("0123456789abcdef")


def _hex(v: Any, size: int, what: str) -> bytes:
    s = _str(v, what)
    if len(s) != 2 * size or not _LOWER_HEX.issuperset(s):
        raise FormatError(f"index field {what} is not {size} bytes of lower-case hex")
    return bytes.fromhex(s)


def _str_map(v: Any, what: str) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise FormatError(f"index field {what} is not a map of strings")
    return dict(v)


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
# The shortest an entry's JSON can be (1-byte name, kind "", an empty entry's one tag, every
# other number one digit), with the comma before the next entry.
_MIN_ENTRY_JSON = 1 + len(
    canonical_json(
        _entry_json(Entry(bytes(ID_SIZE), "a", 0, 0, 0, bytes(SALT_SIZE), "", length=TAG_SIZE))
    )
)


def max_containers(index_size: int) -> int:
    """The most JSON objects and arrays an index of `index_size` bytes can hold and be valid:
    the root and its four members, and two per entry (itself, attrs) and per log event
    (itself, names)."""
    return 5 + 2 * (index_size // _MIN_ENTRY_JSON) + 2 * MAX_LOG_EVENTS


def check_parse_cost(data: bytes) -> None:
    """Refuse, before json.loads, an index with more objects and arrays than a valid one of
    its size can hold: empty containers cost json.loads 20 to 30 bytes of memory per byte
    of input (over 1 GiB for a 64 MiB index), every other value at most about 13.

    Brackets inside strings (names may hold them) are not counted: only when the quick
    count over all bytes is over the limit are the strings taken out and the count made again.
    """
    limit = max_containers(len(data))
    if data.count(b"{") + data.count(b"[") <= limit:
        return
    outside = _STRING.sub(b"", data)
    if outside.count(b"{") + outside.count(b"[") > limit:
        raise FormatError(
            f"index holds more objects and lists than {limit}, the most an index of "
            f"{len(data)} bytes can hold"
        )


def decode_index(data: bytes, data_section_length: int | Placement) -> Index:
    """Parse and validate a decrypted index against the data section it describes: a v1 data
    section's length, or a v2 file's Placement (FORMAT.md section 19)."""
    placement = data_section_length if isinstance(data_section_length, Placement) else None
    length = data_section_length if isinstance(data_section_length, int) else 0
    check_parse_cost(data)
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FormatError("index is not valid UTF-8 JSON") from None
    try:
        canonical = canonical_json(obj)
    except UnicodeEncodeError:  # a lone surrogate escaped as \ud800
        raise FormatError("index holds a string that is not valid Unicode") from None
    if canonical != data:
        raise FormatError("index is not in canonical form")
    top = _want(obj, {"entries", "log", "slots", "settings"}, "root")
    if not isinstance(top["entries"], list) or not isinstance(top["log"], list):
        raise FormatError("index entries and log must be lists")
    entry_keys = {
        "id",
        "name",
        "kind",
        "size",
        "created",
        "modified",
        "salt",
        "offset",
        "length",
        "attrs",
    }
    entries: list[Entry] = []
    offset = 0
    for raw in top["entries"]:
        d = _want(raw, entry_keys, "entry")
        e = Entry(
            entry_id=_hex(d["id"], ID_SIZE, "id"),
            name=_str(d["name"], "name"),
            size=_int(d["size"], "size"),
            created=_int(d["created"], "created", -(2**62), 2**62),
            modified=_int(d["modified"], "modified", -(2**62), 2**62),
            content_salt=_hex(d["salt"], SALT_SIZE, "salt"),
            kind=_str(d["kind"], "kind"),
            attrs=_str_map(d["attrs"], "attrs"),
            offset=_int(d["offset"], "offset"),
            length=_int(d["length"], "length"),
        )
        try:
            check_name(e.name)
        except InvalidNameError as exc:
            raise FormatError(f"index holds an unsafe name: {exc}") from None
        if entries and e.name <= entries[-1].name:
            raise FormatError("index entries are not in strictly increasing name order")
        if placement is None and e.offset != offset:
            raise FormatError(f"entry {e.name!r} does not start where the previous one ends")
        if e.length != sealed_length(e.size):
            raise FormatError(
                f"entry {e.name!r} has a ciphertext length that does not match its size"
            )
        offset += e.length
        entries.append(e)
    if placement is not None:
        check_placement(entries, placement)
    elif offset != data_section_length:
        raise FormatError(
            "data section length does not match the index "
            + ("(trailing data after the last entry)" if offset < length else "(truncated)")
        )
    if len({e.entry_id for e in entries}) != len(entries):
        raise FormatError("two entries share one id")
    try:
        check_tree([e.name for e in entries])
    except InvalidNameError as exc:
        raise FormatError(f"index holds conflicting names: {exc}") from None
    log = [decode_log_event(raw) for raw in top["log"]]
    if len(log) > MAX_LOG_EVENTS:
        raise FormatError(f"index log holds more than {MAX_LOG_EVENTS} events")
    labels = _str_map(top["slots"], "slots")
    for key in labels:
        _hex(key, SLOT_ID_SIZE, "slots key")
    return Index(entries, log, labels, _str_map(top["settings"], "settings"))


def check_placement(entries: list[Entry], placement: Placement) -> None:
    """FORMAT.md section 19: every entry inside the data area and the file, no two entries and
    no entry and the index overlapping."""
    ranges: list[tuple[int, int, str]] = [
        (placement.index_offset, placement.index_offset + placement.index_length, "the index")
    ]
    for e in entries:
        if e.offset < DATA_AREA_START or e.offset + e.length > placement.file_size:
            raise FormatError(f"entry {e.name!r} lies outside the file's data area")
        ranges.append((e.offset, e.offset + e.length, f"entry {e.name!r}"))
    ranges.sort()
    for (_, end, first), (start, _, second) in itertools.pairwise(ranges):
        if start < end:
            a, b = sorted((first, second), key=lambda what: what == "the index")
            raise FormatError(f"{a} overlaps {b}")


def encode_log_event(ev: LogEvent) -> bytes:
    return canonical_json(_event_json(ev))


def decode_log_event(raw: Any) -> LogEvent:
    """One log event from its parsed JSON, checked like every part of the index."""
    d = _want(raw, {"time", "event", "names", "user", "host", "detail"}, "log event")
    names = d["names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FormatError("index log event names are not a list of strings")
    return LogEvent(
        time=_int(d["time"], "time", -(2**62), 2**62),
        event=_str(d["event"], "event"),
        names=tuple(names),
        user=_str(d["user"], "user"),
        host=_str(d["host"], "host"),
        detail=_str(d["detail"], "detail"),
    )


CHUNK_SIZE = 64 * 1024


def sealed_length(size: int) -> int:
    """Ciphertext length of a STREAM holding `size` plaintext bytes (empty = one empty chunk)."""
    chunks = max(1, -(-size // CHUNK_SIZE))
    return size + chunks * TAG_SIZE
