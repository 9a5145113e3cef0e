"""Text that came from a file's content (a certificate's subject, written by whoever made the
certificate) must not reach the terminal as control characters: `ls -l` and `inspect` escape
it, as `slot ls` and `log` already do (locker.text.printable)."""

from __future__ import annotations

import datetime
from pathlib import Path

from conftest import RunLocker
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

EVIL_CN = "ok\x1b[2J\x1b]0;owned\x07.example"


def _evil_cert(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, EVIL_CN)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_ls_long_and_inspect_escape_control_characters_from_content(
    cli: RunLocker, tmp_path: Path
) -> None:
    _evil_cert(tmp_path / "partner.crt")
    assert cli("add", tmp_path / "partner.crt").returncode == 0
    for args, code in ((("ls", "-l"), 0), (("inspect",), 6)):
        out = cli(*args)
        assert out.returncode == code, out.stderr
        assert b"\x1b" not in out.stdout and b"\x07" not in out.stdout, out.stdout
        assert b"\\x{1b}[2J" in out.stdout  # shown, escaped


def test_sweep_escapes_control_characters_in_file_names(
    run_locker: RunLocker, tmp_path: Path
) -> None:
    """sweep walks trees other users write to: a file name is theirs to choose."""
    tree = tmp_path / "shared"
    tree.mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tree / "id\x1b[2J\x1b]0;owned\x07.pem").write_bytes(pem)
    out = run_locker("sweep", tree)
    assert out.returncode == 6, out.stderr
    assert b"\x1b" not in out.stdout and b"\x07" not in out.stdout, out.stdout
    assert b"id\\x{1b}[2J" in out.stdout
