"""Trusted devices over HTTP, shared by the tests of issue 13: trust a
device, sign in with it, and read what the audit trail says about it."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, basic
from tests.support.scenario import TotpUser

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
HEADER = "X-Device-Token"


def finish(api: Api, user: TotpUser, remember: Any = True, **headers: str) -> Any:
    """A password login, then its TOTP step with ``remember_device``."""
    pending = api.login(user.email, user.password)
    assert pending.status_code == 207, pending.text
    body: dict[str, Any] = {"auth_type": "2FA", "code": api.code(user.secret)}
    if remember is not None:
        body["remember_device"] = remember
    answer = api.post("/session/login", body, pending.json()["session_id"], headers=headers)
    api.clock.advance(30)  # the code's step is spent
    return answer


def trust(api: Api, user: TotpUser) -> str:
    answer = finish(api, user, **{"User-Agent": FIREFOX})
    assert answer.status_code == 200, answer.text
    return str(answer.headers[HEADER])


def login_with(api: Api, user: TotpUser, device: str, password: str | None = None) -> Any:
    auth = basic(user.email, password or user.password)
    return api.get("/session/login", headers={"Authorization": auth, HEADER: device})


def trusted(api: Api, user: TotpUser, device: str) -> bool:
    """Whether ``device`` skips the second factor now: the login answers 200
    and a use of the device was audited (a user without second factors gets
    200 from the password alone)."""
    used = events(api, user.id).count(("device.trust_used", "success"))
    answer = login_with(api, user, device)
    assert answer.status_code in (200, 207), answer.text
    skipped = events(api, user.id).count(("device.trust_used", "success")) > used
    assert skipped == (answer.status_code == 200) or "Mfa-Code" not in answer.headers
    return skipped


def events(api: Api, target: str, prefix: str = "device.") -> list[tuple[str, str]]:
    with api.core.store.transaction(write=False) as tx:
        rows = tx.audit.list(target_id=target, limit=10_000)
    return [(r.event, r.outcome) for r in rows if r.event.startswith(prefix)]
