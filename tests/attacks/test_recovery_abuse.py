"""Abuse of lost-device recovery (issue 12, item 3): only a pending login at
a factor a lost device takes may start one, at most one is open, its cancel
ids cannot be guessed or reused, and only the account's administrators decide."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Api, error
from tests.support import outbox
from tests.support.admin import PASSWORD as MEMBER_PASSWORD
from tests.support.admin import add_users
from tests.support.http import totp_user
from tests.support.scenario import PASSWORD

TINA = "tina@example.com"


def recoveries(api: Api) -> int:
    with api.core.store.transaction(write=False) as tx:
        return sum(1 for r in tx.audit.list(limit=10_000) if r.event == "recovery.started")


def test_a_full_session_cannot_start_a_recovery(api: Api, admin_token: str) -> None:
    mailed = len(outbox.mails(api.core))
    error(api.post("/session/recover-mfa", None, admin_token), 400, 2)
    error(api.post("/session/recover-mfa", None), 401, 1)
    error(api.post("/session/recover-mfa", None, str(uuid.uuid4())), 401, 1)
    assert recoveries(api) == 0 and len(outbox.mails(api.core)) == mailed


def test_a_login_that_must_enroll_has_nothing_to_recover(api: Api, admin_token: str) -> None:
    (person,) = add_users(api.core, 1, password=True, twofa_active=True)
    login = api.login(person.email, MEMBER_PASSWORD)
    assert login.headers["Mfa-Code"] == "3"
    error(api.post("/session/recover-mfa", None, login.json()["session_id"]), 400, 2)


def test_a_second_recovery_from_another_node_answers_the_first(
    api: Api, make_api: object, admin_token: str
) -> None:
    totp_user(api, admin_token, TINA)
    other = make_api()  # type: ignore[operator]
    first = api.post("/session/recover-mfa", None, api.login(TINA, PASSWORD).json()["session_id"])
    token = other.login(TINA, PASSWORD).json()["session_id"]
    second = other.post("/session/recover-mfa", None, token)
    assert second.json() == first.json()
    assert recoveries(api) == 1


@pytest.mark.parametrize("bad", ["not-a-uuid", "1" * 64, "%00", "{" + str(uuid.uuid4()) + "}"])
def test_a_malformed_cancel_id_is_400(api: Api, bad: str) -> None:
    error(api.post(f"/recover-mfa/cancel/{bad}"), 400, 2)


def test_guessed_cancel_ids_are_401_and_leave_the_real_one_working(
    api: Api, admin_token: str
) -> None:
    totp_user(api, admin_token, TINA)
    session = api.login(TINA, PASSWORD).json()["session_id"]
    api.post("/session/recover-mfa", None, session)
    real = outbox.latest_recovery_cancel_id(api.core, TINA)
    for _ in range(20):
        error(api.post(f"/recover-mfa/cancel/{uuid.uuid4()}"), 401, 1)
    # The session that started it is no cancel id (ids are hashed under their own label).
    error(api.post(f"/recover-mfa/cancel/{session}"), 401, 1)
    assert api.post(f"/recover-mfa/cancel/{real}").status_code == 200
    error(api.post(f"/recover-mfa/cancel/{real}"), 401, 1)


def test_only_this_accounts_administrators_decide(api: Api, admin_token: str) -> None:
    tina, _, _ = totp_user(api, admin_token, TINA)
    api.post("/session/recover-mfa", None, api.login(TINA, PASSWORD).json()["session_id"])
    (member,) = add_users(api.core, 1, password=True)
    theirs = api.full_session(member.email, MEMBER_PASSWORD)
    error(api.post("/user/recover-mfa/approve", {"ids": [tina]}, theirs), 403, 3)
    error(api.post("/user/recover-mfa/approve", {"ids": [str(uuid.uuid4())]}, admin_token), 400, 2)
    error(api.post("/user/recover-mfa/cancel", {"ids": ["x"]}, admin_token), 400, 2)
    error(api.post("/user/recover-mfa/cancel", {"ids": []}, admin_token), 400, 2)
    assert api.login(TINA, PASSWORD).headers["Mfa-Code"] == "1"
