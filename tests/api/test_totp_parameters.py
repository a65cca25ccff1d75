"""TOTP parameters (issue 13, item 3) through the HTTP API: the site settings
``totp_algorithm``, ``totp_digits`` and ``totp_period``, the otpauth:// URI
and QR of a new enrollment, and codes checked with each seed's own."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from quatrix_mfa.core.factors import totp
from tests.conftest import Api, error
from tests.support.codes import secret_bytes
from tests.support.http import audit_rows
from tests.support.scenario import PASSWORD
from tests.support.totp_params import code_for, enroll

STRONG = {"totp_algorithm": "SHA256", "totp_digits": 8, "totp_period": 60}


def settings(api: Api, token: str) -> dict[str, Any]:
    response = api.get("/settings", token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def set_settings(api: Api, token: str, body: dict[str, Any]) -> Any:
    return api.post("/settings/set", body, token)


def pending(api: Api, email: str) -> str:
    response = api.login(email, PASSWORD)
    assert response.status_code == 207, response.text
    return str(response.json()["session_id"])


def send(api: Api, token: str, code: str) -> Any:
    return api.post("/session/login", {"auth_type": "2FA", "code": code}, token)


def enrolled(
    api: Api, admin_token: str, email: str, chosen: dict[str, Any] | None = None
) -> tuple[str, totp.Parameters]:
    """A user enrolled under the site's parameters, set to ``chosen`` first:
    (secret, the parameters their URI carried)."""
    if chosen is not None:
        assert set_settings(api, admin_token, chosen).status_code == 200
    person = api.scenario.user(admin_token, email)
    _, secret, params, _ = enroll(api, person.token)
    return secret, params


def signs_in(api: Api, email: str, code: str) -> bool:
    return bool(send(api, pending(api, email), code).status_code == 200)


def test_the_defaults_are_sha1_six_digits_thirty_seconds(api: Api, admin_token: str) -> None:
    got = settings(api, admin_token)
    assert (got["totp_algorithm"], got["totp_digits"], got["totp_period"]) == ("SHA1", 6, 30)


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
def test_each_algorithm_can_be_chosen(api: Api, admin_token: str, algorithm: str) -> None:
    response = set_settings(api, admin_token, {"totp_algorithm": algorithm})
    assert response.status_code == 200, response.text
    assert response.json()["totp_algorithm"] == algorithm
    assert settings(api, admin_token)["totp_algorithm"] == algorithm


@pytest.mark.parametrize(
    "body",
    [
        {"totp_digits": 7},
        {"totp_digits": "8"},
        {"totp_digits": 8.0},
        {"totp_digits": True},
        {"totp_period": 45},
        {"totp_period": "60"},
        {"totp_algorithm": "MD5"},
        {"totp_algorithm": "sha256"},
        {"totp_algorithm": None, "totp_digits": 9},
        {"totp_algorithm": "SHA256", "totp_digits": 8, "totp_period": 0},
    ],
)
def test_an_unsupported_parameter_is_a_400_that_changes_nothing(
    api: Api, admin_token: str, body: dict[str, Any]
) -> None:
    before = settings(api, admin_token)
    answer = error(set_settings(api, admin_token, body), 400, 2)
    assert set(answer["details"]) & {"totp_algorithm", "totp_digits", "totp_period"}
    assert settings(api, admin_token) == before


def test_a_new_enrollment_carries_the_parameters_in_its_uri_and_qr(
    api: Api, admin_token: str
) -> None:
    assert set_settings(api, admin_token, STRONG).status_code == 200
    person = api.scenario.user(admin_token, "tina@example.com")
    generated = api.get("/profile/2fa/generate", person.token).json()
    query = parse_qs(urlsplit(generated["uri"]).query)
    assert query["algorithm"] == ["SHA256"]
    assert query["digits"] == ["8"]
    assert query["period"] == ["60"]
    assert query["secret"] == [generated["secret"]]
    assert base64.b64decode(generated["qr"]).startswith(b"\x89PNG")


def test_sha256_eight_digits_sixty_seconds_enroll_and_sign_in(api: Api, admin_token: str) -> None:
    secret, params = enrolled(api, admin_token, "tina@example.com", STRONG)
    assert params == totp.Parameters("SHA256", 8, 60)
    code = code_for(api, secret, params)
    assert len(code) == 8
    assert signs_in(api, "tina@example.com", code)
    # The same code again: the replay guard holds for every kind of seed.
    api.clock.advance(20)
    body = error(send(api, pending(api, "tina@example.com"), code), 401, 11)
    assert body["details"] == {"reason": "used"}
    # Twenty seconds on is the same 60 s step: a 30 s seed's next code would pass.
    api.clock.advance(40)
    assert (
        send(api, pending(api, "tina@example.com"), code_for(api, secret, params)).status_code
        == 200
    )


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA512"])
def test_other_algorithms_enroll_and_sign_in(api: Api, admin_token: str, algorithm: str) -> None:
    body = {"totp_algorithm": algorithm, "totp_digits": 8, "totp_period": 30}
    secret, params = enrolled(api, admin_token, "tina@example.com", body)
    assert params.algorithm == algorithm
    assert signs_in(api, "tina@example.com", code_for(api, secret, params))


def test_each_seed_keeps_its_parameters_when_the_settings_change(
    api: Api, admin_token: str
) -> None:
    tina_secret, tina_params = enrolled(api, admin_token, "tina@example.com", STRONG)
    back = {"totp_algorithm": "SHA1", "totp_digits": 6, "totp_period": 30}
    uma_secret, uma_params = enrolled(api, admin_token, "uma@example.com", back)
    assert uma_params == totp.DEFAULT
    assert signs_in(api, "tina@example.com", code_for(api, tina_secret, tina_params))
    assert signs_in(api, "uma@example.com", code_for(api, uma_secret, uma_params))


def test_a_pending_enrollment_keeps_the_parameters_it_started_with(
    api: Api, admin_token: str
) -> None:
    person = api.scenario.user(admin_token, "tina@example.com")
    first = api.get("/profile/2fa/generate", person.token).json()
    assert set_settings(api, admin_token, STRONG).status_code == 200
    code = totp.code_at(secret_bytes(first["secret"]), api.clock.now())
    response = api.post("/profile/set-mfa", {"auth_type": "2FA", "code": code}, person.token)
    assert response.status_code == 200, response.text


def test_a_code_of_the_other_length_is_a_400_that_counts_nothing(
    api: Api, admin_token: str
) -> None:
    secret, params = enrolled(api, admin_token, "tina@example.com", STRONG)
    token = pending(api, "tina@example.com")
    before = len(audit_rows(api))
    for _ in range(6):  # more than the five wrong codes that close a pending session
        answer = error(send(api, token, code_for(api, secret, params)[:6]), 400, 2)
        assert "code" in answer["details"]
    assert len(audit_rows(api)) == before
    assert send(api, token, code_for(api, secret, params)).status_code == 200


def test_an_eight_digit_code_for_a_six_digit_seed_is_a_400(api: Api, admin_token: str) -> None:
    secret, params = enrolled(api, admin_token, "tina@example.com")
    token = pending(api, "tina@example.com")
    eight = totp.code_at(secret_bytes(secret), api.clock.now(), 8)
    error(send(api, token, eight), 400, 2)
    assert send(api, token, code_for(api, secret, params)).status_code == 200


def test_enrolling_with_a_code_of_the_other_length_is_a_400(api: Api, admin_token: str) -> None:
    assert set_settings(api, admin_token, STRONG).status_code == 200
    person = api.scenario.user(admin_token, "tina@example.com")
    generated = api.get("/profile/2fa/generate", person.token).json()
    response = api.post("/profile/set-mfa", {"auth_type": "2FA", "code": "123456"}, person.token)
    error(response, 400, 2)
    assert api.get("/profile", person.token).status_code == 200  # the session lives on
    assert generated["secret"]
