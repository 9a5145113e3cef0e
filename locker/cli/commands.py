"""One handler per CLI command, and the prompts they need. Handlers return the exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from locker.cli import prompts, unlock
from locker.cli.info_commands import check_not_a_directory, vault_path
from locker.cli.progress import Progress
from locker.cli.prompts import new_passphrase, warn
from locker.errors import (
    EXIT_INTEGRITY,
    EXIT_OK,
    KdfTooCostlyError,
    LockerError,
    NotFoundError,
    UsageError,
)
from locker.kdf_cost import calibrate_kdf, weak_kdf_warning
from locker.signals import exit_cleanly
from locker.store import safefs
from locker.store.format import SLOT_KEYRING, KdfCost, check_kdf_cost
from locker.store.lockfile import WriterLock
from locker.text import iso_time, plural, printable
from locker.vault import DEFAULT_KDF, Vault, create
from locker.vault_slots import OLD_COPY_NOTE


def kdf_cost(args: argparse.Namespace, base: KdfCost) -> KdfCost:
    for flag in ("kdf_memory", "kdf_time", "kdf_parallelism"):
        value = getattr(args, flag, None)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be a positive number")
    mem = getattr(args, "kdf_memory", None)
    cost = KdfCost(
        memory_kib=mem * 1024 if mem is not None else base.memory_kib,
        time_cost=getattr(args, "kdf_time", None) or base.time_cost,
        parallelism=getattr(args, "kdf_parallelism", None) or base.parallelism,
    )
    calibrating = getattr(args, "kdf_target", None) is not None
    try:  # over the caps every reader enforces: the user's values are wrong, not a file
        check_kdf_cost(cost._replace(time_cost=1) if calibrating else cost)
    except KdfTooCostlyError as exc:
        raise UsageError(str(exc), hint="choose smaller --kdf-* values") from None
    return cost


def open_vault(
    args: argparse.Namespace, write: bool = False, purpose: str = "write", unverified: bool = False
) -> Vault:
    """Unlock the selected vault; a missing or busy vault is reported before the prompt.
    `unverified`: for `recover --generation` (Vault.open)."""
    path = vault_path(args)
    if not os.path.lexists(path):
        raise NotFoundError(
            f"no vault at {path}", hint="create one with 'locker init' or pass --vault PATH"
        )
    check_not_a_directory(path)
    if write:
        WriterLock(path).check_free()
    vault = Vault.open(
        path, unlock.openers(args, path), write=write, purpose=purpose, unverified=unverified
    )
    vault.notice = warn
    if not write:
        warn_passed_over(vault)
        return vault
    if not unverified:  # `recover --generation` is the decision itself
        try:  # before an editor, a prompt or a keyring change takes the user's work
            vault.check_saves_allowed()
        except BaseException:
            vault.close()
            raise
    from locker.know.facts import recogniser

    vault.recogniser = recogniser()
    return vault


def warn_passed_over(vault: Vault) -> None:
    """One line per commit record passed over, and a hint: the save it may hold is not in
    what the command shows, and saves wait for a decision (FORMAT.md section 20)."""
    lines = vault.passed_over_warnings()
    for line in lines:
        warn(line)
    if lines:
        sys.stderr.write(
            f"locker: hint: saves are refused until you decide: {vault.recover_hint()}; "
            "'locker verify' tells more\n"
        )


def passphrase(args: argparse.Namespace) -> bytearray:
    return prompts.passphrase(getattr(args, "passphrase_file", None))


# -- commands ------------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    path = vault_path(args)
    if os.path.lexists(path):
        raise LockerError(f"{path} already exists", hint="choose another --vault path")
    cost = kdf_cost(args, DEFAULT_KDF)
    target = getattr(args, "kdf_target", None)
    if target is not None:
        fixed = getattr(args, "kdf_memory", None) is not None
        cost = calibrate_kdf(target, cost.memory_kib, cost.parallelism, fixed_memory=fixed)
        print(
            f"calibrated Argon2id to {cost.memory_kib / 1024:g} MiB, t={cost.time_cost} "
            f"for a {target:g} s target"
        )
    weak = weak_kdf_warning(cost)
    if weak:
        warn(weak)
    spec = getattr(args, "passphrase_file", None)
    secret = new_passphrase(spec, "passphrase")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    start = time.monotonic()
    create(path, secret, cost)
    print(
        f"created {path} (Argon2id {cost.memory_kib // 1024} MiB, t={cost.time_cost}, "
        f"p={cost.parallelism}; key derivation took {time.monotonic() - start:.2f} s)"
    )
    return EXIT_OK


STDIN_LIMIT = 256 * 1024 * 1024  # what `add -` (or a pipe) may hold in memory before saving


def _walk_sources(path: Path, as_name: str | None) -> Iterator[tuple[str, Path]]:
    """(entry name, file to read) pairs for a file or a directory tree.

    Symbolic links to files are read through (certbot's live/ directory is all links; the
    entry keeps the link's name); links to directories are skipped with a warning (loops).
    A directory that cannot be listed fails the whole add, as an unreadable file does: a
    silently skipped subdirectory would be lost once the originals are shredded.
    """
    if not path.exists():
        raise NotFoundError(f"no such file or directory: {path}")
    if path.is_dir():
        base = as_name.rstrip("/") if as_name else Path(os.path.abspath(path)).name
        path = path.resolve()

        def unreadable(exc: OSError) -> None:
            raise LockerError(
                f"cannot read the directory {exc.filename}: {exc.strerror}; nothing was added"
            )

        for root, dirs, files in os.walk(path, onerror=unreadable, followlinks=False):
            rel = Path(root).relative_to(path)
            for d in sorted(dirs):
                if (Path(root) / d).is_symlink():
                    warn(f"skipping symbolic link to a directory: {Path(root) / d}")
            dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
            for fname in sorted(files):
                full = Path(root) / fname
                if full.is_symlink() and not full.resolve().is_file():
                    warn(f"skipping {full}: it is a link to something that is not a file")
                    continue
                yield (
                    "/".join(p for p in (base, *rel.parts, fname) if p and p != "."),
                    full.resolve(),
                )
        return
    if path.is_file():
        yield (as_name or path.name), path.resolve()
        return
    # A pipe or a device: /dev/stdin, <(cmd). Its link is not followed to `pipe:[...]`.
    if not as_name:
        raise UsageError(f"{path} is not a file: name the entry with --as NAME")
    yield as_name, path


def _read_stream(path: Path | None) -> bytes:
    """All of standard input (`path` None) or of a pipe or device, up to STDIN_LIMIT."""
    try:
        if path is None:
            data = sys.stdin.buffer.read(STDIN_LIMIT + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(STDIN_LIMIT + 1)
    except OSError as exc:
        raise LockerError(f"cannot read {path or 'standard input'}: {exc.strerror}") from None
    if len(data) > STDIN_LIMIT:
        raise UsageError(f"{path or 'standard input'} gives more than {STDIN_LIMIT >> 20} MiB")
    return data


def cmd_add(
    args: argparse.Namespace, after: Callable[[Vault, list[tuple[str, Path]]], None] | None = None
) -> int:
    """`after` runs once the entries are committed, with the vault still open (add --shred)."""
    if args.as_name is not None and not args.as_name.strip("/"):
        raise UsageError("--as needs a name (it is empty)")
    if args.as_name and len(args.paths) > 1:
        raise UsageError("--as takes a single PATH")
    streams: list[tuple[str, bytes]] = []
    sources: list[tuple[str, Path]] = []
    for p in args.paths:
        if p == "-":
            if not args.as_name:
                raise UsageError("'add -' reads standard input: name the entry with --as NAME")
            if getattr(args, "passphrase_file", None) == "-":
                raise UsageError("standard input cannot hold both the passphrase and the entry")
            streams.append((args.as_name, _read_stream(None)))
            continue
        for name, path in _walk_sources(Path(p), args.as_name):
            if path.is_file():
                sources.append((name, path))
            else:
                streams.append((name, _read_stream(path)))
    if not sources and not streams:
        raise UsageError("nothing to add")
    with open_vault(args, write=True) as v:
        _check_places(v, [name for name, _ in (*sources, *streams)])
        moved = sum(p.stat().st_size for _, p in sources) + sum(len(d) for _, d in streams)
        with Progress("adding", 2 * (moved + _vault_size(args))):
            for name, path in sources:
                v.add_file(name, path, force=args.force)
            for name, data in streams:
                v.add_bytes(name, data, force=args.force)
            names = tuple(name for name, _ in (*sources, *streams))
            v.record("add", names)
            v.commit()
        for name in names:
            print(f"added {name}")
        if after is not None:
            after(v, sources)
    return EXIT_OK


def _check_places(v: Vault, names: list[str]) -> None:
    """Each new name must fit the vault's tree: not a directory of entries, not under a file."""
    known = v.names()
    for name in names:
        under = [k for k in known if k.startswith(name + "/")]
        if under:
            raise UsageError(
                f"{name!r} is a directory of {plural(len(under), 'entry', 'entries')} in the "
                "vault; an entry cannot have its name",
                hint=f"add it as {name}/NAME, or choose another name with --as",
            )
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in known:
                raise UsageError(
                    f"{parent!r} is an entry (a file) in the vault; {name!r} cannot go under it",
                    hint="choose another name with --as, or rename the entry with 'locker mv'",
                )


def cmd_ls(args: argparse.Namespace) -> int:
    with open_vault(args) as v:
        entries = v.entries()
    if args.json:
        rows = [
            {
                "name": e.name,
                "size": e.size,
                "kind": e.kind,
                "created": iso_time(e.created),
                "modified": iso_time(e.modified),
                "facts": _facts(e.attrs),
            }
            for e in entries
        ]
        print(json.dumps(rows, indent=2))
    elif args.long:
        from locker.know.facts import decode, summary

        lines = []
        for e in entries:
            what = summary(decode(e.attrs))
            line = f"{e.size:>12}  {iso_time(e.modified)}  {e.name}" + (
                f"  ({what})" if what else ""
            )
            lines.append(printable(line))  # facts come from file content: never raw to the terminal
        _print_lines(lines)
    else:
        _print_lines([e.name for e in entries])
    return EXIT_OK


def _print_lines(lines: list[str]) -> None:
    """One write for the whole listing, not one (or two, unbuffered) per line."""
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def _facts(attrs: dict[str, str]) -> dict[str, Any] | None:
    from locker.know.facts import decode

    return decode(attrs)


def cmd_cat(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    with open_vault(args) as v:
        if args.name not in v.names():
            _expand(
                v,
                [args.name],
                recursive=False,
                what=f"cat shows one entry; 'locker get {args.name} --to DIR' writes them all",
            )
        size = _sizes(v).get(args.name, 0)
        to_file = not sys.stdout.isatty()  # no bar over what cat shows on a terminal
        with Progress("reading", 2 * size if to_file else 0):
            for chunk in v.chunks(args.name):
                out.write(chunk)
                out.flush()
    return EXIT_OK


def _sizes(v: Vault) -> dict[str, int]:
    return {e.name: e.size for e in v.entries()}


def saving(args: argparse.Namespace) -> Progress:
    """The bar for a save: every save copies the whole vault (read, then written)."""
    return Progress("saving", 2 * _vault_size(args))


def _vault_size(args: argparse.Namespace) -> int:
    try:
        return os.path.getsize(vault_path(args))
    except OSError:
        return 0


def _expand(
    v: Vault, names: list[str], recursive: bool = True, what: str = "pass -r to remove them all"
) -> list[str]:
    """Exact entry names, or every entry under a directory name (if `recursive`; else a
    directory name is refused with the hint `what`)."""
    known = v.names()
    picked: list[str] = []
    for name in names:
        under = [k for k in known if k.startswith(name.rstrip("/") + "/")]
        if name in known:
            picked.append(name)
        elif under and recursive:
            picked.extend(under)
        elif under:
            raise UsageError(
                f"{name!r} is a directory of {plural(len(under), 'entry', 'entries')}",
                hint=what,
            )
        else:
            raise NotFoundError(f"no entry named {name!r}", hint="'locker ls' lists the entries")
    return list(dict.fromkeys(picked))


def cmd_get(args: argparse.Namespace) -> int:
    target = Path(args.to)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is not a directory")
    if not target.exists() and not target.absolute().parent.is_dir():  # before the prompt
        raise UsageError(
            f"cannot create {target}: its parent {target.absolute().parent} does not exist",
            hint="--to makes one directory level; create the parent first",
        )
    with open_vault(args) as v:
        names = _expand(v, args.names)
        if not target.exists():
            try:
                target.mkdir(mode=0o700)
            except OSError as exc:
                raise UsageError(f"cannot create {target}: {exc.strerror}") from None
        root = safefs.open_dir(target, follow=True)  # the user named it; names inside never follow
        try:
            written: set[str] = set()
            sizes = _sizes(v)
            total = 2 * sum(sizes.get(name, 0) for name in names)
            with exit_cleanly(), Progress("writing", total):  # no plaintext left on SIGHUP
                for name in names:
                    safefs.write_file(root, name, v.chunks(name), force=args.force, written=written)
                    print(f"wrote {target / name}")
        finally:
            os.close(root)
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    with open_vault(args, write=True) as v:
        names = _expand(v, args.names, recursive=args.recursive)
        for name in names:
            v.remove(name)
        v.record("rm", tuple(names))
        with saving(args):  # a large vault is copied
            v.commit()
    for name in names:
        print(f"removed {name}")
    return EXIT_OK


def cmd_mv(args: argparse.Namespace) -> int:
    """Rename an entry, or a directory: every entry under OLD/ moves under NEW/."""
    with open_vault(args, write=True) as v:
        old, new = args.old, args.new
        if old in v.names():
            moves = [(old, new)]
        else:
            prefix = old.rstrip("/")
            moves = [(n, new.rstrip("/") + n[len(prefix) :]) for n in _expand(v, [old])]
        for src, dst in moves:
            v.rename(src, dst, force=args.force)
        v.record("mv", (args.old, args.new), plural(len(moves), "entry", "entries"))
        with saving(args):  # a large vault is copied
            v.commit()
    for src, dst in moves:
        print(f"renamed {src} -> {dst}")
    return EXIT_OK


def cmd_passwd(args: argparse.Namespace) -> int:
    if getattr(args, "passphrase_file", None) == "-" and args.new_passphrase_file == "-":  # noqa: S105
        raise UsageError("only one of --passphrase-file and --new-passphrase-file can be '-'")
    with open_vault(args, write=True) as v:
        v.require_passphrase_slot()
        new = new_passphrase(args.new_passphrase_file)
        base = v.unlocking_kdf() or DEFAULT_KDF
        cost = kdf_cost(args, base)
        weak = weak_kdf_warning(cost)
        if weak:
            warn(weak)
        v.change_passphrase(new, cost, unlock.keyfile_secret(args))
        v.record("passwd", detail=f"slot {v.unlocked_slot.slot_id.hex()}")
        dropped = rekey_now(v) if getattr(args, "rekey", False) else None
        with saving(args):  # a large vault is copied
            v.commit()
    print("passphrase changed (key slot rewrapped; no entry was re-encrypted)")
    after_secret_change(dropped)
    return EXIT_OK


def refuse_keyring_rekey(v: Vault) -> None:
    """A rekey keeps only the slot that unlocked; the keyring unlocks first, unasked. Never
    let it leave a vault that only this machine's keyring opens."""
    if v.unlocked_slot.kind == SLOT_KEYRING and len(v.slot_list()) > 1:
        raise UsageError(
            "this machine's keyring unlocked the vault, and a rekey keeps only the slot that "
            "unlocked: the passphrase and every other key would stop opening it",
            hint="add --no-keyring to rekey with the passphrase (or another key) you keep",
        )


def rekey_now(v: Vault) -> int:
    """`--rekey` on a slot change: new master key; returns how many slots were dropped."""
    refuse_keyring_rekey(v)
    dropped = v.rekey()
    v.record("rekey", detail=f"{plural(len(v.names()), 'entry', 'entries')} re-encrypted")
    return dropped


def after_secret_change(dropped: int | None) -> None:
    """What a removed slot or changed passphrase means for old copies, said plainly."""
    if dropped is None:
        print(f"note: {OLD_COPY_NOTE}")
        return
    print("new master key; every entry re-encrypted: old copies do not share it")
    if dropped:
        warn(f"{plural(dropped, 'other key slot was', 'other key slots were')} removed: add again")


def cmd_rekey(args: argparse.Namespace) -> int:
    with open_vault(args, write=True) as v, Progress("re-encrypting", 2 * _vault_size(args)):
        refuse_keyring_rekey(v)
        dropped = v.rekey()
        count = len(v.names())
        v.record("rekey", detail=f"{count} entries re-encrypted")
        v.commit()
    print(f"new master key; {plural(count, 'entry', 'entries')} re-encrypted")
    if dropped:
        warn(f"{plural(dropped, 'other key slot')} removed: add them again")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    with open_vault(args) as v, Progress("verifying", _vault_size(args)):
        count = len(v.entries())
        failures = v.verify()
        passed_over, generation = v.passed_over(), v.generation
    for failure in failures:
        sys.stderr.write(f"locker: error: {failure}\n")
    if failures:
        sys.stderr.write(f"locker: error: {len(failures)} of {count} entries failed verification\n")
        return EXIT_INTEGRITY
    if passed_over:
        for p in passed_over:
            restore = (
                f"its index authenticates: 'locker recover --generation {generation + 1}' "
                "restores that save (its index is authentic; its damaged record is not), or "
                if p.restorable
                else "the save it may hold cannot be read back: "
            )
            sys.stderr.write(
                f"locker: error: {p}; generation {generation} is in force; {restore}"
                f"'locker recover --generation {generation}' continues from generation "
                f"{generation}\n"
            )
        print(
            f"generation {generation}: header, index and "
            f"{plural(count, 'entry', 'entries')} verified; a newer save may be lost"
        )
        return EXIT_INTEGRITY
    print(f"ok: header, index and {plural(count, 'entry', 'entries')} verified")
    return EXIT_OK


def cmd_log(args: argparse.Namespace) -> int:
    with open_vault(args) as v:
        events = v.log()
    if args.json:
        rows: list[dict[str, Any]] = [
            {
                "time": iso_time(e.time),
                "event": e.event,
                "names": list(e.names),
                "user": e.user,
                "host": e.host,
                "detail": e.detail,
            }
            for e in events
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for e in events:
        names = " ".join(e.names)
        detail = f" ({e.detail})" if e.detail else ""
        line = f"{iso_time(e.time)}  {e.user}@{e.host}  {e.event:<8} {names}{detail}".rstrip()
        print(printable(line))
    return EXIT_OK
