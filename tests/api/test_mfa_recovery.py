"""Lost-device recovery (issue 12, item 3): started on a pending login,
mailed to the user (with a cancel link) and the administrators, cancelled
by the link or by any complete login, completed by the first password login
after the wait (or after an administrator's approval), refusable per account."""

from __future__ import annotations

from typing import Any

from quatrix_mfa.core.mail import moment
from tests.conftest import ADMIN_EMAIL, Api, alive, error
from tests.support import outbox
from tests.support.http import totp_user
from tests.support.scenario import PASSWORD, PIN

TINA = "tina@example.com"
WAIT = 259200.0


def pending(api: Api, email: str = TINA) -> str:
    login = api.login(email, PASSWORD)
    assert login.status_code == 207, login.text
    return str(login.json()["session_id"])


def recover(api: Api, token: str) -> Any:
    return api.post("/session/recover-mfa", None, token)


def subjects(api: Api, email: str) -> list[str]:
    return [m.subject for m in outbox.mails(api.core, email)]


def events(api: Api, prefix: str = "recovery.") -> list[str]:
    with api.core.store.transaction(write=False) as tx:
        return [r.event for r in tx.audit.list(limit=10_000) if r.event.startswith(prefix)]


def test_a_recovery_starts_on_the_2fa_step_and_is_mailed_to_the_user_and_admins(
    api: Api, admin_token: str
) -> None:
    totp_user(api, admin_token, TINA)
    answer = recover(api, pending(api))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"ready_at": moment(api.clock.now() + WAIT)}
    assert subjects(api, TINA)[-1] == "A recovery of your Quatrix second factors was started"
    body = outbox.texts(api.core, TINA)[-1]
    assert "https://mfa.example.com/recover-mfa/cancel/" in body
    assert subjects(api, ADMIN_EMAIL)[-1].endswith(
        f"{TINA} started a recovery of their second factors"
    )
    assert events(api) == ["recovery.started"]


def test_a_second_request_answers_the_same_time_and_mails_nothing_new(
    api: Api, admin_token: str
) -> None:
    totp_user(api, admin_token, TINA)
    first = recover(api, pending(api)).json()
    mailed = len(outbox.mails(api.core))
    api.clock.advance(60)
    assert recover(api, pending(api)).json() == first
    assert len(outbox.mails(api.core)) == mailed


def test_after_the_wait_the_next_password_login_removes_the_factors_and_asks_to_enroll(
    api: Api, admin_token: str
) -> None:
    totp_user(api, admin_token, TINA)
    other = api.post(  # a PIN too: it goes with the rest
        "/profile/set-mfa", {"auth_type": "PIN", "code": "97531"}, api.full_session()
    )
    assert other.status_code == 200
    recover(api, pending(api))
    api.clock.advance(WAIT - 1)
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "1"  # not yet
    api.clock.advance(1)
    done = api.login(TINA, PASSWORD)
    assert (done.status_code, done.headers["Mfa-Code"]) == (207, "3")
    assert subjects(api, TINA)[-1] == "Your Quatrix second factors were removed"
    assert events(api) == ["recovery.started", "recovery.completed"]
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "3"  # enroll again, not twice


def test_a_complete_login_cancels_the_recovery(api: Api, admin_token: str) -> None:
    _, secret, _ = totp_user(api, admin_token, TINA)
    recover(api, pending(api))
    api.clock.advance(30)
    full = api.post("/session/login", {"auth_type": "2FA", "code": api.code(secret)}, pending(api))
    assert full.status_code == 200, full.text
    assert subjects(api, TINA)[-1] == "The recovery of your Quatrix second factors was cancelled"
    api.clock.advance(WAIT)
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "1"  # the factors stay


def test_the_mailed_link_cancels_the_recovery_once(api: Api, admin_token: str) -> None:
    totp_user(api, admin_token, TINA)
    recover(api, pending(api))
    cancel_id = outbox.latest_recovery_cancel_id(api.core, TINA)
    answer = api.post(f"/recover-mfa/cancel/{cancel_id}")
    assert answer.status_code == 200, answer.text
    error(api.post(f"/recover-mfa/cancel/{cancel_id}"), 401, 1)  # used
    api.clock.advance(WAIT)
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "1"
    assert events(api) == ["recovery.started", "recovery.cancelled"]
    # A new recovery can start after a cancelled one, with a new wait.
    assert recover(api, pending(api)).json()["ready_at"] == moment(api.clock.now() + WAIT)


def test_an_administrator_may_approve_at_once(api: Api, admin_token: str) -> None:
    tina, _, _ = totp_user(api, admin_token, TINA)
    recover(api, pending(api))
    assert api.post("/user/recover-mfa/approve", {"ids": [tina]}, admin_token).status_code == 200
    assert subjects(api, TINA)[-1].startswith("An administrator approved")
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "3"


def test_approving_an_approved_recovery_again_mails_and_audits_nothing_new(
    api: Api, admin_token: str
) -> None:
    tina, _, _ = totp_user(api, admin_token, TINA)
    recover(api, pending(api))
    assert api.post("/user/recover-mfa/approve", {"ids": [tina]}, admin_token).status_code == 200
    mailed = len(outbox.mails(api.core))
    api.clock.advance(60)
    again = api.post("/user/recover-mfa/approve", {"ids": [tina]}, api.full_session())
    assert again.status_code == 200, again.text
    assert len(outbox.mails(api.core)) == mailed
    assert events(api) == ["recovery.started", "recovery.approved"]
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "3"


def test_an_administrator_may_cancel(api: Api, admin_token: str) -> None:
    tina, _, _ = totp_user(api, admin_token, TINA)
    recover(api, pending(api))
    assert api.post("/user/recover-mfa/cancel", {"ids": [tina]}, admin_token).status_code == 200
    api.clock.advance(WAIT)
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "1"
    # Nothing left to decide on: 400, nothing changes.
    error(api.post("/user/recover-mfa/approve", {"ids": [tina]}, api.full_session()), 400, 2)


def test_self_recovery_turned_off_is_refused(api: Api, admin_token: str) -> None:
    totp_user(api, admin_token, TINA)
    off = api.post("/settings/set", {"mfa_self_recovery": False}, admin_token)
    assert off.status_code == 200 and off.json()["mfa_self_recovery"] is False
    error(recover(api, pending(api)), 403, 3)
    assert events(api) == []


def test_turned_off_after_the_start_only_an_approval_completes_it(
    api: Api, admin_token: str
) -> None:
    tina, _, _ = totp_user(api, admin_token, TINA)
    recover(api, pending(api))
    api.post("/settings/set", {"mfa_self_recovery": False}, admin_token)
    api.clock.advance(WAIT)
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "1"
    admin = api.full_session()
    assert api.post("/user/recover-mfa/approve", {"ids": [tina]}, admin).status_code == 200
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "3"


def test_completing_closes_the_users_sessions(api: Api, admin_token: str) -> None:
    tina, secret, _ = totp_user(api, admin_token, TINA)
    full = api.post("/session/login", {"auth_type": "2FA", "code": api.code(secret)}, pending(api))
    session = full.json()["session_id"]
    api.clock.advance(30)
    recover(api, pending(api))  # a later start: the full login came before it
    assert api.post("/user/recover-mfa/approve", {"ids": [tina]}, admin_token).status_code == 200
    assert alive(api, session)
    api.login(TINA, PASSWORD)
    assert not alive(api, session)


def test_an_administrators_reset_cancels_an_open_recovery(api: Api, admin_token: str) -> None:
    tina, _, _ = totp_user(api, admin_token, TINA)
    recover(api, pending(api))  # someone with the password only
    reset = api.post("/user/reset-mfa", {"ids": [tina], "auth_type": "2FA"}, admin_token)
    assert reset.status_code == 200
    assert events(api) == ["recovery.started", "recovery.cancelled"]
    assert subjects(api, TINA)[-2:] == [
        "The recovery of your Quatrix second factors was cancelled",
        "Your Quatrix 2FA was reset by an administrator",
    ]


def test_enrolling_again_at_sign_in_cancels_an_open_recovery(api: Api, admin_token: str) -> None:
    carol = api.scenario.user_with_pin(admin_token, "carol@example.com")
    forced = api.post(
        "/user/set-mfa", {"ids": [carol.id], "auth_type": "2FA", "code": ""}, admin_token
    )
    assert forced.status_code == 200
    recover(api, pending(api, carol.email))  # at the PIN step, with the password only
    # Carol herself: password, PIN, then she enrolls a new key: a complete login.
    step = api.post("/session/login", {"auth_type": "PIN", "code": PIN}, pending(api, carol.email))
    assert (step.status_code, step.headers["Mfa-Code"]) == (207, "3"), step.text
    api.enroll_totp(step.json()["session_id"])
    assert events(api) == ["recovery.started", "recovery.cancelled"]
    api.clock.advance(WAIT)
    assert api.login(carol.email, PASSWORD).headers["Mfa-Code"] == "1"  # her new key stays


def test_a_pin_an_administrator_requires_outlives_a_self_service_recovery(
    api: Api, admin_token: str
) -> None:
    tina, _, _ = totp_user(api, admin_token, TINA)
    forced_pin = {"ids": [tina], "auth_type": "PIN", "code": "5555"}
    assert api.post("/user/set-mfa", forced_pin, admin_token).status_code == 200
    recover(api, pending(api))
    api.clock.advance(WAIT)
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "2"  # the PIN first, then enroll
    assert events(api) == ["recovery.started", "recovery.completed"]
