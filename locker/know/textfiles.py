"""Text files that hold credentials: env files (python-dotenv), kubeconfigs (PyYAML),
.netrc, .pgpass and AWS credentials files. Facts name things; they never hold a value.

The env dialect is python-dotenv's: `export` prefixes, single and double quotes, multi-line
quoted values, CRLF line ends, `#` comments, `${VAR}` expansion off.
"""

from __future__ import annotations

import base64
import configparser
import io
import os
import re
from typing import Any

from locker.know.facts import Facts

_WORDS = re.compile(r"[A-Z0-9]+")
_SECRET_WORDS = {
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "KEY",
    "APIKEY",
    "PRIVATE",
    "CREDENTIAL",
    "CREDENTIALS",
}
# A name ending in one of these names the secret, it is not the secret ("KEY_FILE", "TOKEN_TTL").
_NOT_VALUE_WORDS = {
    "PATH", "FILE", "DIR", "ID", "NAME", "TYPE", "ENABLED", "LENGTH", "SIZE", "ALGORITHM",
    "TTL", "EXPIRY", "EXPIRES", "URL", "HOST", "PORT", "USER", "USERNAME", "HEADER", "PREFIX",
}  # fmt: skip
_URL_WITH_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:[^@/\s]+@")
_PLACEHOLDER = re.compile(r"^(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|<[^>]*>|x+|\*+|changeme|)$", re.I)


def is_credential(name: str, value: str | None) -> bool:
    """Does this variable look like it holds a credential (judged by its name, and by a
    password inside a URL value)? An empty or placeholder value holds none."""
    if value is None or _PLACEHOLDER.match(value.strip()):
        return False
    if _URL_WITH_PASSWORD.match(value.strip()):
        return True
    words = _WORDS.findall(name.upper().replace("APIKEY", "API_KEY"))
    if not words or "PUBLIC" in words or words[-1] in _NOT_VALUE_WORDS:
        return False
    return any(w in _SECRET_WORDS for w in words) or (words[-1] == "DSN" and "@" in value)


def parse_env(text: str) -> dict[str, str | None] | None:
    """Variables of an env file, or None if any line is not `NAME=value`, a comment or blank."""
    from dotenv.parser import parse_stream

    values: dict[str, str | None] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            return None
        if binding.key is None:
            continue
        if binding.value is None:  # a bare word: not an assignment
            return None
        values[binding.key] = binding.value
    return values or None


def env_facts(text: str) -> Facts | None:
    values = parse_env(text)
    if values is None:
        return None
    names = sorted(values)
    credentials = [n for n in names if is_credential(n, values[n])]
    return {
        "type": "env",
        "vars": names[:200],
        "count": len(names),
        "credentials": credentials[:200],
        "secret": bool(credentials),
    }


_KUBE_SECRETS = ("client-key-data", "token", "password", "auth-provider", "client-key")


def kubeconfig_facts(text: str) -> Facts | None:
    if "Config" not in text or ("clusters" not in text and "users" not in text):
        return None
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when it is there
    try:
        obj = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, RecursionError, ValueError):
        return None
    if not isinstance(obj, dict) or obj.get("kind") != "Config":
        return None
    if not isinstance(obj.get("clusters", []), list) or not isinstance(obj.get("users", []), list):
        return None
    clusters = [str(c.get("name", "")) for c in obj.get("clusters") or [] if isinstance(c, dict)]
    users: list[Facts] = []
    certs: list[Facts] = []
    for item in obj.get("users") or []:
        user = item.get("user") if isinstance(item, dict) else None
        if not isinstance(user, dict):
            continue
        embedded = sorted(k for k in user if k in _KUBE_SECRETS or k == "client-certificate-data")
        users.append({"name": str(item.get("name", "")), "embedded": embedded})
        cert = _embedded_cert(user.get("client-certificate-data"))
        if cert is not None:
            cert["user"] = str(item.get("name", ""))
            certs.append(cert)
    contexts = [str(c.get("name", "")) for c in obj.get("contexts") or [] if isinstance(c, dict)]
    facts: Facts = {
        "type": "kubeconfig",
        "clusters": clusters,
        "users": users,
        "contexts": contexts,
        "current_context": str(obj.get("current-context") or ""),
        "secret": any(set(u["embedded"]) & set(_KUBE_SECRETS) for u in users),
    }
    if certs:
        facts["certs"] = certs
    return facts


def _embedded_cert(value: Any) -> Facts | None:
    if not isinstance(value, str):
        return None
    from cryptography import x509  # here: `locker run` parses env files and needs no X.509

    from locker.know.pki import cert_facts

    try:
        pem = base64.b64decode(value, validate=False)
        return cert_facts(x509.load_pem_x509_certificate(pem))
    except ValueError:
        return None


def netrc_facts(text: str, name: str) -> Facts | None:
    if os.path.basename(name) not in (".netrc", "_netrc", "netrc"):
        return None
    tokens = text.split()
    machines = [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == "machine"]
    has_password = any(t == "password" for t in tokens[:-1])
    if not machines and "default" not in tokens:
        return None
    return {"type": "netrc", "machines": machines[:200], "secret": has_password}


def pgpass_facts(text: str, name: str) -> Facts | None:
    if os.path.basename(name) not in (".pgpass", "pgpass", "pgpass.conf"):
        return None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    fields = [re.split(r"(?<!\\):", ln) for ln in lines]
    if not fields or any(len(f) != 5 for f in fields):
        return None
    return {"type": "pgpass", "count": len(fields), "secret": any(f[4] for f in fields)}


def aws_facts(text: str) -> Facts | None:
    if "aws_secret_access_key" not in text.lower():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    profiles = [s for s in parser.sections() if parser[s].get("aws_secret_access_key", "").strip()]
    if not profiles:
        return None
    return {"type": "aws-credentials", "profiles": profiles, "secret": True}


def from_text(data: bytes, name: str) -> Facts | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    return (
        aws_facts(text)
        or netrc_facts(text, name)
        or pgpass_facts(text, name)
        or kubeconfig_facts(text)
        or env_facts(text)
    )
