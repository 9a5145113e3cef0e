"""`locker inspect`: facts kept in the index on add, expiry, rotation, pairing, exit 6,
JSON and prometheus output, over a real-looking vault of three services."""

from __future__ import annotations

import base64
import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import LOCKER, PASSPHRASE, RunLocker, locker_env
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pki_factory import DAY, cert, cert_pem, ec_key, ed_key, jwk_json, key_pem, rsa_key

from locker.know import inspect as kin
from locker.know import jwk
from locker.know.facts import FACTS_ATTR, decode, recogniser
from locker.vault import Vault

NOW = time.time()


def _fill(path: Path, files: dict[str, bytes], clock: float | None = None) -> None:
    with Vault.open(path, PASSPHRASE, write=True, clock=lambda: clock or NOW) as v:
        v.recogniser = recogniser()
        for name, data in files.items():
            v.add_bytes(name, data)
        v.commit()


def _services() -> dict[str, bytes]:
    """Three services: api (key + cert due in 5 days), web (key + chain, 400 days), billing
    (a cert whose key is another one: mismatched), a JWT signing key, env files, a kubeconfig."""
    ca_key = ec_key()
    ca = cert(ca_key, "Ops CA", NOW, 3650, ca=True)
    api_key, web_key, billing_key, other_key = rsa_key(), ec_key(), ec_key(), ec_key()
    api = cert(api_key, "api.example", NOW, 5, issuer_key=ca_key, issuer_cn="Ops CA")
    web = cert(web_key, "web.example", NOW, 400, issuer_key=ca_key, issuer_cn="Ops CA")
    billing = cert(other_key, "billing.example", NOW, 90, issuer_key=ca_key, issuer_cn="Ops CA")
    old = cert(ec_key(), "old.example", NOW, -3)
    signing = ed_key()
    signing_jwk = dict(
        jwk.public_jwk(signing.public_key(), "EdDSA"), d=jwk.b64u(signing.private_bytes_raw())
    )
    kube_key = ec_key()
    kubeconfig = (
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {server: 'https://k'}\n"
        "users:\n- name: admin\n  user:\n"
        f"    client-certificate-data: {base64.b64encode(cert_pem(cert(kube_key, 'admin', NOW, 200))).decode()}\n"
        f"    client-key-data: {base64.b64encode(key_pem(kube_key)).decode()}\n"
    ).encode()
    return {
        "api/tls.key": key_pem(api_key),
        "api/tls.crt": cert_pem(api, ca),
        "web/tls.key": key_pem(web_key),
        "web/tls.crt": cert_pem(web, ca),
        "billing/tls.key": key_pem(billing_key),
        "billing/tls.crt": cert_pem(billing),
        "ca/ca.crt": cert_pem(ca),
        "old/old.crt": cert_pem(old),
        "api/jwt-signing.jwk": jwk_json(signing_jwk),
        "api/prod.env": b"export DB_PASSWORD='s3cr3t'\nDEBUG=0\n",
        "web/.env": b'SECRET_KEY="abc"\r\n',
        "kube/config": kubeconfig,
        "README.md": b"# notes\n",
    }


def test_facts_are_stored_on_add_and_read_without_decryption(vault_path: Path) -> None:
    _fill(vault_path, _services())
    with Vault.open(vault_path, PASSPHRASE) as v:
        entries = {e.name: e for e in v.entries()}
    assert FACTS_ATTR not in entries["README.md"].attrs
    crt = decode(entries["api/tls.crt"].attrs)
    assert crt is not None and crt["type"] == "certificate-chain"
    env = decode(entries["api/prod.env"].attrs)
    assert env is not None and env["vars"] == ["DB_PASSWORD", "DEBUG"]
    assert "s3cr3t" not in entries["api/prod.env"].attrs[FACTS_ATTR]


def test_report_pairs_expiry_and_rotation(vault_path: Path) -> None:
    _fill(vault_path, _services(), clock=NOW - 400 * DAY)  # every key was added 400 days ago
    with Vault.open(vault_path, PASSPHRASE) as v:
        items = kin.report(v.entries(), NOW, expiring_within=30, rotate_after=365)
    by_name = {i.name: i for i in items}
    assert [i.name for i in items[:2]] == ["old/old.crt", "api/tls.crt"]  # soonest expiry first
    assert by_name["old/old.crt"].attention == ["expired"]
    assert by_name["api/tls.crt"].attention == ["expires in 4 days"]
    assert by_name["api/tls.crt"].pairs == ["api/tls.key"]
    assert by_name["api/tls.key"].pairs == ["api/tls.crt"]
    assert by_name["web/tls.crt"].attention == [] and by_name["web/tls.crt"].days_left(NOW) == 399
    assert "its key is not in the vault" in by_name["billing/tls.crt"].notes
    assert "no certificate for this key" in by_name["billing/tls.key"].notes
    assert by_name["ca/ca.crt"].notes == []  # a CA certificate needs no key here
    assert by_name["api/tls.key"].attention == ["key is 400 days old"]
    assert by_name["api/jwt-signing.jwk"].attention == ["key is 400 days old"]
    assert by_name["kube/config"].not_after is not None
    assert "README.md" not in by_name


def test_cli_inspect_table_json_prometheus_and_exit_6(
    cli: RunLocker, vault_path: Path, tmp_path: Path
) -> None:
    _fill(vault_path, _services())
    table = cli("inspect")
    assert table.returncode == 6, table.stderr
    lines = table.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["EXPIRES", "DAYS", "NAME"]
    assert "old/old.crt" in lines[1] and "! expired" in lines[1]
    assert "api/tls.crt" in lines[2] and "api/tls.key" in lines[2]
    assert lines[3].split()[2] == "api/tls.key"  # a key sits right under its certificate
    out = cli("inspect", "--json", "--expiring-within", "1")
    assert out.returncode == 6  # still: one has expired
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["api/tls.crt"]["attention"] == [] and rows["api/tls.crt"]["days_left"] == 4
    assert set(rows["api/tls.key"]) == {
        "name", "type", "what", "not_after", "days_left", "key_age_days", "paired_with",
        "notes", "attention",
    }  # fmt: skip
    prom = tmp_path / "locker.prom"
    out = cli("inspect", "--format", "prometheus", "--output", prom)
    assert out.returncode == 6 and out.stdout == b""
    text = prom.read_text()
    assert 'locker_cert_not_after_seconds{name="api/tls.crt"}' in text
    assert 'locker_attention{name="old/old.crt"} 1' in text
    assert "DB_PASSWORD" not in text and oct(prom.stat().st_mode & 0o777) == "0o644"


def test_cli_inspect_exit_0_when_all_is_well(cli: RunLocker, vault_path: Path) -> None:
    key = ec_key()
    _fill(vault_path, {"k.pem": key_pem(key), "c.pem": cert_pem(cert(key, "fine", NOW, 400))})
    out = cli("inspect")
    assert out.returncode == 0, out.stdout
    assert b"2 recognised, 0 plain files; 0 need attention" in out.stdout


@pytest.mark.parametrize("flag", ["--expiring-within", "--rotate-after"])
def test_cli_inspect_bad_days(cli: RunLocker, flag: str) -> None:
    out = cli("inspect", flag, "soon")
    assert out.returncode == 2 and out.stderr.startswith(b"locker: error: " + flag.encode())


def test_cli_add_records_facts_and_ls_shows_them(cli: RunLocker, tmp_path: Path) -> None:
    key = rsa_key()
    (tmp_path / "server.key").write_bytes(key_pem(key))
    assert cli("add", tmp_path / "server.key").returncode == 0
    listing = cli("ls", "-l").stdout.decode()
    assert "(private-key RSA 2048)" in listing
    rows = json.loads(cli("ls", "--json").stdout)
    assert rows[0]["facts"]["keys"][0]["bits"] == 2048


@pytest.mark.parametrize(
    "args", [["ls", "-l"], ["ls", "--json"], ["info"], ["run", "--env", "e.env", "--", "true"]]
)
def test_listing_and_run_do_not_load_x509(
    vault_path: Path, pwfile: Path, tmp_path: Path, args: list[str]
) -> None:
    _fill(vault_path, {"k.pem": key_pem(ec_key()), "e.env": b"A=1\n"})
    code = (
        "import sys\nfrom locker.cli.main import main\n"
        f"rc = main({['--vault', str(vault_path), '--passphrase-file', str(pwfile), *args]!r})\n"
        "print(rc, 'cryptography.x509' in sys.modules, 'locker.know.pki' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, env=locker_env(tmp_path)
    )
    assert out.stdout.decode().splitlines()[-1] == "0 False False"


def test_a_key_written_into_a_mount_is_recognised_when_it_syncs(
    vault_path: Path, pwfile: Path, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [*LOCKER, "--vault", str(vault_path), "--passphrase-file", str(pwfile), "mount"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=locker_env(tmp_path),
    )
    try:
        assert proc.stdout is not None
        directory = Path(proc.stdout.readline().decode().strip())
        assert directory.is_dir(), proc.stderr.read() if proc.stderr else b""
        key = ec_key()
        (directory / "tls").mkdir()
        (directory / "tls" / "k.pem").write_bytes(key_pem(key))
        (directory / "tls" / "c.pem").write_bytes(cert_pem(cert(key, "mnt.example", NOW, 9)))
    finally:
        proc.send_signal(signal.SIGTERM)  # the final sync saves what the debounce has not
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    with Vault.open(vault_path, PASSPHRASE) as v:
        items = {i.name: i for i in kin.report(v.entries(), time.time())}
    assert items["tls/c.pem"].pairs == ["tls/k.pem"]
    assert items["tls/c.pem"].attention == ["expires in 8 days"]


def test_ls_long_shows_a_certificate_without_subject_in_one_pair_of_brackets(
    cli: RunLocker, tmp_path: Path
) -> None:
    key = ec_key()
    now = dt.datetime.now(dt.UTC)
    bare = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "bare.pem").write_bytes(cert_pem(bare))
    assert cli("add", tmp_path / "bare.pem").returncode == 0
    line = cli("ls", "-l").stdout.decode().strip()
    assert line.endswith("bare.pem  (certificate no subject)"), line
