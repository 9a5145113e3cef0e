"""`locker slot ...`: list, add and remove key slots; `remember`/`forget` the OS keyring slot;
and `locker gen identity`. Every change is one commit with an audit-log event."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

from locker.cli.commands import after_secret_change, kdf_cost, open_vault, rekey_now, saving
from locker.cli.prompts import new_passphrase, warn
from locker.errors import EXIT_OK, UsageError
from locker.kdf_cost import weak_kdf_warning
from locker.store import keys
from locker.store.format import (
    SLOT_KEYFILE,
    SLOT_KEYRING,
    SLOT_PASSPHRASE,
    SLOT_PASSPHRASE_KEYFILE,
    SLOT_RECOVERY,
    Slot,
)
from locker.text import iso_time, printable
from locker.vault import DEFAULT_KDF, Vault
from locker.vault_slots import check_label


def _label(args: argparse.Namespace, default: str = "") -> str:
    label: str = getattr(args, "label", None) or default
    return check_label(label)


def _added(args: argparse.Namespace, v: Vault, slot_id: bytes, what: str) -> None:
    with saving(args):
        v.commit()
    print(f"added {what} slot {slot_id.hex()}")


def cmd_slot_ls(args: argparse.Namespace) -> int:
    with open_vault(args) as v:
        slots = v.slots()
    if args.json:
        rows = [
            {
                "id": s.slot_id,
                "kind": s.kind,
                "label": s.label,
                "created": iso_time(s.created) if s.created is not None else None,
                "last_used": iso_time(s.used) if s.used is not None else None,
                "unlocked_this_time": s.unlocked,
            }
            for s in slots
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"  {'ID':<16}  {'KIND':<18}  {'CREATED':<20}  {'LAST USED':<20}  LABEL")
    for s in slots:
        created = iso_time(s.created) if s.created is not None else "-"
        used = iso_time(s.used) if s.used is not None else "-"
        mark = "*" if s.unlocked else " "
        line = f"{mark} {s.slot_id:<16}  {s.kind:<18}  {created:<20}  {used:<20}  {s.label}"
        print(printable(line.rstrip()))
    print("(* the slot that unlocked the vault this time)")
    return EXIT_OK


def cmd_slot_add_passphrase(args: argparse.Namespace) -> int:
    if getattr(args, "passphrase_file", None) == "-" and args.new_passphrase_file == "-":  # noqa: S105
        raise UsageError("only one of --passphrase-file and --new-passphrase-file can be '-'")
    label = _label(args)
    with open_vault(args, write=True) as v:
        cost = kdf_cost(args, v.unlocking_kdf() or DEFAULT_KDF)
        weak = weak_kdf_warning(cost)
        if weak:
            warn(weak)
        secret = new_passphrase(args.new_passphrase_file)
        slot = keys.new_slot(os.urandom, SLOT_PASSPHRASE, cost)
        v.add_slot(slot, keys.passphrase_kek(secret, slot), label)
        _added(args, v, slot.slot_id, "passphrase")
    return EXIT_OK


def cmd_slot_add_recovery(args: argparse.Namespace) -> int:
    from locker.slots import recovery

    label = _label(args, "recovery key")
    with open_vault(args, write=True) as v:
        secret = os.urandom(recovery.SECRET_SIZE)
        slot = keys.new_slot(os.urandom, SLOT_RECOVERY)
        v.add_slot(slot, keys.secret_kek(secret, slot), label)
        with saving(args):
            v.commit()
    print("recovery key (shown only now: write it down, keep it apart from the vault):")
    print()
    print(f"    {recovery.encode(secret)}")
    print()
    print(
        f"added recovery slot {slot.slot_id.hex()}; unlock with --recovery-key or --recovery-key-file"
    )
    return EXIT_OK


def cmd_slot_add_keyfile(args: argparse.Namespace) -> int:
    from locker.slots import keyfile

    path = Path(args.path)
    if args.generate:
        if os.path.lexists(path):
            raise UsageError(f"{path} already exists", hint="drop --generate to use that file")
    else:
        keyfile.read_secret(path)  # a bad key file is said before the passphrase prompt
    with open_vault(args, write=True) as v:
        if args.generate:
            keyfile.generate(path, os.urandom(32))
            print(f"wrote a new key file {path} (keep a copy apart from the vault)")
        secret = keyfile.read_secret(path)
        mark = keyfile.fingerprint(secret)
        if args.with_passphrase:
            cost = kdf_cost(args, v.unlocking_kdf() or DEFAULT_KDF)
            phrase = new_passphrase(args.new_passphrase_file, "passphrase for this key file")
            slot = keys.new_slot(os.urandom, SLOT_PASSPHRASE_KEYFILE, cost)
            kek = keys.passphrase_keyfile_kek(phrase, secret, slot)
            what = "passphrase+keyfile"
        else:
            slot = keys.new_slot(os.urandom, SLOT_KEYFILE)
            kek, what = keys.secret_kek(secret, slot), "keyfile"
        v.add_slot(slot, kek, _label(args, f"key file {mark}"))
        _added(args, v, slot.slot_id, what)
    print(f"key file fingerprint {mark}")
    return EXIT_OK


def cmd_slot_rm(args: argparse.Namespace) -> int:
    with open_vault(args, write=True) as v:
        slot = v.find_slot(args.id)
        v.remove_slot(slot)
        dropped = rekey_now(v) if args.rekey else None
        with saving(args):
            v.commit()
        if slot.kind == SLOT_KEYRING:
            _forget_secret(v.container_id, slot)
    print(f"removed slot {slot.slot_id.hex()}")
    after_secret_change(dropped)
    return EXIT_OK


def cmd_slot_add_recipient(args: argparse.Namespace) -> int:
    from locker.slots import recipient

    public = recipient.parse_recipient(args.recipient)  # a bad key is said before any prompt
    text = recipient.format_recipient(public)
    with open_vault(args, write=True) as v:
        slot, kek = recipient.new_recipient_slot(os.urandom, public)
        v.add_slot(slot, kek, _label(args, text))
        with saving(args):
            v.commit()
    print(f"added x25519 slot {slot.slot_id.hex()} for {text}")
    print("unlock with --identity FILE (the file holding its AGE-SECRET-KEY-1... line)")
    return EXIT_OK


def cmd_slot_add_pkcs11(args: argparse.Namespace) -> int:
    from locker.cli import unlock
    from locker.slots import token

    spec = unlock.token_spec(args)
    if spec is None:
        raise UsageError("add-pkcs11 needs --pkcs11-module PATH (the token's PKCS#11 module)")
    if args.generate:
        token.generate_key(spec)
        print(f"made a P-256 key {spec.key!r} on {spec.describe()}")
    point = token.public_point(spec)  # the token, its key and the PIN, before the vault
    token_options = ("pkcs11_module", "pkcs11_token", "pkcs11_key", "pin_file")
    keys_at_hand = argparse.Namespace(
        **{k: v for k, v in vars(args).items() if k not in token_options}
    )  # the token is the new slot, not a key to unlock with
    with open_vault(keys_at_hand, write=True) as v:
        slot, kek = token.new_token_slot(os.urandom, point)
        if token.token_kek(spec, slot) != kek:
            raise UsageError(f"{spec.describe()} derives another secret than its public key says")
        v.add_slot(slot, kek, _label(args, f"{spec.describe()}, key {spec.key!r}"))
        with saving(args):
            v.commit()
    print(f"added pkcs11-p256 slot {slot.slot_id.hex()} for key {spec.key!r} on {spec.describe()}")
    return EXIT_OK


def cmd_gen_identity(args: argparse.Namespace) -> int:
    """An identity file as age-keygen writes it; the public key also goes to stderr."""
    from locker.slots import keyfile, recipient

    identity = recipient.new_identity()
    public = recipient.format_recipient(recipient.public_key(identity))
    text = recipient.identity_file(identity, iso_time(time.time()))
    if args.output:
        keyfile.write_new_secret_file(Path(args.output), text.encode(), "identity file")
        sys.stderr.write(f"Public key: {public}\n")
        print(f"wrote identity {args.output}")
    else:
        sys.stdout.write(text)
        sys.stderr.write(f"Public key: {public}\n")
    return EXIT_OK


def cmd_slot_remember(args: argparse.Namespace) -> int:
    from locker.slots import keyring_slot

    kr = keyring_slot.backend()  # an unusable keyring is said before any prompt
    label = _label(args, f"keyring on {socket.gethostname()}")
    with open_vault(args, write=True) as v:
        slot = v.remember(kr, label, saving(args))
    if slot is None:
        print("this vault is already remembered by this machine's keyring")
        return EXIT_OK
    print(
        f"added keyring slot {slot.slot_id.hex()}: this machine's keyring "
        f"({keyring_slot.describe(kr)}) now unlocks the vault without a prompt"
    )
    return EXIT_OK


def cmd_slot_forget(args: argparse.Namespace) -> int:
    from locker.slots import keyring_slot

    kr = keyring_slot.backend()
    with open_vault(args, write=True) as v:
        mine = v.forget(kr, saving(args))
    if not mine:
        print("this machine's keyring holds no key for this vault: nothing to forget")
        return EXIT_OK
    for slot in mine:
        print(f"removed keyring slot {slot.slot_id.hex()} and its secret from this keyring")
    print("the next unlock asks for the passphrase (or another key)")
    return EXIT_OK


def _forget_secret(container_id: bytes, slot: Slot) -> None:
    """After `slot rm` of a keyring slot: its secret leaves this machine's keyring too."""
    from locker.slots import keyring_slot

    left = keyring_slot.forget(container_id, slot.slot_id)
    if left:
        warn(left)
