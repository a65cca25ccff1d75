"""Security mail (issue 12, item 4): the user hears of every change of their
factors and password, with what happened, when, from which address, and
what to do if it was not them; queued in the outbox, never sent in-request."""

from __future__ import annotations

from typing import Any

import pytest

from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.mail import moment
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api
from tests.support import outbox
from tests.support.encoding import b64

PEER = "203.0.113.9"
NEW_PASSWORD = "a brand new passphrase 77"


@pytest.fixture
def seen(make_api: Any) -> Api:
    """The API reached from the address ``PEER``, with its administrator."""
    api: Api = make_api(peer=PEER)
    assert bootstrap(api.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD).created
    return api


def newest(api: Api) -> str:
    return outbox.texts(api.core, ADMIN_EMAIL)[-1]


def says_when_and_where(api: Api, text: str, at: float | None = None) -> None:
    assert f"When: {moment(api.clock.now() if at is None else at)}" in text
    assert f"From the address: {PEER}" in text
    assert "If it was not you, change your password at once" in text


def test_every_change_of_factors_and_password_is_mailed_with_when_and_where(seen: Api) -> None:
    api = seen
    began = api.clock.now()
    token, secret, codes = api.enroll_totp(api.full_session())
    assert newest(api).startswith("Your Quatrix 2FA was set")
    says_when_and_where(api, newest(api), began)

    api.clock.advance(30)
    pending = api.login(ADMIN_EMAIL, ADMIN_PASSWORD).json()["session_id"]
    used = api.post("/session/login", {"auth_type": "2FA", "code": codes[0]}, pending)
    assert used.status_code == 200, used.text
    assert newest(api).startswith("A Quatrix recovery code was used")
    assert "You have 9 recovery codes left" in newest(api)
    says_when_and_where(api, newest(api))
    token = used.json()["session_id"]

    api.clock.advance(30)
    replaced = api.post("/profile/recovery-codes", {"code": api.code(secret)}, token)
    assert replaced.status_code == 200, replaced.text
    assert newest(api).startswith("Your Quatrix set of recovery codes was replaced")
    says_when_and_where(api, newest(api))

    set_pin = api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "97531"}, token)
    token = set_pin.json()["session_ids"]
    assert newest(api).startswith("Your Quatrix PIN was set")
    assert api.post("/profile/remove-mfa", {"auth_type": "PIN"}, token).status_code == 200
    assert newest(api).startswith("Your PIN was turned off")
    says_when_and_where(api, newest(api))

    changed = api.post(
        "/profile/set-password",
        {"password": b64(ADMIN_PASSWORD), "new_password": b64(NEW_PASSWORD)},
        token,
    )
    assert changed.status_code == 200, changed.text
    assert newest(api).startswith("Your Quatrix password was changed")
    says_when_and_where(api, newest(api))

    text = "\n".join(outbox.texts(api.core, ADMIN_EMAIL))
    for secret_text in (secret, *codes, "97531", ADMIN_PASSWORD, NEW_PASSWORD, token):
        assert secret_text not in text
