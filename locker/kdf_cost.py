"""How costly a new slot's Argon2id is: time it on this machine for `--kdf-target`, and warn
when a chosen cost is below OWASP's table. Only new slots ask; readers enforce the caps in
store/format.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from locker.errors import KdfTooCostlyError, UsageError
from locker.store import crypto
from locker.store.format import MAX_KDF_MEMORY_TIME_KIB, MAX_KDF_TIME, KdfCost, check_kdf_cost

Clock = Callable[[], float]
# OWASP's Argon2id table (Password Storage Cheat Sheet), all p=1: the least memory in MiB
# for each number of passes (5 or more: 7 MiB).
OWASP_MIN_MEMORY_MIB = {1: 46, 2: 19, 3: 12, 4: 9, 5: 7}
KDF_TARGET_SLACK = 0.2  # --kdf-target lands within ±20 % of the target


def calibrate_kdf(
    target_seconds: float,
    memory_kib: int,
    parallelism: int,
    clock: Clock = time.perf_counter,
    derive: Callable[[bytes, bytes, crypto.KdfParams], bytes] = crypto.argon2id,
    fixed_memory: bool = True,
) -> KdfCost:
    """Argon2id cost whose unlock takes about `target_seconds` on this machine.

    Times a 1-pass and a 3-pass derivation (2-pass where 3 would cross the memory x time
    cap): their difference is the cost of each further pass, the 1-pass time what the first
    one costs (memory set-up included). Returns the most passes that fit the target, clamped
    to 1..16 and to the memory x time cap every reader enforces. Unless `fixed_memory`, memory
    is then lowered (its cost is about linear) where whole passes cannot land within ±20 % of
    the target: one pass already takes longer, or one more pass would overshoot.
    """
    if not math.isfinite(target_seconds) or target_seconds <= 0:
        raise UsageError("--kdf-target must be a positive number of seconds")
    try:
        check_kdf_cost(KdfCost(memory_kib, 1, parallelism))
    except KdfTooCostlyError as exc:  # the user's values are wrong, not a file
        raise UsageError(str(exc), hint="choose smaller --kdf-* values") from None
    most = min(3, MAX_KDF_MEMORY_TIME_KIB // memory_kib)
    if most == 1:
        return KdfCost(memory_kib, 1, parallelism)
    timings = []
    for passes in (1, most):
        start = clock()
        derive(
            b"calibration",
            bytes(crypto.SALT_SIZE),
            crypto.KdfParams(memory_kib, passes, parallelism),
        )
        timings.append(clock() - start)
    first, per_pass = timings[0], max(timings[1] - timings[0], 0.0) / (most - 1)
    passes = kdf_passes(target_seconds, per_pass, memory_kib, first)
    if not fixed_memory:
        memory_kib, passes = _fit_memory(
            target_seconds, memory_kib, parallelism, passes, first, per_pass
        )
    return KdfCost(memory_kib, passes, parallelism)


def _fit_memory(
    target: float, memory_kib: int, parallelism: int, passes: int, first: float, per_pass: float
) -> tuple[int, int]:
    """(memory, passes) predicted within ±20 % of `target`; memory is only ever lowered."""

    def predicted(t: int) -> float:
        return first + (t - 1) * per_pass

    low, high = (1 - KDF_TARGET_SLACK) * target, (1 + KDF_TARGET_SLACK) * target
    if low <= predicted(passes) <= high or predicted(passes) <= 0:
        return memory_kib, passes
    most = min(MAX_KDF_TIME, MAX_KDF_MEMORY_TIME_KIB // memory_kib)
    if predicted(passes) < low and passes < most:
        passes += 1  # one more pass at less memory lands closer than this many at full memory
    scaled = round(memory_kib * target / predicted(passes))
    if scaled >= 1024:
        scaled -= scaled % 1024  # whole MiB
    return max(8 * parallelism, min(memory_kib, scaled)), passes


def kdf_passes(
    target_seconds: float,
    per_pass_seconds: float,
    memory_kib: int,
    first_pass_seconds: float | None = None,
) -> int:
    """The most passes whose predicted time, the first pass plus per_pass for each further
    one, fits the target (at least 1, at most 16 and the memory x time cap)."""
    first = per_pass_seconds if first_pass_seconds is None else first_pass_seconds
    most = min(MAX_KDF_TIME, MAX_KDF_MEMORY_TIME_KIB // memory_kib)
    further = (target_seconds - first) / max(per_pass_seconds, 1e-9) + 1e-9  # 0.4/0.1=3.99..
    return max(1, min(most, 1 + math.floor(further)))


def weak_kdf_warning(cost: KdfCost) -> str | None:
    """A warning when `cost` is below OWASP's table for its number of passes."""
    need_mib = OWASP_MIN_MEMORY_MIB[min(cost.time_cost, 5)]
    if cost.memory_kib >= need_mib * 1024:
        return None
    table = ", ".join(f"{m} MiB/t={t}" for t, m in OWASP_MIN_MEMORY_MIB.items())
    return (
        f"Argon2 parameters ({cost.memory_kib / 1024:g} MiB, t={cost.time_cost}) are below "
        f"OWASP's minimum for t={cost.time_cost} ({need_mib} MiB; the table allows {table}, "
        "p=1): a stolen vault is cheaper to brute-force"
    )
