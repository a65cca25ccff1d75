"""MFA over HTTP: the caller's own factors (POST /profile/set-mfa, /profile/remove-mfa)
and an administrator's (POST /user/set-mfa, /user/remove-mfa, /user/reset-mfa)."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, alive, error
from tests.support import outbox

EMAIL = "member@example.com"
PASSWORD = "member password 123"
OTHER_EMAIL = "second@example.com"
_RECOVERY = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}")


def login_step(api: Api, email: str = EMAIL, password: str = PASSWORD) -> tuple[int, str | None]:
    response = api.login(email, password)
    return response.status_code, response.headers.get("Mfa-Code")


def audit_text(api: Api) -> str:
    with api.core.store.transaction(write=False) as tx:
        rows = tx.audit.list(limit=100_000)
    return "\n".join(json.dumps(dataclasses.asdict(row), default=str) for row in rows)


def audit_events(api: Api, target: str) -> list[tuple[str, str]]:
    with api.core.store.transaction(write=False) as tx:
        return [(row.event, row.outcome) for row in tx.audit.list(target_id=target, limit=10_000)]


@pytest.fixture
def member(api: Api, admin_token: str) -> str:
    return api.create_user(admin_token, EMAIL, PASSWORD)


# POST /profile/set-mfa: 2FA ---------------------------------------------------


def test_set_mfa_with_a_wrong_code_is_refused(api: Api, admin_token: str) -> None:
    secret = api.get("/profile/2fa/generate", admin_token).json()["secret"]
    wrong = "000000" if api.code(secret) != "000000" else "111111"
    error(api.post("/profile/set-mfa", {"auth_type": "2FA", "code": wrong}, admin_token), 401, 11)
    assert alive(api, admin_token)
    assert login_step(api, ADMIN_EMAIL, ADMIN_PASSWORD) == (200, None)


def test_set_mfa_without_a_pending_secret_is_refused(api: Api, admin_token: str) -> None:
    body = {"auth_type": "2FA", "code": "123456"}
    error(api.post("/profile/set-mfa", body, admin_token), 400, 14)
    assert login_step(api, ADMIN_EMAIL, ADMIN_PASSWORD) == (200, None)


def test_enabling_2fa_closes_every_session_and_hands_out_a_new_one(
    api: Api, admin_token: str
) -> None:
    other = api.full_session()
    secret = api.get("/profile/2fa/generate", admin_token).json()["secret"]
    response = api.post(
        "/profile/set-mfa", {"auth_type": "2FA", "code": api.code(secret)}, admin_token
    )
    assert response.status_code == 200, response.text
    body = response.json()
    new = body["session_ids"]
    assert str(uuid.UUID(new)) == new
    assert response.headers["X-Auth-Token"] == new
    assert new not in (admin_token, other)
    codes = body["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(_RECOVERY.fullmatch(code) for code in codes)
    assert not alive(api, admin_token)
    assert not alive(api, other)
    assert api.get("/profile", new).json()["auth_methods"] == ["2FA"]
    assert login_step(api, ADMIN_EMAIL, ADMIN_PASSWORD) == (207, "1")


def test_the_enrollment_code_cannot_be_replayed_at_login(api: Api, admin_token: str) -> None:
    secret = api.get("/profile/2fa/generate", admin_token).json()["secret"]
    code = api.code(secret)
    assert (
        api.post("/profile/set-mfa", {"auth_type": "2FA", "code": code}, admin_token).status_code
        == 200
    )
    pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["session_id"]
    error(api.post("/session/login", {"auth_type": "2FA", "code": code}, pending), 401, 11)
    api.clock.advance(30)
    fresh = api.post("/session/login", {"auth_type": "2FA", "code": api.code(secret)}, pending)
    assert fresh.status_code == 200, fresh.text


# POST /profile/set-mfa: PIN ---------------------------------------------------


@pytest.mark.parametrize("pin", ["123", "12345678901234567", "12a4", "", " 1234", "١٢٣٤"])
def test_a_pin_that_is_not_4_to_16_digits_is_refused(api: Api, admin_token: str, pin: str) -> None:
    error(api.post("/profile/set-mfa", {"auth_type": "PIN", "code": pin}, admin_token), 400, 2)
    assert alive(api, admin_token)
    assert login_step(api, ADMIN_EMAIL, ADMIN_PASSWORD) == (200, None)


def test_setting_a_pin_rotates_the_session_and_guards_the_next_login(
    api: Api, admin_token: str
) -> None:
    other = api.full_session()
    response = api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "0042"}, admin_token)
    assert response.status_code == 200, response.text
    new = response.json()["session_ids"]
    assert response.headers["X-Auth-Token"] == new
    assert new not in (admin_token, other)
    assert not alive(api, admin_token) and not alive(api, other)
    assert api.get("/profile", new).status_code == 200

    pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert pending.status_code == 207 and pending.headers["Mfa-Code"] == "2"
    token = pending.json()["session_id"]
    error(api.post("/session/login", {"auth_type": "PIN", "code": "0043"}, token), 401, 11)
    full = api.post("/session/login", {"auth_type": "PIN", "code": "0042"}, token)
    assert full.status_code == 200, full.text


# POST /profile/remove-mfa ------------------------------------------------------


@pytest.mark.parametrize("factor", ["2FA", "PIN"])
def test_removing_a_factor_that_is_not_active_is_refused(
    api: Api, admin_token: str, factor: str
) -> None:
    error(api.post("/profile/remove-mfa", {"auth_type": factor}, admin_token), 400, 15)


def test_removing_2fa_turns_it_off_and_mails_a_notice(api: Api, member: str) -> None:
    token, _, _ = api.enroll_totp(api.full_session(EMAIL, PASSWORD))
    assert login_step(api) == (207, "1")
    response = api.post("/profile/remove-mfa", {"auth_type": "2FA"}, token)
    assert response.status_code == 200 and response.json()["status"] == "success"
    assert login_step(api) == (200, None)
    assert api.get("/profile", token).json()["auth_methods"] == []
    assert any("Your 2FA was turned off" in mail for mail in outbox.texts(api.core, EMAIL))


def test_removing_a_pin_turns_it_off_and_mails_a_notice(api: Api, member: str) -> None:
    set_pin = {"auth_type": "PIN", "code": "97531"}
    token = api.post("/profile/set-mfa", set_pin, api.full_session(EMAIL, PASSWORD)).json()[
        "session_ids"
    ]
    assert login_step(api) == (207, "2")
    assert api.post("/profile/remove-mfa", {"auth_type": "PIN"}, token).status_code == 200
    assert login_step(api) == (200, None)
    assert any("Your PIN was turned off" in mail for mail in outbox.texts(api.core, EMAIL))


def test_2fa_forced_by_an_admin_cannot_be_removed(api: Api, admin_token: str, member: str) -> None:
    token, secret, _ = api.enroll_totp(api.full_session(EMAIL, PASSWORD))
    body = {"ids": [member], "auth_type": "2FA", "code": "000000"}
    assert api.post("/user/set-mfa", body, admin_token).status_code == 200
    pending = api.login(EMAIL, PASSWORD).json()["session_id"]
    token = api.post(
        "/session/login", {"auth_type": "2FA", "code": api.code(secret)}, pending
    ).json()["session_id"]
    error(api.post("/profile/remove-mfa", {"auth_type": "2FA"}, token), 400, 12)
    assert login_step(api) == (207, "1")
    assert not any("turned off" in mail for mail in outbox.texts(api.core, EMAIL))


def test_a_pin_forced_by_an_admin_cannot_be_removed(
    api: Api, admin_token: str, member: str
) -> None:
    body = {"ids": [member], "auth_type": "PIN", "code": "8642"}
    assert api.post("/user/set-mfa", body, admin_token).status_code == 200
    pending = api.login(EMAIL, PASSWORD).json()["session_id"]
    token = api.post("/session/login", {"auth_type": "PIN", "code": "8642"}, pending).json()[
        "session_id"
    ]
    error(api.post("/profile/remove-mfa", {"auth_type": "PIN"}, token), 400, 12)
    assert login_step(api) == (207, "2")


def test_2fa_forced_by_the_account_cannot_be_removed(api: Api, admin_token: str) -> None:
    token, _, _ = api.enroll_totp(admin_token)
    assert api.post("/settings/set", {"auth_methods": ["2FA"]}, token).status_code == 200
    error(api.post("/profile/remove-mfa", {"auth_type": "2FA"}, token), 400, 12)
    assert alive(api, token)
    assert login_step(api, ADMIN_EMAIL, ADMIN_PASSWORD) == (207, "1")


def test_a_session_waiting_for_a_code_cannot_enroll_or_set_a_pin(api: Api, member: str) -> None:
    token, secret, _ = api.enroll_totp(api.full_session(EMAIL, PASSWORD))
    pending_secret = api.get("/profile/2fa/generate", token).json()["secret"]
    pending = api.login(EMAIL, PASSWORD).json()["session_id"]
    error(api.get("/profile/2fa/generate", pending), 401, 10)
    body = {"auth_type": "2FA", "code": api.code(pending_secret)}
    error(api.post("/profile/set-mfa", body, pending), 401, 10)
    error(api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "1234"}, pending), 401, 10)
    assert alive(api, token)
    full = api.post("/session/login", {"auth_type": "2FA", "code": api.code(secret)}, pending)
    assert full.status_code == 200, full.text


def test_an_enrollment_session_cannot_set_a_pin_instead(
    api: Api, admin_token: str, member: str
) -> None:
    body = {"ids": [member], "auth_type": "2FA", "code": ""}
    assert api.post("/user/set-mfa", body, admin_token).status_code == 200
    pending = api.login(EMAIL, PASSWORD).json()["session_id"]
    error(api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "1234"}, pending), 401, 10)
    assert login_step(api) == (207, "3")


def test_remove_mfa_needs_a_full_session(api: Api, member: str) -> None:
    api.enroll_totp(api.full_session(EMAIL, PASSWORD))
    pending = api.login(EMAIL, PASSWORD).json()["session_id"]
    error(api.post("/profile/remove-mfa", {"auth_type": "2FA"}, pending), 401, 10)
    assert login_step(api) == (207, "1")


# Admin: POST /user/set-mfa, /user/remove-mfa, /user/reset-mfa -------------------


def test_admin_forcing_2fa_closes_sessions_and_requires_enrollment(
    api: Api, admin_token: str, member: str
) -> None:
    session = api.full_session(EMAIL, PASSWORD)
    body = {"ids": [member], "auth_type": "2FA", "code": ""}
    response = api.post("/user/set-mfa", body, admin_token)
    assert response.status_code == 200 and response.json()["status"] == "success"
    assert not alive(api, session)
    assert alive(api, admin_token)
    pending = api.login(EMAIL, PASSWORD)
    assert pending.status_code == 207 and pending.headers["Mfa-Code"] == "3"
    error(api.get("/profile", pending.json()["session_id"]), 401, 10)
    token, _, codes = api.enroll_totp(pending.json()["session_id"])
    assert len(codes) == 10
    profile = api.get("/profile", token).json()
    assert profile["forced_auth"] == ["2FA"]
    error(api.post("/profile/remove-mfa", {"auth_type": "2FA"}, token), 400, 12)
    assert login_step(api) == (207, "1")


def test_admin_forcing_2fa_on_a_user_with_a_secret_asks_for_a_code(
    api: Api, admin_token: str, member: str
) -> None:
    token, secret, _ = api.enroll_totp(api.full_session(EMAIL, PASSWORD))
    body = {"ids": [member], "auth_type": "2FA", "code": "000000"}
    assert api.post("/user/set-mfa", body, admin_token).status_code == 200
    assert not alive(api, token)
    pending = api.login(EMAIL, PASSWORD)
    assert pending.headers["Mfa-Code"] == "1"
    full = api.post(
        "/session/login",
        {"auth_type": "2FA", "code": api.code(secret)},
        pending.json()["session_id"],
    )
    assert full.status_code == 200, full.text


def test_admin_set_pin_requires_that_pin_at_login(api: Api, admin_token: str, member: str) -> None:
    session = api.full_session(EMAIL, PASSWORD)
    body = {"ids": [member], "auth_type": "PIN", "code": "20250417"}
    assert api.post("/user/set-mfa", body, admin_token).status_code == 200
    assert not alive(api, session)
    pending = api.login(EMAIL, PASSWORD)
    assert pending.status_code == 207 and pending.headers["Mfa-Code"] == "2"
    token = pending.json()["session_id"]
    error(api.post("/session/login", {"auth_type": "PIN", "code": "20250418"}, token), 401, 11)
    assert (
        api.post("/session/login", {"auth_type": "PIN", "code": "20250417"}, token).status_code
        == 200
    )


@pytest.mark.parametrize("pin", ["12", "abcd", "12345678901234567", ""])
def test_admin_bad_pin_changes_nothing_for_any_user(
    api: Api, admin_token: str, member: str, pin: str
) -> None:
    second = api.create_user(admin_token, OTHER_EMAIL, PASSWORD)
    sessions = [api.full_session(EMAIL, PASSWORD), api.full_session(OTHER_EMAIL, PASSWORD)]
    body = {"ids": [member, second], "auth_type": "PIN", "code": pin}
    error(api.post("/user/set-mfa", body, admin_token), 400, 2)
    assert all(alive(api, s) for s in sessions)
    assert login_step(api) == (200, None)
    assert login_step(api, OTHER_EMAIL, PASSWORD) == (200, None)


@pytest.mark.parametrize("call", ["set-2FA", "set-PIN", "remove-2FA", "reset-2FA"])
def test_admin_factor_calls_are_all_or_nothing(
    api: Api, admin_token: str, member: str, call: str
) -> None:
    second = api.create_user(admin_token, OTHER_EMAIL, PASSWORD)
    sessions = [api.enroll_totp(api.full_session(e, PASSWORD))[0] for e in (EMAIL, OTHER_EMAIL)]
    before = [api.get(f"/user/metadata/{u}", admin_token).json() for u in (member, second)]
    unknown = str(uuid.uuid4())
    action, factor = call.split("-")
    body = {"ids": [member, unknown, second], "auth_type": factor, "code": "1234"}
    response = api.post(f"/user/{action}-mfa", body, admin_token)
    assert error(response, 400, 2)["details"] == {"ids": [unknown]}
    assert all(alive(api, s) for s in sessions)
    after = [api.get(f"/user/metadata/{u}", admin_token).json() for u in (member, second)]
    assert after == before
    assert login_step(api) == (207, "1") and login_step(api, OTHER_EMAIL, PASSWORD) == (207, "1")


def test_admin_remove_mfa_lifts_forcing_and_turns_the_factor_off(
    api: Api, admin_token: str, member: str
) -> None:
    for auth_type, code in (("2FA", ""), ("PIN", "5555")):
        body = {"ids": [member], "auth_type": auth_type, "code": code}
        assert api.post("/user/set-mfa", body, admin_token).status_code == 200
    assert login_step(api) == (207, "2")
    for auth_type in ("2FA", "PIN"):
        body = {"ids": [member], "auth_type": auth_type}
        assert api.post("/user/remove-mfa", body, admin_token).status_code == 200
    user = api.get(f"/user/metadata/{member}", admin_token).json()
    assert user["auth_methods"] == [] and user["forced_auth"] == []
    assert login_step(api) == (200, None)
    notices = [mail for mail in outbox.texts(api.core, EMAIL) if "turned off" in mail]
    assert any("2FA" in n for n in notices) and any("PIN" in n for n in notices)
    error(api.post("/user/remove-mfa", {"ids": [member], "auth_type": "PIN"}, admin_token), 400, 15)


def test_admin_cannot_remove_2fa_while_the_account_forces_it(
    api: Api, admin_token: str, member: str
) -> None:
    token, _, _ = api.enroll_totp(admin_token)
    assert api.post("/settings/set", {"auth_methods": ["2FA"]}, token).status_code == 200
    body = {"ids": [member], "auth_type": "2FA"}
    error(api.post("/user/remove-mfa", body, token), 400, 12)
    assert login_step(api) == (207, "3")


def test_admin_reset_deletes_the_secret_and_recovery_codes(
    api: Api, admin_token: str, member: str
) -> None:
    token, old_secret, old_codes = api.enroll_totp(api.full_session(EMAIL, PASSWORD))
    stale = api.get("/profile/2fa/generate", token).json()["secret"]  # a pending secret too
    body = {"ids": [member], "auth_type": "2FA"}
    assert api.post("/user/reset-mfa", body, admin_token).status_code == 200
    assert not alive(api, token)
    pending = api.login(EMAIL, PASSWORD)
    assert pending.status_code == 207 and pending.headers["Mfa-Code"] == "3"
    stale_body = {"auth_type": "2FA", "code": api.code(stale)}
    error(api.post("/profile/set-mfa", stale_body, pending.json()["session_id"]), 400, 14)
    meta = api.get(f"/user/metadata/{member}", admin_token).json()
    assert meta["auth_methods"] == ["2FA"]
    _, new_secret, _ = api.enroll_totp(pending.json()["session_id"])

    for old in (api.code(old_secret), old_codes[0], old_codes[-1]):
        step = api.login(EMAIL, PASSWORD).json()["session_id"]
        error(api.post("/session/login", {"auth_type": "2FA", "code": old}, step), 401, 11)
    step = api.login(EMAIL, PASSWORD).json()["session_id"]
    full = api.post("/session/login", {"auth_type": "2FA", "code": api.code(new_secret)}, step)
    assert full.status_code == 200, full.text


def test_admin_reset_of_a_user_without_2fa_is_refused(
    api: Api, admin_token: str, member: str
) -> None:
    session = api.full_session(EMAIL, PASSWORD)
    body = {"ids": [member], "auth_type": "2FA"}
    assert error(api.post("/user/reset-mfa", body, admin_token), 400, 15)["details"] == {
        "ids": [member]
    }
    assert alive(api, session)
    assert login_step(api) == (200, None)


# Audit -----------------------------------------------------------------------


def test_factor_changes_are_audited_without_secrets(
    api: Api, admin_token: str, member: str
) -> None:
    admin_id = api.get("/profile", admin_token).json()["id"]
    token, secret, codes = api.enroll_totp(api.full_session(EMAIL, PASSWORD))
    token = api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "73195"}, token).json()[
        "session_ids"
    ]
    assert api.post("/profile/remove-mfa", {"auth_type": "PIN"}, token).status_code == 200
    pin = {"ids": [member], "auth_type": "PIN", "code": "246813579"}
    assert api.post("/user/set-mfa", pin, admin_token).status_code == 200
    reset = {"ids": [member], "auth_type": "2FA"}
    assert api.post("/user/reset-mfa", reset, admin_token).status_code == 200
    assert (
        api.post("/user/remove-mfa", {"ids": [member], "auth_type": "PIN"}, admin_token).status_code
        == 200
    )

    events = audit_events(api, member)
    for expected in ("factor.enroll_started", "factor.set", "factor.removed", "factor.reset"):
        assert (expected, "success") in events, expected
    with api.core.store.transaction(write=False) as tx:
        admin_rows = [r for r in tx.audit.list(target_id=member) if r.actor_id == admin_id]
    assert {r.event for r in admin_rows} >= {"factor.set", "factor.reset", "factor.removed"}

    text = audit_text(api)
    for leaked in (secret, "73195", "246813579", PASSWORD, token, admin_token, *codes):
        assert leaked not in text
        assert leaked.replace("-", "") not in text


def test_every_factor_change_mails_the_user_a_notice_without_secrets(
    api: Api, admin_token: str, member: str
) -> None:
    """OWASP ASVS 4.0.3 2.2.3 and 2.5.5: the holder hears of every factor change."""
    token, secret, codes = api.enroll_totp(api.full_session(EMAIL, PASSWORD))
    api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "73195"}, token)
    for auth_type, code in (("PIN", "246813579"), ("2FA", "")):
        body = {"ids": [member], "auth_type": auth_type, "code": code}
        assert api.post("/user/set-mfa", body, admin_token).status_code == 200
    reset = {"ids": [member], "auth_type": "2FA"}
    assert api.post("/user/reset-mfa", reset, admin_token).status_code == 200

    subjects = [mail.split("\n", 1)[0] for mail in outbox.texts(api.core, EMAIL)]
    assert subjects[1:] == [
        "Your Quatrix 2FA was set",
        "Your Quatrix PIN was set",
        "Your Quatrix PIN was set by an administrator",
        "Your Quatrix 2FA was set by an administrator",
        "Your Quatrix 2FA was reset by an administrator",
    ]
    text = "\n".join(outbox.texts(api.core, EMAIL))
    for leaked in (secret, "73195", "246813579", PASSWORD, token, *codes):
        assert leaked not in text
