"""The use cases of core driven directly, without HTTP: login (password,
TOTP, recovery code, PIN), self-service factors and password, an
administrator's factors, reset links, site settings, and the authentication
record a session carries.

The scenarios are the HTTP suite's (tests/support/scenario.py) on another
driver (tests/support/core_driver.py), so a later web edge can run them too.
Answers are core's results and exceptions, not status codes.
"""

from __future__ import annotations

import pytest

from quatrix_mfa.core import admin, auth, profile, reset, site
from quatrix_mfa.core.errors import NotAuthenticated, WrongCode
from quatrix_mfa.core.model import Step
from quatrix_mfa.core.sessions import authenticate
from tests.support import outbox
from tests.support.codes import totp_code
from tests.support.core_driver import CoreDriver
from tests.support.encoding import b64
from tests.support.scenario import ADMIN_EMAIL, PASSWORD, PIN, Scenario

TINA = "tina@example.com"
PAUL = "paul@example.com"
NEW_PASSWORD = "a brand new passphrase 7"


# Login --------------------------------------------------------------------------


def test_a_password_alone_opens_a_full_session_and_with_totp_a_pending_one(
    driver: CoreDriver, scenario: Scenario
) -> None:
    admin_login = driver.login(ADMIN_EMAIL, scenario.admin().password)
    assert admin_login.step is None
    assert driver.ctx(admin_login.token).signed_in.pending_step is None

    tina = scenario.user_with_totp(scenario.admin().token, TINA)
    pending = driver.login(TINA, PASSWORD)
    assert pending.step is Step.TOTP
    assert driver.ctx(pending.token).signed_in.pending_step is Step.TOTP
    assert tina.token != pending.token


def test_a_wrong_password_opens_nothing(driver: CoreDriver, scenario: Scenario) -> None:
    with pytest.raises(NotAuthenticated):
        auth.login_with_password(driver.core, driver.ctx(), ADMIN_EMAIL, "not the password")


def test_a_totp_code_completes_the_login_once_and_its_replay_is_refused(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user_with_totp(scenario.admin().token, TINA)
    code = scenario.code(tina.secret)
    pending = scenario.pending(TINA, PASSWORD)

    full = auth.second_factor(driver.core, driver.ctx(pending), "2FA", code)

    assert full.step is None
    assert driver.ctx(full.token).signed_in.pending_step is None
    assert not driver.alive(pending)  # the pending session is spent with the code
    replay = scenario.pending(TINA, PASSWORD)
    with pytest.raises(WrongCode):
        auth.second_factor(driver.core, driver.ctx(replay), "2FA", code)
    assert driver.alive(replay)  # one wrong code does not close it


def test_a_recovery_code_completes_the_login_once(driver: CoreDriver, scenario: Scenario) -> None:
    tina = scenario.user_with_totp(scenario.admin().token, TINA)
    code = tina.recovery_codes[0]

    first = driver.second_factor(scenario.pending(TINA, PASSWORD), "2FA", code)

    assert first.step is None
    assert driver.session(first.token).factors == ("password", "recovery")  # type: ignore[union-attr]
    with pytest.raises(WrongCode):
        driver.second_factor(scenario.pending(TINA, PASSWORD), "2FA", code)


def test_the_pin_step_follows_totp_and_a_wrong_pin_is_refused(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user_with_totp(scenario.admin().token, TINA)
    scenario.set_pin(tina.token)
    after_totp = driver.second_factor(
        scenario.pending(TINA, PASSWORD), "2FA", scenario.code(tina.secret)
    )
    assert after_totp.step is Step.PIN

    with pytest.raises(WrongCode):
        auth.second_factor(driver.core, driver.ctx(after_totp.token), "PIN", "0000")
    full = auth.second_factor(driver.core, driver.ctx(after_totp.token), "PIN", PIN)

    assert full.step is None
    assert not driver.alive(after_totp.token)


# Self-service ---------------------------------------------------------------------


def test_enrolling_totp_opens_a_fresh_full_session_and_closes_the_old_ones(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user(scenario.admin().token, TINA)
    other = scenario.full_session(TINA, PASSWORD)
    enrollment = profile.start_totp_enrollment(driver.core, driver.ctx(tina.token))
    code = totp_code(driver.clock, enrollment.secret)

    result = profile.set_factor(driver.core, driver.ctx(tina.token), "2FA", code)

    assert result.token not in (tina.token, other)
    assert driver.alive(result.token)
    assert not driver.alive(tina.token) and not driver.alive(other)
    assert result.recovery_codes and len(set(result.recovery_codes)) == len(result.recovery_codes)
    assert scenario.pending(TINA, PASSWORD, Step.TOTP)


def test_changing_the_password_closes_the_other_sessions_and_keeps_the_callers(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user(scenario.admin().token, TINA)
    other = scenario.full_session(TINA, PASSWORD)

    profile.change_password(driver.core, driver.ctx(tina.token), b64(PASSWORD), b64(NEW_PASSWORD))

    assert driver.alive(tina.token)
    assert not driver.alive(other)
    with pytest.raises(NotAuthenticated):
        driver.login(TINA, PASSWORD)
    assert scenario.full_session(TINA, NEW_PASSWORD)
    assert [m.subject for m in outbox.mails(driver.core, TINA)][-1] == (
        "Your Quatrix password was changed"
    )


# An administrator's factors ------------------------------------------------------------


def test_an_admin_setting_a_pin_closes_the_users_sessions_and_the_pin_is_asked(
    driver: CoreDriver, scenario: Scenario
) -> None:
    boss = scenario.admin()
    paul = scenario.user(boss.token, PAUL)

    admin.set_factor(driver.core, driver.ctx(boss.token), [paul.id], "PIN", "97531")

    assert not driver.alive(paul.token)
    assert driver.alive(boss.token)
    pending = scenario.pending(PAUL, PASSWORD, Step.PIN)
    assert driver.second_factor(pending, "PIN", "97531").step is None


def test_an_admin_removing_a_pin_lets_the_password_alone_log_in(
    driver: CoreDriver, scenario: Scenario
) -> None:
    boss = scenario.admin()
    paul = scenario.user_with_pin(boss.token, PAUL)

    admin.remove_factor(driver.core, driver.ctx(boss.token), [paul.id], "PIN")

    assert scenario.full_session(PAUL, PASSWORD)
    assert any("Your PIN was turned off" in text for text in outbox.texts(driver.core, PAUL))


def test_an_admin_resetting_totp_closes_the_users_sessions_and_asks_to_enroll_again(
    driver: CoreDriver, scenario: Scenario
) -> None:
    boss = scenario.admin()
    tina = scenario.user_with_totp(boss.token, TINA)

    admin.reset_factor(driver.core, driver.ctx(boss.token), [tina.id])

    assert not driver.alive(tina.token)
    enrolling = scenario.pending(TINA, PASSWORD, Step.ENROLL_TOTP)
    new_token, _, _ = scenario.enroll_totp(enrolling)
    assert driver.session(new_token).steps == ()  # type: ignore[union-attr]


# Reset links -----------------------------------------------------------------------


def test_a_reset_link_sets_the_password_once_and_closes_every_session(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user(scenario.admin().token, TINA)
    driver.clock.advance(driver.core.links.resend_after)  # past the set-password link's
    reset.request_reset(driver.core, driver.ctx(), [TINA])
    reset_id = outbox.latest_reset_id(driver.core, TINA)

    reset.reset_password(driver.core, driver.ctx(), reset_id, NEW_PASSWORD)

    assert not driver.alive(tina.token)
    assert scenario.full_session(TINA, NEW_PASSWORD)
    with pytest.raises(NotAuthenticated):
        reset.reset_password(driver.core, driver.ctx(), reset_id, "yet another passphrase 8")
    with pytest.raises(NotAuthenticated):
        reset.metadata(driver.core, driver.ctx(), reset_id)


# Site settings ---------------------------------------------------------------------


def test_forcing_2fa_closes_the_sessions_of_users_without_totp_only(
    driver: CoreDriver, scenario: Scenario
) -> None:
    boss = scenario.admin()
    tina = scenario.user_with_totp(boss.token, TINA)
    paul = scenario.user(boss.token, PAUL)

    account = site.set_settings(driver.core, driver.ctx(boss.token), {}, ["2FA"], None)

    assert account.force_2fa
    assert driver.alive(tina.token)
    assert not driver.alive(paul.token)
    assert not driver.alive(boss.token)  # the admin has no TOTP either
    assert scenario.pending(PAUL, PASSWORD, Step.ENROLL_TOTP)


# The authentication record ------------------------------------------------------------


def test_a_session_records_its_factors_in_order_and_the_time_of_the_password(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user_with_totp(scenario.admin().token, TINA)
    scenario.set_pin(tina.token)
    pending = scenario.pending(TINA, PASSWORD)
    password_at = driver.clock.now()

    driver.clock.advance(20)
    after_totp = driver.second_factor(pending, "2FA", scenario.code(tina.secret))
    driver.clock.advance(20)
    full = driver.second_factor(after_totp.token, "PIN", PIN)

    record = driver.session(full.token)
    assert record is not None
    assert record.factors == ("password", "totp", "pin")
    assert record.auth_time == password_at
    assert record.expires_at == password_at + driver.core.sessions.max_seconds


def test_a_set_mfa_rotation_keeps_the_absolute_expiry_of_the_login(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user(scenario.admin().token, TINA)
    logged_in_at = driver.clock.now()
    token = scenario.full_session(TINA, PASSWORD)
    max_seconds = driver.core.sessions.max_seconds

    driver.clock.advance(600)  # well into the session, not idle
    rotated, _, _ = scenario.enroll_totp(token)

    record = driver.session(rotated)
    assert record is not None and rotated != token
    assert record.factors == ("password", "totp")
    assert record.auth_time == logged_in_at
    assert record.expires_at == logged_in_at + max_seconds
    # Kept busy (never idle), it still ends max_seconds after the login.
    while driver.clock.now() + 600 < logged_in_at + max_seconds:
        driver.clock.advance(600)
        authenticate(driver.core, rotated, driver.addr, keepalive=True)
    driver.clock.set(logged_in_at + max_seconds - 1)
    assert driver.alive(rotated)
    driver.clock.set(logged_in_at + max_seconds)
    assert not driver.alive(rotated)
    assert not driver.alive(tina.token) and not driver.alive(token)  # closed by the enrollment


def test_wrong_codes_on_a_session_the_codes_beside_them_closed_are_answered_as_closed(
    driver: CoreDriver, scenario: Scenario
) -> None:
    # Codes sent in parallel on one pending session each read it before any
    # counted: once five closed it, the rest find it gone in their own
    # transaction, and answer as for a closed session (code 1), not "wrong".
    scenario.user_with_totp(scenario.admin().token, TINA)
    pending = scenario.pending(TINA, PASSWORD)
    stale = [driver.ctx(pending) for _ in range(7)]  # read before any code counted
    answers = []
    for ctx in stale:
        try:
            auth.second_factor(driver.core, ctx, "2FA", "000000")
        except (WrongCode, NotAuthenticated) as refusal:
            answers.append(type(refusal))
    assert answers == [WrongCode] * 5 + [NotAuthenticated] * 2
    assert not driver.alive(pending)
