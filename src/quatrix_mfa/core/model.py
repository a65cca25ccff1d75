"""The contract's nouns as plain records, shared by core and storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

TWO_FA = "2FA"
PIN = "PIN"
IP = "IP"


class Step(StrEnum):
    """What a pending session still has to do; the value is its ``Mfa-Code``."""

    TOTP = "1"
    PIN = "2"
    ENROLL_TOTP = "3"


@dataclass
class Account:
    id: str
    name: str
    created: float
    modified: float
    force_2fa: bool = False
    ip_restricted: bool = False
    ip_whitelist: list[str] = field(default_factory=list)
    # The spec's free-form site settings (title, language, bcc, ...), kept as given.
    settings: dict[str, Any] = field(default_factory=dict)
    status: str = "A"

    @property
    def auth_methods(self) -> list[str]:
        methods = []
        if self.ip_restricted:
            methods.append(IP)
        if self.force_2fa:
            methods.append(TWO_FA)
        return methods


@dataclass
class User:
    id: str
    account_id: str
    email: str
    name: str
    created: float
    modified: float
    super_admin: bool = False
    status: str = "A"
    language: str = "eng"
    password_hash: str | None = None
    twofa_active: bool = False
    twofa_forced: bool = False
    pin_hash: str | None = None
    pin_forced: bool = False
    last_login: float | None = None

    @property
    def is_active(self) -> bool:
        return self.status == "A"

    @property
    def pin_active(self) -> bool:
        return self.pin_hash is not None


@dataclass
class TotpSecret:
    """An active TOTP seed, encrypted; ``last_step`` is the replay guard."""

    user_id: str
    credential_id: str
    ciphertext: bytes
    key_id: str
    created: float
    last_step: int | None = None


@dataclass
class TotpEnrollment:
    """A generated seed that is not active until ``set-mfa`` proves it."""

    user_id: str
    ciphertext: bytes
    key_id: str
    expires_at: float


@dataclass
class SessionRecord:
    """A stored session: only the keyed hash of its token is kept."""

    token_hash: str
    user_id: str
    created: float
    last_seen: float
    expires_at: float
    steps: tuple[Step, ...] = ()
    failures: int = 0

    @property
    def pending(self) -> bool:
        return bool(self.steps)


@dataclass
class ThrottleState:
    key: str
    failures: int
    blocked_until: float
    updated: float


@dataclass
class AuditEvent:
    at: float
    event: str
    outcome: str
    actor_id: str | None = None
    target_id: str | None = None
    account_id: str | None = None
    client_addr: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass
class Mail:
    to: str
    subject: str
    body: str
    created: float
    id: int | None = None
    attempts: int = 0
    sent_at: float | None = None
    next_attempt_at: float = 0.0
    last_error: str | None = None


@dataclass
class ResetRequest:
    """A password-(re)set link; only its keyed hash is stored."""

    id_hash: str
    user_id: str
    created: float
    expires_at: float
    used_at: float | None = None
