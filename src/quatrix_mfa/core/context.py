"""What core runs in: the service (:class:`Core`, built once by the
application) and one request (:class:`Context`, built by an edge per call)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from quatrix_mfa.core import audit
from quatrix_mfa.core.clock import Clock
from quatrix_mfa.core.crypto import KeyRing, PasswordHasher, SecretBox, TokenHasher
from quatrix_mfa.core.factors.pin import PinFactor
from quatrix_mfa.core.factors.recovery import RecoveryCodes
from quatrix_mfa.core.factors.registry import FactorRegistry
from quatrix_mfa.core.factors.totp import TotpFactor
from quatrix_mfa.core.ports import Store
from quatrix_mfa.core.throttling import Throttle, ThrottlePolicy

if TYPE_CHECKING:  # sessions imports this module for Core
    from quatrix_mfa.core.sessions import Caller


@dataclass(frozen=True)
class SessionPolicy:
    idle_seconds: float = 900.0
    max_seconds: float = 12 * 3600.0
    pending_seconds: float = 300.0
    # Refresh last-seen at most this often, so reads do not write every time.
    touch_interval: float = 60.0
    max_code_failures: int = 5

    @property
    def touch_every(self) -> float:
        """How stale a session's last-seen time may get before a request
        writes it: ``touch_interval``, but at most a tenth of the idle time.
        Idle time counts from the stored last-seen, so a session in use ends
        at most this much before its idle time after its last request (with
        a 60 s idle time and a 60 s interval, one used every 20 s had ended
        60 s after it opened)."""
        return min(self.touch_interval, self.idle_seconds / 10)

    # How long a session's claim for one slow hash (a new PIN) holds at most:
    # past it (the process died mid-hash) the session may hash again.
    hash_lease_seconds: float = 30.0
    # A sensitive change (replacing or removing 2FA, the PIN, new recovery
    # codes) needs the password proven this recently, or given again (reauth).
    reauth_seconds: float = 300.0


def _no_link(reset_id: str) -> str:
    return reset_id


@dataclass(frozen=True)
class LinkPolicy:
    """Mailed links: password (re)set links (``link``) and links confirming a
    change of email (``email_link``). Core knows no URL: both are given by the
    composition root, which knows where the edge serves the pages."""

    link: Callable[[str], str] = _no_link
    reset_seconds: float = 3600.0
    set_password_seconds: float = 7 * 24 * 3600.0
    resend_after: float = 60.0
    email_link: Callable[[str], str] = _no_link
    email_change_seconds: float = 24 * 3600.0
    # The link that cancels a lost-device recovery (core/mfa_recovery.py), and
    # how long a recovery waits before the next password login completes it.
    recovery_link: Callable[[str], str] = _no_link
    recovery_wait_seconds: float = 72 * 3600.0


@dataclass
class Core:
    store: Store
    clock: Clock
    keys: KeyRing
    passwords: PasswordHasher
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    links: LinkPolicy = field(default_factory=LinkPolicy)
    throttle_policy: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    # Audit rows older than this are purged (core/maintenance.py).
    audit_retention_seconds: float = 365 * 86400.0

    def __post_init__(self) -> None:
        self.box = SecretBox(self.keys)
        self.tokens = TokenHasher(self.keys)
        self.throttle = Throttle(self.throttle_policy, self.tokens)
        self.totp = TotpFactor(self.box)
        self.pin = PinFactor(self.passwords)
        self.recovery = RecoveryCodes(self.tokens)
        # In order of precedence: a recovery code is tried before a TOTP code.
        self.factors = FactorRegistry([self.recovery, self.totp, self.pin])


class Channel(StrEnum):
    """The edge a request came through; audit rows and policies may tell them apart."""

    API = "api"
    WEB = "web"
    CLI = "cli"


@dataclass(frozen=True)
class Context:
    """One request as core sees it: who asks, from which client address, at
    what time, through which edge. Built once by the edge (``api/``, later
    ``web/``) and passed to every use case, so core reads no header, path or
    environment variable, and every audit row of one request agrees on
    ``now`` and the address."""

    caller: Caller | None
    addr: str | None
    now: float
    channel: Channel = Channel.API

    @property
    def signed_in(self) -> Caller:
        """The caller's session; only use cases behind a session ask for it."""
        if self.caller is None:  # an edge bug, not a client's: the route forgot its dependency
            raise RuntimeError("this use case needs an authenticated caller")
        return self.caller

    def actor(self) -> audit.Actor:
        """Who the audit rows of this request name as acting, and from where."""
        if self.caller is None:
            return audit.Actor(None, None, self.addr)
        return audit.Actor(self.caller.user.id, self.caller.account.id, self.addr)

    def with_caller(self, caller: Caller) -> Context:
        return Context(caller, self.addr, self.now, self.channel)
