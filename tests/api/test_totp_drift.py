"""Clock-drift diagnosis (issue 13, item 2) through the HTTP API: a refused
TOTP code that was right up to ten minutes away, or already used, says so in
the ErrorModel's ``details`` on a pending login; a code of a future step is
burned by saying so; every such refusal is a counted failure."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from quatrix_mfa.core.factors import drift, totp
from tests.conftest import Api, error
from tests.support.http import audit_rows, totp_user
from tests.support.scenario import PASSWORD
from tests.support.totp_params import code_for, enroll

EMAIL = "tina@example.com"


def pending(api: Api) -> str:
    response = api.login(EMAIL, PASSWORD)
    assert response.status_code == 207, response.text
    return str(response.json()["session_id"])


def send(api: Api, token: str, code: str) -> Any:
    return api.post("/session/login", {"auth_type": "2FA", "code": code}, token)


def unique_code(api: Api, secret: str, steps: int) -> str:
    """The code ``steps`` periods away, provided no other step within reach
    shares it (one in a million: the test would then say nothing)."""
    code = api.code(secret, steps)
    reach = drift.REACH_SECONDS // totp.PERIOD + 2
    others = [
        api.code(secret, k) for k in range(steps - 2 * reach, steps + 2 * reach) if k != steps
    ]
    assert code not in others
    return code


def credential_row(api: Api, user_id: str) -> Any:
    with api.core.store.transaction(write=False) as tx:
        return tx.credentials.of_user(user_id, "totp")[-1]


# Drift: every step from ten minutes behind to ten minutes ahead ----------------

OUTSIDE = [-20, -15, -10, -6, -3, -2, 2, 3, 6, 10, 15, 20]


@pytest.mark.parametrize("steps", OUTSIDE)
def test_a_code_from_up_to_ten_minutes_away_is_refused_with_the_clock_offset(
    api: Api, admin_token: str, steps: int
) -> None:
    _, secret, _ = totp_user(api, admin_token)
    body = error(send(api, pending(api), unique_code(api, secret, steps)), 401, 11)
    assert body["details"] == {"reason": "clock", "clock_offset_seconds": steps * 30}


@pytest.mark.parametrize("steps", [-21, 21, 40])
def test_a_code_further_than_ten_minutes_away_is_a_plain_wrong_code(
    api: Api, admin_token: str, steps: int
) -> None:
    _, secret, _ = totp_user(api, admin_token)
    body = error(send(api, pending(api), unique_code(api, secret, steps)), 401, 11)
    assert "details" not in body


@pytest.mark.parametrize("steps", [0, 1])
def test_a_code_inside_the_window_is_accepted_and_its_offset_kept(
    api: Api, admin_token: str, steps: int
) -> None:
    user_id, secret, _ = totp_user(api, admin_token)
    response = send(api, pending(api), api.code(secret, steps))
    assert response.status_code == 200, response.text
    assert credential_row(api, user_id).last_offset == steps
    row = audit_rows(api)[-1]
    assert (row.event, row.outcome) == ("login.second_factor", "success")
    assert row.detail["offset"] == steps


def test_the_enrollment_code_one_step_back_is_told_used(api: Api, admin_token: str) -> None:
    # Enrolling spent the previous step (the scenario moved the clock one on).
    _, secret, _ = totp_user(api, admin_token)
    body = error(send(api, pending(api), api.code(secret, -1)), 401, 11)
    assert body["details"] == {"reason": "used"}


def test_a_code_used_a_moment_ago_is_told_used_and_audited(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token)
    code = api.code(secret)
    assert send(api, pending(api), code).status_code == 200
    api.clock.advance(5)
    body = error(send(api, pending(api), code), 401, 11)
    assert body["details"] == {"reason": "used"}
    row = audit_rows(api)[-1]
    assert (row.event, row.outcome) == ("login.second_factor", "failure")
    assert (row.detail["reason"], row.detail["offset"]) == ("used", 0)


def test_a_used_code_from_minutes_ago_is_told_used_not_clock(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token)
    code = api.code(secret)
    assert send(api, pending(api), code).status_code == 200
    api.clock.advance(4 * 30)
    body = error(send(api, pending(api), code), 401, 11)
    assert body["details"] == {"reason": "used"}


def test_a_wrong_code_has_no_details(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token)
    near = {api.code(secret, k) for k in range(-45, 46)}
    wrong = next(c for c in ("918273", "364519", "720946", "582017") if c not in near)
    body = error(send(api, pending(api), wrong), 401, 11)
    assert "details" not in body


# A future step named is burned --------------------------------------------------


def test_a_future_code_named_by_a_refusal_is_never_accepted(api: Api, admin_token: str) -> None:
    user_id, secret, _ = totp_user(api, admin_token)
    ahead = unique_code(api, secret, 4)
    body = error(send(api, pending(api), ahead), 401, 11)
    assert body["details"] == {"reason": "clock", "clock_offset_seconds": 120}
    step = totp.time_step(api.clock.now()) + 4
    assert credential_row(api, user_id).burned_steps == [step]
    api.clock.advance(4 * 30)  # its step has come: it would be the current code
    assert api.code(secret) == ahead
    token = pending(api)
    body = error(send(api, token, ahead), 401, 11)
    assert body["details"] == {"reason": "used"}
    # The person whose clock was ahead, clock fixed, waits for the next code.
    api.clock.advance(30)
    assert send(api, token, api.code(secret)).status_code == 200


def test_a_step_burned_on_one_node_is_refused_on_another(
    api: Api, admin_token: str, make_api: Any
) -> None:
    _, secret, _ = totp_user(api, admin_token)
    ahead = unique_code(api, secret, 3)
    error(send(api, pending(api), ahead), 401, 11)
    other: Api = make_api()
    api.clock.advance(3 * 30)
    body = error(send(other, pending(other), ahead), 401, 11)
    assert body["details"] == {"reason": "used"}


def test_refusals_racing_on_every_node_burn_every_step_they_name(
    api: Api, admin_token: str
) -> None:
    # Each refusal rewrites the list under the user's row lock: none is lost.
    user_id, secret, _ = totp_user(api, admin_token)
    ahead = list(range(2, 10))
    codes = [unique_code(api, secret, k) for k in ahead]
    tokens = [pending(api) for _ in ahead]
    with ThreadPoolExecutor(max_workers=len(ahead)) as pool:
        answers = list(pool.map(lambda pair: send(api, *pair), zip(tokens, codes, strict=True)))
    assert all(error(a, 401, 11)["details"]["reason"] == "clock" for a in answers)
    current = totp.time_step(api.clock.now())
    assert credential_row(api, user_id).burned_steps == [current + k for k in ahead]


def test_a_clock_behind_burns_nothing(api: Api, admin_token: str) -> None:
    user_id, secret, _ = totp_user(api, admin_token)
    error(send(api, pending(api), unique_code(api, secret, -4)), 401, 11)
    assert not credential_row(api, user_id).burned_steps


def test_burned_steps_behind_the_window_are_pruned(api: Api, admin_token: str) -> None:
    user_id, secret, _ = totp_user(api, admin_token)
    error(send(api, pending(api), unique_code(api, secret, 3)), 401, 11)
    first = totp.time_step(api.clock.now()) + 3
    api.clock.advance(10 * 30)
    error(send(api, pending(api), unique_code(api, secret, 5)), 401, 11)
    assert credential_row(api, user_id).burned_steps == [totp.time_step(api.clock.now()) + 5]
    assert first < totp.time_step(api.clock.now()) - 1


def test_when_the_burn_list_is_full_a_future_code_gets_no_details(
    api: Api, admin_token: str
) -> None:
    user_id, secret, _ = totp_user(api, admin_token)
    current = totp.time_step(api.clock.now())
    full = list(range(current + 100, current + 100 + drift.BURN_LIMIT))
    with api.core.store.transaction() as tx:
        tx.credentials.set_burned_steps(user_id, credential_row(api, user_id).id, full)
    body = error(send(api, pending(api), unique_code(api, secret, 3)), 401, 11)
    assert "details" not in body
    assert credential_row(api, user_id).burned_steps == full
    # Past codes reveal nothing that will be valid: still told.
    body = error(send(api, pending(api), unique_code(api, secret, -3)), 401, 11)
    assert body["details"]["reason"] == "clock"


# Failures, throttling, and where details are not given ----------------------------


def test_drifted_codes_are_counted_failures_that_close_the_pending_session(
    api: Api, admin_token: str
) -> None:
    _, secret, _ = totp_user(api, admin_token)
    token = pending(api)
    before = len(audit_rows(api))
    for k in (-3, -4, -5, -6):
        error(send(api, token, unique_code(api, secret, k)), 401, 11)
    rows = [r for r in audit_rows(api)[before:] if r.event == "login.second_factor"]
    assert [(r.outcome, r.detail["reason"], r.detail["offset"]) for r in rows] == [
        ("failure", "clock", k) for k in (-3, -4, -5, -6)
    ]
    error(send(api, token, unique_code(api, secret, -7)), 401, 11)
    # Five wrong codes close a pending session, drifted ones too.
    error(send(api, token, api.code(secret)), 401, 1)


def test_drifted_codes_count_towards_the_user_throttle(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token)
    threshold = api.core.throttle.policy.user_threshold
    sent = 0
    while sent < threshold:
        token = pending(api)
        for _ in range(min(4, threshold - sent)):
            error(send(api, token, unique_code(api, secret, -3 - sent % 10)), 401, 11)
            sent += 1
    # The user is now blocked: even the right code is refused for a while.
    assert api.login(EMAIL, PASSWORD).status_code == 429


def test_no_details_on_a_full_session(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token)
    token = pending(api)
    full = send(api, token, api.code(secret)).json()["session_id"]
    api.clock.advance(30)
    for code in (unique_code(api, secret, 5), unique_code(api, secret, -5), api.code(secret, -1)):
        body = error(api.post("/profile/recovery-codes", {"code": code}, full), 401, 11)
        assert "details" not in body


def test_period_60_reports_offsets_in_its_own_steps(api: Api, admin_token: str) -> None:
    response = api.post("/settings/set", {"totp_period": 60}, admin_token)
    assert response.status_code == 200, response.text
    person = api.scenario.user(admin_token, EMAIL)
    _, secret, params, _ = enroll(api, person.token)
    assert params.period == 60
    body = error(send(api, pending(api), code_for(api, secret, params, -3)), 401, 11)
    assert body["details"] == {"reason": "clock", "clock_offset_seconds": -180}
    body = error(send(api, pending(api), code_for(api, secret, params, 10)), 401, 11)
    assert body["details"] == {"reason": "clock", "clock_offset_seconds": 600}
    body = error(send(api, pending(api), code_for(api, secret, params, 11)), 401, 11)
    assert "details" not in body
