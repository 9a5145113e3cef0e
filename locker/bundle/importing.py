"""Importing a protected bundle: its entries (untrusted names, checked first) staged into a
vault with their metadata and committed once, a name that exists already skipped, replaced or
renamed as the user chose.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field

from locker.errors import ExistsError, IntegrityError, LockerError
from locker.store.format import check_name, check_tree
from locker.text import plural
from locker.vault import Vault


@dataclass
class Imported:
    bundle_id: str
    added: list[tuple[str, str]] = field(default_factory=list)  # (name in bundle, name here)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _fold(name: str) -> str:
    """Names that FAT, macOS or Windows would take for the same file fold to the same key."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


def check_bundle_names(names: list[str], existing: list[str]) -> None:
    """Every name from a bundle is untrusted: refuse unsafe ones, duplicates, and names that
    differ from another (in the bundle or the vault) only in case or Unicode normalisation."""
    for name in names:
        check_name(name)
    if len(set(names)) != len(names):
        raise IntegrityError("the bundle names one entry twice; nothing was imported")
    in_bundle: dict[str, str] = {}
    in_vault: dict[str, list[str]] = {}
    for name in existing:
        in_vault.setdefault(_fold(name), []).append(name)
    for name in names:
        other = in_bundle.setdefault(_fold(name), name)
        if other == name:
            other = next((n for n in in_vault.get(_fold(name), []) if n != name), name)
        if other != name:
            raise LockerError(
                f"the bundle's entry {name!r} differs from {other!r} only in case or Unicode "
                "normalisation; nothing was imported",
                hint="rename one of them ('locker mv') and import again",
            )


def _free_name(name: str, taken: set[str]) -> str:
    candidate, n = f"{name}.imported", 1
    while candidate in taken:
        n += 1
        candidate = f"{name}.imported-{n}"
    return candidate


def import_bundle(
    vault: Vault, bundle: Vault, names: list[str], on_conflict: str | None
) -> Imported:
    """Stage the bundle's entries `names` into `vault` with their metadata, then commit once.

    Without a conflict policy any name that exists already stops the import before anything
    is written. A chunk of the bundle that fails to verify aborts the commit: nothing is saved.
    """
    existing = vault.names()
    check_bundle_names(names, existing)
    conflicts = [n for n in names if n in existing]
    if conflicts and on_conflict is None:
        raise ExistsError(
            f"{plural(len(conflicts), 'entry', 'entries')} of the bundle exist in the vault "
            f"already: {', '.join(conflicts)}; nothing was imported",
            hint="pass --on-conflict skip, overwrite or rename",
        )
    result = Imported(bundle.container_id.hex())
    taken = set(existing) | set(names)
    for name in names:
        if name in conflicts and on_conflict == "skip":
            result.skipped.append(name)
            continue
        as_name = name
        if name in conflicts and on_conflict == "rename":
            as_name = _free_name(name, taken)
            taken.add(as_name)
        elif name in conflicts:
            result.replaced.append(name)
        vault.copy_entry(bundle, name, as_name, force=on_conflict == "overwrite")
        result.added.append((name, as_name))
    check_tree(vault.names())
    moved = tuple(a for _, a in result.added)
    source = os.path.abspath(bundle.path)
    vault.record("import", moved, f"bundle {result.bundle_id} from {source}")
    vault.commit()
    return result
