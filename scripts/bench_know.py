"""Time `locker inspect` on a 500-entry vault and `locker sweep` over a 10,000-file tree.

`.venv/bin/python scripts/bench_know.py [--reps N]`: builds both in a temporary directory
(on /dev/shm when it exists) with the tests' generators (tests/pki_factory.py,
tests/sweep_tree.py), runs each command `--reps` times in a subprocess and prints the median
wall time. The vault uses the tiny Argon2id cost, so inspect's time is nearly all listing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pki_factory import cert, cert_pem, ec_key, key_pem  # noqa: E402
from sweep_tree import ordinary, secrets, write_tree  # noqa: E402

from locker.know.facts import recogniser  # noqa: E402
from locker.store.format import KdfCost  # noqa: E402
from locker.vault import Vault, create  # noqa: E402

PASSPHRASE = b"bench: correct horse battery staple"
LOCKER = [os.environ.get("LOCKER_BENCH_PYTHON", sys.executable), "-m", "locker"]


def build_vault(path: Path, entries: int) -> None:
    create(path, PASSPHRASE, KdfCost(memory_kib=8, time_cost=1, parallelism=1))
    now = time.time()
    with Vault.open(path, PASSPHRASE, write=True) as v:
        v.recogniser = recogniser()
        for i in range(entries // 5):
            key = ec_key()
            v.add_bytes(f"svc{i}/tls.key", key_pem(key))
            v.add_bytes(f"svc{i}/tls.crt", cert_pem(cert(key, f"svc{i}.example", now, 5 + i)))
            v.add_bytes(f"svc{i}/prod.env", b"DB_PASSWORD=x%d\nDEBUG=0\n" % i)
            v.add_bytes(f"svc{i}/notes.md", b"# notes\n")
            v.add_bytes(f"svc{i}/jwt.jwk", b'{"kty":"oct","k":"c2VjcmV0c2VjcmV0"}')
        v.commit()


def build_tree(root: Path, files: int) -> int:
    found = secrets()
    for batch in range(-(-(files - len(found)) // 200)):
        write_tree(root / f"b{batch}", ordinary(200))
    write_tree(root / "secrets", found)
    return sum(len(f) for _, _, f in os.walk(root))


def timed(argv: list[str], reps: int, ok: tuple[int, ...]) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode not in ok:
            sys.exit(f"{argv[3:5]} failed: {done.stderr.decode()}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        work = Path(tmp)
        vault, pw = work / "v.locker", work / "pw"
        pw.write_bytes(PASSPHRASE + b"\n")
        pw.chmod(0o600)
        build_vault(vault, 500)
        common = ["--vault", str(vault), "--passphrase-file", str(pw)]
        ls = timed([*LOCKER, "ls", *common], args.reps, (0,))
        inspect = timed([*LOCKER, "inspect", *common], args.reps, (0, 6))
        print(
            f"inspect, 500 entries: {inspect * 1000:.0f} ms (ls of the same vault: {ls * 1000:.0f} ms)"
        )
        count = build_tree(work / "tree", 10_000)
        sweep = timed([*LOCKER, "sweep", str(work / "tree")], args.reps, (6,))
        print(f"sweep, {count} files (20 secrets): {sweep * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
