"""Unlock methods beyond the passphrase: recovery key, key file, OS keyring, recipients,
PKCS#11 tokens. Each kind turns what the user holds into the key that opens its slot; the
header framing of every kind is store.format's. Only this package imports `keyring`."""
