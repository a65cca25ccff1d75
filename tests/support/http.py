"""The scenario driver through the HTTP API, and assertions only HTTP has
(throttling's Retry-After, a client address in X-Forwarded-For)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quatrix_mfa.core.clock import FakeClock
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.crypto import Argon2Parameters
from quatrix_mfa.core.model import Step
from tests.support.encoding import basic
from tests.support.scenario import ADMIN_EMAIL, ADMIN_PASSWORD, Login

if TYPE_CHECKING:  # conftest builds its Api on this module
    from tests.conftest import Api


class HttpDriver:
    """:class:`tests.support.scenario.Driver` over the in-process HTTP API
    (every response checked against the spec by the client's hook)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    @property
    def core(self) -> Core:
        return self.api.core

    @property
    def clock(self) -> FakeClock:
        return self.api.clock

    def login(self, email: str, password: str) -> Login:
        return _login(self.api.login(email, password))

    def second_factor(self, token: str, auth_type: str, code: str) -> Login:
        body = {"auth_type": auth_type, "code": code}
        return _login(self.api.post("/session/login", body, token))

    def generate_totp(self, token: str) -> str:
        response = self.api.get("/profile/2fa/generate", token)
        assert response.status_code == 200, response.text
        return str(response.json()["secret"])

    def set_mfa(self, token: str, auth_type: str, code: str) -> tuple[str, list[str] | None]:
        response = self.api.post("/profile/set-mfa", {"auth_type": auth_type, "code": code}, token)
        assert response.status_code == 200, response.text
        body = response.json()
        return str(body["session_ids"]), body.get("recovery_codes")

    def create_user(self, admin_token: str, email: str, *, super_admin: bool = False) -> str:
        body = {"name": email.split("@")[0], "email": email}
        if super_admin:
            body["super_admin"] = "Y"
        response = self.api.post("/user/create", body, admin_token)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def redeem_link(self, reset_id: str, password: str) -> None:
        response = self.api.post(f"/reset-password/reset/{reset_id}", {"password": password})
        assert response.status_code == 200, response.text


def _login(response: Any) -> Login:
    assert response.status_code in (200, 207), response.text
    token = str(response.json()["session_id"])
    if response.status_code == 200:
        return Login(token)
    return Login(token, Step(response.headers["Mfa-Code"]))


def assert_throttled(response: Any, retry_after: int) -> None:
    """A 429 code 13 with ``Retry-After`` seconds, and no session handed out."""
    assert response.status_code == 429, response.text
    assert response.json()["code"] == 13, response.text
    assert response.headers["Retry-After"] == str(retry_after)
    assert "X-Auth-Token" not in response.headers


def login_from(
    web: Api, addr: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> Any:
    """A password login from client address ``addr`` (the app trusts X-Forwarded-For)."""
    headers = {"Authorization": basic(email, password), "X-Forwarded-For": addr}
    return web.get("/session/login", headers=headers)


def totp_user(
    api: Api, admin_token: str, email: str = "tina@example.com"
) -> tuple[str, str, list[str]]:
    """A user with TOTP enrolled (password ``PASSWORD``): (user id, base32
    secret, recovery codes); :meth:`Scenario.user_with_totp` as a tuple."""
    user = api.scenario.user_with_totp(admin_token, email)
    return user.id, user.secret, user.recovery_codes


# The allow-list tests' two client addresses (the app trusts X-Forwarded-For).
INSIDE = "10.0.0.5"
OUTSIDE = "192.0.2.7"

# argon2 slow enough that requests overlap inside the hash.
SLOW_ARGON2 = Argon2Parameters(time_cost=1, memory_kib=8192, parallelism=1)


def restrict(web: Api, token: str, whitelist: list[str], addr: str) -> Any:
    """Turn the account's IP allow-list on, from client address ``addr``."""
    body = {"auth_methods": ["IP"], "ip_whitelist": whitelist}
    return web.post("/settings/set", body, token, headers={"X-Forwarded-For": addr})


def audit_rows(api: Api) -> list[Any]:
    """Every audit row, oldest first."""
    with api.core.store.transaction(write=False) as tx:
        return list(tx.audit.list())


def visible(response: Any, email: str | None = None) -> tuple[int, str, dict[str, str]]:
    """What the attacker sees, minus the Date and X-Request-Id headers (each
    answer has its own, whatever it answers); ``email`` (echoed) masked."""
    per_answer = {"date", "x-request-id"}
    headers = {k: v for k, v in response.headers.items() if k.lower() not in per_answer}
    body = response.text if email is None else response.text.replace(email, "EMAIL")
    return response.status_code, body, headers


def answer_headers(response: Any) -> dict[str, str]:
    """The response's headers but its X-Request-Id, which every request has its own of."""
    return {k: v for k, v in response.headers.items() if k.lower() != "x-request-id"}
