"""The container format and how it reaches disk: crypto, header and slots, index, container
(seal, open, atomic save), the writer lock and safe file writes. Nothing above knows a byte
offset; only `store.crypto` imports cryptography and argon2."""
