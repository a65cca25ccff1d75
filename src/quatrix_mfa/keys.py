"""The key file: AES-GCM keys by id and the HMAC key (``QUATRIX_MFA_KEYS_FILE``,
default ``<data dir>/keys.json``).

``init`` creates it once, for a new database (never overwritten, mode 0600);
no other command ever makes keys. ``keys add`` adds a key to it. Every reader
refuses a file that is missing, unreadable, malformed or readable by others
(:class:`KeyFileError`, one line naming the file). Running servers re-read the
file when it changes, at most every few seconds, and at once when they meet an
unknown key id, so a key copied in is used without a restart.

Which key is active (seals new secrets) is kept in the database on a
deployment that has the ``key_checks`` table (storage/keystate.py), so every
node switches together; the file's ``active`` is the fallback before that.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

RECHECK_SECONDS = 5.0
KEY_BYTES = 32
# Owner read-write or owner read-only: a mounted secret is often 0400.
ALLOWED_MODES = frozenset({0o600, 0o400})


class KeyFileError(Exception):
    """The key file cannot be used; the message is one line naming the file."""


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def create_key_file(path: Path) -> bool:
    """Create the key file if it does not exist; False if it already did.

    Only ``init`` calls this (and tests building a fresh deployment)."""
    make_private_dir(path.parent)
    content = {"active": "k1", "keys": {"k1": _new_key()}, "hmac": _new_key()}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle)
    os.chmod(path, 0o600)  # whatever the umask said
    return True


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) as 0700 if missing; an existing folder is kept as is."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask


def read_key_file(path: Path) -> dict[str, Any]:
    """The key file, checked: {"active": id, "keys": {id: bytes}, "hmac": bytes}.

    Raises :class:`KeyFileError` with a one-line reason and what to do."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyFileError(
            f"key file {path} is missing: restore it from the backup made with the database "
            f"(or set QUATRIX_MFA_KEYS_FILE); 'quatrix-mfa init' makes one only for a new "
            f"database"
        ) from None
    except OSError as error:
        raise KeyFileError(f"key file {path} is unreadable: {error.strerror}") from None
    mode = stat.S_IMODE(info.st_mode)
    if mode not in ALLOWED_MODES:
        raise KeyFileError(
            f"key file {path} has mode {mode:04o}; it must be 0600 or 0400 (chmod 600 {path})"
        )
    try:
        raw = json.loads(path.read_bytes())
    except OSError as error:
        raise KeyFileError(f"key file {path} is unreadable: {error.strerror}") from None
    except ValueError:
        raise KeyFileError(
            f"key file {path} is corrupt (not JSON): restore it from the backup"
        ) from None
    return _checked(path, raw)


def _checked(path: Path, raw: Any) -> dict[str, Any]:
    def bad(what: str) -> KeyFileError:
        return KeyFileError(f"key file {path} is corrupt ({what}): restore it from the backup")

    if not isinstance(raw, dict) or not isinstance(raw.get("keys"), dict) or not raw["keys"]:
        raise bad("no keys")
    keys = {}
    for key_id, value in raw["keys"].items():
        keys[str(key_id)] = _key_bytes(value, bad(f"key {key_id}"))
    active = raw.get("active")
    if not isinstance(active, str) or active not in keys:
        raise bad("the active key is not among the keys")
    return {"active": active, "keys": keys, "hmac": _key_bytes(raw.get("hmac"), bad("hmac"))}


def _key_bytes(value: Any, error: KeyFileError) -> bytes:
    try:
        key = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise error from None
    if value is None or len(key) != KEY_BYTES:
        raise error
    return key


def _write(path: Path, content: dict[str, Any]) -> None:
    """Replace the file atomically (a reader sees the old file or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
    os.replace(tmp, path)


def _encoded(content: dict[str, Any]) -> dict[str, Any]:
    return {
        "active": content["active"],
        "keys": {k: base64.b64encode(v).decode() for k, v in content["keys"].items()},
        "hmac": base64.b64encode(content["hmac"]).decode(),
    }


def add_key(path: Path, activate: bool = False, taken: Collection[str] = ()) -> str:
    """Add a new AES key (inactive unless ``activate``); returns its id. Old keys
    stay. The id is above every id in the file and in ``taken`` (those the
    database knows): a second node's file must not mint another key as "k2"."""
    content = read_key_file(path)
    ids = {*content["keys"], *taken}
    number = 1 + max(int(k.lstrip("k")) if k.lstrip("k").isdigit() else 0 for k in ids)
    key_id = f"k{number}"
    content["keys"][key_id] = base64.b64decode(_new_key())
    if activate:
        content["active"] = key_id
    _write(path, _encoded(content))
    return key_id


def add_active_key(path: Path) -> str:
    """Add a new AES key and make it the file's active one (one-node rotation)."""
    return add_key(path, activate=True)


def set_file_active(path: Path, key_id: str) -> None:
    """Mark ``key_id`` active in the file (the fallback when the database has no say)."""
    content = read_key_file(path)
    if content["active"] != key_id:
        content["active"] = key_id
        _write(path, _encoded(content))


def remove_key(path: Path, key_id: str) -> None:
    """Drop ``key_id`` from the file (``keys retire``; never the active one)."""
    content = read_key_file(path)
    if content["active"] == key_id:
        raise KeyFileError(f"key {key_id} is the active key in {path}; activate another first")
    if content["keys"].pop(key_id, None) is not None:
        _write(path, _encoded(content))


class FileKeyRing:
    """:class:`quatrix_mfa.core.crypto.KeyRing` backed by the key file.

    ``active_source``, when given, names the active key id (the database's
    choice, so every node switches together); None from it means "the file's"."""

    def __init__(
        self,
        path: Path,
        active_source: Callable[[], str | None] | None = None,
        verify: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        # ``verify`` raises KeyFileError for a re-read file that is not this
        # database's (another deployment's): its keys are then not adopted.
        self._verify = verify
        self._path = path
        self._lock = threading.Lock()
        self._checked = 0.0
        self._mtime = 0.0
        self._content: dict[str, Any] = {}
        self.active_source = active_source
        self._load()

    @property
    def path(self) -> Path:
        return self._path

    def _load(self) -> None:
        stat_ = self._path.stat() if self._path.exists() else None
        self._content = read_key_file(self._path)
        self._mtime = stat_.st_mtime if stat_ else 0.0
        self._checked = time.monotonic()

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RECHECK_SECONDS:
            return
        with self._lock:
            self._checked = now
            try:
                if self._path.stat().st_mtime != self._mtime:
                    stat_ = self._path.stat()
                    content = read_key_file(self._path)
                    if self._verify is not None:
                        self._verify(content)
                    self._content, self._mtime = content, stat_.st_mtime
            except (OSError, KeyFileError):
                # A file being copied in, or broken by hand: keep the keys we
                # hold (readiness reports the file; nothing here may fail).
                return

    def reload(self) -> None:
        """Read the file again now (a node's heartbeat, a command)."""
        self._refresh(force=True)

    @property
    def key_ids(self) -> frozenset[str]:
        self._refresh()
        return frozenset(self._content["keys"])

    @property
    def active_key_id(self) -> str:
        self._refresh()
        chosen = self.active_source() if self.active_source is not None else None
        if chosen and chosen not in self._content["keys"]:
            # Activated before this node re-read its file: read it now; if the
            # key is still not here, seal under the file's (every node opens it).
            self._refresh(force=True)
        if chosen and chosen in self._content["keys"]:
            return chosen
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
