"""Handlers for what locker knows about its entries: inspect, run, gen, sweep, and add --shred."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from locker.cli import commands
from locker.cli.commands import open_vault, saving
from locker.cli.prompts import warn
from locker.errors import EXIT_ATTENTION, EXIT_OK, LockerError, UsageError
from locker.know import inspect as kin
from locker.know.facts import decode
from locker.store import safefs
from locker.text import iso_time, plural, printable
from locker.vault import Vault


def _days(value: str, flag: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise UsageError(f"{flag} takes a whole number of days, not {value!r}") from None
    if days < 0:
        raise UsageError(f"{flag} must not be negative")
    return days


def cmd_inspect(args: argparse.Namespace) -> int:
    within = _days(args.expiring_within, "--expiring-within")
    rotate = _days(args.rotate_after, "--rotate-after")
    with open_vault(args, write=args.refresh, purpose="refresh") as v:
        if args.refresh:
            _refresh(args, v)
        entries = v.entries()
        unrecognised = kin.unrecognised(entries, v.log())
    now = time.time()
    items = kin.report(entries, now, within, rotate)
    if args.format == "prometheus":
        text = kin.prometheus(items, now)
        if args.output:
            _write_metrics(Path(args.output), text.encode())
        else:
            sys.stdout.write(text)
    elif args.format == "json" or args.json:
        print(json.dumps([_item_json(i, now) for i in items], indent=2))
    else:
        _print_table(items, now, len(entries))
        hint = kin.refresh_hint(unrecognised)
        if hint:
            sys.stdout.flush()  # the hint goes under the table on a terminal
            sys.stderr.write(f"locker: hint: {hint}\n")
    return EXIT_ATTENTION if any(i.attention for i in items) else EXIT_OK


def _refresh(args: argparse.Namespace, v: Vault) -> None:
    """`inspect --refresh`: facts for the entries that have none, saved in one commit. What it
    did goes to stderr: stdout stays the report (JSON or metrics for a script)."""
    from locker.know.facts import refresh

    found = refresh(v)
    if found:
        v.record("refresh", tuple(found), "facts recognised for entries that had none")
        with saving(args):
            v.commit()
    sys.stderr.write(
        f"locker: note: recognised {plural(len(found), 'entry', 'entries')} that had no facts"
        + (f": {', '.join(printable(n) for n in found)}\n" if found else "\n")
    )


def _write_metrics(path: Path, data: bytes) -> None:
    """Replace `path` atomically (node_exporter must never read half a file), mode 0644."""
    dir_fd = safefs.open_dir(path.parent if str(path.parent) else ".", follow=True)
    try:
        safefs.write_file(dir_fd, path.name, [data], force=True)
        os.chmod(path.name, 0o644, dir_fd=dir_fd, follow_symlinks=False)
    finally:
        os.close(dir_fd)


def _item_json(i: kin.Item, now: float) -> dict[str, Any]:
    return {
        "name": i.name,
        "type": i.type,
        "what": i.what,
        "not_after": iso_time(i.not_after) if i.not_after is not None else None,
        "days_left": i.days_left(now),
        "key_age_days": i.key_age_days(now),
        "paired_with": i.pairs,
        "notes": i.notes,
        "attention": i.attention,
    }


def _print_table(items: list[kin.Item], now: float, total: int) -> None:
    if not items:
        print(kin.summary(items, total))
        return
    rows = [kin.HEADINGS, *(kin.cells(i, now) for i in items)]
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    for r in rows:
        line = "  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r[:5]))
        print(printable(f"{line}  {r[5]}".rstrip()))  # subjects and SANs are the signer's text
    print(f"\n{kin.summary(items, total)}")


def cmd_add(args: argparse.Namespace) -> int:
    """`add`, and with --shred: remove each source once the vault verifiably holds it."""
    if not args.shred:
        return commands.cmd_add(args)
    left: list[str] = []

    def shred(v: Vault, sources: list[tuple[str, Path]]) -> None:
        from locker.know.shred import digest_of, shred_if_held

        for name, path in sources:
            why = shred_if_held(path, digest_of(v.chunks(name)))
            if why is None:
                print(f"shredded {path}")
            else:
                warn(f"left {path} in place: {why}")
                left.append(str(path))

    commands.cmd_add(args, after=shred)
    if left:
        raise LockerError(
            f"{plural(len(left), 'source')} not shredded (the vault holds what was read)"
        )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from locker.know import run as kr
    from locker.mount.process import harden_process

    argv = list(args.cmd)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UsageError("no command to run", hint="locker run --env NAME -- CMD ARGS...")
    specs = [kr.parse_file_spec(text) for text in args.file or []]
    harden_process()
    values: dict[str, str] = {}
    rundir: kr.RunDir | None = None
    with kr.Forwarder() as forwarder:
        try:
            with open_vault(args) as v:
                for name in args.env or []:
                    values.update(kr.env_from_entry(v, name))
                paths: dict[str, Path] = {}
                if specs:
                    for spec in specs:
                        v.entry(spec.entry)  # a missing entry fails before anything is made
                    rundir = kr.RunDir(v.path)
                    made = rundir.materialise(v, list(dict.fromkeys(s.entry for s in specs)))
                    paths = {s.var: made[s.entry] for s in specs}
            env = kr.child_env(dict(os.environ), values, paths)
            return kr.run_child(argv, env, forwarder)
        except kr.Interrupted as exc:
            return 128 + exc.signum
        finally:
            forwarder.cleaning_up()
            values.clear()
            if rundir is not None:
                for line in rundir.wipe():  # `run` exits with its child's code all the same
                    warn(line)


def cmd_gen_jwt(args: argparse.Namespace) -> int:
    from locker.know import gen

    if args.jwks:
        if args.name:
            raise UsageError("--jwks prints what is held; it takes no NAME")
        with open_vault(args) as v:
            docs = [
                v.read_bytes(e.name)
                for e in v.entries()
                if (f := decode(e.attrs)) is not None and f["type"] in ("jwk", "jwks")
            ]
        print(json.dumps(gen.public_jwks(docs), indent=2))
        return EXIT_OK
    if not args.name:
        raise UsageError("gen jwt needs a NAME for the new key (or --jwks)")
    made = gen.make("jwt", alg=args.alg)
    with open_vault(args, write=True) as v, saving(args):
        gen.store(v, args.name, made, force=args.force)
    print(made.shown)
    return EXIT_OK


def cmd_gen_tls(args: argparse.Namespace) -> int:
    from locker.know import gen

    made = gen.make("tls", alg=args.key, cn=args.cn, sans=args.san or [])
    request = made.shown.encode("ascii")
    with open_vault(args, write=True) as v, saving(args):
        gen.store(v, args.name, made, force=args.force)
    if args.csr:
        Path(args.csr).write_bytes(request)
        print(f"stored the key as {args.name}; wrote the CSR to {args.csr}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(request)
    return EXIT_OK


def cmd_gen_secret(args: argparse.Namespace) -> int:
    from locker.know import gen

    made = gen.make("secret", size=args.bytes)
    with open_vault(args, write=True) as v, saving(args):
        gen.store(v, args.name, made, force=args.force)
    print(f"stored {8 * args.bytes} random bits as {args.name} (base64)")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from locker.know import sweep as ks

    roots = [Path(p) for p in args.paths]
    for root in roots:
        if not os.path.lexists(root):
            raise UsageError(f"no such file or directory: {root}")
    found, seen = ks.sweep(roots, cross_devices=args.cross_devices)
    left: dict[Path, str] = {f.path: "not imported" for f in found}
    imported: dict[Path, str] = {}
    if args.import_ and found:
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "sweep --import moves files into the vault and shreds them",
                    hint="pass --yes to do it without asking",
                )
            sys.stderr.write(
                f"import {len(found)} files into the vault and shred the originals [y/N]? "
            )
            sys.stderr.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                print("nothing imported")
                args.import_ = False
        if args.import_:
            imported, reasons = _import_found(args, found)
            left = {f.path: reasons.get(f.path, "") for f in found if f.path not in imported}
    if args.json:
        print(json.dumps([_finding_json(f, imported, left) for f in found], indent=2))
    else:
        _print_findings(found, imported, left, seen)
    return EXIT_ATTENTION if left else EXIT_OK


def _import_found(
    args: argparse.Namespace, found: list[Any]
) -> tuple[dict[Path, str], dict[Path, str]]:
    """Add, commit, verify by reading back, and only then shred: (imported path -> entry
    name, path left in place -> why)."""
    from locker.know import sweep as ks

    with open_vault(args, write=True) as v, saving(args):
        held = ks.import_findings(v, found)
    return ks.shred_held(held), held.reasons


def _finding_json(f: Any, imported: dict[Path, str], left: dict[Path, str]) -> dict[str, Any]:
    return {
        "path": str(f.path),
        "kind": f.facts["type"],
        "what": f.what,
        "owner": f.owner,
        "mode": f"{f.mode:04o}",
        "readable_by": f.readable_by,
        "encrypted": f.encrypted,
        "entry": imported.get(f.path),
        "left_in_place": f.path in left,
        "reason": left.get(f.path) or None,
    }


def _print_findings(
    found: list[Any], imported: dict[Path, str], left: dict[Path, str], seen: int
) -> None:
    from locker.know import sweep as ks

    rows: list[tuple[str, ...]] = [ks.HEADINGS] if found else []
    for f in found:
        row = ks.cells(f)
        rows.append((*row[:5], row[5] + " (imported)") if f.path in imported else row)
    widths = [max(len(r[c]) for r in rows) for c in range(5)] if rows else []
    for r, f in zip(rows, [None, *found], strict=False):
        line = "  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r[:5])) + "  " + r[5]
        print(printable(line.rstrip()))  # file names in a swept tree are anyone's choice
        why = left.get(f.path) if f is not None else None
        if why and why != "not imported":
            print(printable(f"  left in place: {why}"))
    print(("\n" if found else "") + ks.summary(len(found), seen, len(imported), len(left)))
