"""The read path in large blocks (issue 15, item 3): entries are read 1 MiB of ciphertext at a
time and decrypted chunk by chunk, and `safefs.write_chunks` hands large files to a writer
thread in batches. The bytes are the same as one chunk at a time, at every boundary; an error
on either thread ends the write with nothing left under the name."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSPHRASE, TINY_KDF

from locker.errors import IntegrityError
from locker.store import safefs
from locker.store.crypto import CHUNK_SIZE, SEALED_CHUNK_SIZE
from locker.vault import Vault, create

MIB = 1024 * 1024
BLOCK = 16 * CHUNK_SIZE  # the plaintext of one 1 MiB read of ciphertext
SIZES = (
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    BLOCK - 1,
    BLOCK,
    BLOCK + 1,
    BLOCK + CHUNK_SIZE + 1,
    3 * BLOCK,
)


def pattern(size: int) -> bytes:
    return bytes(i * 7 % 251 for i in range(min(size, 251))) * (size // 251 + 1)


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "v.locker"
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        for size in SIZES:
            v.add_bytes(f"s{size}", pattern(size)[:size])
        v.commit()
    return path


def test_every_size_reads_back_chunk_by_chunk(vault: Path) -> None:
    with Vault.open(vault, PASSPHRASE) as v:
        for size in SIZES:
            chunks = list(v.chunks(f"s{size}"))
            assert b"".join(chunks) == pattern(size)[:size], size
            assert [len(c) for c in chunks[:-1]] == [CHUNK_SIZE] * (len(chunks) - 1), size


def test_a_changed_byte_in_the_second_block_fails_its_chunk(vault: Path) -> None:
    with Vault.open(vault, PASSPHRASE) as v:
        entry = v.entry(f"s{3 * BLOCK}")
        where = v._container.sealed.data_start + entry.offset + 16 * SEALED_CHUNK_SIZE + 5
    data = bytearray(vault.read_bytes())
    data[where] ^= 1
    vault.write_bytes(bytes(data))
    with Vault.open(vault, PASSPHRASE) as v:
        chunks = v.chunks(f"s{3 * BLOCK}")
        for _ in range(16):
            next(chunks)  # the first block is intact and was yielded
        with pytest.raises(IntegrityError, match="chunk 16 failed authentication"):
            next(chunks)


def test_a_cut_entry_is_refused_as_truncated(vault: Path) -> None:
    with Vault.open(vault, PASSPHRASE) as v:
        entry = v.entry(f"s{3 * BLOCK}")
        os.truncate(vault, v._container.sealed.data_start + entry.offset + BLOCK)
        with pytest.raises(IntegrityError, match="is truncated"):
            b"".join(v.chunks(entry.name))


def pieces(sizes: list[int]) -> Iterator[bytes]:
    for i, size in enumerate(sizes):
        yield bytes([i % 256]) * size


@pytest.mark.parametrize(
    "sizes",
    [
        [],
        [0],
        [5, 0, 7],
        [CHUNK_SIZE] * 200 + [3],  # past _PIPELINE_MIN: the thread takes over mid-file
        [1] * 40 + [CHUNK_SIZE] * 130,
    ],
    ids=["nothing", "empty", "small", "large", "many-small-then-large"],
)
def test_write_chunks_writes_every_byte_in_order(
    tmp_path: Path, sizes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(safefs, "_PIPELINE_MIN", 8 * CHUNK_SIZE)  # small files use the thread too
    monkeypatch.setattr(safefs, "_BATCH", 3 * CHUNK_SIZE + 1)
    target = tmp_path / "out"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        safefs.write_chunks(fd, pieces(sizes))
    finally:
        os.close(fd)
    assert target.read_bytes() == b"".join(pieces(sizes))


def test_short_writes_are_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class ShortWrites:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def writev(self, fd: int, buffers: list[memoryview]) -> int:
            return os.write(fd, bytes(buffers[0][:5]))

    monkeypatch.setattr(safefs, "os", ShortWrites())
    target = tmp_path / "out"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        safefs.write_chunks(fd, [b"abcdefghijkl", b"", b"mnopq", b"r"])
    finally:
        os.close(fd)
    assert target.read_bytes() == b"abcdefghijklmnopqr"


def test_a_failing_source_on_the_main_thread_leaves_nothing(tmp_path: Path) -> None:
    """Past the threshold (the writer thread running), the decryption fails: the error goes on
    and nothing appears under the name, as for a small file."""

    def failing() -> Iterator[bytes]:
        for _ in range(10 * 16):  # 10 MiB: the thread has taken over
            yield bytes(CHUNK_SIZE)
        raise IntegrityError("chunk 160 failed authentication")

    out = tmp_path / "out"
    out.mkdir()
    root = safefs.open_dir(out)
    try:
        for anonymous in (True, False):
            with pytest.raises(IntegrityError, match="chunk 160"):
                safefs.write_file(root, "x", failing(), anonymous=anonymous)
            assert os.listdir(out) == []
    finally:
        os.close(root)


def test_a_write_error_on_the_writer_thread_is_raised_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = safefs._write_all
    threads: list[str] = []

    def fail_on_thread(fd: int, chunks: list[bytes]) -> None:
        threads.append(threading.current_thread().name)
        if threading.current_thread().name == "locker-writer":
            raise OSError(28, os.strerror(28))  # ENOSPC
        real(fd, chunks)

    monkeypatch.setattr(safefs, "_write_all", fail_on_thread)
    out = tmp_path / "out"
    out.mkdir()
    root = safefs.open_dir(out)
    try:
        with pytest.raises(OSError, match=os.strerror(28)):
            safefs.write_file(root, "x", pieces([CHUNK_SIZE] * 200), anonymous=False)
    finally:
        os.close(root)
    assert "locker-writer" in threads
    assert os.listdir(out) == []


def test_get_of_a_large_entry_through_the_thread(tmp_path: Path) -> None:
    """20 MiB + 5 through `Vault.chunks` and `write_file`: the file is the entry."""
    data = os.urandom(20 * MIB + 5)
    path = tmp_path / "v.locker"
    create(path, PASSPHRASE, TINY_KDF)
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.add_bytes("big", data)
        v.commit()
    out = tmp_path / "out"
    out.mkdir()
    root = safefs.open_dir(out)
    try:
        with Vault.open(path, PASSPHRASE) as v:
            safefs.write_file(root, "big", v.chunks("big"))
    finally:
        os.close(root)
    got = (out / "big").read_bytes()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
