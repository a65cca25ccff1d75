"""Our extension of the API: GET /profile/recovery-codes (how many are left)
and POST /profile/recovery-codes (a new set for a current TOTP code; the old
set stops working at once)."""

from __future__ import annotations

from typing import Any

import pytest

from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.factors import totp
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, alive, error
from tests.servers import assert_one_winner, race
from tests.support import outbox
from tests.support.codes import wrong_code

PATH = "/profile/recovery-codes"
EMAIL = "member@example.com"
PASSWORD = "member password 123"


def enrolled(api: Api) -> tuple[str, str, list[str]]:
    """The admin with 2FA: (full session, secret, first recovery codes), one
    TOTP step after enrollment (its code is spent)."""
    token, secret, codes = api.enroll_totp(api.full_session())
    api.clock.advance(totp.PERIOD)
    return token, secret, codes


def login_with(api: Api, code: str) -> Any:
    pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["session_id"]
    return api.post("/session/login", {"auth_type": "2FA", "code": code}, pending)


def audit_events(api: Api, event: str) -> list[str]:
    with api.core.store.transaction(write=False) as tx:
        return [row.outcome for row in tx.audit.list(limit=10_000) if row.event == event]


def test_a_current_code_gives_a_new_set_and_the_old_set_stops_working(api: Api) -> None:
    token, secret, old = enrolled(api)
    assert api.get(PATH, token).json() == {"remaining": 10}

    response = api.post(PATH, {"code": api.code(secret)}, token)

    assert response.status_code == 200, response.text
    new = response.json()["recovery_codes"]
    assert len(new) == 10 and len(set(new)) == 10 and not set(new) & set(old)
    assert alive(api, token)  # no session closes
    assert error(login_with(api, old[0]), 401, 11)
    assert login_with(api, new[0]).status_code == 200
    assert api.get(PATH, token).json() == {"remaining": 9}
    assert audit_events(api, "factor.recovery_codes_replaced") == ["success"]
    subjects = [m.subject for m in outbox.mails(api.core, ADMIN_EMAIL)]
    # The replacement, then the sign-in with a new code (issue 12: a used code is mailed).
    assert subjects[-2:] == [
        "Your Quatrix set of recovery codes was replaced",
        "A Quatrix recovery code was used",
    ]


def test_a_wrong_code_is_401_code_11_and_changes_nothing(api: Api) -> None:
    token, secret, old = enrolled(api)
    body = error(api.post(PATH, {"code": wrong_code(api, secret)}, token), 401, 11)
    assert "recovery" not in str(body.get("details", ""))
    assert login_with(api, old[0]).status_code == 200  # the old set still works
    assert audit_events(api, "factor.recovery_codes_replaced") == ["failure"]


def test_a_recovery_code_is_not_a_current_code(api: Api) -> None:
    token, _, old = enrolled(api)
    error(api.post(PATH, {"code": old[0]}, token), 401, 11)
    assert api.get(PATH, token).json() == {"remaining": 10}


def test_a_code_is_accepted_once_replayed_it_is_refused(api: Api) -> None:
    token, secret, _ = enrolled(api)
    code = api.code(secret)
    assert api.post(PATH, {"code": code}, token).status_code == 200
    error(api.post(PATH, {"code": code}, token), 401, 11)
    # A code spent on a login is spent here too.
    api.clock.advance(totp.PERIOD)
    login_code = api.code(secret)
    full = login_with(api, login_code)
    assert full.status_code == 200
    error(api.post(PATH, {"code": login_code}, token), 401, 11)


def test_wrong_codes_count_like_other_code_checks(make_api: Any) -> None:
    api = make_api(user_failure_threshold=2)
    bootstrap(api.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD)
    token, secret, _ = enrolled(api)
    for _ in range(2):
        error(api.post(PATH, {"code": wrong_code(api, secret)}, token), 401, 11)
    blocked = api.post(PATH, {"code": api.code(secret)}, token)
    error(blocked, 429, 13)
    assert int(blocked.headers["Retry-After"]) > 0


def test_without_2fa_it_is_400_code_15(api: Api, admin_token: str) -> None:
    error(api.post(PATH, {"code": "123456"}, admin_token), 400, 15)
    assert api.get(PATH, admin_token).json() == {"remaining": 0}


@pytest.mark.parametrize(
    "body", [{}, {"code": 123456}, {"code": None}, {"code": "1" * 65}, {"code": "12\x003456"}, []]
)
def test_a_bad_body_is_400_code_2(api: Api, body: Any) -> None:
    token, _, _ = enrolled(api)
    error(api.post(PATH, body, token), 400, 2)
    assert api.get(PATH, token).json() == {"remaining": 10}


def test_it_needs_a_full_session(api: Api) -> None:
    _, secret, _ = enrolled(api)
    error(api.post(PATH, {"code": api.code(secret)}), 401, 1)
    error(api.get(PATH), 401, 1)
    pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["session_id"]
    error(api.post(PATH, {"code": api.code(secret)}, pending), 401, 10)
    error(api.get(PATH, pending), 401, 10)


def test_one_code_sent_many_times_at_once_replaces_the_set_once(make_api: Any) -> None:
    api = make_api(user_failure_threshold=1000, address_failure_threshold=100000)
    bootstrap(api.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD)
    token, secret, _ = enrolled(api)
    body = {"code": api.code(secret)}
    responses = race([lambda: api.post(PATH, body, token) for _ in range(8)])
    winner = assert_one_winner(responses, {(401, 11)})
    codes = winner.json()["recovery_codes"]
    assert login_with(api, codes[0]).status_code == 200  # the winner's set is the one stored
