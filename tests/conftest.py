"""Shared fixtures and helpers for the locker test suite.

Everything here works on real files and real subprocesses; nothing mocks the file system.

- `require(tool_or_condition, reason)`: skip locally, fail in CI, when a real component is missing.
- `kdf`: a small Argon2id cost so that unlocking takes milliseconds.
- `pwfile` / `vault_path`: a passphrase file and a vault created with that passphrase.
- `run_locker(*args, input=None, env=None)`: the real `locker` in a subprocess (bytes I/O).
- `cli(*args, ...)`: `run_locker` with `--vault` and `--passphrase-file` for `vault_path` added.
- `places` (autouse): every test runs with runtime bases and a data dir of its own. It sets
  $XDG_RUNTIME_DIR, $XDG_DATA_HOME and $LOCKER_RUNTIME_PLACES (the stand-ins for /run/user,
  /dev/shm and the temp dir that `locker.mount.runtime.places()` reads) in this process's
  environment, which every subprocess inherits; nothing a test does reaches the machine's
  real runtime bases, and a mount of the machine's own user changes no test's outcome.
- `secret_service`: a real, unlocked gnome-keyring-daemon on a private D-Bus session bus.
- `softhsm`: a real PKCS#11 token (SoftHSM2) in a private token directory, holding a P-256
  key pair labelled "locker".

Subprocesses get keyring's fail backend unless a test passes `secret_service`'s environment,
so no test reads or writes the machine's own keyring.

Under `scripts/mutate` only, each mutant is judged by its room's tests (tests/mutation_rooms.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import mutation_rooms
import pytest

from locker.mount.runtime import PLACES_ENV
from locker.store.format import KdfCost
from locker.vault import Vault, create

PASSPHRASE = b"correct horse battery staple"
OTHER_PASSPHRASE = b"hunter2 is not a passphrase"
SMALL_KDF = KdfCost(memory_kib=8 * 1024, time_cost=1, parallelism=1)
# For sweeps that unlock thousands of times: the smallest cost the format accepts.
TINY_KDF = KdfCost(memory_kib=8, time_cost=1, parallelism=1)
SMALL_KDF_FLAGS = ("--kdf-memory", "8", "--kdf-time", "1", "--kdf-parallelism", "1")
LOCKER = (sys.executable, "-m", "locker")
SUBPROCESS_TIMEOUT = 120

RunLocker = Callable[..., "subprocess.CompletedProcess[bytes]"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mutation_rooms.select(config, items)  # scripts/mutate only: a mutant's room's tests


def pytest_sessionstart(session: pytest.Session) -> None:
    mutation_rooms.start(session)  # scripts/mutate only: clears the temp dirs of dead mutants


def pytest_sessionfinish(session: pytest.Session) -> None:
    mutation_rooms.finish(session)  # scripts/mutate only: a mutant's temp dirs go with it


def require(tool_or_condition: str | bool | None, reason: str) -> Any:
    """Demand a real external component: a tool name on PATH, or any truthy condition.

    Returns the tool's full path (or the condition). When it is missing the test is skipped
    locally but fails when CI=true, because in CI nothing may skip for a missing component.
    """
    found: Any = (
        shutil.which(tool_or_condition) if isinstance(tool_or_condition, str) else tool_or_condition
    )
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail(f"required component missing in CI: {reason}")
        pytest.skip(reason)
    return found


_PYCACHE: dict[str, str] = {}


def locker_env(base_dir: Path, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """A clean environment for a locker subprocess.

    No LOCKER_VAULT/LOCKER_DEBUG leaking in, a private XDG data dir so the real default vault
    is never touched, and byte-code caching on (in a per-session directory outside the source
    tree) even where PYTHONDONTWRITEBYTECODE is set: otherwise every subprocess recompiles
    locker and cryptography, which triples its start-up time.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LOCKER_VAULT", "LOCKER_DEBUG", "PYTHONDONTWRITEBYTECODE")
    }
    env["XDG_DATA_HOME"] = str(base_dir / "xdg-data")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    if "dir" in _PYCACHE:
        env["PYTHONPYCACHEPREFIX"] = _PYCACHE["dir"]
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class Places:
    """This test's stand-ins for the machine's runtime places, all removed after the test.

    `xdg` is its $XDG_RUNTIME_DIR and `shm` its /dev/shm: both RAM-backed (inside a private
    directory under the real /dev/shm) where the machine has one. `run_user` stands for
    /run/user (empty: make `run_user / UID` to play logind), `tmp` for the temp dir (on disk,
    in tmp_path)."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.xdg = root / "xdg"
        self.run_user = root / "run-user"
        self.shm = root / "shm"
        self.tmp = tmp
        for path in (self.xdg, self.run_user, self.shm, self.tmp):
            path.mkdir(mode=0o700)

    def env(self) -> dict[str, str]:
        spec = {"run_user": str(self.run_user), "shm": str(self.shm), "tmp": str(self.tmp)}
        return {PLACES_ENV: json.dumps(spec), "XDG_RUNTIME_DIR": str(self.xdg)}

    def all(self) -> list[Path]:
        return [self.root, self.tmp]


def _shm_prefix() -> str:
    """Scratch dirs under /dev/shm carry the PID of the pytest that made them."""
    return f"locker-test-{os.getpid()}-"


@pytest.fixture(scope="session", autouse=True)
def _clear_dead_runs_shm() -> None:
    """A pytest that was killed (`kill -9`, a timeout) cannot remove its /dev/shm scratch
    dirs: remove this user's whose process is gone, so they do not pile up in RAM."""
    shm = Path("/dev/shm")
    for path in shm.glob("locker-test-*-*") if shm.is_dir() else ():
        pid = path.name.split("-")[2]
        try:
            if not pid.isdigit() or path.lstat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue  # gone already, or a process of another user: alive


@pytest.fixture(autouse=True)
def places(tmp_path: Path) -> Iterator[Places]:
    """Runtime bases and a data dir of this test's own, in os.environ (subprocesses inherit).
    Set with a monkeypatch of its own: a test's `monkeypatch.undo()` leaves them in place."""
    shm = Path("/dev/shm")
    in_ram = shm.is_dir() and os.access(shm, os.W_OK)
    root = Path(tempfile.mkdtemp(prefix=_shm_prefix(), dir=shm)) if in_ram else tmp_path / "rt"
    if not in_ram:
        root.mkdir()
    found = Places(root, tmp_path / "tmp")
    try:
        with pytest.MonkeyPatch.context() as env:
            for key, value in found.env().items():
                env.setenv(key, value)
            env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
            env.delenv("LOCKER_VAULT", raising=False)
            yield found
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _subprocess_pycache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The subprocesses' byte-code cache: the caller's PYTHONPYCACHEPREFIX if it set one
    (scripts/mutate: one for all its runs, compiled once), else a directory of this session's."""
    given = os.environ.get("PYTHONPYCACHEPREFIX")
    _PYCACHE["dir"] = given or str(tmp_path_factory.mktemp("pycache"))


@pytest.fixture
def kdf() -> KdfCost:
    """A small Argon2id cost (8 MiB, t=1, p=1) for library tests."""
    return SMALL_KDF


@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    """A file whose first line is PASSPHRASE."""
    path = tmp_path / "passphrase.txt"
    path.write_bytes(PASSPHRASE + b"\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def vault_path(tmp_path: Path, kdf: KdfCost) -> Path:
    """A fresh, empty vault at tmp_path/'vault.locker', sealed with PASSPHRASE."""
    path = tmp_path / "vault.locker"
    create(path, PASSPHRASE, kdf)
    return path


@pytest.fixture
def run_locker(tmp_path: Path) -> RunLocker:
    """Run `python -m locker ARGS...` in a subprocess; bytes in, bytes out, never raises on exit."""

    def run(
        *args: str | os.PathLike[str],
        input: bytes | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: Path | None = None,
        timeout: float = SUBPROCESS_TIMEOUT,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*LOCKER, *map(os.fspath, args)],
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            env=locker_env(tmp_path, env),
            cwd=cwd or tmp_path,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def cli(run_locker: RunLocker, vault_path: Path, pwfile: Path) -> RunLocker:
    """`run_locker` bound to `vault_path`: cli("ls") runs `locker ls --vault V --passphrase-file P`."""

    def run(*args: str | os.PathLike[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        return run_locker(*args, "--vault", vault_path, "--passphrase-file", pwfile, **kwargs)

    return run


@pytest.fixture
def big_file_dir(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory for large inputs, in RAM (/dev/shm) when possible; always removed."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix=_shm_prefix(), dir=shm))
    else:
        path = tmp_path / "big"
        path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_random_file(path: Path, size: int, seed: int = 0) -> bytes:
    """Write `size` pseudo-random bytes to `path` in blocks; returns its SHA-256 digest."""
    import hashlib
    import random

    rnd = random.Random(seed)
    digest = hashlib.sha256()
    block = 8 * 1024 * 1024
    with path.open("wb") as f:
        remaining = size
        while remaining:
            data = rnd.randbytes(min(block, remaining))
            f.write(data)
            digest.update(data)
            remaining -= len(data)
    return digest.digest()


def counter_rng(seed: int = 0) -> Callable[[int], bytes]:
    """Deterministic stand-in for os.urandom: reproducible, and distinct on every call."""
    import hashlib

    state = {"n": 0}

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            state["n"] += 1
            out += hashlib.sha256(f"{seed}:{state['n']}".encode()).digest()
        return out[:n]

    return rng


class FakeClock:
    """An injectable clock that only moves when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MOUNT_FILES = {
    "a.txt": b"alpha\n",
    "sub/deep/b.key": b"-----BEGIN KEY-----\n",
    "c.env": b"TOKEN=1\n",
    "d.txt": b"delta\n",
}


@pytest.fixture
def filled_vault(vault_path: Path) -> Path:
    """`vault_path` holding MOUNT_FILES: a nested name, a key, an env file."""
    with Vault.open(vault_path, PASSPHRASE, write=True) as v:
        for name, data in MOUNT_FILES.items():
            v.add_bytes(name, data)
        v.commit()
    return vault_path


_SECRET_SERVICE_SCRIPT = r"""
set -eu
d="$1"
printf '%s' 'locker test keyring' |
    gnome-keyring-daemon --foreground --unlock --components=secrets >"$d/daemon.log" 2>&1 &
echo $! >"$d/daemon.pid"
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
    grep -q 'boolean true'; do
    kill -0 "$(cat "$d/daemon.pid")" || exit 1
    sleep 0.05
done
printf '%s' "$DBUS_SESSION_BUS_ADDRESS" >"$d/address.tmp"
mv "$d/address.tmp" "$d/address"
cat >/dev/null
kill "$(cat "$d/daemon.pid")" 2>/dev/null || true
wait
"""


@pytest.fixture
def secret_service(tmp_path: Path) -> Iterator[dict[str, str | None]]:
    """A real Secret Service: gnome-keyring-daemon, unlocked, inside its own dbus-run-session
    with its own HOME and XDG dirs. Yields the environment overlay for `run_locker(env=...)`;
    stops the daemon and the bus when the test ends."""
    for tool in ("gnome-keyring-daemon", "dbus-run-session", "dbus-send"):
        require(tool, f"{tool} is needed for the Secret Service tests (apt: gnome-keyring dbus)")
    base = tmp_path / "secret-service"
    dirs = {name: base / name for name in ("home", "data", "config", "runtime")}
    for path in dirs.values():
        path.mkdir(parents=True, mode=0o700)
    private = {
        "HOME": str(dirs["home"]),
        "XDG_DATA_HOME": str(dirs["data"]),
        "XDG_CONFIG_HOME": str(dirs["config"]),
        "XDG_RUNTIME_DIR": str(dirs["runtime"]),
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **private}
    script = base / "session.sh"
    script.write_text(_SECRET_SERVICE_SCRIPT)
    proc = subprocess.Popen(
        ["dbus-run-session", "--", "sh", str(script), str(base)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=(base / "session.log").open("wb"),
        env=env,
        start_new_session=True,
    )
    address = base / "address"
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while not address.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (base / "session.log").read_text(errors="replace")
                pytest.fail(f"the test Secret Service did not start: {log}")
            time.sleep(0.02)
        yield {
            "DBUS_SESSION_BUS_ADDRESS": address.read_text(),
            "PYTHON_KEYRING_BACKEND": None,
            "XDG_CONFIG_HOME": private["XDG_CONFIG_HOME"],
        }
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


class SoftHsm:
    """A SoftHSM2 token of the test's own: module path, label, PIN and environment."""

    label = "locker-test"
    pin = "4321"
    key = "locker"

    def __init__(self, module: str, env: dict[str, str]) -> None:
        self.module = module
        self.env = env

    def options(self, pin_file: Path) -> list[str]:
        return [
            "--pkcs11-module",
            self.module,
            "--pkcs11-token",
            self.label,
            "--pin-file",
            str(pin_file),
        ]

    def add_key(self, label: str) -> None:
        """Generate another P-256 key pair on the token (ECDH allowed, never extractable)."""
        import pkcs11
        from pkcs11 import Attribute, KeyType
        from pkcs11.util.ec import encode_named_curve_parameters

        token = pkcs11.lib(self.module).get_token(token_label=self.label)
        with token.open(user_pin=self.pin, rw=True) as session:
            params = session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True,
            )
            params.generate_keypair(
                store=True,
                label=label,
                private_template={
                    Attribute.DERIVE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )


def _finalize_pkcs11(module: str) -> None:
    """python-pkcs11 keeps a module loaded and initialised per process; finalising it makes
    the next use initialise again, reading this test's SOFTHSM2_CONF."""
    import pkcs11

    pkcs11.lib(module).finalize()


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    """A fresh SoftHSM2 token with a P-256 key pair labelled "locker", in tmp_path only.
    SOFTHSM2_CONF is set in this process (and so in every subprocess) for the test."""
    util = require("softhsm2-util", "softhsm2-util (apt: softhsm2) makes the test token")
    module = next((m for m in SOFTHSM_MODULES if Path(m).exists()), None)
    require(module is not None, "libsofthsm2.so (apt: softhsm2) is the PKCS#11 module under test")
    assert module is not None
    base = tmp_path / "softhsm"
    (base / "tokens").mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    hsm = SoftHsm(module, {"SOFTHSM2_CONF": str(conf)})
    subprocess.run(
        [
            util,
            "--init-token",
            "--free",
            "--label",
            hsm.label,
            "--pin",
            hsm.pin,
            "--so-pin",
            "8765",
        ],
        check=True,
        capture_output=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    _finalize_pkcs11(module)
    hsm.add_key(hsm.key)
    yield hsm
    _finalize_pkcs11(module)


class FatImage:
    """A real FAT file system in an image file, mounted through FUSE by `fusefat -f`.

    `unmount(lazy=True)` takes it away as a pulled drive would (files open there stay usable
    to whoever holds them; fusefat exits when the last one is closed) and `mount()` brings it
    back. The fixture unmounts it and reaps every fusefat it started, whatever happens.
    """

    def __init__(self, image: Path, mount_point: Path) -> None:
        self.image, self.mount_point = image, mount_point
        self.process: subprocess.Popen[bytes] | None = None
        self.processes: list[subprocess.Popen[bytes]] = []

    def mounted(self) -> bool:
        point = os.fspath(self.mount_point)
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            return any(line.split()[4] == point for line in f)

    def mount(self) -> None:
        import time

        self.process = subprocess.Popen(
            [
                require("fusefat", "fusefat (Debian fusefat) mounts the FAT image"),
                "-f",
                "-o",
                "rw+",
                os.fspath(self.image),
                os.fspath(self.mount_point),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(self.process)
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while not self.mounted():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fusefat did not mount {self.image}")
            time.sleep(0.01)

    def unmount(self, lazy: bool = False) -> None:
        if self.mounted():
            fusermount = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount"
            subprocess.run(
                [fusermount, "-u", *(["-z"] if lazy else []), os.fspath(self.mount_point)],
                check=True,
                capture_output=True,
            )

    def reap(self) -> None:
        """Wait for every fusefat started here to exit (kill one that will not)."""
        for process in self.processes:
            try:
                process.wait(timeout=SUBPROCESS_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        self.process = None

    def listing(self) -> list[str]:
        return sorted(os.listdir(self.mount_point))


@pytest.fixture
def fat_image(tmp_path: Path) -> Iterator[Callable[..., FatImage]]:
    """Factory: fat_image(size_mib=64) makes, formats (mkfs.fat) and mounts a FAT image."""
    made: list[FatImage] = []

    def make(size_mib: int = 64) -> FatImage:
        require(Path("/dev/fuse").exists(), "/dev/fuse is missing: no FUSE on this machine")
        mkfs = require("mkfs.fat", "mkfs.fat (Debian dosfstools) makes the FAT image")
        require("fusefat", "fusefat (Debian fusefat) mounts the FAT image")
        require(shutil.which("fusermount3") or shutil.which("fusermount"), "fusermount (fuse3)")
        n = len(made)
        image, point = tmp_path / f"fat{n}.img", tmp_path / f"fat{n}"
        with image.open("wb") as f:
            f.truncate(size_mib * 1024 * 1024)
        subprocess.run([mkfs, os.fspath(image)], check=True, capture_output=True)
        point.mkdir()
        fat = FatImage(image, point)
        made.append(fat)
        fat.mount()
        return fat

    try:
        yield make
    finally:
        for fat in made:
            fat.unmount(lazy=True)
            fat.reap()
