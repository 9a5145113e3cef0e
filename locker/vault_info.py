"""What `locker info` shows without a key: the header's facts (format, slots and their KDF
costs, sizes, the generation). Entry names and counts stay secret. Imports no key derivation
and none of the vault's writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from locker.store.container import Sealed
from locker.store.format import SLOT_KIND_NAMES, VERSION_1


def info(path: Path) -> dict[str, Any]:
    """Header facts that need no passphrase. Entry names and counts stay secret."""
    sealed = Sealed.read(path)
    try:
        h = sealed.header
        slots = []
        for s in h.slots:
            item: dict[str, Any] = {"kind": SLOT_KIND_NAMES[s.kind], "id": s.slot_id.hex()}
            if s.kdf is not None:
                item["kdf"] = {
                    "algorithm": "argon2id",
                    "memory_mib": s.kdf.memory_kib / 1024,
                    "time_cost": s.kdf.time_cost,
                    "parallelism": s.kdf.parallelism,
                }
            slots.append(item)
        # Unauthenticated facts: the highest usable record of a v2 file is the one a key
        # would most likely choose.
        record = sealed.records[0][1]
        facts = {
            "path": str(path),
            "format_version": sealed.version,
            "container_id": h.container_id.hex(),
            "file_size": sealed.file_size,
            "header_size": sealed.data_start
            - (record.index_length if sealed.version == VERSION_1 else 0),
            "index_size": record.index_length,
            "index_offset": record.index_offset,
            # v2: everything after the records but that index (entries, and any garbage)
            "data_size": sealed.file_size
            - sealed.data_start
            - (0 if sealed.version == VERSION_1 else record.index_length),
            "slot_count": len(h.slots),
            "slots": slots,
        }
        if sealed.version != VERSION_1:
            facts["generation"] = record.generation
        return facts
    finally:
        sealed.close()
