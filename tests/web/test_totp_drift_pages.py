"""Issue 13 on the pages, in-process on the fake clock: the second-factor step
says when the phone's clock is off or the code was used (English and German),
a code of the other length is told apart, the admin settings choose the TOTP
parameters, and the users list marks a drifting clock."""

from __future__ import annotations

import uuid

import pytest

from quatrix_mfa.core.factors import totp
from quatrix_mfa.core.model import TOTP_KIND, Credential
from tests.support.admin import PASSWORD, add_users, admin_account
from tests.support.codes import totp_code
from tests.web.conftest import Site

GERMAN = {"Accept-Language": "de-DE,de;q=0.9"}


def enrolled_user(site: Site) -> tuple[str, str]:
    """A user with TOTP enrolled through the API: (email, base32 secret); the
    clock then moves a period on, past the step enrolling spent."""
    (person,) = add_users(site.core, 1, "tina", password=True)
    api = "/api/1.0"
    token = site.http.get(f"{api}/session/login", auth=(person.email, PASSWORD)).json()[
        "session_id"
    ]
    secret = site.http.get(f"{api}/profile/2fa/generate", headers={"X-Auth-Token": token}).json()[
        "secret"
    ]
    body = {"auth_type": "2FA", "code": totp_code(site.clock, secret)}
    response = site.http.post(f"{api}/profile/set-mfa", json=body, headers={"X-Auth-Token": token})
    assert response.status_code == 200, response.text
    site.clock.advance(totp.PERIOD)
    return person.email, secret


def code_step(site: Site, code: str, **kw: object) -> object:
    return site.submit("/login", "/login/code", {"code": code, "next": ""}, **kw)


@pytest.mark.parametrize(
    ("steps", "said"),
    [
        (-6, "Your phone's clock seems about 3 minutes behind: set it to automatic time."),
        (2, "Your phone's clock seems about a minute ahead: set it to automatic time."),
        (20, "Your phone's clock seems about 10 minutes ahead: set it to automatic time."),
    ],
)
def test_the_code_step_says_how_far_the_phone_clock_is_off(
    site: Site, steps: int, said: str
) -> None:
    email, secret = enrolled_user(site)
    site.sign_in(email, PASSWORD)
    page = code_step(site, totp_code(site.clock, secret, steps))
    assert page.status_code == 401
    assert said in page.text.replace("&#39;", "'")


def test_the_code_step_says_a_code_was_used_in_german(site: Site) -> None:
    email, secret = enrolled_user(site)
    site.sign_in(email, PASSWORD)
    page = code_step(site, totp_code(site.clock, secret, -1), headers=GERMAN)
    assert page.status_code == 401
    assert "Dieser Code wurde bereits verwendet: Warten Sie auf den nächsten." in page.text
    page = code_step(site, totp_code(site.clock, secret, -8), headers=GERMAN)
    assert "Die Uhr Ihres Telefons geht anscheinend etwa 4 Minuten nach" in page.text


def test_a_code_of_the_other_length_is_told_apart(site: Site) -> None:
    email, secret = enrolled_user(site)
    site.sign_in(email, PASSWORD)
    page = code_step(site, totp_code(site.clock, secret) + "00")
    assert page.status_code == 400
    assert "Your app&#39;s codes for this key have 6 digits." in page.text
    done = code_step(site, totp_code(site.clock, secret))
    assert done.status_code == 303


def test_the_admin_chooses_the_totp_parameters(site: Site) -> None:
    site.sign_in()
    page = site.get("/admin/settings")
    assert "Authenticator app codes" in page.text and "Google Authenticator" in page.text
    data = {"totp_algorithm": "SHA512", "totp_digits": "8", "totp_period": "60"}
    response = site.submit("/admin/settings", "/admin/settings/totp", data)
    assert response.headers["location"] == "/admin/settings?notice=saved"
    account = admin_account(site.core)
    assert (account.totp_algorithm, account.totp_digits, account.totp_period) == ("SHA512", 8, 60)
    assert '<option value="SHA512" selected>' in site.get("/admin/settings").text


def test_a_key_of_other_parameters_says_them_for_typing_it_in(site: Site) -> None:
    site.sign_in()
    data = {"totp_algorithm": "SHA256", "totp_digits": "8", "totp_period": "60"}
    site.submit("/admin/settings", "/admin/settings/totp", data)
    page = site.get("/account/2fa").text
    assert "Set the app to SHA256, 8 digits, 60 seconds" in page
    assert "digits=8" in page and "period=60" in page


def test_a_key_of_the_default_parameters_says_nothing_more(site: Site) -> None:
    site.sign_in()
    page = site.get("/account/2fa").text
    assert "data-totp-secret" in page and "Set the app to" not in page


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("totp_digits", "7", "Choose 6 or 8 digits."),
        ("totp_period", "45", "Choose 30 or 60 seconds."),
        ("totp_algorithm", "MD5", "Choose SHA-1, SHA-256 or SHA-512."),
    ],
)
def test_a_tampered_totp_choice_is_refused_and_changes_nothing(
    site: Site, field: str, value: str, said: str
) -> None:
    site.sign_in()
    data = {"totp_algorithm": "SHA256", "totp_digits": "8", "totp_period": "60", field: value}
    response = site.submit("/admin/settings", "/admin/settings/totp", data)
    assert response.status_code == 400
    assert said in response.text
    account = admin_account(site.core)
    assert (account.totp_algorithm, account.totp_digits, account.totp_period) == ("SHA1", 6, 30)


def test_the_users_list_marks_a_drifting_clock(site: Site) -> None:
    steady, drifting = add_users(site.core, 2, "clock")
    now = site.clock.now()
    with site.core.store.transaction() as tx:
        for user, offset in ((steady, 0), (drifting, -1)):
            credential = Credential(
                str(uuid.uuid4()), user.id, TOTP_KIND, b"sealed", "k", now, last_offset=offset
            )
            tx.credentials.add(credential)
    site.sign_in()
    page = site.get("/admin/users").text
    rows = {line for line in page.split("<tr") if "clock0" in line}
    marked = [row for row in rows if 'data-field="drift"' in row]
    assert len(marked) == 1 and drifting.email in marked[0]
