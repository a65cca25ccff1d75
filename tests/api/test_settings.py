"""Site settings over HTTP: GET /settings, POST /settings/set (free-form fields,
forced 2FA, the IP allow-list) and GET /settings/auth-methods."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, alive, basic, error

EMAIL = "member@example.com"
PASSWORD = "member password 123"
ENROLLED_EMAIL = "enrolled@example.com"
ADMIN_IP = "10.0.0.1"


def from_ip(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


def login_from(api: Api, ip: str, password: str = ADMIN_PASSWORD) -> Any:
    headers = {"Authorization": basic(ADMIN_EMAIL, password), **from_ip(ip)}
    return api.get("/session/login", headers=headers)


# GET /settings and free-form fields --------------------------------------------


def test_settings_describe_the_account(api: Api, admin_token: str) -> None:
    response = api.get("/settings", admin_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "Example"  # the account's name until a title is set
    assert body["auth_methods"] == []
    assert body["ip_whitelist"] == []
    assert isinstance(body["modified"], float | int)
    for key in ("bcc", "billing_emails", "email_footer", "language", "pgp_enabled", "share_types"):
        assert key in body, key


def test_free_form_settings_are_stored_and_returned(api: Api, admin_token: str) -> None:
    before = api.get("/settings", admin_token).json()
    api.clock.advance(5)
    change = {
        "title": "Acme Files",
        "language": "deu",
        "bcc": ["audit@example.com"],
        "billing_emails": ["billing@example.com"],
        "email_footer": "Sent by Acme — Grüße\r\n\tAcme Ltd\nLondon",
        "pgp_enabled": True,
        "share_types": {"public_share": False, "tracked_share": True},
    }
    response = api.post("/settings/set", change, admin_token)
    assert response.status_code == 200, response.text
    stored = api.get("/settings", admin_token).json()
    for body in (response.json(), stored):
        for key, value in change.items():
            assert body[key] == value, key
        assert body["auth_methods"] == [] and body["ip_whitelist"] == []
    assert stored["modified"] > before["modified"]
    assert api.get("/account/metadata", admin_token).json()["title"] == "Acme Files"

    # A later partial change keeps the other fields.
    assert api.post("/settings/set", {"title": "Acme"}, admin_token).json()["language"] == "deu"
    assert alive(api, admin_token)


# auth_methods: 2FA ---------------------------------------------------------------


def test_forcing_2fa_closes_sessions_of_users_without_a_secret(api: Api, admin_token: str) -> None:
    admin_session, _, _ = api.enroll_totp(admin_token)
    api.create_user(admin_session, EMAIL, PASSWORD)
    api.create_user(admin_session, ENROLLED_EMAIL, PASSWORD)
    plain = api.full_session(EMAIL, PASSWORD)
    enrolled, secret, _ = api.enroll_totp(api.full_session(ENROLLED_EMAIL, PASSWORD))

    response = api.post("/settings/set", {"auth_methods": ["2FA"]}, admin_session)
    assert response.status_code == 200, response.text
    assert response.json()["auth_methods"] == ["2FA"]
    assert api.get("/settings", admin_session).json()["auth_methods"] == ["2FA"]

    assert not alive(api, plain)
    assert alive(api, enrolled) and alive(api, admin_session)
    assert api.get("/profile", enrolled).json()["forced_auth"] == ["2FA"]

    pending = api.login(EMAIL, PASSWORD)
    assert pending.status_code == 207 and pending.headers["Mfa-Code"] == "3"
    token, _, codes = api.enroll_totp(pending.json()["session_id"])
    assert len(codes) == 10
    assert api.get("/profile", token).json()["forced_auth"] == ["2FA"]
    second = api.login(ENROLLED_EMAIL, PASSWORD)
    assert second.status_code == 207 and second.headers["Mfa-Code"] == "1"
    body = {"auth_type": "2FA", "code": api.code(secret)}
    assert api.post("/session/login", body, second.json()["session_id"]).status_code == 200


def test_unforcing_2fa_lets_users_without_a_secret_in_again(api: Api, admin_token: str) -> None:
    admin_session, _, _ = api.enroll_totp(admin_token)
    api.create_user(admin_session, EMAIL, PASSWORD)
    assert api.post("/settings/set", {"auth_methods": ["2FA"]}, admin_session).status_code == 200
    assert api.login(EMAIL, PASSWORD).headers["Mfa-Code"] == "3"
    response = api.post("/settings/set", {"auth_methods": []}, admin_session)
    assert response.status_code == 200 and response.json()["auth_methods"] == []
    assert api.login(EMAIL, PASSWORD).status_code == 200
    # The admin enrolled on their own: that stays.
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).headers["Mfa-Code"] == "1"


def test_forcing_2fa_closes_the_callers_session_when_they_have_no_secret(
    api: Api, admin_token: str
) -> None:
    assert api.post("/settings/set", {"auth_methods": ["2FA"]}, admin_token).status_code == 200
    assert not alive(api, admin_token)
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).headers["Mfa-Code"] == "3"


# auth_methods: IP ----------------------------------------------------------------


@pytest.fixture
def proxied(api: Api, make_api: Any) -> Api:
    """The same service behind a trusted proxy that sets X-Forwarded-For."""
    built: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    return built


def restrict(proxied: Api, whitelist: list[str]) -> Any:
    token = login_from(proxied, ADMIN_IP).json()["session_id"]
    body = {"auth_methods": ["IP"], "ip_whitelist": whitelist}
    return proxied.post("/settings/set", body, token, headers=from_ip(ADMIN_IP))


def test_ip_allow_list_accepts_the_three_formats(proxied: Api) -> None:
    whitelist = [ADMIN_IP, "10.0.1.7\\32", "10.0.2.0/24", "10.0.3.0\\24", "10.0.4.10-20"]
    response = restrict(proxied, whitelist)
    assert response.status_code == 200, response.text
    assert response.json()["auth_methods"] == ["IP"]
    assert response.json()["ip_whitelist"] == whitelist

    allowed = [
        ADMIN_IP,
        "10.0.1.7",
        "10.0.2.1",
        "10.0.2.254",
        "10.0.3.99",
        "10.0.4.10",
        "10.0.4.20",
    ]
    denied = ["10.0.0.2", "10.0.1.8", "10.0.5.1", "10.0.4.9", "10.0.4.21", "192.168.0.1"]
    for ip in allowed:
        assert login_from(proxied, ip).status_code == 200, ip
    for ip in denied:
        refused = login_from(proxied, ip)
        error(refused, 403, 20)
    # The address is checked only after the password: a wrong one is still a plain 401.
    wrong = login_from(proxied, "10.0.5.1", "wrong password")
    error(wrong, 401, 1)


def test_forwarded_for_is_ignored_unless_trusted(api: Api, proxied: Api) -> None:
    assert restrict(proxied, [ADMIN_IP]).status_code == 200
    # The plain app sees TestClient's own address, whatever the header claims.
    refused = login_from(api, ADMIN_IP)
    error(refused, 403, 20)
    # Behind the proxy, only the last (proxy-appended) entry counts.
    spoofed = login_from(proxied, f"{ADMIN_IP}, 10.9.9.9")
    error(spoofed, 403, 20)
    ok = login_from(proxied, f"10.9.9.9, {ADMIN_IP}")
    assert ok.status_code == 200


def test_invalid_ip_allow_list_entries_are_refused_by_name(proxied: Api) -> None:
    bad = ["10.0.0.256", "not an address", "10.0.0.9-3", "10.0.0.0/33", "10.0.0.1-256"]
    response = restrict(proxied, [ADMIN_IP, *bad])
    details = error(response, 400, 2)["details"]
    assert sorted(details["ip_whitelist"]) == sorted(bad)
    token = login_from(proxied, "10.7.7.7").json()["session_id"]
    settings = proxied.get("/settings", token, headers=from_ip("10.7.7.7")).json()
    assert settings["auth_methods"] == [] and settings["ip_whitelist"] == []


def test_an_allow_list_that_locks_out_the_caller_is_refused(proxied: Api) -> None:
    response = restrict(proxied, ["10.0.9.0/24"])
    assert "ip_whitelist" in error(response, 400, 2)["details"]
    assert login_from(proxied, "10.1.1.1").status_code == 200


def test_ip_restriction_without_entries_is_refused(proxied: Api) -> None:
    assert "ip_whitelist" in error(restrict(proxied, []), 400, 2)["details"]
    assert login_from(proxied, "10.1.1.1").status_code == 200


# GET /settings/auth-methods --------------------------------------------------------


def test_auth_methods_lists_ip_and_2fa(api: Api, admin_token: str) -> None:
    response = api.get("/settings/auth-methods", admin_token)
    assert response.status_code == 200, response.text
    items = response.json()
    assert sorted(item["key"] for item in items) == ["2FA", "IP"]
    for item in items:
        assert set(item) >= {"rank", "id", "key"}
        assert isinstance(item["rank"], int)
        assert str(uuid.UUID(item["id"])) == item["id"]
    assert len({item["rank"] for item in items}) == len({item["id"] for item in items}) == 2
    assert api.get("/settings/auth-methods", admin_token).json() == items


# Audit -------------------------------------------------------------------------


def test_settings_changes_are_audited(api: Api, admin_token: str) -> None:
    admin_id = api.get("/profile", admin_token).json()["id"]
    assert api.post("/settings/set", {"title": "Audited"}, admin_token).status_code == 200
    with api.core.store.transaction(write=False) as tx:
        rows = [r for r in tx.audit.list(limit=100_000) if r.event == "admin.settings_changed"]
    assert [(r.actor_id, r.outcome) for r in rows] == [(admin_id, "success")]
    text = json.dumps([dataclasses.asdict(r) for r in rows], default=str)
    assert admin_token not in text and ADMIN_PASSWORD not in text
