"""The keys a command unlocks with, in the unlock order: the OS keyring's slot when the vault
has one and the keyring can be used; then `--identity`, `--keyfile`, `--recovery-key-file`
(or `--recovery-key`, a prompt) and a PKCS#11 token (`--pkcs11-module`), when given; then the passphrase, asked
for only if nothing before it opened the vault.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from locker.cli import prompts
from locker.errors import UsageError
from locker.store.format import (
    SLOT_KEYFILE,
    SLOT_KEYRING,
    SLOT_PASSPHRASE,
    SLOT_PASSPHRASE_KEYFILE,
    SLOT_RECOVERY,
)
from locker.store.keys import Opener, PassphraseOpener, SecretOpener

if TYPE_CHECKING:
    from locker.slots.token import TokenSpec


def _slot_kinds(path: Path) -> set[int]:
    from locker.store.container import Sealed

    sealed = Sealed.read(path, holes_from=None)  # the head only: the unlock checks the rest
    try:
        return {s.kind for s in sealed.header.slots}
    finally:
        sealed.close()


def keyfile_secret(args: argparse.Namespace) -> bytes | None:
    spec = getattr(args, "keyfile", None)
    if not spec:
        return None
    from locker.slots import keyfile

    return keyfile.read_secret(Path(spec))


def recovery_secret(args: argparse.Namespace) -> bytes | None:
    spec = getattr(args, "recovery_key_file", None)
    if spec:
        typed = prompts.read_secret_file(spec, "recovery key")
    elif getattr(args, "recovery_key", False):
        typed = prompts.ask("Recovery key: ")
    else:
        return None
    from locker.slots import recovery

    return recovery.decode(typed.decode("ascii", "replace"))


def token_spec(args: argparse.Namespace) -> TokenSpec | None:
    """The PKCS#11 token named by the options; its PIN is read once, when first needed."""
    module = getattr(args, "pkcs11_module", None)
    if not module:
        for flag in ("pkcs11_token", "pkcs11_key", "pin_file"):
            if getattr(args, flag, None):
                raise UsageError(f"--{flag.replace('_', '-')} needs --pkcs11-module")
        return None
    from locker.slots import DEFAULT_KEY_LABEL
    from locker.slots.token import TokenSpec

    token = getattr(args, "pkcs11_token", None)
    pin: list[bytearray] = []

    def read_pin() -> bytearray:
        if not pin:
            spec = getattr(args, "pin_file", None)
            label = f"PIN for token {token}: " if token else "Token PIN: "
            pin.append(prompts.read_secret_file(spec, "PIN") if spec else prompts.ask(label))
        return pin[0]

    return TokenSpec(
        module, token, getattr(args, "pkcs11_key", None) or DEFAULT_KEY_LABEL, read_pin
    )


class KeysAtHand(NamedTuple):
    """What unlocks before a passphrase is asked, in the unlock order (the keyring's slot,
    then the keys the options name), and whether a passphrase may be asked after them."""

    openers: list[Opener]
    passphrase: bool
    keyfile: bytes | None  # the second factor of a passphrase+keyfile slot
    notes: list[str]  # why the keyring opened nothing


def openers(args: argparse.Namespace, path: Path) -> list[Opener]:
    """Every key this command may try on the vault at `path`, in the unlock order."""
    at_hand = keys_at_hand(args, path)
    found = list(at_hand.openers)
    if at_hand.passphrase:
        spec = getattr(args, "passphrase_file", None)

        def ask() -> bytearray:
            for note in at_hand.notes:
                prompts.warn(note)
            return prompts.passphrase(spec)

        found.append(PassphraseOpener(ask, at_hand.keyfile))
    return found


def keys_at_hand(args: argparse.Namespace, path: Path) -> KeysAtHand:
    """The keys before the passphrase for the vault at `path` (the CLI's and the TUI's)."""
    kinds = _slot_kinds(path)
    found: list[Opener] = []
    explicit = False
    keyring_note: list[str] = []
    if SLOT_KEYRING in kinds and not getattr(args, "no_keyring", False):
        from locker.slots import keyring_slot

        found.append(keyring_slot.KeyringOpener(path, keyring_note))
    for spec in getattr(args, "identity", None) or []:
        from locker.slots import recipient

        explicit = True
        found += [recipient.IdentityOpener(i) for i in recipient.read_identities(Path(spec))]
    token = token_spec(args)
    if token is not None:
        from locker.slots.token import TokenOpener

        explicit = True
        found.append(TokenOpener(token))
    secret = keyfile_secret(args)
    if secret is not None:
        explicit = True
        found.append(SecretOpener(SLOT_KEYFILE, secret))
    recovery = recovery_secret(args)
    if recovery is not None:
        explicit = True
        found.append(SecretOpener(SLOT_RECOVERY, recovery))
    spec = getattr(args, "passphrase_file", None)
    wants_passphrase = kinds & {SLOT_PASSPHRASE, SLOT_PASSPHRASE_KEYFILE}
    second_factor = secret is not None and SLOT_PASSPHRASE_KEYFILE in kinds
    passphrase = bool((spec or not explicit or second_factor) and (wants_passphrase or not found))
    return KeysAtHand(found, passphrase, secret, keyring_note)
