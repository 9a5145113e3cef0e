"""The `saves` case of scripts/bench.py: what a small change costs as the vault grows.

For vaults of 1 MiB, 100 MiB and 1 GiB (`--save-mib`): `locker add --force` of a 6-byte file
over an entry of that name, a format 2 append (new STREAM, new index, commit record switched:
docs/FORMAT.md section 21), beside `cp` of the vault file (what rewriting every byte costs)
and beside writing the same 6 bytes into a gocryptfs mount that holds as much; and `locker rm`
of a small entry, which is a compaction (the whole file rewritten, unchanged entries copied
with copy_file_range). Then a mount of the largest vault: the time from writing one small
file in the mount until the container has changed. Draws `bench-save.png`: save time
against vault size, one line per tool.

`measure` is called by scripts/bench.py with the Bench object and bench.py's own helpers
(`run`, `summary`, `stat_key`, ...), so every case is timed the same way.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import ModuleType
from typing import Any

MIB = 1024 * 1024
SMALL = b"A=1\nB\n"  # 6 bytes
SYNC_SAMPLES = 5


def measure(bench: Any, h: ModuleType, sizes_mib: list[int]) -> dict[str, Any]:
    w: Path = bench.work / "saves"
    w.mkdir()
    note = w / "note.txt"
    note.write_bytes(SMALL)
    result: dict[str, Any] = {"sizes_mib": sizes_mib, "change_bytes": len(SMALL), "by_size": {}}
    vaults: dict[int, Path] = {}
    for mib in sizes_mib:
        h.log(f"saves: a {mib} MiB vault")
        data = w / f"data-{mib}.bin"
        h.write_random(data, mib * MIB)
        vault = w / f"v{mib}.locker"
        bench.init_vault(vault)
        h.run(bench.lk("add", data, "--as", "data.bin", vault=vault), env=bench.env)
        h.run(bench.lk("add", note, "--as", "note.txt", vault=vault), env=bench.env)
        adds: list[float] = []
        copies: list[float] = []
        removes: list[float] = []
        for _ in range(bench.reps):
            r = h.run(
                bench.lk("add", note, "--as", "note.txt", "--force", vault=vault), env=bench.env
            )
            adds.append(r.seconds)
            copies.append(h.run(["cp", vault, w / "copy"]).seconds)
            h.remove(w / "copy")
        for _ in range(bench.reps):
            h.run(bench.lk("add", note, "--as", "gone.txt", vault=vault), env=bench.env)
            r = h.run(bench.lk("rm", "gone.txt", vault=vault), env=bench.env)
            removes.append(r.seconds)
        entry: dict[str, Any] = {
            "vault_bytes": vault.stat().st_size,
            "locker_add_small_seconds": h.summary(adds),
            "locker_rm_small_seconds": h.summary(removes),
            "cp_vault_seconds": h.summary(copies),
        }
        entry["gocryptfs"] = _gocryptfs(bench, h, w, data, note)
        result["by_size"][str(mib)] = entry
        h.remove(data)
        vaults[mib] = vault
    biggest = max(sizes_mib)
    result["mount_sync"] = _mount_sync(bench, h, vaults[biggest], biggest)
    for vault in vaults.values():
        h.remove(vault, vault.with_name(vault.name + ".lock"))
    return result


def _gocryptfs(bench: Any, h: ModuleType, w: Path, data: Path, note: Path) -> dict[str, Any]:
    """Write the 6 bytes into a gocryptfs mount that holds `data`: its cost of a small change."""
    if not shutil.which("gocryptfs") or not Path("/dev/fuse").exists():
        return {"available": False, "reason": "gocryptfs or /dev/fuse missing"}
    cipher, mnt = w / "gc.cipher", w / "gc.mnt"
    cipher.mkdir()
    mnt.mkdir()
    base = ["gocryptfs", "-q", "-passfile", os.fspath(bench.pw)]
    times: list[float] = []
    try:
        h.run([*base, "-init", "-scryptn", "10", cipher])
        h.run([*base, cipher, mnt])
        try:
            shutil.copyfile(data, mnt / "data.bin")
            for _ in range(bench.reps):
                times.append(h.run(["cp", note, mnt / "note.txt"]).seconds)
        finally:
            h.run(["fusermount3", "-u", mnt], check=False)
    except h.Failed as exc:
        return {"available": False, "reason": f"gocryptfs failed: {exc}"}
    finally:
        h.remove(cipher, mnt)
    return {"available": True, "write_small_seconds": h.summary(times)}


def _mount_sync(bench: Any, h: ModuleType, vault: Path, mib: int) -> dict[str, Any]:
    """Mount the vault, change note.txt SYNC_SAMPLES times: write -> container changed."""
    why = bench.mount_available()
    if why:
        return {"available": False, "reason": why}
    h.log(f"saves: mount sync of one small change in the {mib} MiB vault")
    latencies: list[float] = []
    with bench.mounted(vault, bench.work / "mnt-saves") as (proc, mdir, _, _):
        for i in range(SYNC_SAMPLES):
            before = h.stat_key(vault)
            start = time.perf_counter()
            (mdir / "note.txt").write_bytes(f"A={i}\nB\n".encode())
            while h.stat_key(vault) == before:
                if time.perf_counter() - start > 60:
                    raise h.Failed("a change in the mount did not reach the container in 60 s")
                time.sleep(0.002)
            latencies.append(time.perf_counter() - start)
            time.sleep(0.3)  # let any follow-up save finish before the next change
        # SIGTERM: under load the final sync and the wipe of 1 GiB outlast `locker lock`'s 10 s
        bench.lock(vault, proc, mdir, use_cli=False)
    return {"available": True, "vault_mib": mib, "sync_latency_seconds": h.summary(latencies)}


def fmt_size(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib >= 1024 and mib % 1024 == 0 else f"{mib} MiB"


def rows(r: dict[str, Any], fmt_s: Any) -> list[tuple[str, str, str, str]]:
    """The table's rows for this case: (measurement, locker, compared with, ratio)."""
    s = r.get("saves")
    if not s:
        return []
    out = []
    for mib in s["sizes_mib"]:
        e = s["by_size"][str(mib)]
        add, cp = e["locker_add_small_seconds"]["median"], e["cp_vault_seconds"]["median"]
        out.append(
            (
                f"add a 6-byte file to a {fmt_size(mib)} vault",
                fmt_s(add),
                f"cp of the vault {fmt_s(cp)}",
                f"{add / cp:.2f}",
            )
        )
        gc = e["gocryptfs"]
        if gc.get("available"):
            out.append(("", "", f"gocryptfs {fmt_s(gc['write_small_seconds']['median'])}", ""))
        rm = e.get("locker_rm_small_seconds")
        if rm:
            out.append(
                (
                    f"rm of a 6-byte entry (a compaction), {fmt_size(mib)} vault",
                    fmt_s(rm["median"]),
                    f"cp of the vault {fmt_s(cp)}",
                    f"{rm['median'] / cp:.2f}",
                )
            )
    ms = s["mount_sync"]
    if ms.get("available"):
        sl = ms["sync_latency_seconds"]
        out.append(
            (
                f"mount sync, 1 small change, {fmt_size(ms['vault_mib'])} vault (median / worst)",
                f"{fmt_s(sl['median'])} / {fmt_s(sl['max'])}",
                "",
                "",
            )
        )
    return out


def chart(r: dict[str, Any], path: Path) -> str | None:
    """Save time against vault size: locker's small add, cp of the vault, gocryptfs."""
    s = r.get("saves")
    if not s:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart (scripts/bench installs it)"
    sizes = s["sizes_mib"]
    by = [s["by_size"][str(m)] for m in sizes]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    lines = [
        ("locker add, 6 bytes", [e["locker_add_small_seconds"]["median"] for e in by], "#2a6f97"),
        ("cp of the whole vault", [e["cp_vault_seconds"]["median"] for e in by], "#9e9e9e"),
    ]
    if all("locker_rm_small_seconds" in e for e in by):
        times = [e["locker_rm_small_seconds"]["median"] for e in by]
        lines.append(("locker rm (a compaction)", times, "#6a994e"))
    if all(e["gocryptfs"].get("available") for e in by):
        times = [e["gocryptfs"]["write_small_seconds"]["median"] for e in by]
        lines.append(("gocryptfs, write 6 bytes", times, "#f2cc8f"))
    for label, values, color in lines:
        ax.plot(sizes, [v * 1000 for v in values], "o-", label=label, color=color)
    ms = s["mount_sync"]
    if ms.get("available"):
        sync = ms["sync_latency_seconds"]["median"] * 1000
        ax.plot([ms["vault_mib"]], [sync], "s", color="#c1121f", label="mount sync, 1 change")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [fmt_size(m) for m in sizes])
    ax.set_xlabel("vault size")
    ax.set_ylabel("ms (log scale, lower is better)")
    ax.set_title(
        f"Cost of a small change as the vault grows ({r['date']}, load {r['load']['start'][0]:.2f})"
    )
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None
