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
    # Staged 2FA (core/rollout.py): with ``force_2fa``, users without 2FA may
    # still sign in without it until this time (None: no grace, forced now).
    mfa_enroll_by: float | None = None
    # How far the rollout of that deadline went (reminders mailed, sessions
    # ended); moved forward only by an atomic claim (storage), never saved.
    mfa_stage: int = 0
    # Whether a user may start a lost-device recovery themself (core/mfa_recovery.py).
    mfa_self_recovery: bool = True
    # Trusted devices (core/devices.py): how many days a "trust this browser"
    # lasts (0: off), and the epoch that setting 0 bumps (ending every trust);
    # the epoch moves only by an atomic increment (storage), never saved.
    trusted_device_days: int = 30
    trust_epoch: int = 0
    # The TOTP parameters of new enrollments (core/factors/totp.py Parameters).
    totp_algorithm: str = "SHA1"
    totp_digits: int = 6
    totp_period: int = 30

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
    """A user and their factor *policy* (which factors are on or forced). The
    credentials themselves (a TOTP seed, a PIN hash, later passkeys) are
    :class:`Credential` rows; ``enrolled`` names the kinds the user has."""

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
    pin_forced: bool = False
    last_login: float | None = None
    # Bumped by every change of the user's credentials (core/credentials.py):
    # a session, device token or grant made under another epoch is dead.
    credential_epoch: int = 0
    # The kinds of Credential rows the user has, read with the user (never saved).
    enrolled: frozenset[str] = frozenset()

    @property
    def is_active(self) -> bool:
        return self.status == "A"

    @property
    def pin_active(self) -> bool:
        return PIN_KIND in self.enrolled


TOTP_KIND = "totp"
PIN_KIND = "pin"


@dataclass
class Credential:
    """One stored second-factor credential of a user; a user may hold several
    of one kind (passkeys). ``secret`` is sealed (``key_id`` names the key:
    a TOTP seed) or a one-way hash (``key_id`` None: a PIN's argon2 hash).
    ``last_step`` is the TOTP replay guard. A TOTP seed also keeps the
    parameters it was enrolled with (None: SHA1 / 6 / 30), the step offset of
    its last accepted code (``last_offset``: -1, 0 or +1) and the future steps
    a refusal named (``burned_steps``: never accepted, core/factors/drift.py)."""

    id: str
    user_id: str
    kind: str
    secret: bytes
    key_id: str | None
    created: float
    last_step: int | None = None
    label: str | None = None
    algorithm: str | None = None
    digits: int | None = None
    period: int | None = None
    last_offset: int | None = None
    burned_steps: list[int] | None = None


@dataclass
class TotpEnrollment:
    """A generated seed that is not active until ``set-mfa`` proves it."""

    user_id: str
    ciphertext: bytes
    key_id: str
    expires_at: float
    # The site's TOTP parameters when it started (None: SHA1 / 6 / 30).
    algorithm: str | None = None
    digits: int | None = None
    period: int | None = None


class SessionKind(StrEnum):
    """How a session is carried: a bearer token of the API, or a browser cookie."""

    API = "api"
    BROWSER = "browser"


@dataclass
class SessionRecord:
    """A stored session: only the keyed hash of its token is kept.

    It also records how it was made (its authentication record): its kind,
    ``auth_time`` (when the login's first factor, the password, was proven)
    and ``factors``, the factors proven in order ("password", "totp",
    "recovery", "pin"), carried from each login step to the next. A full
    session ends ``max_seconds`` after ``auth_time`` whatever rotates it.
    ``epoch`` is the user's credential epoch it was made under.
    """

    token_hash: str
    user_id: str
    created: float
    last_seen: float
    expires_at: float
    steps: tuple[Step, ...] = ()
    failures: int = 0
    epoch: int = 0
    kind: SessionKind = SessionKind.API
    auth_time: float = 0.0
    factors: tuple[str, ...] = ()
    # The client address the session was opened from: a new IP allow-list
    # closes the sessions opened outside it (core/site.py).
    client_addr: str | None = None

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
    """A queued message. A mail that carries a secret (a password link) holds
    it sealed in ``secret`` under ``key_id``, and its ``body`` only a slot for
    it (core/mail.py); storage never sees the secret in clear."""

    to: str
    subject: str
    body: str
    created: float
    id: int | None = None
    attempts: int = 0
    sent_at: float | None = None
    next_attempt_at: float = 0.0
    last_error: str | None = None
    secret: bytes | None = None
    key_id: str | None = None

    @property
    def given_up(self) -> bool:
        """Never to be sent: dropped (its link died) or failed too often;
        ``last_error`` says which (storage: ``OutboxRepository.give_up``)."""
        return self.sent_at is None and self.next_attempt_at >= NEVER


# A mail's ``next_attempt_at`` once it is given up: no clock reaches it (year 33,000).
NEVER = 1e12


class RecoveryState(StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


@dataclass
class MfaRecovery:
    """A lost-device recovery a user started on a pending login: at
    ``ready_at`` (or once an administrator approves it) their next password
    login removes their second factors. Only the keyed hash of its cancel
    id is stored, like a reset link's."""

    id_hash: str
    user_id: str
    account_id: str
    created: float
    ready_at: float
    state: RecoveryState = RecoveryState.OPEN
    closed_at: float | None = None
    approved_by: str | None = None


@dataclass
class ResetRequest:
    """A password-(re)set link; only its keyed hash is stored, with the keyed
    hash of the email it was mailed to (``email_hash``): it sets a password
    only while that is still the user's email.

    A link that confirms a change of email (core/email_change.py) has the new
    address in ``new_email``; ``email_hash`` is then the address it changes from."""

    id_hash: str
    user_id: str
    created: float
    expires_at: float
    used_at: float | None = None
    email_hash: str = ""
    new_email: str | None = None


@dataclass
class TrustedDevice:
    """A "remember this device" token (core/devices.py); only the keyed hash
    of the token is stored. ``id`` is its public name (lists, revocation);
    ``epoch`` and ``trust_epoch`` are the user's credential epoch and the
    account's trust epoch it was given under: a change of either ends it."""

    token_hash: str
    id: str
    user_id: str
    account_id: str
    label: str
    client_addr: str | None
    created: float
    last_used: float | None
    expires_at: float
    epoch: int
    trust_epoch: int
