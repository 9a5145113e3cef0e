"""What import-linter cannot see (it knows third-party packages only by their top-level name):
know/ and slots/ may use cryptography's x509 and public-key APIs, but every symmetric primitive
and the KDF stay in store/crypto.py."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "locker"
SYMMETRIC = (
    "argon2",
    "_argon2_cffi_bindings",
    "cryptography.hazmat.bindings",
    "cryptography.hazmat.primitives.ciphers",
    "cryptography.hazmat.primitives.kdf",
    "cryptography.hazmat.primitives.hmac",
    "cryptography.fernet",
)


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_symmetric_primitives_and_the_kdf_only_in_store_crypto() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "store" / "crypto.py":
            continue
        for module in imported_modules(path):
            if any(module == s or module.startswith(s + ".") for s in SYMMETRIC):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}: {module}")
    assert offenders == []


def test_the_check_sees_store_crypto_imports() -> None:
    # Guards the guard: the walk must find the primitives where they are.
    modules = imported_modules(PACKAGE / "store" / "crypto.py")
    assert "cryptography.hazmat.bindings._rust.openssl" in modules
    assert "cryptography.hazmat.primitives.ciphers.aead" in modules
    assert "_argon2_cffi_bindings.lib" in modules
