"""Which tests judge a mutant in `scripts/mutate` (mutmut 3): those of its module's room.

mutmut runs, for each mutant, every selected test that called the mutated function. store/'s
helpers are called by nearly every test, so a mutant that survives would run hundreds of them
(10 to 60 s). While a mutant is under test (mutmut names it in MUTANT_UNDER_TEST), this keeps
only the tests of the files listed for its module below, and never a test that runs `locker`
in a subprocess: that subprocess runs the unmutated code, so it cannot kill a mutant. If that
leaves none of the tests mutmut chose, the in-process ones among them all run. mutmut's other
runs (the clean run, the stats that map functions to tests) and plain pytest are untouched.
At the end of each of mutmut's runs, `finish` removes its session's temp dirs (`start`: those
of one that died). A mutant's run that is still going after MUTATE_WALL_SECONDS (default 300)
of wall-clock time ends as a timeout: mutmut limits only CPU time, and a mutant that blocks
(an open of a FIFO without O_NONBLOCK, a lock never released) sleeps forever without using any.
"""

from __future__ import annotations

import os
import shutil
import signal

import pytest

_KILLERS = (
    "test_mutants.py",
    "test_mutants_format.py",
    "test_mutants_mutmut.py",
    "test_mutants_store_io.py",
    "test_mutants_sync.py",
    "test_mutants_mount.py",
    "test_mutants_generations.py",
    "test_mutants_container.py",
)  # written to kill planted bugs
_FORMAT = ("test_format.py", "test_names.py", "test_read_limits.py", "test_save_limits.py")
_SAVE = ("test_vault.py", "test_faults.py", "test_save_failures.py", "test_save_directory.py")
# format 2: the append-and-switch save, the commit record in force, what is passed over
_GENERATIONS = ("test_passed_over.py", "test_tamper.py")

_OWNER = ".mutant-pid"  # in a session's temp dir: the process it belongs to
_TIMEOUT_EXIT = 36  # the exit status mutmut records as "timeout"

ROOMS: dict[str, tuple[str, ...]] = {
    "locker.store.format": (*_FORMAT, "test_vectors.py", "test_fuzz.py"),
    "locker.store.index": (*_FORMAT, "test_vectors.py", "test_vault.py", "test_model.py"),
    "locker.store.crypto": ("test_crypto.py", "test_vectors.py", "test_slot_vectors.py"),
    "locker.store.keys": ("test_slot_vectors.py", "test_vectors.py", "test_slot_contract.py"),
    "locker.store.container": (
        *_SAVE,
        *_FORMAT,
        *_GENERATIONS,
        "test_vectors.py",
        "test_save_copy.py",
        "test_data_path.py",
    ),
    "locker.store.generations": (
        *_SAVE,
        *_GENERATIONS,
        "test_save_limits.py",
        "test_save_copy.py",
    ),
    "locker.store.passed_over": (*_GENERATIONS, "test_vectors.py", "test_save_failures.py"),
    "locker.store.sources": (
        *_SAVE,
        "test_save_copy.py",
        "test_data_path.py",
        "test_sync_read_errors.py",
    ),
    "locker.store.deferred": ("test_deferred_log.py", "test_vault.py"),
    "locker.store.lockfile": ("test_vault_lock.py", "test_vault.py", "test_mount_lock.py"),
    "locker.store.safefs": (
        "test_save_directory.py",
        "test_tree_writer.py",
        "test_wipe_errors.py",
        "test_data_path.py",
        "test_deferred_log.py",
    ),
    "locker.store.drives": ("test_save_directory.py", "test_runtime.py"),
    "locker.mount.directory": (
        "test_wipe_errors.py",
        "test_mount_session.py",
        "test_mount_lock.py",
        "test_shred_links.py",
    ),
    "locker.mount.sync": (
        "test_mount_session.py",
        "test_mount_lock.py",
        "test_sync_read_errors.py",
        "test_mount_recover.py",
    ),
}


def _in_process(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return "run_locker" not in names and "cli" not in item.name.split("[")[0].split("_")


def select(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect what cannot or need not judge the mutant under test (see the module's text)."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if not mutant.startswith("locker."):
        return
    room = (*ROOMS.get(mutant.rsplit(".", 1)[0], ()), *_KILLERS)
    in_process = [i for i in items if _in_process(i)]
    keep = [i for i in in_process if i.path.name in room] or in_process
    if len(keep) < len(items):
        kept = set(keep)
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = keep


def _factory(session: pytest.Session) -> pytest.TempPathFactory | None:
    """The session's temp dir factory in mutmut's runs (it sets MUTANT_UNDER_TEST in all)."""
    if "MUTANT_UNDER_TEST" not in os.environ:
        return None
    return getattr(session.config, "_tmp_path_factory", None)


def start(session: pytest.Session) -> None:
    """Mark the session's temp dir with its process, and remove those of sessions whose
    process is gone without `finish` (a mutant stopped by its CPU or file-size limit). A
    mutant's run gets its wall-clock limit."""
    if os.environ.get("MUTANT_UNDER_TEST", "").startswith("locker."):
        signal.signal(signal.SIGALRM, lambda signum, frame: os._exit(_TIMEOUT_EXIT))
        signal.alarm(int(os.environ.get("MUTATE_WALL_SECONDS", "300")))
    factory = _factory(session)
    if factory is None:
        return
    base = factory.getbasetemp()
    (base / _OWNER).write_text(str(os.getpid()))
    for other in base.parent.glob("pytest-[0-9]*"):
        try:
            pid = int((other / _OWNER).read_text())
        except (OSError, ValueError):
            continue  # not marked yet: a session starting now
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(other, ignore_errors=True)
        except OSError:
            pass


def finish(session: pytest.Session) -> None:
    """Remove the temp dirs of each session mutmut runs (its tests' tmp_path dirs, the
    byte-code cache of their subprocesses) as it ends. mutmut runs each mutant in a forked
    child that leaves by `os._exit`: pytest removes a session's dirs
    (tmp_path_retention_policy=none) at interpreter exit, which never comes there, so every
    mutant's dirs stayed until the whole run ended."""
    base = getattr(_factory(session), "_basetemp", None)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)
