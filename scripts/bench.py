"""Measure locker against its peers in one run, on /dev/shm: `scripts/bench [--reps N]`.

Run it through scripts/bench, which installs the peers and the venv first. Every case runs
`--reps` times and reports the median; ratios compare medians measured in this same run.
Writes a JSON result file and a PNG chart (docs/bench/ by default) and prints a table.

Cases (see docs/PERFORMANCE.md for what each one means and why it is measured that way):
  bulk     add a 512 MiB file / read it back: locker vs `age -r`, `gpg --symmetric`, `cp`
  memory   peak RSS of the 512 MiB and a 1 GiB add, against the `locker info` baseline
  kdf      Argon2id unlock time at the default (256 MiB, t=3, p=4) and the tiny parameters
  cli      `locker --version`; `locker ls` on a 500-entry tiny-KDF vault, KDF time subtracted
  mount    mount 500 x 4 KiB files and read them all vs gocryptfs; sync latency; lock time
  saves    a 6-byte add to a 1 MiB, 100 MiB, 1 GiB vault vs cp of the vault and gocryptfs;
           mount sync of one small change in the largest (scripts/bench_save.py)

Every child is timed from spawn to exit by this process (wall clock, perf_counter); peak RSS
comes from GNU time's %M for that command alone.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_save

ROOT = Path(__file__).resolve().parent.parent
# The locker measured: a regular install (scripts/bench makes one in .venv-bench), as users
# have it. An editable install's import finder costs every start, the floor's included, about
# 8 ms here; scripts/bench.py alone measures the Python it runs on.
PY = os.environ.get("LOCKER_BENCH_PYTHON", sys.executable)
BIN = Path(PY).parent
MIB = 1024 * 1024
PASSPHRASE = b"bench: correct horse battery staple"
TINY_KDF = ("--kdf-memory", "8", "--kdf-time", "1", "--kdf-parallelism", "1")
DEFAULT_KDF = (256 * 1024, 3, 4)  # KiB, t, p: locker's defaults (locker.vault.DEFAULT_KDF)
SMALL_FILES = 500
SMALL_SIZE = 4096
SYNC_SAMPLES = 20

TARGETS = {
    "add_vs_age": "add at least as fast as age: ratio <= 1.0 (aim 0.7)",
    "read_vs_age": "read back at least as fast as age: ratio <= 1.0 (aim 0.7)",
    "add_vs_cp": "add within 1.3x of cp",
    "read_vs_cp": "read back within 1.3x of cp",
    "rss_512": "peak RSS under 64 MiB for a 512 MiB add",
    "rss_1g": "peak RSS under 64 MiB for a 1 GiB add",
    "mount": "mount of 500 x 4 KiB files (and read them all) under 150 ms plus the KDF",
    "version": "`locker --version` under 100 ms",
    "sync": "sync latency of one changed file under 1.5 s (worst of 20)",
    "tui": "`locker tui` draws its unlock screen within 0.5 s of exec",
    "mount_vs_gocryptfs": "mount 500 x 4 KiB + read all, from exec: <= 1.0x gocryptfs",
    "lock": "`locker lock` -> mount gone: <= 100 ms",
    "info_floor": "`locker info`: <= `python -I -c pass` + 50 ms",
    "ls_floor": "`locker ls` of 500 entries, minus the KDF: <= `python -I -c pass` + 50 ms",
    "save_flat": "a 6-byte add costs O(change): 1 GiB vault <= 1.5x a 1 MiB vault",
    "sync_flat": "mount sync of 1 small change, 1 GiB vault: <= 1.5x the 500 x 4 KiB vault's",
}


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# -- running and timing children ------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    maxrss_kib: int
    code: int
    stdout: bytes
    stderr: bytes


class Failed(Exception):
    pass


GNU_TIME = "/usr/bin/time"


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
    rss: bool = False,
) -> Run:
    """Spawn, wait, and time spawn-to-exit (wall clock).

    With rss=True the peak RSS comes from GNU time's %M: a small C parent, so the figure is
    the command's own. (A child forked from this Python process inherits the parent's
    high-water mark across exec, so os.wait4's ru_maxrss would report this process instead.)
    """
    args = [os.fspath(c) for c in cmd]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rss"
        if rss:
            args = [GNU_TIME, "-f", "%M", "-o", os.fspath(report), *args]
        with (Path(tmp) / "out").open("w+b") as out, (Path(tmp) / "err").open("w+b") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
            code = proc.wait()
            seconds = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            maxrss = int(report.read_text().split()[-1]) if rss else 0
            result = Run(seconds, maxrss, code, out.read(), err.read())
    if check and code != 0:
        raise Failed(f"{' '.join(args)} exited {code}: {result.stderr.decode(errors='replace')}")
    return result


def tui_start(cmd: Sequence[str | os.PathLike[str]], env: dict[str, str]) -> tuple[float, float]:
    """Exec of the TUI on a 100x30 pseudo-terminal to its unlock screen drawn (the passphrase
    field's placeholder written; its first letter is under the cursor, so "assphrase" is
    looked for): the wall time, and the CPU time the app had used by then (all threads; the
    wall time on an idle machine, less the waits). SIGTERM then locks and quits it."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen([os.fspath(c) for c in cmd], stdin=child, stdout=child, stderr=child,
                            env=env, start_new_session=True)  # fmt: skip
    os.close(child)
    seen, found = b"", None
    try:
        while found is None and time.perf_counter() - start < 30:
            if select.select([master], [], [], 1)[0]:
                seen += os.read(master, 65536)
                if b"assphrase" in seen:
                    wall = time.perf_counter() - start
                    stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                    found = wall, (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(OSError):  # EIO once the app has gone
            while select.select([master], [], [], 10)[0] and os.read(master, 65536):
                pass
        proc.wait(30)
        os.close(master)
    if found is None:
        raise Failed(f"{' '.join(map(str, cmd))} drew no unlock screen in 30 s: {seen[-300:]!r}")
    return found


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def summary(values: Sequence[float], scale: float = 1.0, digits: int = 4) -> dict[str, Any]:
    scaled = [v * scale for v in values]
    return {
        "median": round(median(scaled), digits),
        "min": round(min(scaled), digits),
        "max": round(max(scaled), digits),
        "samples": [round(v, digits) for v in scaled],
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as f:
        left = size
        while left:
            n = min(8 * MIB, left)
            f.write(os.urandom(n))
            left -= n


def remove(*paths: Path) -> None:
    for p in paths:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


# -- the bench ---------------------------------------------------------------------------------------


class Bench:
    def __init__(self, work: Path, reps: int, size: int, big_size: int) -> None:
        self.work = work
        self.reps = reps
        self.size = size
        self.big_size = big_size
        self.results: dict[str, Any] = {}
        self.pw = work / "passphrase"
        self.pw.write_bytes(PASSPHRASE + b"\n")
        self.pw.chmod(0o600)
        runtime = work / "runtime"
        runtime.mkdir(mode=0o700)
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("LOCKER_VAULT", "LOCKER_DEBUG")
        }
        self.env.update(
            XDG_RUNTIME_DIR=str(runtime),
            XDG_DATA_HOME=str(work / "data"),
            GNUPGHOME=str(work / "gnupg"),
        )
        # Byte-code as an installed locker has it (pip compiles at install): never recompile
        # the sources on every start because the caller's shell says PYTHONDONTWRITEBYTECODE.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", ROOT / "locker"], env=self.env, check=True
        )
        (work / "gnupg").mkdir(mode=0o700)
        self.locker = [str(BIN / "locker")]

    def lk(self, *args: str | os.PathLike[str], vault: Path | None = None) -> list[str]:
        cmd = [*self.locker, *(os.fspath(a) for a in args)]
        if vault is not None:
            cmd += ["--vault", os.fspath(vault), "--passphrase-file", os.fspath(self.pw)]
        return cmd

    def init_vault(self, vault: Path, kdf: Sequence[str] = TINY_KDF) -> None:
        run(self.lk("init", *kdf, vault=vault), env=self.env)

    # -- bulk: add a big file / read it back ----------------------------------------------------

    def bulk(self) -> None:
        w = self.work
        src = w / "input.bin"
        log(f"bulk: writing a {self.size // MIB} MiB random input")
        write_random(src, self.size)
        want = sha256_file(src)
        key = w / "age.key"
        run(["age-keygen", "-o", key], env=self.env)
        recipient = run(["age-keygen", "-y", key], env=self.env).stdout.decode().strip()
        gpg = ["gpg", "--batch", "--yes", "--quiet", "--pinentry-mode", "loopback"]
        gpg += ["--passphrase-file", os.fspath(self.pw)]
        keys = [f"{tool}_{op}" for tool in ("cp", "age", "gpg", "locker") for op in ("add", "read")]
        times: dict[str, list[float]] = {k: [] for k in keys}
        rss: dict[str, list[int]] = {k: [] for k in keys}
        verified: dict[str, bool] = {}

        def timed(key: str, cmd: Sequence[str | os.PathLike[str]]) -> None:
            r = run(cmd, env=self.env, rss=True)
            times[key].append(r.seconds)
            rss[key].append(r.maxrss_kib)

        for rep in range(self.reps):
            log(f"bulk: rep {rep + 1}/{self.reps}")
            a, b = w / "copy1", w / "copy2"
            timed("cp_add", ["cp", src, a])
            timed("cp_read", ["cp", a, b])
            remove(a, b)

            enc, dec = w / "input.age", w / "output.age"
            timed("age_add", ["age", "-r", recipient, "-o", enc, src])
            timed("age_read", ["age", "-d", "-i", key, "-o", dec, enc])
            if rep == 0:
                verified["age"] = sha256_file(dec) == want
            remove(enc, dec)

            enc, dec = w / "input.gpg", w / "output.gpg"
            cmd = [*gpg, "--symmetric", "--cipher-algo", "AES256", "--compress-algo", "none"]
            timed("gpg_add", [*cmd, "-o", enc, src])
            timed("gpg_read", [*gpg, "-o", dec, "-d", enc])
            if rep == 0:
                verified["gpg"] = sha256_file(dec) == want
            remove(enc, dec)

            vault, out = w / "bulk.locker", w / "out"
            self.init_vault(vault)
            out.mkdir()
            timed("locker_add", self.lk("add", src, "--as", "input.bin", vault=vault))
            timed("locker_read", self.lk("get", "input.bin", "--to", out, vault=vault))
            if rep == 0:
                verified["locker"] = sha256_file(out / "input.bin") == want
            remove(vault, out, w / "bulk.locker.lock")
        med = {k: median(v) for k, v in times.items()}
        self.results["bulk"] = {
            "size_mib": self.size // MIB,
            "seconds": {k: summary(v) for k, v in times.items()},
            "throughput_mib_s": {k: round(self.size / MIB / v, 1) for k, v in med.items()},
            "ratios": {
                "add_vs_age": round(med["locker_add"] / med["age_add"], 3),
                "read_vs_age": round(med["locker_read"] / med["age_read"], 3),
                "add_vs_gpg": round(med["locker_add"] / med["gpg_add"], 3),
                "read_vs_gpg": round(med["locker_read"] / med["gpg_read"], 3),
                "add_vs_cp": round(med["locker_add"] / med["cp_add"], 3),
                "read_vs_cp": round(med["locker_read"] / med["cp_read"], 3),
            },
            "peak_rss_kib": {k: max(v) for k, v in rss.items()},
            "round_trip_verified": verified,
            "commands": {
                "cp": "cp IN OUT; cp OUT BACK",
                "age": "age -r RECIPIENT -o OUT IN; age -d -i KEY -o BACK OUT",
                "gpg": "gpg --batch --pinentry-mode loopback --passphrase-file F --symmetric "
                "--cipher-algo AES256 --compress-algo none -o OUT IN; gpg ... -d -o BACK OUT",
                "locker": "locker add IN (fresh vault, Argon2 8 MiB/t=1/p=1); "
                "locker get NAME --to DIR",
            },
        }

    # -- memory: peak RSS ---------------------------------------------------------------------

    def memory(self) -> None:
        w = self.work
        src = w / "input.bin"
        big = w / "input-1g.bin"
        log(f"memory: building a {self.big_size // MIB} MiB input")
        with big.open("wb") as out:
            left = self.big_size
            while left:
                with src.open("rb") as f:
                    while left and (block := f.read(min(8 * MIB, left))):
                        out.write(block)
                        left -= len(block)
        vault = w / "rss.locker"
        self.init_vault(vault)
        base = [
            run(self.lk("info", "--vault", vault), env=self.env, rss=True).maxrss_kib
            for _ in range(3)
        ]
        version = [run(self.lk("--version"), env=self.env, rss=True).maxrss_kib for _ in range(3)]
        unlocked = [
            run(self.lk("ls", vault=vault), env=self.env, rss=True).maxrss_kib for _ in range(3)
        ]
        remove(vault)
        big_rss: list[int] = []
        big_s: list[float] = []
        for rep in range(max(1, min(3, self.reps))):
            log(f"memory: {self.big_size // MIB} MiB add, rep {rep + 1}")
            self.init_vault(vault)
            r = run(self.lk("add", big, "--as", "big.bin", vault=vault), env=self.env, rss=True)
            big_rss.append(r.maxrss_kib)
            big_s.append(r.seconds)
            remove(vault)
        log("memory: 512 MiB add into a default-KDF vault (Argon2 256 MiB)")
        self.init_vault(vault, kdf=())
        r = run(self.lk("add", src, "--as", "input.bin", vault=vault), env=self.env, rss=True)
        default_rss = r.maxrss_kib
        remove(vault, big)
        baseline = min(base)  # the smallest baseline: deltas err on the large side
        add512 = self.results["bulk"]["peak_rss_kib"]["locker_add"]
        read512 = self.results["bulk"]["peak_rss_kib"]["locker_read"]
        self.results["memory"] = {
            "note": "peak RSS (GNU time %M of the locker process, KiB); tiny-KDF vaults "
            "(Argon2 8 MiB) unless said otherwise",
            "baseline_info_kib": baseline,
            "version_kib": max(version),
            "ls_empty_vault_kib": min(unlocked),
            "big_mib": self.big_size // MIB,
            "add_512mib_kib": add512,
            "add_512mib_delta_kib": add512 - baseline,
            "read_512mib_kib": read512,
            "read_512mib_delta_kib": read512 - baseline,
            "add_1gib_kib": max(big_rss),
            "add_1gib_delta_kib": max(big_rss) - baseline,
            "add_1gib_seconds": summary(big_s),
            "add_512mib_default_kdf_kib": default_rss,
        }

    # -- Argon2 unlock time ---------------------------------------------------------------------

    def kdf_seconds(self, memory_kib: int, t: int, p: int, reps: int) -> list[float]:
        code = (
            "import time\nfrom locker.store import crypto\n"
            f"params = crypto.KdfParams({memory_kib}, {t}, {p})\n"
            "start = time.perf_counter()\n"
            "crypto.argon2id(b'bench', bytes(16), params)\n"
            "print(time.perf_counter() - start)\n"
        )
        return [float(run([PY, "-c", code], env=self.env).stdout) for _ in range(reps)]

    def kdf(self) -> None:
        log("kdf: Argon2id at the default parameters, each in a fresh process")
        default = self.kdf_seconds(*DEFAULT_KDF, self.reps)
        tiny = self.kdf_seconds(8 * 1024, 1, 1, self.reps)
        vault = self.work / "default.locker"
        self.init_vault(vault, kdf=())
        ls = [run(self.lk("ls", vault=vault), env=self.env).seconds for _ in range(3)]
        remove(vault)
        self.results["kdf"] = {
            "default_params": {"memory_mib": 256, "time_cost": 3, "parallelism": 4},
            "default_seconds": summary(default),
            "tiny_params": {"memory_mib": 8, "time_cost": 1, "parallelism": 1},
            "tiny_seconds": summary(tiny, digits=5),
            "locker_ls_default_vault_seconds": summary(ls),
        }

    # -- CLI start-up ------------------------------------------------------------------------------

    def small_tree(self) -> Path:
        tree = self.work / "small" / "files"
        if not tree.exists():
            tree.mkdir(parents=True)
            for i in range(SMALL_FILES):
                (tree / f"f{i:03d}.txt").write_bytes(os.urandom(SMALL_SIZE))
        return tree

    def small_vault(self, name: str) -> Path:
        vault = self.work / name
        remove(vault)
        self.init_vault(vault)
        run(self.lk("add", self.small_tree(), "--as", "files", vault=vault), env=self.env)
        return vault

    def cli(self) -> None:
        log("cli: start-up")
        n = max(10, self.reps * 2)
        floor = [run([PY, "-I", "-c", "pass"]).seconds for _ in range(n)]
        version = [run(self.lk("--version"), env=self.env).seconds for _ in range(n)]
        vault = self.small_vault("ls.locker")
        ls = []
        for _ in range(n):
            r = run(self.lk("ls", vault=vault), env=self.env)
            ls.append(r.seconds)
        entries = len(r.stdout.splitlines())
        info = [run(self.lk("info", "--vault", vault), env=self.env).seconds for _ in range(n)]
        tui = [tui_start([*self.locker, "--vault", vault, "tui"], self.env) for _ in range(n)]
        status = [run(self.lk("status"), env=self.env).seconds for _ in range(n)]
        log_help = [run(self.lk("log", "--help"), env=self.env).seconds for _ in range(n)]
        remove(vault)
        tiny = self.results["kdf"]["tiny_seconds"]["median"]
        self.results["cli"] = {
            "python_floor_seconds": summary(floor),
            "version_seconds": summary(version),
            "info_seconds": summary(info),
            "status_seconds": summary(status),
            "log_help_seconds": summary(log_help),
            "ls_entries": entries,
            "ls_seconds": summary(ls),
            "ls_kdf_seconds": tiny,
            "ls_minus_kdf_seconds": round(median(ls) - tiny, 4),
            "tui_seconds": summary([wall for wall, _ in tui]),
            "tui_cpu_seconds": summary([cpu for _, cpu in tui]),
        }

    # -- mount --------------------------------------------------------------------------------------

    def mount_available(self) -> str | None:
        r = run(self.lk("mount", "--help"), env=self.env, check=False)
        if r.code != 0 or b"--dir" not in r.stdout:
            return "`locker mount` is not in this build (issue 3 not merged yet)"
        return None

    @contextlib.contextmanager
    def mounted(
        self, vault: Path, where: Path
    ) -> Iterator[tuple[subprocess.Popen[bytes], Path, float, float]]:
        """Start `locker mount` in the foreground; yield (process, dir, start, first line)."""
        err = (self.work / "mount.err").open("ab")
        start = time.perf_counter()
        proc = subprocess.Popen(
            self.lk("mount", "--dir", where, "--idle", "600", vault=vault),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=self.env,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            first = time.perf_counter() - start
            if not line:
                proc.wait(10)
                raise Failed(f"locker mount exited {proc.returncode} before printing its directory")
            # Drain the live status so a full pipe never blocks the mount.
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            yield proc, Path(line.decode().strip()), start, first
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            err.close()

    def lock(self, vault: Path, proc: subprocess.Popen[bytes], mdir: Path, use_cli: bool) -> float:
        """Lock with `locker lock` (a whole CLI start-up included) or with SIGTERM (the signal
        path alone); timed until the mount process has exited and its directory is gone."""
        start = time.perf_counter()
        if use_cli:
            run(self.lk("lock", "--vault", vault), env=self.env)
        else:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        while mdir.exists() and time.perf_counter() - start < 10:
            time.sleep(0.001)
        if code != 0 or mdir.exists():
            raise Failed(f"locker mount exited {code}; directory left behind: {mdir.exists()}")
        return time.perf_counter() - start

    def mount(self) -> None:
        why = self.mount_available()
        vault = self.small_vault("mount.locker")
        tiny = self.results["kdf"]["tiny_seconds"]["median"]
        result: dict[str, Any] = {"files": SMALL_FILES, "file_size": SMALL_SIZE}
        if why:
            log(f"mount: skipped: {why}")
            result["locker"] = {"available": False, "reason": why}
        else:
            result["locker"] = self.locker_mount(vault, tiny)
        result["gocryptfs"] = self.gocryptfs()
        lk, gc = result["locker"], result["gocryptfs"]
        if lk.get("available") and gc.get("available"):
            result["ratio_vs_gocryptfs"] = round(
                lk["mount_read_seconds"]["median"] / gc["mount_read_seconds"]["median"], 3
            )
        self.results["mount"] = result

    def locker_mount(self, vault: Path, tiny: float) -> dict[str, Any]:
        first_line: list[float] = []
        total: list[float] = []
        locks: dict[str, list[float]] = {"cli": [], "sigterm": []}
        for rep in range(2 * self.reps):
            how = "cli" if rep < self.reps else "sigterm"
            log(f"mount: locker rep {rep + 1}/{2 * self.reps} (lock by {how})")
            where = self.work / f"mnt-{rep}"
            with self.mounted(vault, where) as (proc, mdir, start, first):
                count = read_tree(mdir)
                total.append(time.perf_counter() - start)
                first_line.append(first)
                if count != SMALL_FILES:
                    raise Failed(f"mount held {count} files, expected {SMALL_FILES}")
                locks[how].append(self.lock(vault, proc, mdir, use_cli=how == "cli"))
        log(f"mount: sync latency, {SYNC_SAMPLES} changes")
        latencies: list[float] = []
        where = self.work / "mnt-sync"
        with self.mounted(vault, where) as (proc, mdir, _, _):
            files = sorted(p for p in mdir.rglob("*.txt"))
            last = b""
            for i in range(SYNC_SAMPLES):
                before = stat_key(vault)
                last = f"change {i} {time.time()}\n".encode() * 64
                start = time.perf_counter()
                with (files[i]).open("wb") as f:
                    f.write(last)
                while stat_key(vault) == before:
                    if time.perf_counter() - start > 15:
                        raise Failed("a change in the mount did not reach the container in 15 s")
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - start)
                time.sleep(0.3)  # let any follow-up save finish before the next change
            name = "files/" + files[SYNC_SAMPLES - 1].relative_to(mdir / "files").as_posix()
            shown = run(self.lk("cat", name, vault=vault), env=self.env, check=False)
            verified = shown.code == 0 and shown.stdout == last
            self.lock(vault, proc, mdir, use_cli=True)
        inproc = self.session_start(vault)
        remove(vault)
        return {
            "available": True,
            "kdf_seconds": tiny,
            "first_line_seconds": summary(first_line),
            "mount_read_seconds": summary(total),
            "mount_read_minus_kdf_seconds": round(median(total) - tiny, 4),
            "session_start_seconds": summary(inproc) if inproc else None,
            "lock_cli_seconds": summary(locks["cli"]),
            "lock_signal_seconds": summary(locks["sigterm"]),
            "sync_latency_seconds": summary(latencies),
            "sync_verified_with_cat": verified,
        }

    def session_start(self, vault: Path) -> list[float]:
        """The library's Session.start (materialise, audit commit, observer) after unlocking,
        in a fresh process: the mount time without interpreter start-up, imports or KDF."""
        code = f"""
import json, os, time
from pathlib import Path
from locker.mount import runtime as rt
from locker.mount import journal as jn
from locker.mount import session as m
from locker.vault import Vault
root = Path({os.fspath(self.work / "mnt-lib")!r})
root.mkdir(mode=0o700)
with Vault.open(Path({os.fspath(vault)!r}), {PASSPHRASE!r}, write=True, purpose="mount") as v:
    session = m.Session(v, root, journal=jn.Journal(rt.runtime_base().journal_dir))
    start = time.perf_counter()
    session.start()
    took = time.perf_counter() - start
    session.lock("bench")
print(json.dumps(took))
"""
        out: list[float] = []
        for _ in range(self.reps):
            r = run([PY, "-c", code], env=self.env, check=False)
            if r.code != 0:
                log(f"mount: library timing unavailable: {r.stderr.decode()[-300:]}")
                return []
            out.append(float(r.stdout))
            remove(self.work / "mnt-lib")
        return out

    def gocryptfs(self) -> dict[str, Any]:
        if not shutil.which("gocryptfs") or not shutil.which("fusermount3"):
            return {"available": False, "reason": "gocryptfs or fusermount3 not installed"}
        if not Path("/dev/fuse").exists():
            return {"available": False, "reason": "/dev/fuse is missing"}
        w = self.work
        cipher, mnt = w / "gocrypt.cipher", w / "gocrypt.mnt"
        cipher.mkdir()
        mnt.mkdir()
        base = ["gocryptfs", "-q", "-passfile", os.fspath(self.pw)]
        try:
            run([*base, "-init", "-scryptn", "10", cipher])
            run([*base, cipher, mnt])
            shutil.copytree(self.small_tree(), mnt / "files")
            run(["fusermount3", "-u", mnt])
        except Failed as exc:
            return {"available": False, "reason": f"gocryptfs failed: {exc}"}
        totals: list[float] = []
        unmounts: list[float] = []
        for rep in range(self.reps):
            log(f"mount: gocryptfs rep {rep + 1}/{self.reps}")
            start = time.perf_counter()
            run([*base, cipher, mnt])
            try:
                count = read_tree(mnt)
                totals.append(time.perf_counter() - start)
            finally:
                u = time.perf_counter()
                run(["fusermount3", "-u", mnt])
                unmounts.append(time.perf_counter() - u)
            if count != SMALL_FILES:
                raise Failed(f"gocryptfs mount held {count} files")
        remove(cipher, mnt)
        return {
            "available": True,
            "kdf": "scrypt N=2^10 (-scryptn 10): negligible",
            "mount_read_seconds": summary(totals),
            "unmount_seconds": summary(unmounts),
        }


def read_tree(root: Path) -> int:
    count = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                f.read()
            count += 1
    return count


def stat_key(path: Path) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


# -- targets, table, chart ------------------------------------------------------------------------


def verdicts(r: dict[str, Any]) -> list[dict[str, Any]]:
    bulk, mem, cli = r["bulk"], r["memory"], r["cli"]
    rows: list[dict[str, Any]] = []

    def row(key: str, value: str, met: bool | None, note: str = "") -> None:
        verdict = "not measured" if met is None else ("met" if met else "MISSED")
        rows.append(
            {"target": TARGETS[key], "key": key, "value": value, "verdict": verdict, "note": note}
        )

    for key in ("add_vs_age", "read_vs_age"):
        ratio = bulk["ratios"][key]
        aim = "aim 0.7 met too" if ratio <= 0.7 else "aim 0.7 not reached"
        row(key, f"{ratio:.2f}", ratio <= 1.0, aim)
    for key in ("add_vs_cp", "read_vs_cp"):
        ratio = bulk["ratios"][key]
        row(key, f"{ratio:.2f}x cp", ratio <= 1.3)
    limit = 64 * 1024
    row(
        "rss_512",
        f"{mem['add_512mib_kib'] / 1024:.1f} MiB",
        mem["add_512mib_kib"] < limit,
        "tiny-KDF vault; with the default KDF Argon2's own 256 MiB comes first, see text",
    )
    row("rss_1g", f"{mem['add_1gib_kib'] / 1024:.1f} MiB", mem["add_1gib_kib"] < limit)
    lm = r["mount"]["locker"]
    if lm.get("available"):
        v = lm["mount_read_minus_kdf_seconds"]
        row("mount", f"{v * 1000:.0f} ms + KDF", v < 0.150)
        worst = lm["sync_latency_seconds"]["max"]
        med = lm["sync_latency_seconds"]["median"]
        row("sync", f"median {med:.2f} s, worst {worst:.2f} s", worst < 1.5)
    else:
        row("mount", "-", None, lm["reason"])
        row("sync", "-", None, lm["reason"])
    v = cli["version_seconds"]["median"]
    row("version", f"{v * 1000:.0f} ms", v < 0.100)
    if "tui_seconds" in cli:
        v = cli["tui_seconds"]["median"]
        cpu = cli["tui_cpu_seconds"]["median"]
        row("tui", f"{v * 1000:.0f} ms", v < 0.5, f"CPU {cpu * 1000:.0f} ms by then")
    gc = r["mount"]["gocryptfs"]
    if lm.get("available") and gc.get("available"):
        ratio = r["mount"]["ratio_vs_gocryptfs"]
        row("mount_vs_gocryptfs", f"{ratio:.2f}x gocryptfs", ratio <= 1.0)
    else:
        row("mount_vs_gocryptfs", "-", None, lm.get("reason") or gc.get("reason", ""))
    if lm.get("available"):
        v = lm["lock_cli_seconds"]["median"]
        row("lock", f"{v * 1000:.0f} ms", v <= 0.100)
    else:
        row("lock", "-", None, lm["reason"])
    floor = cli["python_floor_seconds"]["median"]
    for key, took in (
        ("info_floor", cli["info_seconds"]["median"]),
        ("ls_floor", cli["ls_minus_kdf_seconds"]),
    ):
        row(key, f"floor + {(took - floor) * 1000:.0f} ms", took - floor <= 0.050)
    save_rows(r, row)
    return rows


def save_rows(r: dict[str, Any], row: Any) -> None:
    """The saves case's two targets: what a small change costs may not grow with the vault."""
    saves = r.get("saves")
    if not saves:
        return
    sizes = saves["sizes_mib"]
    small, big = saves["by_size"][str(min(sizes))], saves["by_size"][str(max(sizes))]
    if min(sizes) == max(sizes):
        row("save_flat", "-", None, "one vault size only")
    else:
        a = small["locker_add_small_seconds"]["median"]
        b = big["locker_add_small_seconds"]["median"]
        row("save_flat", f"{b / a:.2f}x ({fmt_s(b)} / {fmt_s(a)})", b / a <= 1.5)
    ms, lm = saves["mount_sync"], r["mount"]["locker"]
    if ms.get("available") and lm.get("available"):
        big_sync = ms["sync_latency_seconds"]["median"]
        small_sync = lm["sync_latency_seconds"]["median"]
        row(
            "sync_flat",
            f"{big_sync / small_sync:.2f}x ({fmt_s(big_sync)} / {fmt_s(small_sync)})",
            big_sync / small_sync <= 1.5,
        )
    else:
        row("sync_flat", "-", None, ms.get("reason") or lm.get("reason", ""))


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measurement, locker, compared with, ratio) rows: the table PERFORMANCE.md shows."""
    b, mem, kdf, cli, mnt = r["bulk"], r["memory"], r["kdf"], r["cli"], r["mount"]
    s, ra = b["seconds"], b["ratios"]
    size = f"{b['size_mib']} MiB"
    rows = []
    for verb, key in (("add", "add"), ("read back", "read")):
        mine = fmt_s(s[f"locker_{key}"]["median"])
        for peer in ("age", "gpg", "cp"):
            rows.append(
                (
                    f"{verb} {size}",
                    mine,
                    f"{peer} {fmt_s(s[f'{peer}_{key}']['median'])}",
                    f"{ra[f'{key}_vs_{peer}']:.2f}",
                )
            )
    lm, gc = mnt["locker"], mnt["gocryptfs"]
    gtxt = (
        f"gocryptfs {fmt_s(gc['mount_read_seconds']['median'])}"
        if gc.get("available")
        else ("gocryptfs: " + gc.get("reason", "n/a"))
    )
    if lm.get("available"):
        rows.append(
            (
                "mount 500 x 4 KiB + read all (tiny KDF)",
                fmt_s(lm["mount_read_seconds"]["median"]),
                gtxt,
                f"{mnt.get('ratio_vs_gocryptfs', float('nan')):.2f}",
            )
        )
        rows.append(("  same, minus the KDF", fmt_s(lm["mount_read_minus_kdf_seconds"]), "", ""))
        rows.append(
            ("  first stdout line (mount ready)", fmt_s(lm["first_line_seconds"]["median"]), "", "")
        )
        unmount = (
            f"gocryptfs unmount {fmt_s(gc['unmount_seconds']['median'])}"
            if gc.get("available")
            else ""
        )
        if lm.get("session_start_seconds"):
            rows.append(
                (
                    "  in-process Session.start (no start-up, no KDF)",
                    fmt_s(lm["session_start_seconds"]["median"]),
                    "",
                    "",
                )
            )
        rows.append(
            (
                "lock: `locker lock` -> mount gone",
                fmt_s(lm["lock_cli_seconds"]["median"]),
                unmount,
                "",
            )
        )
        rows.append(
            ("lock: SIGTERM -> mount gone", fmt_s(lm["lock_signal_seconds"]["median"]), "", "")
        )
        sl = lm["sync_latency_seconds"]
        rows.append(
            (
                "sync latency, 1 changed file (median / worst of 20)",
                f"{fmt_s(sl['median'])} / {fmt_s(sl['max'])}",
                "",
                "",
            )
        )
    else:
        rows.append(("mount 500 x 4 KiB + read all", "not available", gtxt, ""))
        rows.append(("  (reason)", lm["reason"], "", ""))
    mib = 1024.0
    base = mem["baseline_info_kib"]
    rows.append(("peak RSS: locker info (baseline)", f"{base / mib:.1f} MiB", "", ""))
    rows.append(
        (
            "peak RSS: locker ls, empty vault (unlock only)",
            f"{mem['ls_empty_vault_kib'] / mib:.1f} MiB",
            f"+{(mem['ls_empty_vault_kib'] - base) / mib:.1f} MiB: Argon2's 8 MiB",
            "",
        )
    )
    for label, key in (
        (f"add {size}", "add_512mib"),
        (f"add {mem['big_mib']} MiB", "add_1gib"),
        (f"read back {size}", "read_512mib"),
    ):
        kib = mem[f"{key}_kib"]
        rows.append(
            (
                f"peak RSS: {label}",
                f"{kib / mib:.1f} MiB",
                f"+{(kib - base) / mib:.1f} MiB over baseline",
                "",
            )
        )
    rows.append(
        (
            f"peak RSS: add {size}, default KDF vault",
            f"{mem['add_512mib_default_kdf_kib'] / mib:.1f} MiB",
            "Argon2 uses 256 MiB",
            "",
        )
    )
    peers = b["peak_rss_kib"]
    for key, verb in (("add", "add"), ("read", "read back")):
        rows.append(
            (
                f"peak RSS of the peers: {verb} {size}",
                "",
                " / ".join(
                    f"{t} {peers[f'{t}_{key}'] / mib:.1f} MiB" for t in ("age", "gpg", "cp")
                ),
                "",
            )
        )
    rows.append(
        (
            "start-up: python -I -c pass (floor)",
            fmt_s(cli["python_floor_seconds"]["median"]),
            "",
            "",
        )
    )
    rows.append(("start-up: locker --version", fmt_s(cli["version_seconds"]["median"]), "", ""))
    if "tui_seconds" in cli:
        tui, cpu = cli["tui_seconds"]["median"], cli["tui_cpu_seconds"]["median"]
        rows.append(
            ("start-up: locker tui to the unlock screen", fmt_s(tui), f"CPU {fmt_s(cpu)}", "")
        )
    floor = cli["python_floor_seconds"]["median"]
    for label, key in (("info", "info"), ("status", "status"), ("log --help", "log_help")):
        if f"{key}_seconds" in cli:  # runs before status and log --help were measured lack them
            took = cli[f"{key}_seconds"]["median"]
            over = f"floor + {fmt_s(took - floor)}"
            rows.append((f"start-up: locker {label}", fmt_s(took), over, ""))
    rows.append(
        (
            f"start-up: locker ls, {cli['ls_entries']} entries",
            fmt_s(cli["ls_seconds"]["median"]),
            "",
            "",
        )
    )
    rows.append(
        (
            "  same, minus the KDF",
            fmt_s(cli["ls_minus_kdf_seconds"]),
            f"floor + {fmt_s(cli['ls_minus_kdf_seconds'] - floor)} (tiny KDF "
            f"{fmt_s(cli['ls_kdf_seconds'])})",
            "",
        )
    )
    rows.append(
        ("Argon2id unlock, 256 MiB t=3 p=4", fmt_s(kdf["default_seconds"]["median"]), "", "")
    )
    rows.append(
        (
            "  locker ls on a default-KDF vault",
            fmt_s(kdf["locker_ls_default_vault_seconds"]["median"]),
            "",
            "",
        )
    )
    rows.append(("Argon2id, 8 MiB t=1 p=1 (tiny)", fmt_s(kdf["tiny_seconds"]["median"]), "", ""))
    rows += bench_save.rows(r, fmt_s)
    return rows


def print_verdicts(targets: list[dict[str, Any]]) -> None:
    for t in targets:
        note = f"  ({t['note']})" if t["note"] else ""
        print(f"{t['verdict']:>12}  {t['target']}: {t['value']}{note}")


def print_table(rows: list[tuple[str, str, str, str]], out: Any = sys.stdout) -> None:
    header = ("measurement", "locker", "compared with", "ratio")
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(4)]
    for i, rw in enumerate([header, *rows]):
        print("  ".join(c.ljust(widths[j]) for j, c in enumerate(rw)).rstrip(), file=out)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=out)


def markdown(r: dict[str, Any], rows: list[tuple[str, str, str, str]]) -> str:
    """The table and the verdicts as Markdown, for docs/PERFORMANCE.md."""

    def cell(text: str) -> str:
        return text.strip().replace("|", "\\|") or " "

    m = r["machine"]
    out = [
        f"Run of {r['date']} on {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
        f"Linux {m['kernel']}, Python {m['python']}; medians of {r['reps']} runs; load "
        f"average {r['load']['start'][0]:.2f} at the start, {r['load']['end'][0]:.2f} at the "
        f"end; {r['runtime_seconds']['total_with_setup']:.0f} s in all.",
        "",
        "| measurement | locker | compared with | ratio |",
        "|---|---:|---|---:|",
    ]
    for name, mine, peer, ratio in rows:
        indent = "&nbsp;&nbsp;" if name.startswith("  ") else ""
        out.append(f"| {indent}{cell(name)} | {cell(mine)} | {cell(peer)} | {cell(ratio)} |")
    out += ["", "| target | measured | verdict |", "|---|---|---|"]
    for t in r["targets"]:
        note = f" ({t['note']})" if t["note"] else ""
        out.append(f"| {cell(t['target'])} | {cell(t['value'])} | {cell(t['verdict'] + note)} |")
    return "\n".join(out) + "\n"


def chart(r: dict[str, Any], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart (scripts/bench installs it)"
    b, mem, cli, kdf, mnt = r["bulk"], r["memory"], r["cli"], r["kdf"], r["mount"]
    colors = {
        "locker": "#2a6f97",
        "age": "#e07a5f",
        "gpg": "#81b29a",
        "cp": "#9e9e9e",
        "gocryptfs": "#f2cc8f",
    }
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    fig.suptitle(
        f"locker benchmark, {r['date']} ({r['machine']['cores']} cores, "
        f"load {r['load']['start'][0]:.2f} at start; medians of {r['reps']} runs)"
    )

    ax = axes[0][0]
    tools = ["locker", "age", "gpg", "cp"]
    width = 0.2
    for i, tool in enumerate(tools):
        vals: list[float] = [
            b["seconds"][f"{tool}_add"]["median"],
            b["seconds"][f"{tool}_read"]["median"],
        ]
        bars = ax.bar(
            [x + (i - 1.5) * width for x in (0, 1)], vals, width, label=tool, color=colors[tool]
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([0, 1], [f"add {b['size_mib']} MiB", "read back"])
    ax.set_ylabel("seconds (lower is better)")
    ax.set_title("Encrypt / decrypt a big file")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    lm, gc = mnt["locker"], mnt["gocryptfs"]
    labels: list[str] = []
    vals = []
    cols: list[str] = []
    if lm.get("available"):
        labels += ["locker mount + read all", "  same, minus KDF"]
        vals += [lm["mount_read_seconds"]["median"], lm["mount_read_minus_kdf_seconds"]]
        if lm.get("session_start_seconds"):
            labels.append("  in-process Session.start")
            vals.append(lm["session_start_seconds"]["median"])
        labels += ["locker lock (CLI)", "lock by SIGTERM"]
        vals += [lm["lock_cli_seconds"]["median"], lm["lock_signal_seconds"]["median"]]
        cols += [colors["locker"]] * (len(vals) - len(cols))
    if gc.get("available"):
        labels += ["gocryptfs mount + read all", "gocryptfs unmount"]
        vals += [gc["mount_read_seconds"]["median"], gc["unmount_seconds"]["median"]]
        cols += [colors["gocryptfs"]] * 2
    if vals:
        ypos = list(range(len(vals)))[::-1]
        bars = ax.barh(ypos, [v * 1000 for v in vals], color=cols)
        ax.set_yticks(ypos, labels, fontsize=8)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    if lm.get("available"):
        ax.axvline(150, color="red", ls="--", lw=1, label="target: 150 ms + KDF")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.9, "locker mount: not available", transform=ax.transAxes, ha="center")
    ax.set_xlabel("ms")
    ax.set_title("500 x 4 KiB files: mount, read all, lock")

    ax = axes[0][2]
    if lm.get("available"):
        samples = lm["sync_latency_seconds"]["samples"]
        ax.plot(range(1, len(samples) + 1), samples, "o-", color=colors["locker"])
        ax.axhline(1.5, color="red", ls="--", lw=1, label="target: 1.5 s")
        ax.set_ylim(0, max(1.7, max(samples) * 1.1))
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "locker mount: not available", transform=ax.transAxes, ha="center")
    ax.set_xlabel("change #")
    ax.set_ylabel("seconds")
    ax.set_title("Sync latency: write -> container updated")

    ax = axes[1][0]
    labels = [
        "info\n(baseline)",
        "ls, empty\n(unlock)",
        f"add\n{b['size_mib']} MiB",
        f"add\n{mem['big_mib']} MiB",
        f"read\n{b['size_mib']} MiB",
    ]
    vals = [
        mem["baseline_info_kib"],
        mem["ls_empty_vault_kib"],
        mem["add_512mib_kib"],
        mem["add_1gib_kib"],
        mem["read_512mib_kib"],
    ]
    bars = ax.bar(labels, [v / 1024 for v in vals], color=colors["locker"])
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.axhline(64, color="red", ls="--", lw=1, label="target: 64 MiB")
    ax.set_ylabel("peak RSS, MiB")
    ax.set_title("Peak memory (tiny-KDF vault)")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    labels = [
        "python\n-I -c pass",
        "locker\n--version",
        "locker\ninfo",
        f"locker ls\n{cli['ls_entries']} entries",
        "ls minus\nKDF",
    ]
    vals = [
        cli["python_floor_seconds"]["median"],
        cli["version_seconds"]["median"],
        cli["info_seconds"]["median"],
        cli["ls_seconds"]["median"],
        cli["ls_minus_kdf_seconds"],
    ]
    bars = ax.bar(labels, [v * 1000 for v in vals], color=["#9e9e9e"] + [colors["locker"]] * 4)
    ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.axhline(100, color="red", ls="--", lw=1, label="--version target: 100 ms")
    ax.set_ylabel("ms")
    ax.set_title("CLI start-up")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelsize=8)

    ax = axes[1][2]
    labels = ["Argon2id\n256 MiB t=3 p=4", "locker ls\ndefault vault", "Argon2id\n8 MiB t=1 p=1"]
    vals = [
        kdf["default_seconds"]["median"],
        kdf["locker_ls_default_vault_seconds"]["median"],
        kdf["tiny_seconds"]["median"],
    ]
    bars = ax.bar(labels, vals, color=colors["locker"])
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_ylabel("seconds")
    ax.set_title("Unlock: Argon2id key derivation")
    ax.tick_params(axis="x", labelsize=8)

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


# -- main -------------------------------------------------------------------------------------------


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    text = (out.stdout or out.stderr).decode(errors="replace").strip().splitlines()
    return text[0] if text else "?"


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tools": {
            "locker": tool_version([str(BIN / "locker"), "--version"]),
            "age": tool_version(["age", "--version"]),
            "gpg": tool_version(["gpg", "--version"]),
            "gocryptfs": tool_version(["gocryptfs", "-version"]),
            "cp": tool_version(["cp", "--version"]),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="runs per case (median; default 5)")
    parser.add_argument("--size-mib", type=int, default=512, help="big file size (default 512)")
    parser.add_argument("--big-mib", type=int, default=1024, help="RSS case size (default 1024)")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "bench",
        help="where bench.json and bench.png go (default docs/bench)",
    )
    parser.add_argument(
        "--save-mib",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[1, 100, 1024],
        help="vault sizes for the save case, comma-separated (default 1,100,1024)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: redraw bench.md and bench.png in --out from a bench.json",
    )
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(args.render.read_text())
        saved["targets"] = verdicts(saved)  # judged by today's targets
        rows = table(saved)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench.md").write_text(markdown(saved, rows))
        problem = chart(saved, args.out / "bench.png")
        problem = bench_save.chart(saved, args.out / "bench-save.png") or problem
        print_table(rows)
        print_verdicts(saved["targets"])
        if problem:
            print(f"bench: warning: {problem}", file=sys.stderr)
        return 0
    started = float(os.environ.get("LOCKER_BENCH_STARTED", time.time()))
    t0 = time.time()
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        print("bench: error: /dev/shm is not writable; the bench runs in RAM only", file=sys.stderr)
        return 1
    need = (args.size_mib * 3 + args.big_mib + 4 * max(args.save_mib)) * MIB
    free = shutil.disk_usage(shm).free
    if free < need:
        print(
            f"bench: error: /dev/shm has {free // MIB} MiB free, needs {need // MIB}",
            file=sys.stderr,
        )
        return 1
    load_start = os.getloadavg()
    log(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="locker-bench-", dir=shm))
    bench = Bench(work, args.reps, args.size_mib * MIB, args.big_mib * MIB)
    try:
        bench.bulk()
        bench.memory()
        bench.kdf()
        bench.cli()
        bench.mount()
        bench.results["saves"] = bench_save.measure(bench, sys.modules[__name__], args.save_mib)
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["gpgconf", "--kill", "gpg-agent"],
                env=bench.env,
                check=False,
                capture_output=True,
                timeout=10,
            )
        for mnt in work.glob("gocrypt.mnt"):
            subprocess.run(["fusermount3", "-u", "-q", mnt], check=False, capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    r: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "reps": args.reps,
        "load": {
            "start": [round(x, 2) for x in load_start],
            "end": [round(x, 2) for x in os.getloadavg()],
        },
        **bench.results,
    }
    r["targets"] = verdicts(r)
    r["runtime_seconds"] = {
        "cases": round(time.time() - t0, 1),
        "total_with_setup": round(time.time() - started, 1),
    }
    rows = table(r)
    r["table"] = [list(x) for x in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(r, indent=2) + "\n")
    (args.out / "bench.md").write_text(markdown(r, rows))
    problem = chart(r, args.out / "bench.png")
    problem = bench_save.chart(r, args.out / "bench-save.png") or problem
    print()
    print_table(rows)
    print()
    print_verdicts(r["targets"])
    print()
    print(f"load average: start {r['load']['start']}, end {r['load']['end']}")
    print(
        f"runtime: {r['runtime_seconds']['cases']} s of cases, "
        f"{r['runtime_seconds']['total_with_setup']} s with setup"
    )
    pictures = " and bench.png, bench-save.png"
    print(f"wrote {args.out / 'bench.json'}, bench.md" + ("" if problem else pictures))
    if problem:
        print(f"bench: warning: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
