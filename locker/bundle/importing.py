"""Importing a protected bundle: its entries (untrusted names, checked first) staged into a
vault with their metadata and committed once, a name that exists already skipped, replaced or
renamed as the user chose. `plan` says beforehand what `import_bundle` will do with each name
(the TUI's preview), `import_lines` what it did, in the CLI's words; `check_source` and
`identity_openers` are the checks and the key both the CLI and the TUI start from.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from locker.errors import ExistsError, IntegrityError, LockerError, NotFoundError, UsageError
from locker.store.format import check_name, check_tree
from locker.text import plural, printable
from locker.vault import Vault

if TYPE_CHECKING:
    from locker.store.keys import Opener


@dataclass(frozen=True)
class Step:
    """What an import does with one of the bundle's entries: `exists` when the vault has its
    name; `as_name` the name it gets here, None when it is skipped (or, without a policy,
    when it stops the import)."""

    name: str
    as_name: str | None
    exists: bool


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


def check_source(source: Path, vault: Path) -> Path:
    """The bundle at `source`, refused when it is missing or is the vault itself."""
    if not os.path.lexists(source):
        raise NotFoundError(f"no bundle at {source}")
    if Path(os.path.abspath(source)) == Path(os.path.abspath(vault)):
        raise UsageError("cannot import a vault into itself")
    return source


def identity_openers(paths: list[Path]) -> list[Opener]:
    """The openers of the age identities in `paths`, for a bundle made for recipients."""
    from locker.slots import recipient

    return [
        recipient.IdentityOpener(identity)
        for path in paths
        for identity in recipient.read_identities(path)
    ]


def plan(names: list[str], existing: list[str], on_conflict: str | None) -> list[Step]:
    """What `import_bundle` does with each of `names` given the vault's `existing` names;
    unsafe names are refused here as there (`check_bundle_names`)."""
    check_bundle_names(names, existing)
    here = set(existing)
    taken = here | set(names)
    steps = []
    for name in names:
        exists = name in here
        as_name: str | None = name
        if exists and on_conflict in (None, "skip"):
            as_name = None
        elif exists and on_conflict == "rename":
            as_name = _free_name(name, taken)
            taken.add(as_name)
        steps.append(Step(name, as_name, exists))
    return steps


def import_bundle(
    vault: Vault, bundle: Vault, names: list[str], on_conflict: str | None
) -> Imported:
    """Stage the bundle's entries `names` into `vault` with their metadata, then commit once.

    Without a conflict policy any name that exists already stops the import before anything
    is written. A chunk of the bundle that fails to verify aborts the commit: nothing is saved.
    """
    steps = plan(names, vault.names(), on_conflict)
    conflicts = [s.name for s in steps if s.exists]
    if conflicts and on_conflict is None:
        raise ExistsError(
            f"{plural(len(conflicts), 'entry', 'entries')} of the bundle exist in the vault "
            f"already: {', '.join(conflicts)}; nothing was imported",
            hint="pass --on-conflict skip, overwrite or rename",
        )
    result = Imported(bundle.container_id.hex())
    for step in steps:
        if step.as_name is None:
            result.skipped.append(step.name)
            continue
        if step.exists and step.as_name == step.name:
            result.replaced.append(step.name)
        vault.copy_entry(bundle, step.name, step.as_name, force=on_conflict == "overwrite")
        result.added.append((step.name, step.as_name))
    check_tree(vault.names())
    moved = tuple(a for _, a in result.added)
    source = os.path.abspath(bundle.path)
    vault.record("import", moved, f"bundle {result.bundle_id} from {source}")
    vault.commit()
    return result


def import_lines(done: Imported) -> list[str]:
    """What an import did, a line per entry and a total, as `locker import` prints it."""
    replaced = set(done.replaced)
    lines = []
    for name, as_name in done.added:
        if name != as_name:
            lines.append(printable(f"imported {name} as {as_name}"))
        else:
            lines.append(printable(f"{'replaced' if name in replaced else 'imported'} {name}"))
    lines += [printable(f"skipped {name} (exists in the vault)") for name in done.skipped]
    total = plural(len(done.added), "entry", "entries")
    return [*lines, f"{total} imported from bundle {done.bundle_id}"]
