"""The account pages' use cases in core, without HTTP: a new set of recovery
codes for a current TOTP code, proving the password again before a
sensitive change, changing the password with a rotated session, and a
user's own sessions (list, sign out one, sign out the others)."""

from __future__ import annotations

import pytest

from quatrix_mfa.core import own_sessions, profile, reauth
from quatrix_mfa.core.errors import (
    FactorNotActive,
    NotFound,
    ParameterError,
    ReauthenticationRequired,
    WrongCode,
)
from tests.support.core_driver import CoreDriver
from tests.support.scenario import PASSWORD, Scenario

TINA = "tina@example.com"
PAUL = "paul@example.com"


# Recovery codes ----------------------------------------------------------------------


def test_a_current_code_replaces_the_recovery_codes_and_the_old_ones_die(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user_with_totp(scenario.admin().token, TINA)
    ctx = driver.ctx(tina.token)

    new = profile.regenerate_recovery_codes(driver.core, ctx, scenario.code(tina.secret))

    assert len(new) == 10 and not set(new) & set(tina.recovery_codes)
    assert profile.recovery_codes_left(driver.core, driver.ctx(tina.token)) == 10
    with pytest.raises(WrongCode):
        driver.second_factor(scenario.pending(TINA, PASSWORD), "2FA", tina.recovery_codes[0])
    full = driver.second_factor(scenario.pending(TINA, PASSWORD), "2FA", new[0])
    assert full.step is None
    assert driver.alive(tina.token)  # replacing the codes closes no session


def test_the_code_that_replaced_them_cannot_replace_them_again(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user_with_totp(scenario.admin().token, TINA)
    code = scenario.code(tina.secret)
    first = profile.regenerate_recovery_codes(driver.core, driver.ctx(tina.token), code)
    with pytest.raises(WrongCode):
        profile.regenerate_recovery_codes(driver.core, driver.ctx(tina.token), code)
    # The refused replay left the first new set in place.
    assert driver.second_factor(scenario.pending(TINA, PASSWORD), "2FA", first[0]).step is None


def test_a_wrong_code_or_no_2fa_replaces_nothing(driver: CoreDriver, scenario: Scenario) -> None:
    tina = scenario.user_with_totp(scenario.admin().token, TINA)
    with pytest.raises(WrongCode):
        profile.regenerate_recovery_codes(
            driver.core, driver.ctx(tina.token), scenario.wrong_code(tina.secret)
        )
    assert profile.recovery_codes_left(driver.core, driver.ctx(tina.token)) == 10
    paul = scenario.user(scenario.admin().token, PAUL)
    with pytest.raises(FactorNotActive):
        profile.regenerate_recovery_codes(driver.core, driver.ctx(paul.token), "123456")


# Reauthentication ------------------------------------------------------------------------


def test_a_recent_sign_in_needs_no_password_an_older_one_does(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user(scenario.admin().token, TINA)
    reauth.reauthenticate(driver.core, driver.ctx(tina.token), "")
    driver.clock.advance(driver.core.sessions.reauth_seconds + 1)
    driver.ctx(tina.token)  # keeps it alive (idle time)
    with pytest.raises(ReauthenticationRequired) as needed:
        reauth.reauthenticate(driver.core, driver.ctx(tina.token), "")
    assert needed.value.details and "password" in needed.value.details
    with pytest.raises(ParameterError) as wrong:
        reauth.reauthenticate(driver.core, driver.ctx(tina.token), "not my password at all")
    assert not isinstance(wrong.value, ReauthenticationRequired)
    reauth.reauthenticate(driver.core, driver.ctx(tina.token), PASSWORD)


# Password with a rotated session ------------------------------------------------------


def test_a_rotated_password_change_closes_every_old_session_and_opens_one(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user(scenario.admin().token, TINA)
    other = scenario.full_session(TINA, PASSWORD)
    new = "a rotated new passphrase 9"
    done = profile.set_password(driver.core, driver.ctx(tina.token), PASSWORD, new, rotate=True)
    assert done.token is not None and driver.alive(done.token)
    assert not driver.alive(tina.token) and not driver.alive(other)
    assert scenario.full_session(TINA, new)


# Own sessions --------------------------------------------------------------------------


def test_a_user_lists_and_closes_only_their_own_sessions(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user(scenario.admin().token, TINA)
    tina_other = scenario.full_session(TINA, PASSWORD)
    paul = scenario.user(scenario.admin().token, PAUL)
    mine = own_sessions.list_own(driver.core, driver.ctx(tina.token))
    assert len(mine) == 2 and [s.current for s in mine] == [True, False]
    assert all(tina.token not in s.handle and tina_other not in s.handle for s in mine)
    (pauls,) = own_sessions.list_own(driver.core, driver.ctx(paul.token))

    with pytest.raises(NotFound):  # Paul's handle is nothing to Tina
        own_sessions.close_own(driver.core, driver.ctx(tina.token), pauls.handle)
    assert driver.alive(paul.token)

    assert not own_sessions.close_own(driver.core, driver.ctx(tina.token), mine[1].handle)
    assert not driver.alive(tina_other) and driver.alive(tina.token)
    with pytest.raises(NotFound):  # closed once
        own_sessions.close_own(driver.core, driver.ctx(tina.token), mine[1].handle)


def test_signing_out_the_others_keeps_this_one_and_no_one_elses(
    driver: CoreDriver, scenario: Scenario
) -> None:
    tina = scenario.user(scenario.admin().token, TINA)
    others = [scenario.full_session(TINA, PASSWORD) for _ in range(2)]
    paul = scenario.user(scenario.admin().token, PAUL)
    own_sessions.close_others(driver.core, driver.ctx(tina.token))
    assert driver.alive(tina.token) and driver.alive(paul.token)
    assert not any(driver.alive(t) for t in others)
    (left,) = own_sessions.list_own(driver.core, driver.ctx(tina.token))
    assert left.current
    assert len(own_sessions.list_own(driver.core, driver.ctx(paul.token))) == 1
