"""The key file: AES-GCM keys by id and the HMAC key, in the data folder.

The file is created once (never overwritten) with mode 0600. ``rotate-key``
adds a key and makes it active; running servers notice the change (they
re-read the file when it changes, at most every few seconds, and at once
when they meet an unknown key id), so readers never see a key they lack.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

RECHECK_SECONDS = 5.0


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def create_key_file(path: Path) -> bool:
    """Create the key file if it does not exist; False if it already did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"active": "k1", "keys": {"k1": _new_key()}, "hmac": _new_key()}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle)
    return True


def add_active_key(path: Path) -> str:
    """Add a new AES key and make it active; returns its id. Old keys stay."""
    content = json.loads(path.read_text())
    number = 1 + max(int(k.lstrip("k")) for k in content["keys"])
    key_id = f"k{number}"
    content["keys"][key_id] = _new_key()
    content["active"] = key_id
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle)
    os.replace(tmp, path)  # atomic: a reader sees the old file or the new one
    return key_id


class FileKeyRing:
    """:class:`quatrix_mfa.core.crypto.KeyRing` backed by the key file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._checked = 0.0
        self._mtime = 0.0
        self._content: dict[str, Any] = {}
        self._load()

    def _load(self) -> None:
        try:
            stat = self._path.stat()
            content = json.loads(self._path.read_text())
            self._content = {
                "active": str(content["active"]),
                "keys": {k: base64.b64decode(v) for k, v in content["keys"].items()},
                "hmac": base64.b64decode(content["hmac"]),
            }
        except (OSError, ValueError, KeyError) as error:
            raise RuntimeError(f"cannot read key file {self._path}: {error}") from None
        self._mtime = stat.st_mtime
        self._checked = time.monotonic()

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RECHECK_SECONDS:
            return
        with self._lock:
            self._checked = now
            if self._path.stat().st_mtime != self._mtime:
                self._load()

    @property
    def active_key_id(self) -> str:
        self._refresh()
        return str(self._content["active"])

    def key(self, key_id: str) -> bytes:
        keys = self._content["keys"]
        if key_id not in keys:
            self._refresh(force=True)
            keys = self._content["keys"]
        return bytes(keys[key_id])

    @property
    def hmac_key(self) -> bytes:
        return bytes(self._content["hmac"])
