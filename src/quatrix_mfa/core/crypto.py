"""Secrets at rest: AES-GCM for seeds, keyed SHA-256 for tokens, argon2id for passwords.

* Recoverable secrets (TOTP seeds) are sealed with AES-256-GCM (NIST SP
  800-38D) under a key id stored beside the ciphertext, with the owner's
  user id as associated data so a ciphertext cannot be moved to another user.
* High-entropy secrets (session tokens, recovery codes, reset ids) are
  stored as HMAC-SHA256 (RFC 2104) under a server-side key: found by an
  index lookup, useless to whoever copies the database.
* Low-entropy human secrets (passwords, PINs) are hashed with argon2id
  (RFC 9106) using OWASP's parameters unless configured otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import argon2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class KeyRing(Protocol):
    """Where the encryption keys live (a file in the data folder, in production)."""

    @property
    def active_key_id(self) -> str: ...

    def key(self, key_id: str) -> bytes:
        """The 32-byte AES key for ``key_id``; KeyError if unknown."""
        ...

    @property
    def hmac_key(self) -> bytes: ...


class KeyUnavailable(KeyError, InvalidTag):
    """A secret sealed under a key this node cannot use: a key id its key file
    lacks, or a key that does not open it (another deployment's file). The
    service answers 503 for it (never 500), audits it and logs it once per key
    id; the secret itself is untouched. A KeyError and an InvalidTag too, as
    the two failures it stands for were before."""

    def __init__(self, key_id: str, owner_id: str, reason: str) -> None:
        super().__init__(f"key {key_id}: {reason}")
        self.key_id = key_id
        self.owner_id = owner_id
        self.reason = reason

    def __str__(self) -> str:
        return f"key {self.key_id}: {self.reason}"


class SecretBox:
    """AES-GCM sealing under the key ring's active key."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys

    def seal(self, plaintext: bytes, owner_id: str) -> tuple[bytes, str]:
        key_id = self._keys.active_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._keys.key(key_id)).encrypt(nonce, plaintext, owner_id.encode())
        return nonce + sealed, key_id

    def open(self, ciphertext: bytes, key_id: str, owner_id: str) -> bytes:
        """The plaintext; :class:`KeyUnavailable` if this node cannot open it."""
        nonce, sealed = ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:]
        try:
            key = self._keys.key(key_id)
        except KeyError:
            raise KeyUnavailable(key_id, owner_id, "not in this node's key file") from None
        try:
            return AESGCM(key).decrypt(nonce, sealed, owner_id.encode())
        except InvalidTag:
            raise KeyUnavailable(key_id, owner_id, "does not open the secret") from None


class TokenHasher:
    """Keyed SHA-256 of high-entropy secrets, domain-separated by purpose."""

    def __init__(self, keys: KeyRing) -> None:
        # HMAC keyed once (RFC 2104 section 2: the key's inner and outer pads),
        # copied for each hash: OpenSSL 3 sets a key up from scratch in every
        # one-shot call, which cost more than the hashing (bench/analysis.md).
        self._keyed = hmac.new(keys.hmac_key, digestmod=hashlib.sha256)

    def hash(self, purpose: str, value: str) -> str:
        msg = purpose.encode() + b"\x00" + value.encode("utf-8", "surrogatepass")
        mac = self._keyed.copy()  # every request that carries a session token
        mac.update(msg)
        return mac.hexdigest()


@dataclass(frozen=True)
class Argon2Parameters:
    """OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1."""

    time_cost: int = 2
    memory_kib: int = 19456
    parallelism: int = 1


def available_cpus() -> int:
    """CPUs this process may run on (``taskset`` and cgroups narrow it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class PasswordHasher:
    """argon2id hashing with a dummy verify so unknown users cost the same time.

    At most ``threads`` hashes run at once in this process (default: one per
    available CPU). Each one holds ``memory_kib`` of memory and a CPU; more at
    once than there are CPUs only makes them fight over caches, and logins
    slower. Every worker of ``serve --workers N`` gets the default: a share of
    the CPUs left one idle whenever the clients' connections sat on one worker.
    """

    def __init__(self, params: Argon2Parameters, threads: int | None = None) -> None:
        self.threads = threads or available_cpus()
        self._gate = threading.BoundedSemaphore(self.threads)
        # Hashes waiting for a slot right now (the metrics sample it).
        self._waiting = 0
        self._count = threading.Lock()
        self._hasher = argon2.PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            type=argon2.Type.ID,
        )
        # A real hash with the same parameters: verifying against it costs what
        # verifying a user's hash costs, which hides whether the user exists.
        self._dummy = self._hasher.hash(os.urandom(16).hex())

    @property
    def waiting(self) -> int:
        """Hashes queued for a free slot at this moment."""
        return self._waiting

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._gate.acquire(blocking=False):
            with self._count:  # += is no atomic step between threads
                self._waiting += 1
            try:
                self._gate.acquire()
            finally:
                with self._count:
                    self._waiting -= 1
        try:
            yield
        finally:
            self._gate.release()

    def hash(self, secret: str) -> str:
        with self._slot():
            return self._hasher.hash(_utf8(secret))

    def verify(self, stored: str | None, secret: str) -> bool:
        """Constant-effort check; ``stored=None`` verifies against the dummy and fails."""
        try:
            with self._slot():
                ok = self._hasher.verify(stored or self._dummy, _utf8(secret))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
        return ok and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate from JSON must not crash hashing.
    return text.encode("utf-8", "surrogatepass")
