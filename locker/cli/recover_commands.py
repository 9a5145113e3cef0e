"""CLI handler for `locker recover`: what an orphaned mount left, saved or discarded, then wiped.

What changed is shown before anything is asked (the passphrase, then the question). A record
that was already wiping is wiped first except the files it kept; a file whose name the vault
refuses is offered under a valid name; the vault's own log is checked for this mount's lock,
and a mount whose lock was committed has nothing left to import.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from locker.bundle import recover_exports
from locker.cli.commands import open_vault
from locker.cli.prompts import warn
from locker.errors import EXIT_ERROR, EXIT_OK, LockerError, UsageError
from locker.mount import directory as mountdir
from locker.mount import journal as jn
from locker.mount import recovery
from locker.mount import scan as sc
from locker.mount.process import harden_process
from locker.store.format import check_name
from locker.text import iso_time, plural, printable
from locker.vault import Vault

ANSWERS = {"y": "yes", "yes": "yes", "d": "discard", "discard": "discard"}


def _ask(question: str) -> str:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower()


def _wanted_vault(args: argparse.Namespace) -> tuple[str | None, str]:
    """The vault the user named, absolute, and how ('--vault' or '$LOCKER_VAULT')."""
    given = getattr(args, "vault", None)
    how = "--vault"
    if not given and os.environ.get("LOCKER_VAULT"):
        given, how = os.environ["LOCKER_VAULT"], "LOCKER_VAULT"
    return (str(Path(given).resolve()) if given else None), how


def cmd_recover(args: argparse.Namespace) -> int:
    if args.yes and args.discard:
        raise UsageError("--yes and --discard cannot be used together")
    if getattr(args, "generation", None) is not None:
        return recover_generation(args)
    for temp in recover_exports():
        print(f"removed an interrupted export's temporary file {temp}")
    wanted, how = _wanted_vault(args)
    every = jn.orphans()
    left = [f for f in every if wanted is None or f.record.vault == wanted]
    if not left:
        print("nothing to recover")
        if every:
            undo = "run without --vault" if how == "--vault" else "unset LOCKER_VAULT"
            print(f"({plural(len(every), 'orphaned mount')} of other vaults: {undo})")
        return EXIT_OK
    harden_process()
    status = EXIT_OK
    for found in left:
        status = max(status, Recovery(found, args).run())
    return status


def recover_generation(args: argparse.Namespace) -> int:
    """`locker recover --generation N`: the user's decision about a commit record that did not
    verify (FORMAT.md section 20), saved with a 'recover' audit event."""
    if args.discard:
        raise UsageError(
            "--generation cannot be used with --discard",
            hint="--discard drops a crashed mount's changes; '--generation N' alone decides "
            "about a commit record passed over",
        )
    with open_vault(args, write=True, purpose="recover", unverified=True) as v:
        if not _discard_confirmed(v, args):
            print(f"{v.path}: left as it is; generation {v.generation} is in force")
            return EXIT_OK
        continued = args.generation == v.generation and not v.unverified
        decided = v.recover_generation(args.generation)
        v.commit()
        anew = f" (a new save on top of generation {args.generation})" if continued else ""
        print(f"{v.path}: {decided}; generation {v.generation} is in force{anew}")
    return EXIT_OK


def _discard_confirmed(v: Vault, args: argparse.Namespace) -> bool:
    """Continuing from the generation in force overwrites a passed-over record whose save can
    still be restored, which then no key can read back: asked on a terminal, --yes otherwise."""
    g = v.generation
    found = [p for p in v.passed_over() if p.restorable]
    if args.generation != g or not found or args.yes or v.unverified:
        return True
    what = f"the save in commit record {found[0].name} (restorable as generation {g + 1})"
    if not sys.stdin.isatty():
        raise UsageError(
            f"continuing from generation {g} discards {what} for good",
            hint=f"'locker recover --generation {g + 1}' restores it; pass --yes to discard it",
        )
    return _ask(f"discard {what} for good [y/N]? ") in ("y", "yes")


class Recovery:
    """One orphaned mount: show, ask, save or discard, wipe."""

    def __init__(self, found: jn.Found, args: argparse.Namespace) -> None:
        self.found, self.args, self.r = found, args, found.record
        self.root = Path(self.r.dir)
        self.mode: str | None = "yes" if args.yes else "discard" if args.discard else None
        self.sources: dict[str, str] = {}  # entry name -> file, for names the vault refuses
        self.unzeroed = False  # a wipe deleted a file it could not zero first (said as it did)

    def run(self) -> int:
        """Recover; exit 1 where it would be 0 if a wipe deleted a file it could not zero."""
        status = self._run()
        return EXIT_ERROR if status == EXIT_OK and self.unzeroed else status

    def _run(self) -> int:
        r = self.r
        print(f"orphaned mount of {r.vault} at {r.dir} (PID {r.pid}, since {iso_time(r.started)})")
        if not os.path.lexists(self.root):
            print("  its directory is gone; nothing to recover")
            self.found.journal.remove(r.mount_id)
            return EXIT_OK
        try:
            st = jn.check_mount_dir(r)
        except (LockerError, OSError) as exc:
            sys.stderr.write(
                f"locker: error: refusing to recover or wipe {r.dir}: {exc}\n"
                f"locker: hint: if this record is not yours, remove "
                f"{self.found.journal.path_of(r.mount_id)}\n"
            )
            return EXIT_ERROR
        self.expect = (st.st_dev, st.st_ino)
        if r.state == jn.STATE_WIPING and not (r.kept or r.files):
            print("  it stopped while wiping, after its files were saved into the vault")
            return self._wipe_all("finished the wipe: ")
        if r.state == jn.STATE_WIPING:
            self._finish_wipe()
        if r.state == jn.STATE_MATERIALISING:
            return self._materialising()
        changes = self._show(sc.diff(self.root, r.files))
        if changes and self.mode != "discard":
            status = self._save(changes)
            if status is not None:
                return status
        if changes and self.mode == "discard":
            print(f"  discarded: {changes.summary()}")
        return self._wipe_all()

    # -- the steps ------------------------------------------------------------------------------

    def _finish_wipe(self) -> None:
        """The final sync was committed (or failed) before the wipe began: wipe everything the
        record does not keep, never importing it; the kept files are looked at next."""
        r = self.r
        print("  it stopped while wiping; what it had saved into the vault is wiped first")
        keep = frozenset(r.kept)
        wiped = mountdir.wipe_tree(self.root, remove_root=False, expect=self.expect, keep=keep)
        self._warn(wiped)
        why = f" (the final sync failed: {r.error})" if r.error else ""
        print(
            f"  finished the wipe of the saved files ({plural(wiped.count, 'file')}); "
            f"{plural(len(r.kept), 'file')} with unsaved changes kept{why}"
        )

    def _materialising(self) -> int:
        print("  it stopped while materialising, before anyone could change a file")
        scan = sc.scan_tree(self.root, self.r.files)
        left = sorted([*scan.files, *scan.skipped])
        for name in left:
            print(f"  holds    {printable(name)}")
        if left and self.mode is None:
            if not sys.stdin.isatty():
                sys.stderr.write(
                    "locker: error: the directory is not empty; it is wiped only on request\n"
                    "locker: hint: 'locker recover --discard' (or --yes) wipes it\n"
                )
                return EXIT_ERROR
            if _ask("wipe these files [y/N]? ") not in ("y", "yes"):
                print("  left as it is")
                return EXIT_OK
        return self._wipe_all()

    def _show(self, changes: sc.Changes) -> sc.Changes:
        """Print what changed; names the vault refuses are shown with the name they would get."""
        changes = self._rename_refused(changes)
        for text in changes.lines():
            print(f"  {text}")
        for name, source in sorted(self.sources.items()):
            try:
                check_name(source)
            except UsageError as exc:
                print(f"  {source!r} cannot be an entry name ({exc}); it is saved as {name}")
        if not changes:
            print("  no changes since the last sync")
        return changes

    def _rename_refused(self, changes: sc.Changes) -> sc.Changes:
        """Files whose names the vault refuses get a valid name (and a rename to such a name
        becomes a delete of the old entry and an add under the valid one)."""
        taken = set(self.r.files) | set(changes.changed) | set(changes.added)
        taken |= {new for _, new in changes.renamed}
        added, deleted, renamed = [], list(changes.deleted), []
        for old, new in changes.renamed:
            if recovery.valid_name(new):
                renamed.append((old, new))
            else:
                deleted.append(old)
                added.append(new)
        added += changes.added
        fixed = []
        for name in added:
            if recovery.valid_name(name):
                fixed.append(name)
                continue
            good = recovery.suggest_name(name, taken, time.time())
            self.sources[good] = name
            fixed.append(good)
        return sc.Changes(
            changes.changed, sorted(fixed), sorted(deleted), renamed, changes.unreadable
        )

    def _save(self, changes: sc.Changes) -> int | None:
        """Open the vault (after the changes were shown), check its log, plan, ask, save.
        Returns an exit status to stop at, or None to go on to the wipe."""
        r = self.r
        if changes.unreadable and self.mode != "discard":
            name, why = next(iter(sorted(changes.unreadable.items())))
            sys.stderr.write(
                f"locker: error: cannot read {self.root / name}: {why}; nothing was saved or "
                "wiped\n"
                "locker: hint: make it readable and run 'locker recover' again, or "
                "'locker recover --discard' to drop the changes\n"
            )
            return EXIT_ERROR
        if self.mode is None and not sys.stdin.isatty():
            if getattr(self.args, "passphrase_file", None):  # a script can preview conflicts
                with self._open_vault(write=False) as v:
                    if not self._lock_committed(v):
                        _show_conflicts(recovery.plan_recovery(v, r, changes, None, self.sources))
            sys.stderr.write(
                "locker: error: the mount directory holds changes that are not in the vault\n"
                "locker: hint: 'locker recover --yes' saves them into the vault, "
                "'locker recover --discard' drops them\n"
            )
            return EXIT_ERROR
        with self._open_vault(write=True) as v:
            if self._lock_committed(v):
                changes = self._only_refused(changes)
                if not changes:
                    return None
            plan = recovery.plan_recovery(v, r, changes, None, self.sources)
            _show_conflicts(plan)
            if self.mode is None:
                self.mode = ANSWERS.get(
                    _ask("save these changes into the vault [y], discard them [d], or leave [N]? ")
                )
                if self.mode is None:
                    print("  left as it is")
                    return EXIT_OK
            if self.mode == "yes":
                recovery.recover(v, r, changes, plan)
                n = len(plan.conflicts)
                note = f"; {plural(n, 'conflict')} (see the warnings)" if n else ""
                print(f"  saved into {r.vault}: {changes.summary()}{note}")
                for conflict in plan.conflicts:
                    warn(conflict.message())
        return None

    def _open_vault(self, write: bool) -> Vault:
        """The orphan's vault, unlocked with this command's unlock options (passphrase, key
        file, identity, token, keyring) as every other command unlocks it."""
        args = argparse.Namespace(**{**vars(self.args), "vault": self.r.vault})
        return open_vault(args, write=write, purpose="recover")

    def _lock_committed(self, v: Vault) -> bool:
        """The vault's log holds this mount's lock event although the record never got to
        "wiping" (it could not be written): the final sync is in the vault, and whatever is
        missing from the directory was wiped, not deleted. The vault has one writer at a time,
        so the first "lock" after this mount's own "mount" event, before any other mount or
        recovery, is this mount's."""
        if self.r.state == jn.STATE_WIPING:
            return False
        mine = False
        for event in v.log():
            if event.time < int(self.r.started) - 1:
                continue
            if event.event == "mount":
                mine = event.detail.endswith(f" at {self.r.dir}")
            elif event.event == "recover":
                mine = False
            elif event.event == "lock" and mine:
                print(
                    f"  the vault's log holds this mount's lock ({iso_time(event.time)}): its "
                    "files were saved then, and what is missing here was wiped"
                )
                return True
        return False

    def _only_refused(self, changes: sc.Changes) -> sc.Changes:
        """After a committed lock only the files the vault refused are still to be saved."""
        added = [n for n in changes.added if n in self.sources]
        return sc.Changes(added=added)

    def _warn(self, wiped: mountdir.Wiped) -> None:
        for line in wiped.warnings():
            warn(line)
        self.unzeroed = self.unzeroed or bool(wiped.unzeroed)

    def _wipe_all(self, what: str = "") -> int:
        r = self.r
        wiped = mountdir.wipe_tree(self.root, remove_root=r.created_dir, expect=self.expect)
        self._warn(wiped)
        if wiped.left:
            sys.stderr.write(
                f"locker: error: {plural(len(wiped.left), 'name')} in {r.dir} could not be "
                "wiped (see the warnings)\n"
                "locker: hint: remove them by hand, then run 'locker recover' again\n"
            )
            return EXIT_ERROR
        self.found.journal.remove(r.mount_id)
        removed = " and removed " + r.dir if r.created_dir else ""
        print(f"  {what}wiped {plural(wiped.count, 'file')}{removed}")
        return EXIT_OK


def _show_conflicts(plan: recovery.RecoveryPlan) -> None:
    """Before anything is saved: where the vault changed too, and what will be done instead."""
    for conflict in plan.conflicts:
        print(f"  conflict {conflict.message(done=False)}")
