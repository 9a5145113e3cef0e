"""Fuzzing in CI (issue 10, item 10): a short Atheris run of each harness in scripts/fuzz.py,
seeded from tests/vectors/, with a memory limit on each input. Only locker's own errors may
escape a parser; libFuzzer exits non-zero with the input otherwise. `scripts/fuzz` runs the
same harnesses for as long as wanted; LOCKER_STRESS=1 makes these runs ten times longer."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require

ROOT = Path(__file__).resolve().parent.parent
STRESS = 10 if os.environ.get("LOCKER_STRESS") == "1" else 1
RUNS = {"header": 20_000, "index": 20_000, "open": 300}


@pytest.mark.parametrize("target", RUNS)
def test_fuzz_target(target: str, tmp_path: Path) -> None:
    require(importlib.util.find_spec("atheris"), "atheris (pip install atheris) for the fuzzers")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            ROOT / "scripts" / "fuzz.py",
            target,
            f"-runs={RUNS[target] * STRESS}",
            "-rss_limit_mb=2048",
            "-malloc_limit_mb=512",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            corpus,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = re.search(r"^Done (\d+) runs", proc.stderr, re.M)
    assert done, proc.stderr[-3000:]
    seeds = len(list((ROOT / "tests" / "vectors").iterdir()))
    assert int(done.group(1)) >= RUNS[target] * STRESS  # the seeds' runs come on top
    print(f"\nfuzz {target}: {done.group(1)} executions from {seeds} vector seeds, no escape")
