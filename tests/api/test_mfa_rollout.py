"""Staged 2FA (issue 12, item 1): ``mfa_grace_days`` beside ``auth_methods``
gives users without 2FA until a deadline; the login answers name it; past it
they must enroll and their sessions end on every node; reminders go once."""

from __future__ import annotations

from typing import Any

import pytest

from quatrix_mfa.core import maintenance
from quatrix_mfa.core.mail import moment
from tests.conftest import ADMIN_EMAIL, Api, alive, error
from tests.support import outbox
from tests.support.admin import PASSWORD, add_users, admin_account
from tests.support.http import totp_user
from tests.support.scenario import PASSWORD as TOTP_PASSWORD

DAY = 86400.0
REMINDER = "Turn on 2FA for Quatrix by"


def force(api: Api, token: str, **extra: Any) -> Any:
    return api.post("/settings/set", {"auth_methods": ["2FA"], **extra}, token)


def reminders(api: Api, email: str) -> list[str]:
    return [t for t in outbox.texts(api.core, email) if t.startswith(REMINDER)]


def test_a_grace_period_keeps_users_without_2fa_signed_in_and_names_the_deadline(
    api: Api, admin_token: str
) -> None:
    (person,) = add_users(api.core, 1, password=True)
    theirs = api.full_session(person.email, PASSWORD)
    answer = force(api, admin_token, mfa_grace_days=14)
    assert answer.status_code == 200, answer.text
    deadline = moment(api.clock.now() + 14 * DAY)
    assert answer.json()["mfa_enroll_by"] == deadline
    assert alive(api, theirs) and alive(api, admin_token)  # nobody signed out
    login = api.login(person.email, PASSWORD)
    assert login.status_code == 200
    assert login.headers["Mfa-Enroll-By"] == deadline
    assert api.get("/session/login", theirs).headers["Mfa-Enroll-By"] == deadline
    methods = api.get("/settings/auth-methods", admin_token).json()
    assert {m["key"]: m.get("enroll_by") for m in methods} == {"IP": None, "2FA": deadline}
    assert api.get("/settings", admin_token).json()["mfa_enroll_by"] == deadline


def test_during_the_grace_period_a_pin_user_gets_the_pin_step_and_the_header_on_each_answer(
    api: Api, admin_token: str
) -> None:
    (person,) = add_users(api.core, 1, password=True)
    with api.core.store.transaction() as tx:
        api.core.pin.set(tx, person, api.core.pin.hash("97531"), api.clock.now())
    force(api, admin_token, mfa_grace_days=7)
    deadline = moment(api.clock.now() + 7 * DAY)
    login = api.login(person.email, PASSWORD)
    assert (login.status_code, login.headers["Mfa-Code"]) == (207, "2")
    assert login.headers["Mfa-Enroll-By"] == deadline
    pin = {"auth_type": "PIN", "code": "97531"}
    full = api.post("/session/login", pin, login.json()["session_id"])
    assert full.status_code == 200 and full.headers["Mfa-Enroll-By"] == deadline


def test_a_user_with_2fa_gets_no_deadline_header(api: Api, admin_token: str) -> None:
    totp_user(api, admin_token, "tina@example.com")
    force(api, admin_token, mfa_grace_days=3)
    login = api.login("tina@example.com", TOTP_PASSWORD)
    assert login.status_code == 207 and "Mfa-Enroll-By" not in login.headers


def test_a_user_an_administrator_forced_enrolls_now_and_is_told_no_deadline(
    api: Api, admin_token: str
) -> None:
    (person,) = add_users(api.core, 1, password=True)
    force(api, admin_token, mfa_grace_days=14)
    forced = {"ids": [person.id], "auth_type": "2FA", "code": ""}
    assert api.post("/user/set-mfa", forced, admin_token).status_code == 200
    login = api.login(person.email, PASSWORD)
    assert (login.status_code, login.headers["Mfa-Code"]) == (207, "3")
    assert "Mfa-Enroll-By" not in login.headers


def test_past_the_deadline_a_user_without_2fa_must_enroll_and_their_sessions_end_on_every_node(
    api: Api, make_api: Any, admin_token: str
) -> None:
    (person,) = add_users(api.core, 1, password=True)
    other_node = make_api()
    theirs = api.full_session(person.email, PASSWORD)
    force(api, admin_token, mfa_grace_days=2)
    api.clock.advance(2 * DAY)
    # Before any background round ran: the other node already refuses it.
    error(other_node.get("/session/login", theirs), 401, 1)
    login = api.login(person.email, PASSWORD)
    assert (login.status_code, login.headers["Mfa-Code"]) == (207, "3")
    assert "Mfa-Enroll-By" not in login.headers
    done = maintenance.mfa_rollout(other_node.core, api.clock.now())
    assert done["closed"] == 2  # the person and the administrator: neither has 2FA
    assert maintenance.mfa_rollout(api.core, api.clock.now())["closed"] == 0  # once


def test_grace_zero_is_todays_behaviour(api: Api, admin_token: str) -> None:
    (person,) = add_users(api.core, 1, password=True)
    theirs = api.full_session(person.email, PASSWORD)
    answer = force(api, admin_token, mfa_grace_days=0)
    assert answer.status_code == 200 and "mfa_enroll_by" not in answer.json()
    assert not alive(api, theirs)
    login = api.login(person.email, PASSWORD)
    assert (login.status_code, login.headers["Mfa-Code"]) == (207, "3")


def test_reminders_go_at_the_start_a_week_and_a_day_before_each_once(
    api: Api, make_api: Any, admin_token: str
) -> None:
    (person,) = add_users(api.core, 1, password=True)
    tina = "tina@example.com"
    totp_user(api, admin_token, tina)
    other_node = make_api()
    force(api, admin_token, mfa_grace_days=10)
    for _ in range(2):  # two nodes, two rounds: one mail
        for node in (api, other_node):
            maintenance.mfa_rollout(node.core, api.clock.now())
    assert len(reminders(api, person.email)) == 1
    assert reminders(api, tina) == []  # has 2FA
    api.clock.advance(3 * DAY)  # 7 days left
    maintenance.mfa_rollout(other_node.core, api.clock.now())
    maintenance.mfa_rollout(api.core, api.clock.now())
    assert len(reminders(api, person.email)) == 2
    api.clock.advance(6 * DAY)  # 1 day left
    maintenance.mfa_rollout(api.core, api.clock.now())
    maintenance.mfa_rollout(api.core, api.clock.now())
    texts = reminders(api, person.email)
    assert len(texts) == 3
    assert moment(admin_account(api.core).mfa_enroll_by or 0) in texts[-1]
    assert len(reminders(api, ADMIN_EMAIL)) == 3


def test_a_new_grace_during_the_grace_period_moves_the_deadline(api: Api, admin_token: str) -> None:
    force(api, admin_token, mfa_grace_days=10)
    api.clock.advance(600)  # within the session's idle time
    moved = force(api, admin_token, mfa_grace_days=30)
    assert moved.json()["mfa_enroll_by"] == moment(api.clock.now() + 30 * DAY)
    kept = api.post("/settings/set", {"title": "Acme"}, admin_token)
    assert kept.json()["mfa_enroll_by"] == moment(api.clock.now() + 30 * DAY)
    off = api.post("/settings/set", {"auth_methods": []}, admin_token)
    assert "mfa_enroll_by" not in off.json()


def test_the_impact_preview_still_counts_sessions_during_the_grace_period(
    api: Api, admin_token: str
) -> None:
    (person,) = add_users(api.core, 1, password=True)
    api.full_session(person.email, PASSWORD)
    force(api, admin_token, mfa_grace_days=5)
    body = api.get("/settings/mfa-impact", admin_token).json()
    assert (body["users_without_2fa"], body["sessions_to_end"]) == (2, 2)


@pytest.mark.parametrize("grace", [-1, 91, "x", "5", 1.5, None, True])
def test_a_bad_grace_period_is_refused_and_changes_nothing(
    api: Api, admin_token: str, grace: Any
) -> None:
    if grace is None:
        grace = [1]
    answer = force(api, admin_token, mfa_grace_days=grace)
    error(answer, 400, 2)
    settings = api.get("/settings", admin_token).json()
    assert settings["auth_methods"] == [] and "mfa_enroll_by" not in settings


def test_the_deadline_and_its_rollout_are_audited(api: Api, admin_token: str) -> None:
    force(api, admin_token, mfa_grace_days=1)
    maintenance.mfa_rollout(api.core, api.clock.now())
    api.clock.advance(DAY)
    maintenance.mfa_rollout(api.core, api.clock.now())
    with api.core.store.transaction(write=False) as tx:
        events = [r.event for r in tx.audit.list(limit=1000)]
        changed = [r for r in tx.audit.list(limit=1000) if r.event == "admin.settings_changed"]
    assert changed[-1].detail["mfa_enroll_by"] is not None
    assert "mfa.reminders_sent" in events and "mfa.deadline_enforced" in events
