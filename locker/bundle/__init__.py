"""Protected bundles: export entries into a new locker container on a drive, verify it from
the drive, and import a bundle's entries into a vault.

`exporting.py` writes and verifies a bundle, `importing.py` merges one into a vault, and
`interrupted.py` cleans up after exports that were killed. Callers use the names below.
"""

from locker.bundle.exporting import (
    Exported,
    bundle_size,
    check_target,
    export,
    finished,
    generated_passphrase,
    select,
    starting,
)
from locker.bundle.importing import (
    Imported,
    Step,
    check_source,
    identity_openers,
    import_bundle,
    import_lines,
    plan,
)
from locker.bundle.interrupted import recover_exports

__all__ = [
    "Exported",
    "Imported",
    "Step",
    "bundle_size",
    "check_source",
    "check_target",
    "export",
    "finished",
    "generated_passphrase",
    "identity_openers",
    "import_bundle",
    "import_lines",
    "plan",
    "recover_exports",
    "select",
    "starting",
]
