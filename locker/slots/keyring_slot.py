"""The OS keyring slot: a random 32-byte secret kept in the OS keyring (Secret Service, macOS
Keychain, Windows Credential Locker, through `keyring`) opens this vault on this machine.

The secret is stored as 64 hex digits under service "locker", user name
"<container id hex>/<slot id hex>", so each machine's keyring holds the secret of its own slot.
A keyring with no usable backend (the fail or null backend, any backend of priority below 1:
a jump host without a session bus) or one that refuses (a locked collection, a dismissed
prompt) is a KeyringUnusable naming the backend; unlocking then falls back to the next key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from locker.errors import LockerError
from locker.store.format import SLOT_KEYRING, Head, Slot
from locker.store.keys import Random, new_slot, secret_kek

SERVICE = "locker"
SECRET_SIZE = 32


class KeyringUnusable(LockerError):
    """The OS keyring cannot be used here; the message names the backend."""


def entry_name(container_id: bytes, slot_id: bytes) -> str:
    return f"{container_id.hex()}/{slot_id.hex()}"


def backend() -> Any:
    """The keyring backend `keyring` chose, if it can hold secrets; else KeyringUnusable."""
    try:
        import keyring
    except ImportError:  # pragma: no cover - a declared dependency
        raise KeyringUnusable(
            "the OS keyring cannot be used: the keyring package is missing"
        ) from None
    from keyring.backends.chainer import ChainerBackend

    kr = keyring.get_keyring()
    if isinstance(kr, ChainerBackend):
        # The chainer claims priority 10 for any two backends of positive priority (a plaintext
        # file keyring among them); secrets go to its first backend: judge and use that one.
        chained = list(kr.backends)
        kr = chained[0] if chained else kr
    name = describe(kr)
    try:
        priority = float(kr.priority)
    except Exception:
        priority = 0.0
    if priority < 1:
        raise KeyringUnusable(
            f"the OS keyring cannot be used here: keyring backend {name} has priority "
            f"{priority:g} (no Secret Service, Keychain or Credential Locker was found)",
            hint="use the passphrase or another key; on Linux, a desktop session runs one",
        )
    return kr


def describe(kr: Any) -> str:
    return f"{type(kr).__module__}.{type(kr).__qualname__}"


def _call(kr: Any, what: str, method: str, *args: str) -> Any:
    from keyring.errors import KeyringError

    try:
        return getattr(kr, method)(*args)
    except KeyringError as exc:
        raise KeyringUnusable(
            f"the OS keyring ({describe(kr)}) refused to {what}: {exc or type(exc).__name__}"
        ) from None
    except Exception as exc:  # D-Bus and back-end errors surface as their own types
        raise KeyringUnusable(
            f"the OS keyring ({describe(kr)}) failed to {what}: {type(exc).__name__}"
        ) from None


def load(kr: Any, container_id: bytes, slot_id: bytes) -> bytes | None:
    """This machine's secret for the slot, or None when the keyring has none."""
    text = _call(kr, "read a secret", "get_password", SERVICE, entry_name(container_id, slot_id))
    if text is None:
        return None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        return None
    return secret if len(secret) == SECRET_SIZE else None


def store(kr: Any, container_id: bytes, slot_id: bytes, secret: bytes) -> None:
    _call(
        kr,
        "store a secret",
        "set_password",
        SERVICE,
        entry_name(container_id, slot_id),
        secret.hex(),
    )


def delete(kr: Any, container_id: bytes, slot_id: bytes) -> bool:
    """Remove the slot's secret from the keyring; False if it held none."""
    if load(kr, container_id, slot_id) is None:
        return False
    _call(kr, "delete a secret", "delete_password", SERVICE, entry_name(container_id, slot_id))
    return True


def forget(container_id: bytes, slot_id: bytes) -> str | None:
    """After a keyring slot is removed: its secret leaves this machine's keyring too. Returns
    what stayed behind, in words, when the keyring cannot be used."""
    try:
        delete(backend(), container_id, slot_id)
    except KeyringUnusable as exc:
        return f"{exc}: its secret may stay in the keyring (it opens nothing now)"
    return None


class KeyringOpener:
    """Opens the vault's keyring slots whose secret this machine's keyring holds.

    Never raises for an unusable keyring: it notes why in `notes` (the CLI says it before
    asking for the passphrase) and opens nothing, so unlocking falls back."""

    what = "keyring"
    kinds = (SLOT_KEYRING,)

    def __init__(self, path: Path, notes: list[str]) -> None:
        self.path = path
        self.notes = notes
        self._kr: Any = None
        self._secrets: dict[bytes, bytes] = {}

    def kek(self, header: Head, slot: Slot) -> bytes | None:
        if self._kr is None:
            try:
                self._kr = backend()
            except KeyringUnusable as exc:
                self.notes.append(f"{exc}; asking for the passphrase")
                self._kr = False
        if self._kr is False:
            return None
        try:
            secret = load(self._kr, header.container_id, slot.slot_id)
        except KeyringUnusable as exc:
            self.notes.append(f"{exc}; asking for the passphrase")
            self._kr = False
            return None
        if secret is None:
            return None
        self._secrets[slot.slot_id] = secret
        return secret_kek(secret, slot)

    def renew(self, rng: Random, slot: Slot) -> tuple[Slot, bytes]:
        fresh = new_slot(rng, SLOT_KEYRING, slot_id=slot.slot_id)
        return fresh, secret_kek(self._secrets[slot.slot_id], fresh)
