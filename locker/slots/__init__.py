"""Unlock methods beyond the passphrase: recovery key, key file, OS keyring, recipients,
PKCS#11 tokens. Each kind turns what the user holds into the key that opens its slot; the
header framing of every kind is store.format's. Only this package imports `keyring`."""

# The label of a token's key when --pkcs11-key names none: here, where the TUI's token fields
# take it without loading the crypto that slots/token.py does.
DEFAULT_KEY_LABEL = "locker"
