"""The ``quatrix-mfa keys`` command run as a real process, and a key file
copied as an operator would (tests/test_key_rotation.py, tests/test_key_ids.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from quatrix_mfa.settings import Settings
from tests.servers import CLI


def run_keys(settings: Settings, key_file: Path, *args: str) -> Any:
    env = {
        "QUATRIX_MFA_DATA_DIR": str(key_file.parent),
        "QUATRIX_MFA_KEYS_FILE": str(key_file),
        "QUATRIX_MFA_DATABASE_URL": settings.effective_database_url,
        "QUATRIX_MFA_ARGON2_MEMORY_KIB": "64",
        "QUATRIX_MFA_ARGON2_TIME_COST": "1",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [*CLI, "keys", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def copy_key_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copy(source, target.with_suffix(".new"))
    target.with_suffix(".new").chmod(0o600)
    target.with_suffix(".new").replace(target)  # as an operator's atomic copy would
