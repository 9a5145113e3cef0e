"""What the vault holds: recognising keys, certificates, CSRs, JWKs, env files and kubeconfigs;
expiry and pairing; `run`, `gen` and `sweep`. May use cryptography's x509 and public-key APIs;
every symmetric primitive and the KDF stay in store/."""
