"""The one scenario builder: who exists and which session each holds.

A :class:`Scenario` builds people (the bootstrapped admin, users, users with
TOTP or a PIN, an administrator of another account) and sessions (full, or
pending at a given step) through a :class:`Driver`: the HTTP API
(:class:`tests.support.http.HttpDriver`), core's use cases
(:class:`tests.support.core_driver.CoreDriver`), or later the web pages. The
vocabulary is the same whatever the edge, so a scenario written for one
edge runs on the others.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

from quatrix_mfa.core.clock import FakeClock
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.factors import totp
from quatrix_mfa.core.model import Account, Step, User
from tests.support import codes
from tests.support.outbox import latest_reset_id

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"
# A good password for the users a test creates, and a surely wrong one.
PASSWORD = "velvet otter marmalade 42"
WRONG_PASSWORD = "not the password at all"
PIN = "4821"
# The administrator of a second account (tenancy tests).
FOREIGN_EMAIL = "outsider@elsewhere.example"
FOREIGN_PASSWORD = "outsider password 9"


@dataclass(frozen=True)
class Login:
    """A login step's answer: the session token and, when pending, its step."""

    token: str
    step: Step | None = None


class Driver(Protocol):
    """The few operations a scenario is made of, through one edge.

    Each succeeds or fails the test: a driver asserts the answer it expects
    (a refused login is not a scenario, it is what a test checks itself).
    """

    @property
    def core(self) -> Core: ...

    @property
    def clock(self) -> FakeClock: ...

    def login(self, email: str, password: str) -> Login:
        """The password step; a refusal fails the test."""
        ...

    def second_factor(self, token: str, auth_type: str, code: str) -> Login:
        """One factor on a pending session; a refusal fails the test."""
        ...

    def generate_totp(self, token: str) -> str:
        """A pending TOTP secret for the token's user, in base32."""
        ...

    def set_mfa(self, token: str, auth_type: str, code: str) -> tuple[str, list[str] | None]:
        """Turn on a factor of one's own: (the new session, recovery codes if 2FA)."""
        ...

    def create_user(self, admin_token: str, email: str, *, super_admin: bool = False) -> str:
        """Create a user as the admin (the password-set link is mailed); their id."""
        ...

    def redeem_link(self, reset_id: str, password: str) -> None:
        """Set a password through a mailed link."""
        ...


@dataclass
class Person:
    """Someone the scenario made, and the full session they hold."""

    id: str
    email: str
    password: str
    token: str


@dataclass
class TotpUser(Person):
    """A user with TOTP enrolled: its base32 secret and unused recovery codes."""

    secret: str = ""
    recovery_codes: list[str] = field(default_factory=list)


@dataclass
class Scenario:
    """Builds people and sessions through ``driver``; see the module docstring."""

    driver: Driver

    @property
    def clock(self) -> FakeClock:
        return self.driver.clock

    # Sessions ------------------------------------------------------------------

    def full_session(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> str:
        """A password login that must open a full session (200)."""
        login = self.driver.login(email, password)
        assert login.step is None, f"{email}: pending at step {login.step}"
        return login.token

    def pending(self, email: str, password: str, step: Step = Step.TOTP) -> str:
        """A password login that must stop at ``step`` (207): the pending token."""
        login = self.driver.login(email, password)
        assert login.step is step, f"{email}: step {login.step}, not {step}"
        return login.token

    def code(self, secret_b32: str, offset_steps: int = 0) -> str:
        return codes.totp_code(self.clock, secret_b32, offset_steps)

    def wrong_code(self, secret_b32: str) -> str:
        return codes.wrong_code(self.driver, secret_b32)

    # People --------------------------------------------------------------------

    def admin(self) -> Person:
        """The bootstrapped administrator, with a fresh full session."""
        token = self.full_session()
        with self.driver.core.store.transaction(write=False) as tx:
            user = tx.users.by_email(ADMIN_EMAIL)
        assert user is not None, "the admin is bootstrapped by the fixture"
        return Person(user.id, ADMIN_EMAIL, ADMIN_PASSWORD, token)

    def user(
        self, admin_token: str, email: str, password: str = PASSWORD, *, super_admin: bool = False
    ) -> Person:
        """A user created by the admin, who set a password through the mailed link."""
        user_id = self.create_user(admin_token, email, password, super_admin=super_admin)
        return Person(user_id, email, password, self.full_session(email, password))

    def create_user(
        self, admin_token: str, email: str, password: str = PASSWORD, *, super_admin: bool = False
    ) -> str:
        """As :meth:`user`, without logging them in: their id."""
        user_id, reset_id = self.invite(admin_token, email, super_admin=super_admin)
        self.driver.redeem_link(reset_id, password)
        return user_id

    def invite(self, admin_token: str, email: str, *, super_admin: bool = False) -> tuple[str, str]:
        """A user the admin created who has not set a password yet:
        (their id, the reset id of the set-password link mailed to them)."""
        user_id = self.driver.create_user(admin_token, email, super_admin=super_admin)
        return user_id, latest_reset_id(self.driver.core, email)

    def enroll_totp(self, token: str) -> tuple[str, str, list[str]]:
        """Enroll TOTP on ``token``'s user: (new token, secret, recovery codes).

        The clock then moves one period on: the enrollment code's step is spent.
        """
        secret = self.driver.generate_totp(token)
        new_token, recovery = self.driver.set_mfa(token, "2FA", self.code(secret))
        assert recovery is not None
        self.clock.advance(totp.PERIOD)
        return new_token, secret, recovery

    def user_with_totp(
        self, admin_token: str, email: str, password: str = PASSWORD, *, super_admin: bool = False
    ) -> TotpUser:
        """A user with TOTP enrolled, holding the full session enrollment gave."""
        person = self.user(admin_token, email, password, super_admin=super_admin)
        token, secret, recovery = self.enroll_totp(person.token)
        return TotpUser(person.id, email, password, token, secret, recovery)

    def set_pin(self, token: str, pin: str = PIN) -> str:
        """Set a PIN of one's own; the new session's token."""
        new_token, _ = self.driver.set_mfa(token, "PIN", pin)
        return new_token

    def user_with_pin(
        self, admin_token: str, email: str, password: str = PASSWORD, pin: str = PIN
    ) -> Person:
        """A user with a PIN of their own, holding the full session setting it gave."""
        person = self.user(admin_token, email, password)
        person.token = self.set_pin(person.token, pin)
        return person

    def foreign_admin(self) -> User:
        """An admin of a second account, written straight through the store."""
        return foreign_admin(self.driver.core, self.clock)


def foreign_admin(core: Core, clock: FakeClock, email: str = FOREIGN_EMAIL) -> User:
    """An admin of a second account (``email``), made directly through core."""
    now = clock.now()
    account = Account(id=str(uuid.uuid4()), name="Elsewhere", created=now + 1, modified=now)
    user = User(
        id=str(uuid.uuid4()),
        account_id=account.id,
        email=email,
        name="Outsider",
        created=now,
        modified=now,
        super_admin=True,
        password_hash=core.passwords.hash(FOREIGN_PASSWORD),
    )
    with core.store.transaction() as tx:
        tx.accounts.add(account)
        tx.users.add(user)
    return user
