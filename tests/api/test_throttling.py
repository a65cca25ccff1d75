"""Throttling of failed logins through the HTTP API: per email (known or not),
per client address, second factors included, on the fake clock."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, error
from tests.support.http import answer_headers, assert_throttled, audit_rows, login_from
from tests.support.scenario import PASSWORD
from tests.support.scenario import WRONG_PASSWORD as WRONG


def fail(api: Api, email: str = ADMIN_EMAIL, times: int = 1) -> None:
    for _ in range(times):
        error(api.login(email, WRONG), 401, 1)


# Per email -------------------------------------------------------------------


def test_eleventh_attempt_after_ten_failures_is_refused_even_with_right_password(api: Api) -> None:
    fail(api, times=10)
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 30)
    assert_throttled(api.login(ADMIN_EMAIL, WRONG), 30)


def test_nine_failures_do_not_block(api: Api) -> None:
    fail(api, times=9)
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200


def test_blocked_email_may_try_again_after_retry_after(api: Api) -> None:
    fail(api, times=10)
    api.clock.advance(29)
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 1)
    api.clock.advance(1)
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200


def test_each_further_failure_doubles_the_delay_up_to_15_minutes(api: Api) -> None:
    fail(api, times=10)
    delay = 30
    for expected in (60, 120, 240, 480, 900, 900):
        assert_throttled(api.login(ADMIN_EMAIL, WRONG), delay)
        api.clock.advance(delay)
        fail(api)
        assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), expected)
        delay = expected


def test_complete_login_resets_the_email_count(api: Api) -> None:
    fail(api, times=9)
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200
    fail(api, times=9)
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200
    fail(api, times=10)
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 30)


def password_step_after_failures(api: Api, admin_token: str, failures: int) -> tuple[str, str]:
    """A TOTP user guessed at ``failures`` times, then the right password:
    the seed and the pending session (207) that waits for the code."""
    secret = api.scenario.user_with_totp(admin_token, "tina@example.com").secret
    fail(api, "tina@example.com", times=failures)
    response = api.login("tina@example.com", PASSWORD)
    assert response.status_code == 207, response.text
    return secret, response.json()["session_id"]


def test_login_completed_with_a_totp_code_resets_the_email_count(
    api: Api, admin_token: str
) -> None:
    secret, pending = password_step_after_failures(api, admin_token, 9)
    code = {"auth_type": "2FA", "code": api.code(secret)}
    assert api.post("/session/login", code, pending).status_code == 200
    fail(api, "tina@example.com", times=9)  # 18 in all, but the login started them over
    assert api.login("tina@example.com", PASSWORD).status_code == 207
    fail(api, "tina@example.com")
    assert_throttled(api.login("tina@example.com", PASSWORD), 30)


def test_correct_password_with_a_factor_to_come_does_not_reset_the_count(
    api: Api, admin_token: str
) -> None:
    secret, pending = password_step_after_failures(api, admin_token, 9)
    fail(api, "tina@example.com")
    assert_throttled(api.login("tina@example.com", PASSWORD), 30)
    code = {"auth_type": "2FA", "code": api.code(secret)}
    assert_throttled(api.post("/session/login", code, pending), 30)


def test_unknown_email_is_throttled_exactly_like_a_known_one(api: Api) -> None:
    fail(api, ADMIN_EMAIL, times=10)
    fail(api, "nobody@example.com", times=10)
    known = api.login(ADMIN_EMAIL, WRONG)
    unknown = api.login("nobody@example.com", WRONG)
    assert_throttled(unknown, 30)
    assert unknown.status_code == known.status_code
    assert unknown.json() == known.json()
    assert answer_headers(unknown) == answer_headers(known)


def test_email_count_ignores_letter_case(api: Api) -> None:
    for variant in ("admin@example.com", "ADMIN@example.com", "Admin@Example.Com") * 3 + (
        "admin@EXAMPLE.com",
    ):
        fail(api, variant)
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 30)


def test_one_users_lockout_does_not_lock_another_user(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, "bob@example.com", PASSWORD)
    fail(api, ADMIN_EMAIL, times=10)
    assert api.login("bob@example.com", PASSWORD).status_code == 200
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 30)


def test_second_factor_failures_count_toward_the_email_count(api: Api, admin_token: str) -> None:
    secret = api.scenario.user_with_totp(admin_token, "tina@example.com").secret
    bad = next(
        c
        for c in ("918273", "364519", "720946")
        if c not in {api.code(secret, k) for k in (-1, 0, 1)}
    )
    fail(api, "tina@example.com", times=6)
    for _ in range(2):
        pending = api.login("tina@example.com", PASSWORD).json()["session_id"]
        for _ in range(2):
            error(api.post("/session/login", {"auth_type": "2FA", "code": bad}, pending), 401, 11)
    right = {"auth_type": "2FA", "code": api.code(secret)}
    assert_throttled(api.post("/session/login", right, pending), 30)
    assert_throttled(api.login("tina@example.com", PASSWORD), 30)


def test_throttle_state_is_shared_between_workers(api: Api, make_api: Any) -> None:
    other: Api = make_api()
    fail(api, times=5)
    fail(other, times=5)
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 30)
    assert_throttled(other.login(ADMIN_EMAIL, ADMIN_PASSWORD), 30)


def test_throttled_attempt_is_audited(api: Api) -> None:
    fail(api, times=10)
    before = len(audit_rows(api))
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 30)
    rows = audit_rows(api)
    assert len(rows) == before + 1
    assert (rows[-1].event, rows[-1].outcome) == ("login.throttled", "denied")
    assert ADMIN_PASSWORD not in repr(rows[-1])


# Per client address ------------------------------------------------------------


def test_address_limit_blocks_every_email_from_that_address_only(api: Api, make_api: Any) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=5)
    for i in range(5):
        error(login_from(web, "198.51.100.1", f"guess{i}@example.com", WRONG), 401, 1)
    assert_throttled(login_from(web, "198.51.100.1"), 30)
    assert login_from(web, "198.51.100.2").status_code == 200


def test_default_address_limit_is_100_failures(api: Api, make_api: Any) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    for i in range(100):
        error(login_from(web, "198.51.100.1", f"guess{i}@example.com", WRONG), 401, 1)
    assert_throttled(login_from(web, "198.51.100.1"), 30)
    assert login_from(web, "198.51.100.2").status_code == 200


def test_address_count_is_not_reset_by_a_success(api: Api, make_api: Any) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=5)
    for i in range(4):
        error(login_from(web, "198.51.100.1", f"guess{i}@example.com", WRONG), 401, 1)
    assert login_from(web, "198.51.100.1").status_code == 200
    error(login_from(web, "198.51.100.1", "guess9@example.com", WRONG), 401, 1)
    assert_throttled(login_from(web, "198.51.100.1"), 30)


def test_address_count_decays_after_15_quiet_minutes(api: Api, make_api: Any) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=5)
    for i in range(4):
        error(login_from(web, "198.51.100.1", f"guess{i}@example.com", WRONG), 401, 1)
    api.clock.advance(901)
    error(login_from(web, "198.51.100.1", "guess9@example.com", WRONG), 401, 1)
    assert login_from(web, "198.51.100.1").status_code == 200


def test_address_count_of_wrong_codes_decays_after_15_quiet_minutes(
    api: Api, admin_token: str, make_api: Any
) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=5)
    secret = api.scenario.user_with_totp(admin_token, "tina@example.com").secret
    bad = next(
        c for c in ("918273", "364519") if c not in {api.code(secret, k) for k in (-1, 0, 1)}
    )
    guesser = {"X-Forwarded-For": "198.51.100.7"}
    pending = web.login("tina@example.com", PASSWORD).json()["session_id"]
    for _ in range(4):
        wrong = web.post(
            "/session/login", {"auth_type": "2FA", "code": bad}, pending, headers=guesser
        )
        error(wrong, 401, 11)
    api.clock.advance(901)
    pending = web.login("tina@example.com", PASSWORD).json()["session_id"]
    # Without the decay this fifth failure would block the address.
    error(
        web.post("/session/login", {"auth_type": "2FA", "code": bad}, pending, headers=guesser),
        401,
        11,
    )
    right = {"auth_type": "2FA", "code": api.code(secret)}
    assert web.post("/session/login", right, pending, headers=guesser).status_code == 200


def test_forwarded_for_is_ignored_when_not_trusted(api: Api, make_api: Any) -> None:
    web: Api = make_api(address_failure_threshold=3)
    for i, addr in enumerate(("192.0.2.1", "192.0.2.2", "192.0.2.3")):
        error(login_from(web, addr, f"guess{i}@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == "testclient"
    assert_throttled(login_from(web, "192.0.2.4"), 30)


def test_last_forwarded_for_entry_is_used_when_trusted(api: Api, make_api: Any) -> None:
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=3)
    for i in range(3):
        chain = f"203.0.113.{i}, 10.0.0.1"  # the client chose the first entry, our proxy the last
        error(login_from(web, chain, f"guess{i}@example.com", WRONG), 401, 1)
    assert audit_rows(api)[-1].client_addr == "10.0.0.1"
    assert_throttled(login_from(web, "10.0.0.1"), 30)
    assert_throttled(login_from(web, "203.0.113.0, 10.0.0.1"), 30)
    assert login_from(web, "10.0.0.1, 203.0.113.0").status_code == 200
