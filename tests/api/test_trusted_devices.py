"""Trusted devices over HTTP (issue 13, item 1): POST /session/login with
``remember_device`` gives an X-Device-Token; a later password login with it
skips the second factor until it expires or anything about the user's
factors changes; GET /profile/devices, POST /profile/devices/delete and the
admin's POST /user/devices/delete; the ``trusted_device_days`` setting."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, alive, basic, error
from tests.support import outbox
from tests.support.devices import HEADER, events, finish, login_with, trust, trusted
from tests.support.encoding import b64
from tests.support.scenario import FOREIGN_PASSWORD, PIN, TotpUser

DAY = 86400.0
TINA = "tina@example.com"


@pytest.fixture
def tina(api: Api, admin_token: str) -> TotpUser:
    return api.scenario.user_with_totp(admin_token, TINA)


def set_days(api: Api, admin_token: str, days: Any) -> Any:
    return api.post("/settings/set", {"trusted_device_days": days}, admin_token)


# Given and used ----------------------------------------------------------------


def test_remember_device_on_the_last_factor_gives_a_token_that_skips_the_second_factor(
    api: Api, tina: TotpUser
) -> None:
    device = trust(api, tina)
    assert len(device) == 43
    answer = login_with(api, tina, device)
    assert answer.status_code == 200, answer.text
    assert "Mfa-Code" not in answer.headers
    full = answer.json()["session_id"]
    assert api.get("/profile", full).status_code == 200
    assert events(api, tina.id) == [("device.trusted", "success"), ("device.trust_used", "success")]


def test_without_remember_device_or_with_false_no_token_is_given(api: Api, tina: TotpUser) -> None:
    for remember in (None, False):
        answer = finish(api, tina, remember)
        assert answer.status_code == 200, answer.text
        assert HEADER not in answer.headers
    assert events(api, tina.id) == []


def test_a_non_boolean_remember_device_is_refused_and_spends_nothing(
    api: Api, tina: TotpUser
) -> None:
    pending = api.login(tina.email, tina.password).json()["session_id"]
    for bad in ("true", 1, "yes", None, [True], {}):
        body = {"auth_type": "2FA", "code": api.code(tina.secret), "remember_device": bad}
        if bad is None:
            continue  # null is "not given"
        answer = api.post("/session/login", body, pending)
        error(answer, 400, 2)
        assert HEADER not in answer.headers
    assert alive(api, pending)
    # The code was not spent: it still finishes the login.
    body = {"auth_type": "2FA", "code": api.code(tina.secret), "remember_device": True}
    assert api.post("/session/login", body, pending).status_code == 200
    assert events(api, tina.id) == [("device.trusted", "success")]


def test_remember_device_on_a_step_before_the_last_gives_no_token(
    api: Api, admin_token: str
) -> None:
    user = api.scenario.user_with_totp(admin_token, TINA)
    api.scenario.set_pin(user.token)
    pending = api.login(TINA, user.password).json()["session_id"]
    body = {"auth_type": "2FA", "code": api.code(user.secret), "remember_device": True}
    first = api.post("/session/login", body, pending)
    assert first.status_code == 207 and HEADER not in first.headers
    pin = {"auth_type": "PIN", "code": PIN, "remember_device": True}
    last = api.post("/session/login", pin, first.json()["session_id"])
    assert last.status_code == 200, last.text
    device = last.headers[HEADER]
    api.clock.advance(30)
    assert trusted(api, user, device)  # both the TOTP and the PIN step skipped


def test_the_password_still_decides(api: Api, tina: TotpUser) -> None:
    device = trust(api, tina)
    error(login_with(api, tina, device, password="not the password"), 401, 1)
    assert trusted(api, tina, device)


def test_throttling_still_applies(api: Api, tina: TotpUser) -> None:
    device = trust(api, tina)
    for _ in range(10):
        login_with(api, tina, device, password="not the password")
    assert login_with(api, tina, device).status_code == 429


def test_the_ip_allow_list_still_applies(api: Api, make_api: Any, tina: TotpUser) -> None:
    device = trust(api, tina)
    inside = make_api(peer="192.0.2.10")
    outside = make_api(peer="198.51.100.7")
    admin = inside.full_session()
    body = {"auth_methods": ["IP"], "ip_whitelist": ["192.0.2.10"]}
    assert inside.post("/settings/set", body, admin).status_code == 200
    error(login_with(outside, tina, device), 403, 20)
    assert trusted(inside, tina, device)


# Refused and audited -------------------------------------------------------------


def test_a_token_of_another_user_is_ignored_and_audited(api: Api, admin_token: str) -> None:
    tina = api.scenario.user_with_totp(admin_token, TINA)
    tom = api.scenario.user_with_totp(admin_token, "tom@example.com")
    toms = trust(api, tom)
    answer = login_with(api, tina, toms)
    assert answer.status_code == 207 and answer.headers["Mfa-Code"] == "1"
    assert events(api, tina.id) == [("device.trust_refused", "denied")]
    assert trusted(api, tom, toms)  # still Tom's


@pytest.mark.parametrize(
    "device",
    ["", "x" * 43, "short", "!" * 43, "a" * 42 + " ", "A" * 44, "not a token at all, clearly"],
)
def test_a_malformed_or_unknown_token_is_ignored_and_audited(
    api: Api, tina: TotpUser, device: str
) -> None:
    headers = {"Authorization": basic(tina.email, tina.password), HEADER: device}
    answer = api.get("/session/login", headers=headers)
    assert answer.status_code == 207, answer.text
    assert events(api, tina.id) == [("device.trust_refused", "denied")]


def test_the_token_expires_by_the_clock(api: Api, tina: TotpUser) -> None:
    device = trust(api, tina)
    api.clock.advance(30 * DAY - 120)
    assert trusted(api, tina, device)
    api.clock.advance(120)
    assert not trusted(api, tina, device)
    assert events(api, tina.id)[-1] == ("device.trust_refused", "denied")


def test_fewer_days_end_every_older_trust_for_good(
    api: Api, admin_token: str, tina: TotpUser
) -> None:
    old = trust(api, tina)
    api.clock.advance(10 * DAY)
    young = trust(api, tina)
    admin = api.full_session()
    assert set_days(api, admin, 5).json()["trusted_device_days"] == 5
    assert not trusted(api, tina, old)
    assert set_days(api, admin, 30).status_code == 200
    assert not trusted(api, tina, old)  # raising the days again revives nothing
    assert trusted(api, tina, young)  # 0 days old: only shortened
    full = login_with(api, tina, young).json()["session_id"]
    assert len(api.get("/profile/devices", full).json()) == 1


def test_trust_ended_by_fewer_days_stays_ended_when_the_days_grow_again(
    api: Api, tina: TotpUser
) -> None:
    device = trust(api, tina)
    admin = api.full_session()
    assert set_days(api, admin, 0).json()["trusted_device_days"] == 0
    assert not trusted(api, tina, device)
    assert set_days(api, admin, 365).status_code == 200
    assert not trusted(api, tina, device)
    assert api.get("/profile/devices", tina.token).json() == []


def test_with_zero_days_no_token_is_given(api: Api, tina: TotpUser) -> None:
    assert set_days(api, api.full_session(), 0).status_code == 200
    answer = finish(api, tina)
    assert answer.status_code == 200 and HEADER not in answer.headers


@pytest.mark.parametrize("days", [366, 400, -1, "30", 30.0, True, None])
def test_bad_trusted_device_days_are_refused_and_change_nothing(
    api: Api, admin_token: str, tina: TotpUser, days: Any
) -> None:
    device = trust(api, tina)
    if days is None:
        answer = api.post("/settings/set", {"trusted_device_days": None}, admin_token)
        assert answer.status_code == 200  # null: "leave as is", as every setting
    else:
        error(set_days(api, admin_token, days), 400, 2)
    assert api.get("/settings", admin_token).json()["trusted_device_days"] == 30
    assert trusted(api, tina, device)


# Revoked by any change of the user's credentials ----------------------------------


def _set_pin(api: Api, admin: str, user: TotpUser) -> None:
    answer = api.post("/profile/set-mfa", {"auth_type": "PIN", "code": PIN}, user.token)
    assert answer.status_code == 200, answer.text


def _remove_2fa(api: Api, admin: str, user: TotpUser) -> None:
    answer = api.post("/user/remove-mfa", {"ids": [user.id], "auth_type": "2FA"}, admin)
    assert answer.status_code == 200, answer.text


def _reset_2fa(api: Api, admin: str, user: TotpUser) -> None:
    answer = api.post("/user/reset-mfa", {"ids": [user.id], "auth_type": "2FA"}, admin)
    assert answer.status_code == 200, answer.text


def _password(api: Api, admin: str, user: TotpUser) -> None:
    body = {"password": b64(user.password), "new_password": b64("a new good password 1")}
    assert api.post("/profile/set-password", body, user.token).status_code == 200
    body = {"password": b64("a new good password 1"), "new_password": b64(user.password)}
    again = api.login(user.email, "a new good password 1").json()["session_id"]
    code = {"auth_type": "2FA", "code": api.code(user.secret)}
    full = api.post("/session/login", code, again).json()["session_id"]
    api.clock.advance(30)
    assert api.post("/profile/set-password", body, full).status_code == 200


def _disable(api: Api, admin: str, user: TotpUser) -> None:
    for status in ("D", "A"):
        answer = api.post("/user/edit", {"ids": [user.id], "status": status}, admin)
        assert answer.status_code == 200, answer.text


def _recovery(api: Api, admin: str, user: TotpUser) -> None:
    pending = api.login(user.email, user.password).json()["session_id"]
    assert api.post("/session/recover-mfa", None, pending).status_code == 202
    assert api.post("/user/recover-mfa/approve", {"ids": [user.id]}, admin).status_code == 200
    done = api.login(user.email, user.password)  # the recovery completes: enroll again
    assert (done.status_code, done.headers["Mfa-Code"]) == (207, "3")


def _new_recovery_codes(api: Api, admin: str, user: TotpUser) -> None:
    answer = api.post("/profile/recovery-codes", {"code": api.code(user.secret)}, user.token)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "change",
    [_set_pin, _remove_2fa, _reset_2fa, _password, _disable, _recovery, _new_recovery_codes],
)
def test_any_change_of_the_users_credentials_revokes_every_trusted_device(
    api: Api, admin_token: str, tina: TotpUser, change: Any
) -> None:
    device = trust(api, tina)
    change(api, admin_token, tina)
    assert not trusted(api, tina, device)
    assert ("device.trust_revoked", _revoked_outcome(change)) in events(api, tina.id)
    with api.core.store.transaction(write=False) as tx:
        assert tx.devices.of_user(tina.id) == []


def _revoked_outcome(change: Any) -> str:
    return {
        _set_pin: "factor_set",
        _remove_2fa: "factor_removed",
        _reset_2fa: "factor_reset_by_admin",
        _password: "password_changed",
        _disable: "user_disabled",
        _recovery: "mfa_recovered",
        _new_recovery_codes: "recovery_codes_replaced",
    }[change]


def test_deleting_the_user_deletes_their_devices(
    api: Api, admin_token: str, tina: TotpUser
) -> None:
    trust(api, tina)
    assert api.post("/user/delete", {"ids": [tina.id]}, admin_token).status_code == 202
    with api.core.store.transaction(write=False) as tx:
        assert tx.devices.of_user(tina.id) == []


# The lists and revocation ------------------------------------------------------------


def test_the_profile_lists_the_users_trusted_devices(api: Api, tina: TotpUser) -> None:
    given = api.clock.now()
    device = trust(api, tina)
    api.clock.advance(60)
    full = login_with(api, tina, device).json()["session_id"]
    listed = api.get("/profile/devices", full).json()
    assert len(listed) == 1
    (one,) = listed
    assert one["label"] == "Firefox on Linux"
    assert one["address"] == "testclient"
    assert one["created"] == given
    assert one["last_used"] == given + 90
    assert one["expires"] == given + 30 * DAY
    assert len(one["id"]) == 36


def test_a_user_revokes_one_of_their_devices(api: Api, tina: TotpUser) -> None:
    first, second = trust(api, tina), trust(api, tina)
    listed = api.get("/profile/devices", tina.token).json()
    assert len(listed) == 2
    newest = listed[0]["id"]
    answer = api.post("/profile/devices/delete", {"ids": [newest]}, tina.token)
    assert answer.status_code == 200 and answer.json() == {"deleted": 1}
    assert not trusted(api, tina, second)
    assert trusted(api, tina, first)
    assert [e for e in events(api, tina.id) if e[0] == "device.trust_revoked"] == [
        ("device.trust_revoked", "success")
    ]


def test_ids_that_are_not_the_users_devices_are_refused_and_nothing_changes(
    api: Api, admin_token: str, tina: TotpUser
) -> None:
    tom = api.scenario.user_with_totp(admin_token, "tom@example.com")
    toms, tinas = trust(api, tom), trust(api, tina)
    toms_id = api.get("/profile/devices", tom.token).json()[0]["id"]
    tinas_id = api.get("/profile/devices", tina.token).json()[0]["id"]
    unknown = "5b0d3d4e-8a55-4d8e-9a39-3f0a0f6c1b2a"
    for ids in ([toms_id], [tinas_id, toms_id], [unknown], ["not-a-uuid"], []):
        answer = api.post("/profile/devices/delete", {"ids": ids}, tina.token)
        error(answer, 400, 2)
    for ids in ({"ids": "x"}, {}, {"ids": [1]}):
        error(api.post("/profile/devices/delete", ids, tina.token), 400, 2)
    assert trusted(api, tom, toms) and trusted(api, tina, tinas)


def test_an_admin_revokes_every_device_of_users_of_their_account(
    api: Api, admin_token: str, tina: TotpUser
) -> None:
    first, second = trust(api, tina), trust(api, tina)
    answer = api.post("/user/devices/delete", {"ids": [tina.id]}, admin_token)
    assert answer.status_code == 200 and answer.json() == {"deleted": 2}
    assert not trusted(api, tina, first) and not trusted(api, tina, second)
    assert ("device.trust_revoked", "success") in events(api, tina.id)


def test_only_an_admin_of_the_same_account_revokes_users_devices(
    api: Api, admin_token: str, tina: TotpUser
) -> None:
    device = trust(api, tina)
    error(api.post("/user/devices/delete", {"ids": [tina.id]}, tina.token), 403, 3)
    foreign = api.scenario.foreign_admin()
    outsider = api.full_session(foreign.email, FOREIGN_PASSWORD)
    error(api.post("/user/devices/delete", {"ids": [tina.id]}, outsider), 400, 2)
    assert trusted(api, tina, device)


# Two nodes on one database -------------------------------------------------------------


def test_trust_given_on_one_node_is_used_and_revoked_on_the_other(
    api: Api, make_api: Any, tina: TotpUser
) -> None:
    other: Api = make_api()
    device = trust(api, tina)
    assert trusted(other, tina, device)
    device_id = other.get("/profile/devices", tina.token).json()[0]["id"]
    answer = api.post("/profile/devices/delete", {"ids": [device_id]}, tina.token)
    assert answer.status_code == 200, answer.text
    assert not trusted(other, tina, device)


def test_a_factor_change_on_one_node_ends_trust_on_the_other(
    api: Api, make_api: Any, admin_token: str, tina: TotpUser
) -> None:
    other: Api = make_api()
    device = trust(api, tina)
    assert trusted(other, tina, device)
    body = {"ids": [tina.id], "auth_type": "2FA"}
    assert other.post("/user/reset-mfa", body, admin_token).status_code == 200
    assert not trusted(api, tina, device)


# A lost-device recovery -----------------------------------------------------------


def test_a_sign_in_through_a_trusted_device_cancels_a_recovery_and_says_so(
    api: Api, tina: TotpUser
) -> None:
    device = trust(api, tina)
    pending = api.login(tina.email, tina.password).json()["session_id"]
    assert api.post("/session/recover-mfa", None, pending).status_code == 202
    assert login_with(api, tina, device).status_code == 200
    with api.core.store.transaction(write=False) as tx:
        rows = tx.audit.list(target_id=tina.id, limit=10_000)
        assert tx.recoveries.open_for_user(tina.id) is None
    (cancelled,) = [r for r in rows if r.event == "recovery.cancelled"]
    assert cancelled.detail["how"] == "by a sign-in from a trusted device"
    assert "by a sign-in from a trusted device" in outbox.texts(api.core, tina.email)[-1]
