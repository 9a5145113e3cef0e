"""What the vault holds, from the facts in its index alone (no entry is decrypted): expiry,
key age, and which key pairs with which certificate, computed from public key hashes.

`report(entries, now, ...)` gives one `Item` per recognised entry, soonest expiry first; the
CLI prints it as a table (`HEADINGS`, `cells`, `summary`: the TUI shows the same one), JSON
or node_exporter textfile metrics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from locker.know.facts import MAX_RECOGNISED_SIZE, Facts, decode, describe
from locker.store.index import Entry, LogEvent
from locker.text import iso_time, plural

DAY = 86400
KEY_TYPES = ("private-key", "ssh-private-key", "pkcs12", "jwk", "jwks", "secret")


@dataclass
class Item:
    name: str
    type: str
    what: str
    not_after: int | None = None  # the soonest expiry of any certificate in the entry
    key_since: int | None = None  # when the private key's content last changed
    pairs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    attention: list[str] = field(default_factory=list)  # why cron should hear about it

    def days_left(self, now: float) -> int | None:
        return None if self.not_after is None else int((self.not_after - now) // DAY)

    def key_age_days(self, now: float) -> int | None:
        return None if self.key_since is None else int((now - self.key_since) // DAY)


def _private_spkis(facts: Facts) -> set[str]:
    keys = (facts.get("keys") or []) + (facts.get("jwks") or [])
    return {k["spki"] for k in keys if k.get("private") and "spki" in k}


def _public_spkis(facts: Facts) -> set[str]:
    """Public halves that a private key pairs with: leaf certificates, CSRs, public keys."""
    found = set()
    certs = facts.get("certs") or []
    if certs and facts["type"] != "kubeconfig":
        found.add(certs[0]["spki"])
    found.update(c["spki"] for c in facts.get("csrs") or [])
    keys = (facts.get("keys") or []) + (facts.get("jwks") or [])
    found.update(k["spki"] for k in keys if not k.get("private") and "spki" in k)
    return found


def _holds_private_key(facts: Facts) -> bool:
    keys = (facts.get("keys") or []) + (facts.get("jwks") or [])
    return facts["type"] in KEY_TYPES and (
        any(k.get("private") for k in keys) or facts["type"] in ("pkcs12", "secret")
    )


def report(
    entries: Iterable[Entry], now: float, expiring_within: int = 30, rotate_after: int = 365
) -> list[Item]:
    """One item per recognised entry, soonest expiry first, then by name."""
    known = [(e, f) for e in entries if (f := decode(e.attrs)) is not None]
    private_by_spki: dict[str, list[str]] = {}
    public_by_spki: dict[str, list[str]] = {}
    for e, f in known:
        for s in _private_spkis(f):
            private_by_spki.setdefault(s, []).append(e.name)
        for s in _public_spkis(f):
            public_by_spki.setdefault(s, []).append(e.name)
    issuers = {
        c["issuer"] for _, f in known for c in f.get("certs") or [] if c["issuer"] != c["subject"]
    }
    items = []
    for e, f in known:
        item = Item(e.name, f["type"], describe(f))
        if f.get("encrypted") or any(k.get("encrypted") for k in f.get("keys") or []):
            item.notes.append("encrypted")
        own_private, own_public = _private_spkis(f), _public_spkis(f)
        partners = {n for s in own_private for n in public_by_spki.get(s, [])}
        partners |= {n for s in own_public for n in private_by_spki.get(s, [])}
        partners.discard(e.name)
        item.pairs = sorted(partners)
        if own_private & own_public:
            item.notes.append("key and certificate in one file")
        _pairing_notes(item, f, own_private, own_public, issuers)
        certs = f.get("certs") or []
        if certs:
            item.not_after = min(c["not_after"] for c in certs)
            days = (item.not_after - now) / DAY
            if days < 0:
                item.attention.append("expired")
            elif days <= expiring_within:
                item.attention.append(f"expires in {int(days)} days")
        if _holds_private_key(f):
            item.key_since = e.modified
            age = (now - e.modified) / DAY
            if age > rotate_after:
                item.attention.append(f"key is {int(age)} days old")
        items.append(item)
    return _side_by_side(items)


def _side_by_side(items: list[Item]) -> list[Item]:
    """Soonest expiry first; a key without an expiry of its own sits right under its pair."""
    far = float("inf")
    by_name = {i.name: i for i in items}

    def order(i: Item) -> tuple[float, str, int, str]:
        if i.not_after is None:
            dated = [by_name[p] for p in i.pairs if by_name[p].not_after is not None]
            if dated:
                lead = min(dated, key=lambda p: (p.not_after, p.name))
                return (float(lead.not_after or 0), lead.name, 1, i.name)
        return (i.not_after if i.not_after is not None else far, i.name, 0, "")

    return sorted(items, key=order)


def _pairing_notes(
    item: Item, f: Facts, own_private: set[str], own_public: set[str], issuers: set[str]
) -> None:
    """A certificate without its key, a key without its certificate. A CA certificate that
    issued others held here needs no key in the vault."""
    if item.pairs or own_private & own_public:
        return
    certs = f.get("certs") or []
    issuing_ca = bool(certs) and certs[0]["ca"] and certs[0]["subject"] in issuers
    if f["type"] in ("certificate", "certificate-chain") and certs and not issuing_ca:
        item.notes.append("its key is not in the vault")
    elif f["type"] == "private-key" and own_private:
        item.notes.append("no certificate for this key")


HEADINGS = ("EXPIRES", "DAYS", "NAME", "WHAT", "PAIRED WITH", "NOTES")


def cells(item: Item, now: float) -> tuple[str, str, str, str, str, str]:
    """One row of the inspect table, in the order of HEADINGS (text as held: not escaped)."""
    expires = iso_time(item.not_after)[:10] if item.not_after is not None else "-"
    days = item.days_left(now)
    notes = [*(f"! {a}" for a in item.attention), *item.notes]
    return (
        expires,
        str(days) if days is not None else "-",
        item.name,
        f"{item.type}: {item.what}" if item.what else item.type,
        ", ".join(item.pairs) or "-",
        "; ".join(notes),
    )


def summary(items: list[Item], total: int) -> str:
    """The line under the table; what to say when nothing is recognised."""
    if not items:
        return f"nothing recognised among {total} entries (keys, certificates, JWKs, env files)"
    flagged = sum(1 for i in items if i.attention)
    return f"{len(items)} recognised, {total - len(items)} plain files; {flagged} need attention"


def unrecognised(entries: Iterable[Entry], log: Iterable[LogEvent]) -> list[str]:
    """The entries `inspect --refresh` may still recognise: small enough, without facts, and
    saved before this vault's first entry that was recognised as it was written (so, it seems,
    before its writer recorded facts), and after its last refresh (which looked at them all).

    A plain file has no facts either and the format cannot say which is which; this is the
    guess from the index and the log alone. A plain file saved before anything was recognised
    stays in it until a refresh that recognises something is logged.
    """
    entries = list(entries)
    refreshed_at: dict[str, int] = {}  # when a refresh last gave each name its facts
    last_refresh = None
    for event in log:
        if event.event == "refresh":
            last_refresh = max(event.time, last_refresh or event.time)
            for name in event.names:
                refreshed_at[name] = max(event.time, refreshed_at.get(name, event.time))
    at_write = [
        e.modified
        for e in entries
        if decode(e.attrs) is not None and e.modified > refreshed_at.get(e.name, e.modified - 1)
    ]
    since = min(at_write, default=None)
    return [
        e.name
        for e in entries
        if decode(e.attrs) is None
        and e.size <= MAX_RECOGNISED_SIZE
        and (last_refresh is None or e.modified > last_refresh)
        and (since is None or e.modified < since)
    ]


def refresh_hint(names: list[str]) -> str | None:
    """What `inspect` says under its table about `unrecognised` entries, if there are any."""
    if not names:
        return None
    return (
        f"{plural(len(names), 'entry', 'entries')} may have been saved before locker recorded "
        "facts: 'locker inspect --refresh' recognises them"
    )


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(items: list[Item], now: float) -> str:
    """node_exporter textfile metrics: entry names and numbers, never content."""
    out: list[str] = []

    def family(metric: str, help_text: str, rows: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {metric} {help_text}")
        out.append(f"# TYPE {metric} gauge")
        out.extend(f'{metric}{{name="{_label(name)}"}} {value:.0f}' for name, value in rows)

    family(
        "locker_cert_not_after_seconds",
        "Unix time at which the soonest-expiring certificate in the entry expires.",
        [(i.name, i.not_after) for i in items if i.not_after is not None],
    )
    family(
        "locker_key_age_seconds",
        "Seconds since the private key or secret in the entry last changed.",
        [(i.name, now - i.key_since) for i in items if i.key_since is not None],
    )
    family(
        "locker_attention",
        "1 if the entry expires soon, has expired or is overdue for rotation, else 0.",
        [(i.name, 1 if i.attention else 0) for i in items],
    )
    out.append("# HELP locker_inspect_timestamp_seconds When this file was written.")
    out.append("# TYPE locker_inspect_timestamp_seconds gauge")
    out.append(f"locker_inspect_timestamp_seconds {now:.0f}")
    return "\n".join(out) + "\n"
