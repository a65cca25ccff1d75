"""The scenario driver through core's use cases: no HTTP, no FastAPI.

It builds each request's :class:`~quatrix_mfa.core.context.Context` the way
an edge does (the caller from :func:`~quatrix_mfa.core.sessions.authenticate`,
the time from the fake clock, one client address), so a test can drive
``auth``, ``profile``, ``admin``, ``reset`` and ``site`` directly, and the
scenarios of :mod:`tests.support.scenario` run on core as they run on HTTP.
Errors are core's exceptions (``quatrix_mfa.core.errors``), not status codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from quatrix_mfa.core import admin, auth, profile, reset
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.clock import FakeClock
from quatrix_mfa.core.context import Channel, Context, Core
from quatrix_mfa.core.errors import NotAuthenticated
from quatrix_mfa.core.model import SessionRecord
from quatrix_mfa.core.sessions import authenticate, token_hash
from tests.support.scenario import ADMIN_EMAIL, ADMIN_PASSWORD, Login

ADDR = "198.51.100.7"  # the client address every request of a test comes from


@dataclass
class CoreDriver:
    """:class:`tests.support.scenario.Driver` over core, on ``clock``."""

    core: Core
    clock: FakeClock
    addr: str | None = ADDR
    channel: Channel = Channel.API

    def bootstrap_admin(self) -> None:
        """The first account and its admin, as ``quatrix-mfa init`` makes them."""
        assert bootstrap(self.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD).created

    def ctx(self, token: str | None = None) -> Context:
        """One request now: anonymous, or by the live session ``token``
        (a dead or pending one as :func:`authenticate` finds it)."""
        caller = authenticate(self.core, token, self.addr) if token is not None else None
        return Context(caller, self.addr, self.clock.now(), self.channel)

    def session(self, token: str) -> SessionRecord | None:
        """The stored session of ``token`` (its authentication record), if any."""
        with self.core.store.transaction(write=False) as tx:
            found = tx.sessions.get_with_owner(token_hash(self.core, token))
        return None if found is None else found[0]

    def alive(self, token: str) -> bool:
        """True while ``token`` is a live session (full or pending)."""
        try:
            self.ctx(token)
        except NotAuthenticated:
            return False
        return True

    # Driver ----------------------------------------------------------------------

    def login(self, email: str, password: str) -> Login:
        result = auth.login_with_password(self.core, self.ctx(), email, password)
        return Login(result.token, result.step)

    def second_factor(self, token: str, auth_type: str, code: str) -> Login:
        result = auth.second_factor(self.core, self.ctx(token), auth_type, code)
        return Login(result.token, result.step)

    def generate_totp(self, token: str) -> str:
        return profile.start_totp_enrollment(self.core, self.ctx(token)).secret

    def set_mfa(self, token: str, auth_type: str, code: str) -> tuple[str, list[str] | None]:
        result = profile.set_factor(self.core, self.ctx(token), auth_type, code)
        return result.token, result.recovery_codes

    def create_user(self, admin_token: str, email: str, *, super_admin: bool = False) -> str:
        name = email.split("@")[0]
        ctx = self.ctx(admin_token)
        return admin.create_user(self.core, ctx, name, email, super_admin, "A", None).id

    def redeem_link(self, reset_id: str, password: str) -> None:
        reset.reset_password(self.core, self.ctx(), reset_id, password)
