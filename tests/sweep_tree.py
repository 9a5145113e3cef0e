"""A tree of plaintext secrets among ordinary files, for the sweep tests and the benchmark."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from pki_factory import cert, cert_pem, ec_key, ed_key, key_pem, rsa_key

from locker.know import jwk

NOW = time.time()
PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER


def _private(
    key: object,
    fmt: serialization.PrivateFormat,
    enc: serialization.Encoding = PEM,
    pw: bytes | None = None,
) -> bytes:
    algorithm = serialization.BestAvailableEncryption(pw) if pw else serialization.NoEncryption()
    return key.private_bytes(enc, fmt, algorithm)  # type: ignore[attr-defined, no-any-return]


def _kubeconfig(user: str) -> bytes:
    return (
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://k\n"
        f"users:\n- name: u\n  user:\n{user}"
    ).encode()


def secrets() -> dict[str, bytes]:
    """20 files that each hold a plaintext secret, in every recognised form."""
    rsa, ec, ed = rsa_key(), ec_key(), ed_key()
    c = cert(rsa, "svc.example", NOW, 90)
    ec_jwk = dict(
        jwk.public_jwk(ec.public_key(), "ES256"),
        d=jwk.b64u(ec.private_numbers().private_value.to_bytes(32, "big")),
    )
    rsa_nums = rsa.private_numbers()
    rsa_jwk = dict(
        jwk.public_jwk(rsa.public_key(), "RS256"), d=jwk.b64u(rsa_nums.d.to_bytes(256, "big"))
    )
    return {
        "srv/tls/server.key": key_pem(rsa),
        "srv/tls/ec-trad.key": _private(ec, serialization.PrivateFormat.TraditionalOpenSSL),
        "srv/tls/ed.der": _private(ed, serialization.PrivateFormat.PKCS8, DER),
        "srv/tls/locked.key": _private(ec, serialization.PrivateFormat.PKCS8, pw=b"pw"),
        "home/alice/.ssh/id_ed25519": _private(ed, serialization.PrivateFormat.OpenSSH),
        "srv/tls/bundle.p12": pkcs12.serialize_key_and_certificates(
            b"s", rsa, c, None, serialization.NoEncryption()
        ),
        "srv/tls/locked.pfx": pkcs12.serialize_key_and_certificates(
            b"s", rsa, c, None, serialization.BestAvailableEncryption(b"pw")
        ),
        "srv/auth/signing.jwk": json.dumps(ec_jwk).encode(),
        "srv/auth/hmac.jwk": json.dumps({"kty": "oct", "k": jwk.b64u(b"s" * 32)}).encode(),
        "srv/auth/private-jwks.json": json.dumps({"keys": [rsa_jwk]}).encode(),
        "app/.env": b"DB_PASSWORD=hunter2\nDEBUG=1\n",
        "app/prod.env": b"export API_TOKEN='t0k3n'\r\nREGION=eu\r\n",
        "app/db.env": b"DATABASE_URL=postgres://app:pw@db:5432/app\n",
        "home/alice/.kube/config": _kubeconfig("    token: abcdef\n"),
        "home/bob/.kube/config": _kubeconfig(
            f"    client-key-data: {base64.b64encode(key_pem(ec)).decode()}\n"
        ),
        "home/alice/.netrc": b"machine api.example login alice password pw\n",
        "home/alice/.pgpass": b"db:5432:app:alice:pw\n",
        "home/alice/.aws/credentials": b"[default]\naws_access_key_id = AKIAX\naws_secret_access_key = abc/def\n",
        "srv/haproxy/site.pem": cert_pem(c) + key_pem(rsa),
        "app/settings.env": b'STRIPE_API_KEY="sk_live_abc"\n',
    }


def ordinary(count: int) -> dict[str, bytes]:
    """`count` files that hold no secret: public certificates and keys, CSR-free public JWKS,
    READMEs, source, configuration, env templates with placeholders."""
    key = ec_key()
    crt = cert_pem(cert(key, "public.example", NOW, 200))
    pub = key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    ssh_pub = (
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + b" me@host\n"
    )
    jwks = json.dumps({"keys": [jwk.public_jwk(key.public_key(), "ES256")]}).encode()
    makers: list[Callable[[int], tuple[str, bytes]]] = [
        lambda i: (f"certs/site{i}.crt", crt),
        lambda i: (f"certs/site{i}.der", cert(key, f"d{i}", NOW, 30).public_bytes(DER)),
        lambda i: (f"keys/pub{i}.pem", pub),
        lambda i: (f"keys/id{i}.pub", ssh_pub),
        lambda i: (f"web/.well-known/jwks{i}.json", jwks),
        lambda i: (
            f"docs/README{i}.md",
            b"# Service\n\nSet DB_PASSWORD in .env; see the runbook.\n",
        ),
        lambda i: (
            f"src/mod{i}.py",
            b"import os\n\nPASSWORD = os.environ['DB_PASSWORD']\n\ndef main():\n    return PASSWORD\n",
        ),
        lambda i: (
            f"app/.env{i}.example",
            b"DB_PASSWORD=\nAPI_TOKEN=changeme\nSECRET_KEY=${SECRET_KEY}\nDEBUG=1\n",
        ),
        lambda i: (f"conf/app{i}.ini", b"[server]\nport = 8080\npassword_file = /run/secrets/db\n"),
        lambda i: (
            f"conf/settings{i}.env",
            b"LOG_LEVEL=info\nKEY_FILE=/etc/ssl/private/k.pem\nPUBLIC_KEY=abc\n",
        ),
        lambda i: (f"k8s/kubeconfig{i}", _kubeconfig("    exec:\n      command: aws\n")),
        lambda i: (f"data/blob{i}.bin", bytes(range(256)) * 4),
        lambda i: (
            f"scripts/run{i}.sh",
            b'#!/bin/sh\nexport PATH=/usr/bin\nexec ./server --key "$KEY_FILE"\n',
        ),
        lambda i: (
            f"web/package{i}.json",
            b'{"name": "web", "version": "1.0.0", "keys": ["a", "b"]}\n',
        ),
    ]
    return dict(makers[i % len(makers)](i) for i in range(count))


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
