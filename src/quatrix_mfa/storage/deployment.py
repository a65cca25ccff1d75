"""Does this node's key file belong to this database, and which node holds what.

The database keeps a check value per key id: HMAC-SHA256 (RFC 2104) of a
fixed label under the key itself. It proves a file's key is the deployment's
without storing the key or anything that helps find it. A node is refused
(at start-up; ``/readyz`` 503 while running) when

* a key of its file has another check value than the database's: the file is
  another deployment's, or the database was restored into the wrong place;
* it lacks a key the database uses: the active one, or one a secret is
  sealed under.

A database with no check values yet (made before migration 0009) adopts the
first file that opens its secrets: each key id in use must open one stored
secret, so a foreign file is refused there too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from quatrix_mfa.keys import KeyFileError, read_key_file
from quatrix_mfa.storage.keystate import HMAC_ROW, KeyState
from quatrix_mfa.storage.tables import credentials, totp_enrollments

log = logging.getLogger(__name__)
CHECK_LABEL = b"quatrix-mfa key check v1\x00"
HEARTBEAT_SECONDS = 5.0
# A node not heard from in this long is not live (three missed heartbeats).
LIVE_SECONDS = 3 * HEARTBEAT_SECONDS
ACTIVE_CACHE_SECONDS = 2.0


def check_value(key: bytes, key_id: str) -> str:
    return hmac.new(key, CHECK_LABEL + key_id.encode(), hashlib.sha256).hexdigest()


def file_checks(content: dict[str, Any]) -> dict[str, str]:
    """Check values of every key in a read key file, the HMAC key's under "hmac"."""
    values = {kid: check_value(key, kid) for kid, key in content["keys"].items()}
    values[HMAC_ROW] = check_value(content["hmac"], HMAC_ROW)
    return values


def key_problem(path: Path, content: dict[str, Any], state: KeyState) -> str | None:
    """Why the key file at ``path`` cannot serve this database, or None."""
    checks = state.checks()
    mine = file_checks(content)
    for key_id, known in checks.items():
        value = mine.get(key_id)
        if value is not None and not hmac.compare_digest(value, known.check_value):
            return (
                f"key file {path} is not this database's: its key {key_id} differs "
                f"(another deployment's file, or the wrong database)"
            )
    # Every heartbeat runs this: only a registered key the file lacks costs a
    # query (is anything sealed under it?), and that is rare.
    absent = [c for c in checks.values() if c.key_id != HMAC_ROW and c.key_id not in mine]
    missing = sorted(c.key_id for c in absent if c.active or state.count_under(c.key_id))
    if missing:
        return (
            f"key file {path} lacks key(s) {', '.join(missing)} that the database uses: "
            f"copy the current key file from another node"
        )
    return None


def file_verifier(path: Path, state: KeyState) -> Callable[[dict[str, Any]], None]:
    """For :class:`FileKeyRing`: a re-read key file is adopted only if it is this
    database's (a replaced file keeps the keys in memory; /readyz says why)."""

    def verify(content: dict[str, Any]) -> None:
        problem = key_problem(path, content, state)
        if problem:
            raise KeyFileError(problem)

    return verify


def verify_or_adopt(path: Path, engine: Engine, now: float) -> dict[str, Any]:
    """Read the key file and check it against the database; register its keys
    if the database has none yet. Raises :class:`KeyFileError` (one line)."""
    content = read_key_file(path)
    state = KeyState(engine)
    if not state.checks():
        _opens_what_is_stored(path, content, engine)
        state.register(file_checks(content), content["active"], now)
    problem = key_problem(path, content, state)
    if problem:
        raise KeyFileError(problem)
    return content


def _opens_what_is_stored(path: Path, content: dict[str, Any], engine: Engine) -> None:
    """Before adopting a file: each key id in use opens one of its secrets."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from quatrix_mfa.core.crypto import NONCE_BYTES

    samples = [
        (credentials, credentials.c.secret, credentials.c.user_id),
        (totp_enrollments, totp_enrollments.c.ciphertext, totp_enrollments.c.user_id),
    ]
    with engine.connect() as conn:
        conn.info["begin"] = "BEGIN"  # a read: no write lock on SQLite
        for table, sealed, owner in samples:
            key_ids = conn.execute(
                select(table.c.key_id).where(table.c.key_id.is_not(None)).distinct()
            ).scalars()
            for key_id in list(key_ids):
                ciphertext, owner_id = conn.execute(
                    select(sealed, owner).where(table.c.key_id == key_id).limit(1)
                ).one()
                key = content["keys"].get(key_id)
                if key is None:
                    raise KeyFileError(
                        f"key file {path} lacks key {key_id} that the database uses: "
                        f"copy the current key file from another node"
                    )
                data = bytes(ciphertext)
                try:
                    AESGCM(key).decrypt(
                        data[:NONCE_BYTES], data[NONCE_BYTES:], str(owner_id).encode()
                    )
                except InvalidTag:
                    raise KeyFileError(
                        f"key file {path} is not this database's: key {key_id} does not "
                        f"open its secrets (another deployment's file?)"
                    ) from None


def default_node_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ActiveKey:
    """The database's active key id for the key ring, cached for a moment:
    every node switches within ``ACTIVE_CACHE_SECONDS`` of ``keys activate``."""

    def __init__(self, state: KeyState) -> None:
        self._state = state
        self._value: str | None = None
        self._read = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str | None:
        now = time.monotonic()
        if now - self._read >= ACTIVE_CACHE_SECONDS:
            with self._lock:
                if now - self._read >= ACTIVE_CACHE_SECONDS:
                    try:
                        self._value = self._state.active_key_id()
                    except Exception as error:  # keep the last answer while the db is away
                        log.debug("reading the active key failed: %s", type(error).__name__)
                    self._read = now
        return self._value


@dataclass
class NodeStatus:
    """This node's key state, refreshed by each heartbeat; /readyz reads it."""

    problem: str | None = None


def _verified_ids(state: KeyState, ring: Any) -> list[str]:
    """The key ids ``ring`` holds whose check value is the database's."""
    checks = state.checks()
    return [
        kid
        for kid in sorted(ring.key_ids)
        if kid in checks
        and hmac.compare_digest(check_value(ring.key(kid), kid), checks[kid].check_value)
    ]


def beat(
    state: KeyState, ring: Any, node_id: str, revision: str, status: NodeStatus, now: float
) -> None:
    """One heartbeat: re-read the key file, record the key ids held, recheck."""
    try:
        ring.reload()
        content = verify_or_adopt(ring.path, state.engine, now)
    except KeyFileError as error:
        status.problem = str(error)
        content = None
    # A file that failed its check vouches only for the keys the database
    # knows by the same check value: a foreign "k2" is no k2 for 'keys activate'.
    held = content["keys"] if content is not None else _verified_ids(state, ring)
    state.heartbeat(node_id, held, now, revision)
    if content is not None:
        status.problem = None
