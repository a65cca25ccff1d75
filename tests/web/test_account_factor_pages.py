"""The factor pages of the account in-process (no browser): turning 2FA on
and replacing its key, the recovery codes (shown once, download, print, a
new set for a current code), turning 2FA off unless it is forced, the PIN,
and the password asked again before a sensitive change on an old sign-in."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from quatrix_mfa.core.errors import WrongCode
from quatrix_mfa.core.factors import totp
from quatrix_mfa.core.model import Step
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.account_pages import (
    alive,
    code_now,
    edit_account,
    edit_user,
    people,
    recovery_codes,
    totp_key,
)
from tests.web.conftest import Site

TWOFA = "/account/2fa"
PIN = "/account/pin"


def turn_on_2fa(site: Site) -> tuple[bytes, list[str]]:
    """2FA on from the account page: (seed, recovery codes); the clock then
    moves one step on, so the enrollment code's step is spent."""
    seed = totp_key(site.get(TWOFA).text)
    shown = site.submit(TWOFA, TWOFA, {"code": code_now(site, seed)})
    assert shown.status_code == 200, shown.text
    site.clock.advance(totp.PERIOD)
    return seed, recovery_codes(shown.text)


def sign_in_long_ago(site: Site) -> None:
    """Past the reauthentication window: a sensitive form asks for the password."""
    site.clock.advance(site.core.sessions.reauth_seconds + 1)


def field_error(html: str, field_id: str) -> str:
    assert f'id="{field_id}-error"' in html, html
    return html.split(f'id="{field_id}-error"', 1)[1].split("</p>", 1)[0]


def recovery_login(site: Site, code: str) -> bool:
    driver, scenario = people(site)
    try:
        driver.second_factor(scenario.pending(ADMIN_EMAIL, ADMIN_PASSWORD), "2FA", code)
    except WrongCode:
        return False
    return True


# 2FA on -----------------------------------------------------------------------------------


def test_turning_on_2fa_shows_the_key_then_the_codes_once_and_keeps_this_browser(
    site: Site,
) -> None:
    site.sign_in()
    _, scenario = people(site)
    other = scenario.full_session()
    before = site.session_token
    page = site.get(TWOFA)
    assert page.headers["cache-control"] == "no-store"
    assert "<svg" in page.text and 'href="otpauth://totp/' in page.text
    assert 'inputmode="numeric"' in page.text and 'autocomplete="one-time-code"' in page.text
    assert "Current password" not in page.text  # turning it on is not a sensitive change
    seed = totp_key(page.text)
    assert totp_key(site.get(TWOFA).text) == seed  # a reload shows the same key

    wrong = site.submit(TWOFA, TWOFA, {"code": "000000"})
    assert wrong.status_code == 401
    assert "not right" in field_error(wrong.text, "enroll-code")
    assert 'value="000000"' in wrong.text and totp_key(wrong.text) == seed

    shown = site.submit(TWOFA, TWOFA, {"code": code_now(site, seed)})

    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    codes = recovery_codes(shown.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    download = shown.text.split('download="quatrix-mfa-recovery-codes.txt"')[0]
    href = download.rsplit('href="', 1)[1].split('"', 1)[0]
    assert href.startswith("data:text/plain") and all(c in unquote(href) for c in codes)
    assert 'src="/static/print.js"' in shown.text and "data-print hidden" in shown.text
    assert site.session_token not in (None, before) and not alive(site.core, other)
    assert 'data-field="codes-left">10<' in site.get(TWOFA).text
    assert 'data-field="2fa">On<' in site.get("/account").text
    assert "window.print()" in site.get("/static/print.js").text


def test_new_recovery_codes_for_a_current_code_and_the_old_ones_die(site: Site) -> None:
    site.sign_in()
    seed, old = turn_on_2fa(site)
    page = site.get(TWOFA)
    assert "Get new recovery codes" in page.text

    wrong = site.submit(TWOFA, TWOFA + "/recovery-codes", {"code": "000000"})
    assert wrong.status_code == 400 and "not right" in field_error(wrong.text, "codes-code")
    assert 'value="000000"' in wrong.text

    shown = site.submit(TWOFA, TWOFA + "/recovery-codes", {"code": code_now(site, seed)})

    new = recovery_codes(shown.text)
    assert shown.status_code == 200 and len(new) == 10 and not set(new) & set(old)
    assert "Your new recovery codes" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert site.get("/account").status_code == 200  # no session closed
    assert not recovery_login(site, old[0]) and recovery_login(site, new[0])
    assert 'data-field="codes-left">9<' in site.get(TWOFA).text


def test_an_old_sign_in_must_give_the_password_for_new_codes(site: Site) -> None:
    site.sign_in()
    seed, old = turn_on_2fa(site)
    sign_in_long_ago(site)
    page = site.get(TWOFA)
    assert 'id="codes-current_password"' in page.text
    code = code_now(site, seed)

    missing = site.submit(TWOFA, TWOFA + "/recovery-codes", {"code": code})
    assert missing.status_code == 400
    assert "current password" in field_error(missing.text, "codes-current_password")
    assert f'value="{code}"' in missing.text  # the code typed is kept
    wrong = site.submit(
        TWOFA, TWOFA + "/recovery-codes", {"code": code, "current_password": "not it at all"}
    )
    assert "not your current password" in field_error(wrong.text, "codes-current_password")
    assert 'value="not it at all"' not in wrong.text
    assert recovery_login(site, old[0])  # nothing was replaced

    done = site.submit(
        TWOFA, TWOFA + "/recovery-codes", {"code": code, "current_password": ADMIN_PASSWORD}
    )
    assert done.status_code == 200 and len(recovery_codes(done.text)) == 10


def test_replacing_the_key_needs_the_password_on_an_old_sign_in_then_works(
    site: Site,
) -> None:
    site.sign_in()
    old_seed, _ = turn_on_2fa(site)
    assert "<svg" not in site.get(TWOFA).text  # the key shows only to replace it
    sign_in_long_ago(site)
    page = site.get(TWOFA + "?replace=1")
    new_seed = totp_key(page.text)
    assert new_seed != old_seed and 'id="enroll-current_password"' in page.text

    refused = site.submit(TWOFA + "?replace=1", TWOFA, {"code": code_now(site, new_seed)})
    assert refused.status_code == 400
    assert "current password" in field_error(refused.text, "enroll-current_password")

    data = {"code": code_now(site, new_seed), "current_password": ADMIN_PASSWORD}
    replaced = site.submit(TWOFA + "?replace=1", TWOFA, data)
    assert replaced.status_code == 200 and len(recovery_codes(replaced.text)) == 10
    site.clock.advance(totp.PERIOD)
    driver, scenario = people(site)
    pending = scenario.pending(ADMIN_EMAIL, ADMIN_PASSWORD)
    with pytest.raises(WrongCode):
        driver.second_factor(pending, "2FA", code_now(site, old_seed))
    assert driver.second_factor(pending, "2FA", code_now(site, new_seed)).step is None


# 2FA off ----------------------------------------------------------------------------------


def test_turning_2fa_off(site: Site) -> None:
    site.sign_in()
    turn_on_2fa(site)
    done = site.submit(TWOFA, TWOFA + "/remove", {})
    assert done.headers["location"] == "/account/2fa?notice=2fa-off"
    assert "2FA is off" in site.get(TWOFA + "?notice=2fa-off").text
    assert 'data-field="2fa">Off<' in site.get("/account").text


@pytest.mark.parametrize(
    ("force", "reason"),
    [
        ({"user": {"twofa_forced": True}}, "Your administrator requires it"),
        ({"account": {"force_2fa": True}}, "Your organisation requires 2FA for everyone"),
    ],
)
def test_forced_2fa_cannot_be_turned_off_and_the_page_says_who_forces_it(
    site: Site, force: dict[str, Any], reason: str
) -> None:
    site.sign_in()
    turn_on_2fa(site)
    edit_user(site.core, **force.get("user", {}))
    edit_account(site.core, **force.get("account", {}))
    page = site.get(TWOFA)
    assert reason in page.text and "/account/2fa/remove" not in page.text
    refused = site.submit(TWOFA, TWOFA + "/remove", {})
    assert refused.status_code == 400
    assert reason in field_error(refused.text, "remove")
    assert 'data-field="2fa">On' in site.get("/account").text


def test_an_old_sign_in_must_give_the_password_to_turn_2fa_off(site: Site) -> None:
    site.sign_in()
    turn_on_2fa(site)
    sign_in_long_ago(site)
    refused = site.submit(TWOFA, TWOFA + "/remove", {})
    assert "current password" in field_error(refused.text, "remove-current_password")
    assert 'data-field="2fa">On' in site.get("/account").text
    done = site.submit(TWOFA, TWOFA + "/remove", {"current_password": ADMIN_PASSWORD})
    assert done.headers["location"] == "/account/2fa?notice=2fa-off"


# PIN ---------------------------------------------------------------------------------------


def test_setting_changing_and_removing_the_pin(site: Site) -> None:
    site.sign_in()
    page = site.get(PIN)
    assert "4 to 16 digits" in page.text and 'name="pin"' in page.text
    before = site.session_token
    _, scenario = people(site)
    other = scenario.full_session()

    bad = site.submit(PIN, PIN, {"pin": "12ab"})
    assert bad.status_code == 400 and "4 to 16 digits" in field_error(bad.text, "pin")
    assert 'value="12ab"' not in bad.text

    done = site.submit(PIN, PIN, {"pin": "4711"})
    assert done.headers["location"] == "/account/pin?notice=pin-set"
    assert site.session_token not in (None, before) and not alive(site.core, other)
    assert "Your PIN is on" in site.get(PIN).text
    assert 'data-field="pin">On<' in site.get("/account").text

    sign_in_long_ago(site)
    change = site.submit(PIN, PIN, {"pin": "8080"})
    assert "current password" in field_error(change.text, "set-current_password")
    changed = site.submit(PIN, PIN, {"pin": "8080", "current_password": ADMIN_PASSWORD})
    assert changed.headers["location"] == "/account/pin?notice=pin-set"
    driver, _ = people(site)
    pending = scenario.pending(ADMIN_EMAIL, ADMIN_PASSWORD, step=Step.PIN)
    assert driver.second_factor(pending, "PIN", "8080").step is None

    # Giving the password once does not renew the sign-in: asked again.
    removed = site.submit(PIN, PIN + "/remove", {})
    assert removed.status_code == 400
    assert "current password" in field_error(removed.text, "remove-current_password")
    removed = site.submit(PIN, PIN + "/remove", {"current_password": ADMIN_PASSWORD})
    assert removed.headers["location"] == "/account/pin?notice=pin-off"
    assert "You have no PIN" in site.get(PIN).text
    assert alive(site.core, site.session_token or "")


def test_a_pin_the_administrator_requires_cannot_be_removed_and_the_page_says_so(
    site: Site,
) -> None:
    site.sign_in()
    site.submit(PIN, PIN, {"pin": "4711"})
    edit_user(site.core, pin_forced=True)
    page = site.get(PIN)
    assert "Your administrator requires it" in page.text and "/account/pin/remove" not in page.text
    refused = site.submit(PIN, PIN + "/remove", {})
    assert refused.status_code == 400
    assert "administrator requires it" in field_error(refused.text, "remove")
    assert "Your PIN is on" in site.get(PIN).text
