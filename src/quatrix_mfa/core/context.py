"""Everything core needs, built once by the application and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field

from quatrix_mfa.core.clock import Clock
from quatrix_mfa.core.crypto import KeyRing, PasswordHasher, SecretBox, TokenHasher
from quatrix_mfa.core.factors.pin import PinFactor
from quatrix_mfa.core.factors.recovery import RecoveryCodes
from quatrix_mfa.core.factors.totp import TotpFactor
from quatrix_mfa.core.ports import Store
from quatrix_mfa.core.throttling import Throttle, ThrottlePolicy


@dataclass(frozen=True)
class SessionPolicy:
    idle_seconds: float = 900.0
    max_seconds: float = 12 * 3600.0
    pending_seconds: float = 300.0
    # Refresh last-seen at most this often, so reads do not write every time.
    touch_interval: float = 60.0
    max_code_failures: int = 5


@dataclass(frozen=True)
class LinkPolicy:
    public_url: str = "http://127.0.0.1:8080"
    reset_seconds: float = 3600.0
    set_password_seconds: float = 7 * 24 * 3600.0
    resend_after: float = 60.0

    def link(self, reset_id: str) -> str:
        return f"{self.public_url.rstrip('/')}/reset-password/{reset_id}"


@dataclass
class Core:
    store: Store
    clock: Clock
    keys: KeyRing
    passwords: PasswordHasher
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    links: LinkPolicy = field(default_factory=LinkPolicy)
    throttle_policy: ThrottlePolicy = field(default_factory=ThrottlePolicy)

    def __post_init__(self) -> None:
        self.box = SecretBox(self.keys)
        self.tokens = TokenHasher(self.keys)
        self.throttle = Throttle(self.throttle_policy, self.tokens)
        self.totp = TotpFactor(self.box)
        self.pin = PinFactor(self.passwords)
        self.recovery = RecoveryCodes(self.tokens)
