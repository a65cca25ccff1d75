"""What a session opened through a trusted device may not do (issue 13,
attack finding F1): the device only stood in for the second factors, so it
may not change or remove them, set a PIN or replace the recovery codes.
Each refusal is a 403 ErrorModel and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, error
from tests.support.devices import events, login_with, trust, trusted
from tests.support.scenario import PIN, TotpUser

MSG = "This sign-in used a trusted device: sign in with your second factor to change it"


@pytest.fixture
def tina(api: Api, admin_token: str) -> TotpUser:
    return api.scenario.user_with_totp(admin_token, "tina@example.com")


def by_device(api: Api, user: TotpUser) -> tuple[str, str]:
    """A trusted device of ``user`` and a full session opened through it."""
    device = trust(api, user)
    answer = login_with(api, user, device)
    assert answer.status_code == 200, answer.text
    return device, answer.json()["session_id"]


def _generate(api: Api, token: str, user: TotpUser) -> Any:
    return api.get("/profile/2fa/generate", token)


def _set_totp(api: Api, token: str, user: TotpUser) -> Any:
    return api.post("/profile/set-mfa", {"auth_type": "2FA", "code": "123456"}, token)


def _set_pin(api: Api, token: str, user: TotpUser) -> Any:
    return api.post("/profile/set-mfa", {"auth_type": "PIN", "code": PIN}, token)


def _remove_2fa(api: Api, token: str, user: TotpUser) -> Any:
    return api.post("/profile/remove-mfa", {"auth_type": "2FA"}, token)


def _remove_pin(api: Api, token: str, user: TotpUser) -> Any:
    return api.post("/profile/remove-mfa", {"auth_type": "PIN"}, token)


def _new_codes(api: Api, token: str, user: TotpUser) -> Any:
    return api.post("/profile/recovery-codes", {"code": api.code(user.secret)}, token)


@pytest.mark.parametrize(
    "change", [_generate, _set_totp, _set_pin, _remove_2fa, _remove_pin, _new_codes]
)
def test_a_trusted_device_session_may_not_change_the_users_factors(
    api: Api, tina: TotpUser, change: Any
) -> None:
    device, session = by_device(api, tina)
    audited = events(api, tina.id, "factor.")
    with api.core.store.transaction(write=False) as tx:
        before = tx.users.get(tina.id)
        codes_before = tx.credentials.recovery_codes_left(tina.id)
    body = error(change(api, session, tina), 403, 3)
    assert body["msg"] == MSG
    with api.core.store.transaction(write=False) as tx:
        assert tx.users.get(tina.id) == before  # no factor, epoch or secret moved
        assert tx.credentials.enrollment(tina.id) is None  # no pending key either
        assert tx.credentials.recovery_codes_left(tina.id) == codes_before
    assert events(api, tina.id, "factor.") == audited
    assert trusted(api, tina, device)  # the trust itself stands


def test_a_session_that_proved_the_second_factor_still_may(api: Api, tina: TotpUser) -> None:
    by_device(api, tina)
    assert _generate(api, tina.token, tina).status_code == 200
    answer = _set_pin(api, tina.token, tina)
    assert answer.status_code == 200, answer.text
