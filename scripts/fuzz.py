#!/usr/bin/env python3
"""Atheris (libFuzzer) harnesses for the parsers that read untrusted bytes.

Targets:
  header  format.parse_header: magic, version, flags, every key slot, KDF caps, index length
  index   index.decode_index on decrypted index bytes (the first 8 bytes give the data length)
  open    a whole container file through Sealed.read and, when its slot opens with the
          vectors' passphrase, Container.open and every entry's chunks

Only locker's own errors (LockerError) may escape; anything else is a crash that libFuzzer
reports with the input that caused it. The seeds are the containers of tests/vectors/.

Usage: scripts/fuzz.py TARGET [libFuzzer options] [CORPUS_DIR ...]
       (scripts/fuzz wraps it: seeds, a memory limit per input and a time budget)
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["locker"]):
    from locker.errors import LockerError
    from locker.store import keys
    from locker.store.container import Container, Sealed
    from locker.store.format import parse_header
    from locker.store.index import decode_index, encode_index

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors"
PASSPHRASE = b"correct horse battery staple"
_SCRATCH = Path(tempfile.mkdtemp(prefix="locker-fuzz-")) / "v.locker"


def seeds(target: str) -> list[bytes]:
    """The container bytes of every vector (after its text header lines); for `index`, the
    decrypted index of every success vector, after its data section length."""
    out = []
    for path in sorted(VECTORS.iterdir()):
        head, data = path.read_bytes().split(b"\n\n", 1)
        if target != "index":
            out.append(data)
        elif path.name.startswith("success_"):
            lines = head.decode("utf-8").split("\n")
            secret = next(ln[12:] for ln in lines if ln.startswith("passphrase: "))
            out.append(_decrypted_index(data, secret.encode("utf-8")))
    return out


def _decrypted_index(container: bytes, passphrase: bytes) -> bytes:
    _SCRATCH.write_bytes(container)
    sealed = Sealed.read(_SCRATCH)
    try:
        unlocked = keys.unlock_with_passphrase(sealed.header, passphrase)
        index = Container.open(sealed, unlocked).index
        length = sealed.file_size - sealed.data_start
    finally:
        sealed.close()
    return length.to_bytes(8, "big") + encode_index(index)


def fuzz_header(data: bytes) -> None:
    with contextlib.suppress(LockerError):
        parse_header(data)


def fuzz_index(data: bytes) -> None:
    with contextlib.suppress(LockerError):
        decode_index(data[8:], int.from_bytes(data[:8], "big"))


def fuzz_open(data: bytes) -> None:
    _SCRATCH.write_bytes(data)
    try:
        sealed = Sealed.read(_SCRATCH)
        try:
            unlocked = keys.unlock_with_passphrase(sealed.header, PASSPHRASE)
            container = Container.open(sealed, unlocked)
            for entry in container.index.entries:
                for _ in container.chunks(entry):
                    pass
        finally:
            sealed.close()
    except LockerError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "header": fuzz_header,
    "index": fuzz_index,
    "open": fuzz_open,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [CORPUS]")
    target = sys.argv.pop(1)
    corpora = [a for a in sys.argv[1:] if not a.startswith("-")]
    for corpus in corpora:  # seed each empty corpus directory from the vectors
        if os.path.isdir(corpus) and not os.listdir(corpus):
            for i, seed in enumerate(seeds(target)):
                Path(corpus, f"seed-{i:03d}").write_bytes(seed)
    atheris.Setup(sys.argv, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
