"""Writes that follow slow work (an argon2 hash) and a session's lifetime
(issue 17, defects 2 and 8).

A request that passed its session check and then spends time hashing must
not commit over a change that landed meanwhile: it re-checks, in the
transaction that writes, that the session is still open and the user's
credentials are the ones it checked (core/credentials.py ``still_current``).
Each test holds one request inside its hash with a gate, commits the change
in between, then lets the request go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from quatrix_mfa.core.context import Core
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, alive, error, latest_link

BOB = "bob@example.com"
BOB_PASSWORD = "bob's long passphrase"
NEW_PASSWORD = "a brand new passphrase"


class Gate:
    """Holds the next call of one slow method of the password hasher (``hash``
    or ``verify``) until :meth:`release`; every other call runs as usual."""

    def __init__(self, core: Core, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered, self._open = threading.Event(), threading.Event()
        self._armed = True
        original: Callable[..., Any] = getattr(core.passwords, method)

        def gated(*args: Any) -> Any:
            if self._armed:
                self._armed = False
                self.entered.set()
                assert self._open.wait(timeout=30), "the gate was never released"
            return original(*args)

        monkeypatch.setattr(core.passwords, method, gated)

    def release(self) -> None:
        self._open.set()


@pytest.fixture
def world(api: Api) -> Iterator[tuple[str, str, str]]:
    """(admin token, Bob's user id, Bob's full session)."""
    admin = api.full_session()
    bob_id = api.create_user(admin, BOB, BOB_PASSWORD)
    yield admin, bob_id, api.full_session(BOB, BOB_PASSWORD)


def _mailed_reset_id(api: Api) -> str:
    """Bob asks for a password link by mail; its id."""
    assert api.post("/reset-password/request", {"email": [BOB]}).status_code == 200
    api.clock.advance(api.core.links.resend_after)
    return latest_link(api.core, BOB).rsplit("/", 1)[1]


def _held(api: Api, gate: Gate, request: Callable[[], Any], meanwhile: Callable[[], None]) -> Any:
    """Run ``request`` until it is inside the gate, run ``meanwhile`` to the
    end, open the gate, and return ``request``'s answer."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(request)
        try:
            assert gate.entered.wait(timeout=30), "the request never reached its slow hash"
            meanwhile()
        finally:
            gate.release()
        return answer.result(timeout=30)


def test_a_pin_set_in_flight_does_not_outlive_an_admins_forced_2fa(
    api: Api, world: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, bob_id, bob = world
    gate = Gate(api.core, "hash", monkeypatch)

    def force_2fa() -> None:
        body = {"ids": [bob_id], "auth_type": "2FA", "code": ""}
        forced = api.post("/user/set-mfa", body, admin)
        assert forced.status_code == 200, forced.text

    setting = _held(
        api,
        gate,
        lambda: api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "48213"}, bob),
        force_2fa,
    )
    error(setting, 401, 1)  # before the fix: 200 and a fresh full session
    assert not alive(api, bob)
    login = api.login(BOB, BOB_PASSWORD)
    assert (login.status_code, login.headers.get("Mfa-Code")) == (207, "3")  # no PIN was set


def test_a_pin_set_in_flight_does_not_outlive_a_password_reset_by_mail(
    api: Api, world: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, bob = world
    reset_id = _mailed_reset_id(api)
    gate = Gate(api.core, "hash", monkeypatch)

    def reset() -> None:
        done = api.post(f"/reset-password/reset/{reset_id}", {"password": NEW_PASSWORD})
        assert done.status_code == 200, done.text

    setting = _held(
        api,
        gate,
        lambda: api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "48213"}, bob),
        reset,
    )
    error(setting, 401, 1)
    assert not alive(api, bob)
    assert api.login(BOB, NEW_PASSWORD).status_code == 200  # no PIN step: none was set


def test_a_login_with_the_old_password_racing_a_reset_gets_no_session(
    api: Api, world: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reset_id = _mailed_reset_id(api)
    gate = Gate(api.core, "verify", monkeypatch)

    def reset() -> None:
        done = api.post(f"/reset-password/reset/{reset_id}", {"password": NEW_PASSWORD})
        assert done.status_code == 200, done.text

    login = _held(api, gate, lambda: api.login(BOB, BOB_PASSWORD), reset)
    error(login, 401, 1)  # the old password was right when checked, not when written
    error(api.login(BOB, BOB_PASSWORD), 401, 1)
    assert api.login(BOB, NEW_PASSWORD).status_code == 200


def test_one_token_sent_to_set_mfa_pin_many_times_at_once_yields_one_session(
    api: Api, world: tuple[str, str, str]
) -> None:
    _, _, bob = world
    barrier = threading.Barrier(12)

    def set_pin(n: int) -> Any:
        barrier.wait(timeout=30)
        return api.post("/profile/set-mfa", {"auth_type": "PIN", "code": f"{4000 + n}"}, bob)

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(set_pin, range(12)))
    winners = [a for a in answers if a.status_code == 200]
    assert len(winners) == 1, [a.status_code for a in answers]  # before the fix: most of them
    for loser in answers:
        # Refused while another call of the session hashes (429 code 13), or
        # after the winner closed the session (401 code 1).
        if loser.status_code != 200:
            assert (loser.status_code, loser.json()["code"]) in ((429, 13), (401, 1)), loser.text
    tokens = [winner.json()["session_ids"] for winner in winners]
    assert [alive(api, token) for token in tokens] == [True]
    assert not alive(api, bob)


@pytest.fixture
def short_api(make_api: Any) -> Api:
    """Sessions that end 300 s after login in any case."""
    from quatrix_mfa.core.bootstrap import bootstrap

    built: Api = make_api(session_max_seconds=300.0)
    assert bootstrap(built.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD).created
    return built


def test_set_mfa_does_not_renew_the_absolute_session_limit(short_api: Api) -> None:
    api = short_api
    token = api.full_session()
    api.clock.advance(200)
    rotated = api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "48213"}, token)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["session_ids"]
    api.clock.advance(99)
    assert alive(api, new)
    api.clock.advance(2)  # 301 s after the login: before the fix alive until 500 s
    error(api.get("/profile", new), 401, 1)


def test_the_second_factor_step_does_not_renew_the_absolute_session_limit(
    short_api: Api,
) -> None:
    api = short_api
    token = api.full_session()
    assert api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "48213"}, token).status_code
    pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert (pending.status_code, pending.headers["Mfa-Code"]) == (207, "2")
    api.clock.advance(250)  # the pending session's 5 minutes are not over
    done = api.post(
        "/session/login", {"auth_type": "PIN", "code": "48213"}, pending.json()["session_id"]
    )
    assert done.status_code == 200, done.text
    api.clock.advance(51)  # 301 s after the password was checked
    error(api.get("/profile", done.json()["session_id"]), 401, 1)
