"""Login through the HTTP API: the password step, the Mfa-Code steps, the
second factor (POST /session/login) and the audit rows logins leave."""

from __future__ import annotations

import base64
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, error, only_on
from tests.support.codes import wrong_code
from tests.support.http import answer_headers, totp_user
from tests.support.scenario import PASSWORD
from tests.support.storage import wait_for_a_blocked_writer

PIN = "4821"


def start(api: Api, email: str, password: str, mfa_code: str) -> str:
    """A password login that must answer 207 with ``mfa_code``: the pending id."""
    response = api.login(email, password)
    assert response.status_code == 207, response.text
    assert response.headers["Mfa-Code"] == mfa_code
    assert response.headers["X-Auth-Token"] == response.json()["session_id"]
    return str(response.json()["session_id"])


def second(api: Api, token: str, auth_type: str, code: str) -> Any:
    """POST /session/login with one factor (checked against the spec, 207 included)."""
    return api.post("/session/login", {"auth_type": auth_type, "code": code}, token)


def admin_set_mfa(api: Api, admin_token: str, user_id: str, auth_type: str, code: str = "") -> None:
    response = api.post(
        "/user/set-mfa", {"ids": [user_id], "auth_type": auth_type, "code": code}, admin_token
    )
    assert response.status_code == 200, response.text


# Password step -------------------------------------------------------------


def test_password_login_without_factor_opens_full_session(api: Api) -> None:
    response = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 200, response.text
    token = response.json()["session_id"]
    assert uuid.UUID(token).version == 4 and str(uuid.UUID(token)) == token
    assert response.headers["X-Auth-Token"] == token
    assert "Mfa-Code" not in response.headers
    assert api.get("/profile", token).status_code == 200


def test_each_login_gets_a_distinct_session_id(api: Api) -> None:
    assert api.full_session() != api.full_session()


def test_wrong_password_and_unknown_email_look_identical(api: Api) -> None:
    wrong = api.login(ADMIN_EMAIL, "not the password at all")
    unknown = api.login("nobody@example.com", "not the password at all")
    error(wrong, 401, 1)
    assert unknown.status_code == wrong.status_code
    assert unknown.json() == wrong.json()
    assert answer_headers(unknown) == answer_headers(wrong)
    assert "X-Auth-Token" not in wrong.headers


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b":password-without-email").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
        "Basic",
        "Bearer 0123456789abcdef",
        "Digest username=admin",
    ],
)
def test_malformed_basic_header_is_not_authenticated(api: Api, header: str) -> None:
    error(api.get("/session/login", headers={"Authorization": header}), 401, 1)


def test_login_without_credentials_is_not_authenticated(api: Api) -> None:
    error(api.get("/session/login"), 401, 1)


@pytest.mark.parametrize("email", ["ADMIN@EXAMPLE.COM", "Admin@Example.com", " admin@example.com"])
def test_email_is_case_insensitive(api: Api, email: str) -> None:
    response = api.login(email, ADMIN_PASSWORD)
    assert response.status_code == 200, response.text


def test_password_is_case_sensitive(api: Api) -> None:
    error(api.login(ADMIN_EMAIL, ADMIN_PASSWORD.upper()), 401, 1)


def test_disabled_user_gets_the_wrong_password_answer(api: Api, admin_token: str) -> None:
    user_id = api.create_user(admin_token, "dora@example.com", PASSWORD)
    session = api.full_session("dora@example.com", PASSWORD)
    edit = api.post("/user/edit", {"ids": [user_id], "status": "D"}, admin_token)
    assert edit.status_code == 200, edit.text
    disabled = api.login("dora@example.com", PASSWORD)
    wrong = api.login("dora@example.com", "not the password at all")
    error(disabled, 401, 1)
    assert disabled.json() == wrong.json()
    assert answer_headers(disabled) == answer_headers(wrong)
    error(api.get("/profile", session), 401, 1)


# Which factor comes next (Mfa-Code) -----------------------------------------


def test_enrolled_totp_asks_for_code_1(api: Api, admin_token: str) -> None:
    totp_user(api, admin_token)
    start(api, "tina@example.com", PASSWORD, "1")


def test_admin_set_pin_asks_for_code_2_and_pin_completes(api: Api, admin_token: str) -> None:
    user_id = api.create_user(admin_token, "pia@example.com", PASSWORD)
    admin_set_mfa(api, admin_token, user_id, "PIN", PIN)
    pending = start(api, "pia@example.com", PASSWORD, "2")
    error(second(api, pending, "PIN", "9999"), 401, 11)
    response = second(api, pending, "PIN", PIN)
    assert response.status_code == 200, response.text
    assert api.get("/profile", response.json()["session_id"]).status_code == 200


def test_admin_forced_2fa_without_secret_asks_for_enrollment(api: Api, admin_token: str) -> None:
    user_id = api.create_user(admin_token, "eve@example.com", PASSWORD)
    admin_set_mfa(api, admin_token, user_id, "2FA", "unused")
    start(api, "eve@example.com", PASSWORD, "3")


def test_account_forced_2fa_asks_users_without_secret_to_enroll(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, "eve@example.com", PASSWORD)
    response = api.post("/settings/set", {"auth_methods": ["2FA"]}, admin_token)
    assert response.status_code == 200, response.text
    start(api, "eve@example.com", PASSWORD, "3")
    start(api, ADMIN_EMAIL, ADMIN_PASSWORD, "3")


def test_totp_and_pin_ask_totp_first_then_pin(api: Api, admin_token: str) -> None:
    user_id, secret, _ = totp_user(api, admin_token)
    admin_set_mfa(api, admin_token, user_id, "PIN", PIN)
    first = start(api, "tina@example.com", PASSWORD, "1")
    error(second(api, first, "PIN", PIN), 400, 2)
    step = second(api, first, "2FA", api.code(secret))
    assert step.status_code == 207, step.text
    assert step.headers["Mfa-Code"] == "2"
    middle = step.json()["session_id"]
    assert middle != first and step.headers["X-Auth-Token"] == middle
    error(api.get("/session/login", first), 401, 1)
    error(api.get("/profile", middle), 401, 10)
    done = second(api, middle, "PIN", PIN)
    assert done.status_code == 200, done.text
    full = done.json()["session_id"]
    assert full not in (first, middle)
    error(api.get("/session/login", middle), 401, 1)
    assert api.get("/profile", full).status_code == 200


def test_enrollment_with_pin_asks_pin_first_then_enrollment(api: Api, admin_token: str) -> None:
    user_id = api.create_user(admin_token, "eve@example.com", PASSWORD)
    admin_set_mfa(api, admin_token, user_id, "PIN", PIN)
    admin_set_mfa(api, admin_token, user_id, "2FA", "unused")
    first = start(api, "eve@example.com", PASSWORD, "2")
    step = second(api, first, "PIN", PIN)
    assert step.status_code == 207, step.text
    assert step.headers["Mfa-Code"] == "3"
    enrolling = step.json()["session_id"]
    error(api.get("/session/login", first), 401, 1)
    generated = api.get("/profile/2fa/generate", enrolling)
    assert generated.status_code == 200, generated.text
    secret = generated.json()["secret"]
    done = api.post("/profile/set-mfa", {"auth_type": "2FA", "code": api.code(secret)}, enrolling)
    assert done.status_code == 200, done.text
    full = done.json()["session_ids"]
    assert done.headers["X-Auth-Token"] == full
    assert len(done.json()["recovery_codes"]) == 10
    error(api.get("/session/login", enrolling), 401, 1)
    assert api.get("/profile", full).status_code == 200


def test_pending_enrollment_session_enrolls_and_gets_full_session(
    api: Api, admin_token: str
) -> None:
    user_id = api.create_user(admin_token, "eve@example.com", PASSWORD)
    admin_set_mfa(api, admin_token, user_id, "2FA", "unused")
    enrolling = start(api, "eve@example.com", PASSWORD, "3")
    error(api.get("/profile", enrolling), 401, 10)
    error(api.post("/profile/set-mfa", {"auth_type": "PIN", "code": PIN}, enrolling), 401, 10)
    secret = api.get("/profile/2fa/generate", enrolling).json()["secret"]
    error(
        api.post(
            "/profile/set-mfa", {"auth_type": "2FA", "code": wrong_code(api, secret)}, enrolling
        ),
        401,
        11,
    )
    done = api.post("/profile/set-mfa", {"auth_type": "2FA", "code": api.code(secret)}, enrolling)
    assert done.status_code == 200, done.text
    error(api.get("/session/login", enrolling), 401, 1)
    assert api.get("/profile", done.json()["session_ids"]).status_code == 200
    api.clock.advance(30)
    pending = start(api, "eve@example.com", PASSWORD, "1")
    assert second(api, pending, "2FA", api.code(secret)).status_code == 200


# Second factor (POST /session/login) ----------------------------------------


def test_right_code_gives_new_full_session_and_ends_pending(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token)
    pending = start(api, "tina@example.com", PASSWORD, "1")
    response = second(api, pending, "2FA", api.code(secret))
    assert response.status_code == 200, response.text
    full = response.json()["session_id"]
    assert full != pending and uuid.UUID(full).version == 4
    assert response.headers["X-Auth-Token"] == full
    assert "Mfa-Code" not in response.headers
    assert api.get("/profile", full).status_code == 200
    error(api.get("/session/login", pending), 401, 1)
    error(second(api, pending, "2FA", api.code(secret, 1)), 401, 1)


@only_on("sqlite", "PostgreSQL has no writer lock for the check to wait for")
def test_a_code_check_waits_for_a_busy_writer_without_holding_up_other_requests(
    api: Api, admin_token: str
) -> None:
    # On SQLite a check runs on the event loop only when the writer lock is free
    # at once; otherwise it waits in a worker thread, and the loop answers the
    # rest.
    _, secret, _ = totp_user(api, admin_token)
    pending = start(api, "tina@example.com", PASSWORD, "1")
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with api.core.store.transaction():
            holding.set()
            assert release.wait(timeout=30)

    with ThreadPoolExecutor(max_workers=3) as pool:
        blocker = pool.submit(writer)
        try:
            assert holding.wait(timeout=10)
            check = pool.submit(second, api, pending, "2FA", api.code(secret))
            wait_for_a_blocked_writer(api.core.store)  # the check queued for the lock
            profile = pool.submit(api.get, "/profile", admin_token).result(timeout=10)
            assert profile.status_code == 200  # answered while the writer holds on
            assert not check.done()
        finally:
            release.set()
        blocker.result(timeout=10)
        answer = check.result(timeout=10)
    assert answer.status_code == 200, answer.text


def test_wrong_code_is_refused_and_pending_session_survives(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token)
    pending = start(api, "tina@example.com", PASSWORD, "1")
    error(second(api, pending, "2FA", wrong_code(api, secret)), 401, 11)
    error(second(api, pending, "2FA", "12ab56"), 401, 11)
    assert api.get("/session/login", pending).status_code == 207
    assert second(api, pending, "2FA", api.code(secret)).status_code == 200


def test_five_wrong_codes_close_the_pending_session(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token)
    pending = start(api, "tina@example.com", PASSWORD, "1")
    bad = wrong_code(api, secret)
    for _ in range(4):
        error(second(api, pending, "2FA", bad), 401, 11)
    assert api.get("/session/login", pending).status_code == 207
    error(second(api, pending, "2FA", bad), 401, 11)
    error(second(api, pending, "2FA", api.code(secret)), 401, 1)
    error(api.get("/session/login", pending), 401, 1)


def test_replayed_code_is_refused(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token)
    code = api.code(secret)
    first = start(api, "tina@example.com", PASSWORD, "1")
    assert second(api, first, "2FA", code).status_code == 200
    again = start(api, "tina@example.com", PASSWORD, "1")
    error(second(api, again, "2FA", code), 401, 11)
    api.clock.advance(30)
    assert second(api, again, "2FA", api.code(secret)).status_code == 200


@pytest.mark.parametrize("offset", [-1, 1])
def test_one_step_of_drift_is_accepted(api: Api, admin_token: str, offset: int) -> None:
    _, secret, _ = totp_user(api, admin_token)
    api.clock.advance(60)  # the step before "now" is later than the enrollment step
    pending = start(api, "tina@example.com", PASSWORD, "1")
    response = second(api, pending, "2FA", api.code(secret, offset_steps=offset))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("offset", [-2, 2])
def test_two_steps_of_drift_are_refused(api: Api, admin_token: str, offset: int) -> None:
    _, secret, _ = totp_user(api, admin_token)
    api.clock.advance(90)  # two steps back is still later than the enrollment step
    pending = start(api, "tina@example.com", PASSWORD, "1")
    code = api.code(secret, offset_steps=offset)
    assert code not in {api.code(secret, k) for k in (-1, 0, 1)}
    error(second(api, pending, "2FA", code), 401, 11)


def test_recovery_code_is_accepted_once(api: Api, admin_token: str) -> None:
    _, _, codes = totp_user(api, admin_token)
    pending = start(api, "tina@example.com", PASSWORD, "1")
    response = second(api, pending, "2FA", codes[0])
    assert response.status_code == 200, response.text
    assert api.get("/profile", response.json()["session_id"]).status_code == 200
    again = start(api, "tina@example.com", PASSWORD, "1")
    error(second(api, again, "2FA", codes[0]), 401, 11)
    relaxed = codes[1].replace("-", "").lower()
    assert second(api, again, "2FA", relaxed).status_code == 200


def test_recovery_code_is_not_a_pin(api: Api, admin_token: str) -> None:
    user_id, _, codes = totp_user(api, admin_token)
    admin_set_mfa(api, admin_token, user_id, "PIN", PIN)
    first = start(api, "tina@example.com", PASSWORD, "1")
    middle = second(api, first, "2FA", codes[0]).json()["session_id"]
    error(second(api, middle, "PIN", codes[1]), 401, 11)


def test_wrong_auth_type_for_step_is_a_parameter_error_not_a_wrong_code(
    api: Api, admin_token: str
) -> None:
    _, secret, _ = totp_user(api, admin_token)
    pending = start(api, "tina@example.com", PASSWORD, "1")
    for _ in range(6):
        response = second(api, pending, "PIN", PIN)
        error(response, 400, 2)
        assert "auth_type" in response.json()["details"]
    assert second(api, pending, "2FA", api.code(secret)).status_code == 200


def test_second_factor_on_full_session_is_a_parameter_error(api: Api, admin_token: str) -> None:
    error(second(api, admin_token, "2FA", "123456"), 400, 2)
    assert api.get("/profile", admin_token).status_code == 200


def test_second_factor_on_enrollment_session_says_enroll_first(api: Api, admin_token: str) -> None:
    user_id = api.create_user(admin_token, "eve@example.com", PASSWORD)
    admin_set_mfa(api, admin_token, user_id, "2FA", "unused")
    enrolling = start(api, "eve@example.com", PASSWORD, "3")
    error(second(api, enrolling, "2FA", "123456"), 401, 10)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"auth_type": "SMS", "code": "1"},
        {"auth_type": "2FA"},
        {"auth_type": "2FA", "code": 123456},
    ],
)
def test_malformed_second_factor_body_is_a_parameter_error(
    api: Api, admin_token: str, body: Any
) -> None:
    _, secret, _ = totp_user(api, admin_token)
    pending = start(api, "tina@example.com", PASSWORD, "1")
    error(api.post("/session/login", body, pending), 400, 2)
    assert second(api, pending, "2FA", api.code(secret)).status_code == 200


# Audit ---------------------------------------------------------------------


def audit_rows(api: Api) -> list[Any]:
    with api.core.store.transaction(write=False) as tx:
        return list(tx.audit.list())


def test_login_success_and_failure_are_audited_without_secrets(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token)
    before = len(audit_rows(api))
    secret_password = "Hunter2-Never-Logged-Anywhere"
    error(api.login("tina@example.com", secret_password), 401, 1)
    rows = audit_rows(api)
    assert len(rows) == before + 1
    assert (rows[-1].event, rows[-1].outcome) == ("login.password", "failure")
    assert rows[-1].client_addr == "testclient"

    pending = start(api, "tina@example.com", PASSWORD, "1")
    rows = audit_rows(api)
    assert len(rows) == before + 2
    assert (rows[-1].event, rows[-1].outcome) == ("login.password", "success")

    bad = wrong_code(api, secret)
    error(second(api, pending, "2FA", bad), 401, 11)
    rows = audit_rows(api)
    assert len(rows) == before + 3
    assert (rows[-1].event, rows[-1].outcome) == ("login.second_factor", "failure")

    good = api.code(secret)
    assert second(api, pending, "2FA", good).status_code == 200
    rows = audit_rows(api)
    assert len(rows) == before + 4
    assert (rows[-1].event, rows[-1].outcome) == ("login.second_factor", "success")

    dump = "\n".join(repr(row) for row in rows)
    for leaked in (secret_password, PASSWORD, bad, good, secret):
        assert leaked not in dump
