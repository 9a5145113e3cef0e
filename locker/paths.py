"""Where locker keeps things by default: the vault in the user data dir, runtime state in RAM."""

from __future__ import annotations

import os
from pathlib import Path

VAULT_ENV = "LOCKER_VAULT"


def default_vault() -> Path:
    env = os.environ.get(VAULT_ENV)
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("locker", appauthor=False)) / "default.locker"
