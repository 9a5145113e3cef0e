"""One contract for every key-slot kind, in the style of keyring's BackendBasicTests
(keyring/testing/backend.py): a base class of tests, and one small subclass per kind that says
how to add its slot and what its right and wrong keys are. The vault starts with a passphrase
slot (PASSPHRASE); the kind under test is added beside it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import OTHER_PASSPHRASE, PASSPHRASE, SMALL_KDF, SoftHsm

from locker.errors import EXIT_BAD_KEY, BadKeyError
from locker.store import keys
from locker.store.format import (
    SLOT_KEYFILE,
    SLOT_KEYRING,
    SLOT_KINDS,
    SLOT_PASSPHRASE,
    SLOT_PASSPHRASE_KEYFILE,
    SLOT_PKCS11,
    SLOT_RECOVERY,
    SLOT_X25519,
    parse_head,
)
from locker.store.keys import Opener, PassphraseOpener, SecretOpener
from locker.vault import Vault

if TYPE_CHECKING:
    from locker.slots.token import TokenSpec


class SlotContract:
    """Subclasses set `kind` and implement add(), right() and wrong()."""

    kind: int

    def add(self, vault: Vault) -> None:
        raise NotImplementedError

    def right(self, path: Path) -> Sequence[Opener]:
        raise NotImplementedError

    def wrong(self, path: Path) -> Sequence[Opener]:
        raise NotImplementedError

    @pytest.fixture
    def vault(self, vault_path: Path) -> Path:
        with Vault.open(vault_path, PASSPHRASE, write=True) as v:
            v.add_bytes("s.txt", b"the secret\n")
            self.add(v)
            v.commit()
        return vault_path

    def slot_of_kind(self, path: Path) -> int:
        header = parse_head(path.read_bytes())
        return next(i for i, s in enumerate(header.slots) if s.kind == self.kind)

    def test_the_slot_is_written_with_its_kind(self, vault: Path) -> None:
        header = parse_head(vault.read_bytes())
        assert [s.kind for s in header.slots] == [SLOT_PASSPHRASE, self.kind]

    def test_right_key_unlocks(self, vault: Path) -> None:
        with Vault.open(vault, self.right(vault)) as v:
            assert v.read_bytes("s.txt") == b"the secret\n"
            assert v.unlocked_slot.kind == self.kind

    def test_wrong_key_is_a_bad_key(self, vault: Path) -> None:
        with pytest.raises(BadKeyError) as caught:
            Vault.open(vault, self.wrong(vault))
        assert caught.value.exit_code == EXIT_BAD_KEY

    def test_listed_with_kind_and_never_the_secret(self, vault: Path) -> None:
        with Vault.open(vault, PASSPHRASE) as v:
            info = v.slots()
        assert [s.kind for s in info] == ["passphrase", SLOT_KINDS[self.kind].name]
        assert info[1].created is not None
        assert not info[1].unlocked

    def test_still_unlocks_after_other_changes(self, vault: Path) -> None:
        with Vault.open(vault, PASSPHRASE, write=True) as v:
            v.add_bytes("more.txt", b"more")
            v.commit()
        with Vault.open(vault, self.right(vault)) as v:
            assert v.read_bytes("more.txt") == b"more"

    def test_a_change_through_this_slot_marks_it_used(self, vault: Path) -> None:
        with Vault.open(vault, self.right(vault), write=True) as v:
            v.add_bytes("via.txt", b"x")
            v.commit()
        with Vault.open(vault, PASSPHRASE) as v:
            assert v.slots()[1].used is not None

    def test_removed_slot_no_longer_unlocks(self, vault: Path) -> None:
        with Vault.open(vault, PASSPHRASE, write=True) as v:
            v.remove_slot(v.slot_list()[1])
            v.commit()
        with pytest.raises(BadKeyError):
            Vault.open(vault, self.right(vault))

    def test_tampered_slot_reads_as_a_bad_key(self, vault: Path) -> None:
        data = bytearray(vault.read_bytes())
        start = 29 + 101  # after the prefix and the first (passphrase) slot
        data[start + 12 + 1] ^= 1  # first byte of this slot's salt
        vault.write_bytes(bytes(data))
        with pytest.raises(BadKeyError):
            Vault.open(vault, self.right(vault))

    def test_rekey_through_this_slot_renews_it(self, vault: Path) -> None:
        before = parse_head(vault.read_bytes()).slots[1]
        with Vault.open(vault, self.right(vault), write=True) as v:
            assert v.rekey() == 1
            v.commit()
        after = parse_head(vault.read_bytes()).slots
        assert [s.kind for s in after] == [self.kind]
        assert after[0].slot_id == before.slot_id
        assert after[0].salt != before.salt
        with Vault.open(vault, self.right(vault)) as v:
            assert v.read_bytes("s.txt") == b"the secret\n"
        with pytest.raises(BadKeyError):
            Vault.open(vault, PASSPHRASE)

    def test_last_slot_cannot_be_removed(self, vault: Path) -> None:
        with Vault.open(vault, self.right(vault), write=True) as v:
            v.remove_slot(v.slot_list()[0])
            with pytest.raises(Exception, match="last key slot"):
                v.remove_slot(v.slot_list()[0])
            v.commit()
        with Vault.open(vault, self.right(vault)) as v:
            assert len(v.slots()) == 1


class TestPassphraseSlot(SlotContract):
    kind = SLOT_PASSPHRASE

    def add(self, vault: Vault) -> None:
        slot = keys.new_slot(os.urandom, SLOT_PASSPHRASE, SMALL_KDF)
        vault.add_slot(slot, keys.passphrase_kek(OTHER_PASSPHRASE, slot), "second")

    def right(self, path: Path) -> Sequence[Opener]:
        return [PassphraseOpener(OTHER_PASSPHRASE)]

    def wrong(self, path: Path) -> Sequence[Opener]:
        return [PassphraseOpener(b"neither of the two")]

    def test_the_slot_is_written_with_its_kind(self, vault: Path) -> None:
        header = parse_head(vault.read_bytes())
        assert [s.kind for s in header.slots] == [SLOT_PASSPHRASE, SLOT_PASSPHRASE]

    def test_removed_slot_no_longer_unlocks(self, vault: Path) -> None:
        with Vault.open(vault, PASSPHRASE, write=True) as v:
            v.remove_slot(v.slot_list()[1])
            v.commit()
        with pytest.raises(BadKeyError):
            Vault.open(vault, self.right(vault))

    def test_rekey_through_this_slot_renews_it(self, vault: Path) -> None:
        # both slots are passphrase slots: the one that opened is the one kept
        with Vault.open(vault, self.right(vault), write=True) as v:
            kept = v.unlocked_slot
            assert v.rekey() == 1
            v.commit()
        after = parse_head(vault.read_bytes()).slots
        assert [s.slot_id for s in after] == [kept.slot_id]
        assert after[0].salt != kept.salt
        with Vault.open(vault, self.right(vault)) as v:
            assert v.read_bytes("s.txt") == b"the secret\n"


class SecretSlot(SlotContract):
    secret = bytes(range(1, 33))

    def add(self, vault: Vault) -> None:
        slot = keys.new_slot(os.urandom, self.kind)
        vault.add_slot(slot, keys.secret_kek(self.secret, slot))

    def right(self, path: Path) -> Sequence[Opener]:
        return [SecretOpener(self.kind, self.secret)]

    def wrong(self, path: Path) -> Sequence[Opener]:
        return [SecretOpener(self.kind, bytes(32))]


class TestRecoverySlot(SecretSlot):
    kind = SLOT_RECOVERY
    secret = bytes(range(20))


class TestKeyfileSlot(SecretSlot):
    kind = SLOT_KEYFILE


class TestPassphraseKeyfileSlot(SlotContract):
    kind = SLOT_PASSPHRASE_KEYFILE
    keyfile = bytes(range(100, 132))

    def add(self, vault: Vault) -> None:
        slot = keys.new_slot(os.urandom, self.kind, SMALL_KDF)
        vault.add_slot(slot, keys.passphrase_keyfile_kek(OTHER_PASSPHRASE, self.keyfile, slot))

    def right(self, path: Path) -> Sequence[Opener]:
        return [PassphraseOpener(OTHER_PASSPHRASE, self.keyfile)]

    def wrong(self, path: Path) -> Sequence[Opener]:
        return [PassphraseOpener(OTHER_PASSPHRASE, bytes(32))]


class TestX25519Slot(SlotContract):
    kind = SLOT_X25519
    identity = bytes(range(7, 39))

    def add(self, vault: Vault) -> None:
        from locker.slots import recipient

        slot, kek = recipient.new_recipient_slot(os.urandom, recipient.public_key(self.identity))
        vault.add_slot(slot, kek)

    def right(self, path: Path) -> Sequence[Opener]:
        from locker.slots.recipient import IdentityOpener

        return [IdentityOpener(self.identity)]

    def wrong(self, path: Path) -> Sequence[Opener]:
        from locker.slots.recipient import IdentityOpener

        return [IdentityOpener(bytes(range(8, 40)))]


class TestTokenSlot(SlotContract):
    """Against a real PKCS#11 module: SoftHSM2 with a P-256 key of the `softhsm` fixture."""

    kind = SLOT_PKCS11

    @pytest.fixture(autouse=True)
    def _token(self, softhsm: SoftHsm) -> None:
        self.hsm = softhsm

    def spec(self, key: str = "locker", pin: str | None = None) -> TokenSpec:
        from locker.slots.token import TokenSpec

        secret = (pin or self.hsm.pin).encode()
        return TokenSpec(self.hsm.module, self.hsm.label, key, lambda: secret)

    def add(self, vault: Vault) -> None:
        from locker.slots import token

        slot, kek = token.new_token_slot(os.urandom, token.public_point(self.spec()))
        vault.add_slot(slot, kek)

    def right(self, path: Path) -> Sequence[Opener]:
        from locker.slots.token import TokenOpener

        return [TokenOpener(self.spec())]

    def wrong(self, path: Path) -> Sequence[Opener]:
        from locker.slots.token import TokenOpener

        self.hsm.add_key("another")
        return [TokenOpener(self.spec("another"))]

    def test_wrong_pin_is_a_bad_key(self, vault: Path) -> None:
        from locker.slots.token import TokenOpener

        with pytest.raises(BadKeyError, match="wrong PIN"):
            Vault.open(vault, [TokenOpener(self.spec(pin="0000"))])


class TestKeyringSlot(SlotContract):
    """Against the real Secret Service of the `secret_service` fixture."""

    kind = SLOT_KEYRING

    @pytest.fixture(autouse=True)
    def _keyring(
        self, secret_service: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[None]:
        import keyring
        import keyring.core
        from keyring.backends import fail

        for key, value in secret_service.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        keyring.core.init_backend()
        assert type(keyring.get_keyring()).__module__ == "keyring.backends.SecretService"
        yield
        keyring.set_keyring(fail.Keyring())

    def add(self, vault: Vault) -> None:
        from locker.slots import keyring_slot

        kr = keyring_slot.backend()
        secret = os.urandom(32)
        slot = keys.new_slot(os.urandom, SLOT_KEYRING)
        vault.add_slot(slot, keys.secret_kek(secret, slot))
        keyring_slot.store(kr, vault.container_id, slot.slot_id, secret)

    def right(self, path: Path) -> Sequence[Opener]:
        from locker.slots import keyring_slot

        return [keyring_slot.KeyringOpener(path, [])]

    def wrong(self, path: Path) -> Sequence[Opener]:
        from locker.slots import keyring_slot

        header = parse_head(path.read_bytes())
        slot = header.slots[self.slot_of_kind(path)]
        keyring_slot.store(keyring_slot.backend(), header.container_id, slot.slot_id, bytes(32))
        return [keyring_slot.KeyringOpener(path, [])]
