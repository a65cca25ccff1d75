"""Recovery codes, PIN rules, and the factor interface (load/verify/redeem) over a real store."""

from __future__ import annotations

import re

import pytest
from cryptography.exceptions import InvalidTag

from quatrix_mfa.core import auth
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.errors import ErrorCode, ParameterError
from quatrix_mfa.core.factors import pin, recovery, totp
from quatrix_mfa.core.model import SessionRecord, Step, User
from quatrix_mfa.core.sessions import Caller
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_SHAPE = re.compile(rf"[{CROCKFORD}]{{4}}(-[{CROCKFORD}]{{4}}){{3}}")


# Recovery codes: shape and normalization


def test_new_recovery_code_is_four_groups_of_four_crockford_characters() -> None:
    for _ in range(50):
        assert CODE_SHAPE.fullmatch(recovery.new_code())


def test_new_recovery_codes_do_not_repeat() -> None:
    codes = {recovery.new_code() for _ in range(200)}
    assert len(codes) == 200


def test_recovery_code_normalization_ignores_case_dashes_and_spaces() -> None:
    expected = "ABCD0123EFGH4567"
    for typed in (
        "ABCD-0123-EFGH-4567",
        "abcd-0123-efgh-4567",
        "abcd 0123 efgh 4567",
        "  AbCd0123-efgh 4567 ",
        "ABCD0123EFGH4567",
        "A-B-C-D-0-1-2-3-E-F-G-H-4-5-6-7",
    ):
        assert recovery.normalize(typed) == expected, typed


def test_recovery_code_normalization_reads_o_i_l_as_0_1_1() -> None:
    assert recovery.normalize("OOOO-IIII-LLLL-oil0") == "0000111111110110"


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "ABCD-0123-EFGH-456",  # 15 characters
        "ABCD-0123-EFGH-45678",  # 17 characters
        "ABCD-0123-EFGH-456U",  # U is not in Crockford's alphabet
        "ABCD_0123_EFGH_4567",  # underscores are not separators
        "ABCD.0123.EFGH.4567",
        "ABCD-0123-EFGH-456\u00e9",
        "ABCD-0123-EFGH-45\uff167",  # a fullwidth digit
        "ABCD-0123-EFGH-4567\n",
        "123456",  # a TOTP code is not a recovery code
        "-" * 60 + "ABCD0123EFGH4567",  # over 64 characters
    ],
)
def test_junk_is_not_a_recovery_code(junk: str) -> None:
    assert recovery.normalize(junk) is None
    assert not recovery.looks_like_recovery_code(junk)


# PIN rules


@pytest.mark.parametrize("good", ["1234", "0000", "9876543210", "1234567890123456"])
def test_pin_of_4_to_16_ascii_digits_is_accepted(good: str) -> None:
    assert pin.parse_pin(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "123",
        "12345678901234567",  # 17 digits
        "12a4",
        "12 34",
        " 1234",
        "1234\n",
        "-1234",
        "١٢٣٤",  # Arabic-Indic digits are digits, but not ASCII
        "\uff11\uff12\uff13\uff14",  # fullwidth digits
        "12³4",
    ],
)
def test_pin_that_is_not_4_to_16_ascii_digits_is_a_parameter_error(bad: str) -> None:
    with pytest.raises(ParameterError) as caught:
        pin.parse_pin(bad, field="pin")
    assert caught.value.code == ErrorCode.PARAMETER
    assert caught.value.details is not None and "pin" in caught.value.details


# The factor interface over the real store


@pytest.fixture
def admin(core: Core) -> User:
    result = bootstrap(core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD)
    assert result.created
    with core.store.transaction(write=False) as tx:
        user = tx.users.by_email(ADMIN_EMAIL)
    assert user is not None
    return user


def _enroll(core: Core, user: User) -> bytes:
    """Enroll and activate TOTP for ``user`` through the factor; returns the seed."""
    now = core.clock.now()
    with core.store.transaction() as tx:
        seed = core.totp.begin(tx, user, now)
        enrollment = tx.credentials.enrollment(user.id)
        assert enrollment is not None
        step = core.totp.enrollment_step(enrollment, user, totp.code_at(seed, now), now)
        assert step == totp.time_step(now)
        core.totp.activate(tx, user, enrollment, step, now)
        tx.users.save(user)
    return seed


def test_enrollment_stores_the_seed_encrypted(core: Core, admin: User) -> None:
    seed = _enroll(core, admin)
    with core.store.transaction(write=False) as tx:
        credential = core.totp.load(tx, admin)
        saved = tx.users.get(admin.id)
    assert credential is not None and saved is not None
    assert saved.twofa_active
    assert seed not in credential.secret
    assert credential.last_step == totp.time_step(core.clock.now())


def test_enrollment_code_cannot_be_used_again_to_log_in(core: Core, admin: User) -> None:
    seed = _enroll(core, admin)
    now = core.clock.now()
    with core.store.transaction(write=False) as tx:
        credential = core.totp.load(tx, admin)
    assert credential is not None
    assert core.totp.verify(credential, admin, totp.code_at(seed, now), now) is None


def test_wrong_enrollment_code_does_not_match(core: Core, admin: User) -> None:
    now = core.clock.now()
    with core.store.transaction() as tx:
        seed = core.totp.begin(tx, admin, now)
        enrollment = tx.credentials.enrollment(admin.id)
    assert enrollment is not None
    wrong = totp.code_at(seed, now + 5 * totp.PERIOD)
    assert core.totp.enrollment_step(enrollment, admin, wrong, now) is None


def test_totp_match_redeems_once(core: Core, admin: User) -> None:
    seed = _enroll(core, admin)
    core.clock.advance(totp.PERIOD)  # type: ignore[attr-defined]
    now = core.clock.now()
    code = totp.code_at(seed, now)
    with core.store.transaction() as tx:
        credential = core.totp.load(tx, admin)
        assert credential is not None
        match = core.totp.verify(credential, admin, code, now)
        assert match is not None and match.token == totp.time_step(now)
        assert core.totp.redeem(tx, admin, match, now) is True
    with core.store.transaction() as tx:
        assert core.totp.redeem(tx, admin, match, now) is False
        credential = core.totp.load(tx, admin)
    assert credential is not None
    assert credential.last_step == totp.time_step(now)
    # Once redeemed, the same code no longer even matches.
    assert core.totp.verify(credential, admin, code, now) is None


def test_two_verifications_of_one_code_only_redeem_once(core: Core, admin: User) -> None:
    seed = _enroll(core, admin)
    core.clock.advance(totp.PERIOD)  # type: ignore[attr-defined]
    now = core.clock.now()
    code = totp.code_at(seed, now)
    # Two workers load and verify before either redeems: only one may win.
    with core.store.transaction(write=False) as tx:
        credential = core.totp.load(tx, admin)
    assert credential is not None
    first = core.totp.verify(credential, admin, code, now)
    second = core.totp.verify(credential, admin, code, now)
    assert first is not None and second is not None
    with core.store.transaction() as tx:
        wins = [core.totp.redeem(tx, admin, m, now) for m in (first, second)]
    assert wins == [True, False]


def test_code_matched_on_a_replaced_seed_does_not_redeem(core: Core, admin: User) -> None:
    seed = _enroll(core, admin)
    core.clock.advance(totp.PERIOD)  # type: ignore[attr-defined]
    now = core.clock.now()
    with core.store.transaction(write=False) as tx:
        credential = core.totp.load(tx, admin)
    assert credential is not None
    # The next step's code: its step is past the new seed's last one too, so
    # only the credential check can refuse it.
    match = core.totp.verify(credential, admin, totp.code_at(seed, now + totp.PERIOD), now)
    assert match is not None and match.credential == credential.id
    _enroll(core, admin)  # a new seed lands between the check and the redemption
    with core.store.transaction() as tx:
        assert core.totp.redeem(tx, admin, match, now) is False
        replaced = core.totp.load(tx, admin)
    assert replaced is not None and replaced.last_step == totp.time_step(now)


def test_totp_code_of_the_next_step_then_the_current_one_is_refused(
    core: Core, admin: User
) -> None:
    seed = _enroll(core, admin)
    core.clock.advance(totp.PERIOD)  # type: ignore[attr-defined]
    now = core.clock.now()
    with core.store.transaction() as tx:
        credential = core.totp.load(tx, admin)
        assert credential is not None
        ahead = core.totp.verify(credential, admin, totp.code_at(seed, now + totp.PERIOD), now)
        assert ahead is not None
        assert core.totp.redeem(tx, admin, ahead, now)
        credential = core.totp.load(tx, admin)
        assert credential is not None
    assert core.totp.verify(credential, admin, totp.code_at(seed, now), now) is None


def test_totp_secret_of_one_user_does_not_open_for_another(core: Core, admin: User) -> None:
    _enroll(core, admin)
    with core.store.transaction(write=False) as tx:
        credential = core.totp.load(tx, admin)
    assert credential is not None
    impostor = User(**{**admin.__dict__, "id": "00000000-0000-4000-8000-000000000000"})
    with pytest.raises(InvalidTag):
        core.totp.verify(credential, impostor, "123456", core.clock.now())


def test_ten_recovery_codes_are_issued_unique_and_all_usable(core: Core, admin: User) -> None:
    with core.store.transaction() as tx:
        codes = core.recovery.issue(tx, admin)
        assert core.recovery.load(tx, admin) == 10
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(CODE_SHAPE.fullmatch(c) for c in codes)


def test_recovery_code_redeems_once(core: Core, admin: User) -> None:
    now = core.clock.now()
    with core.store.transaction() as tx:
        codes = core.recovery.issue(tx, admin)
    typed = codes[3].lower().replace("-", " ")
    with core.store.transaction() as tx:
        left = core.recovery.load(tx, admin)
        assert left == 10
        match = core.recovery.verify(left, admin, typed, now)
        assert match is not None
        assert core.recovery.redeem(tx, admin, match, now) is True
    with core.store.transaction() as tx:
        again = core.recovery.verify(9, admin, codes[3], now)
        assert again is not None
        assert core.recovery.redeem(tx, admin, again, now) is False
        assert core.recovery.load(tx, admin) == 9


def test_recovery_code_that_was_never_issued_does_not_redeem(core: Core, admin: User) -> None:
    now = core.clock.now()
    with core.store.transaction() as tx:
        issued = set(core.recovery.issue(tx, admin))
        invented = next(c for c in (recovery.new_code() for _ in range(10)) if c not in issued)
        match = core.recovery.verify(10, admin, invented, now)
        assert match is not None  # well-formed, so it is looked up...
        assert core.recovery.redeem(tx, admin, match, now) is False  # ...and not found
        assert core.recovery.load(tx, admin) == 10


def test_reissuing_recovery_codes_voids_the_old_ones(core: Core, admin: User) -> None:
    now = core.clock.now()
    with core.store.transaction() as tx:
        old = core.recovery.issue(tx, admin)
        core.recovery.issue(tx, admin)
        match = core.recovery.verify(10, admin, old[0], now)
        assert match is not None
        assert core.recovery.redeem(tx, admin, match, now) is False
        assert core.recovery.load(tx, admin) == 10


def test_user_without_recovery_codes_has_none_to_load(core: Core, admin: User) -> None:
    with core.store.transaction() as tx:
        assert core.recovery.load(tx, admin) is None
        codes = core.recovery.issue(tx, admin)
        for code in codes:
            match = core.recovery.verify(1, admin, code, core.clock.now())
            assert match is not None and core.recovery.redeem(tx, admin, match, core.clock.now())
        assert core.recovery.load(tx, admin) is None


def test_malformed_recovery_code_does_not_match(core: Core, admin: User) -> None:
    assert core.recovery.verify(10, admin, "123456", core.clock.now()) is None


def test_pin_is_stored_hashed_and_verifies(core: Core, admin: User) -> None:
    with core.store.transaction() as tx:
        core.pin.set(tx, admin, core.pin.hash("24681357"), core.clock.now())
    with core.store.transaction(write=False) as tx:
        saved = tx.users.get(admin.id)
        assert saved is not None
        credential = core.pin.load(tx, saved)
    assert credential is not None and "24681357" not in credential
    now = core.clock.now()
    assert core.pin.verify(credential, saved, "24681357", now) is not None
    assert core.pin.verify(credential, saved, "24681358", now) is None
    assert core.pin.verify(credential, saved, "2468135", now) is None
    with core.store.transaction() as tx:
        match = core.pin.verify(credential, saved, "24681357", now)
        assert match is not None and core.pin.redeem(tx, saved, match, now)


def test_setting_a_malformed_pin_is_refused_and_keeps_the_old_one(core: Core, admin: User) -> None:
    with core.store.transaction() as tx:
        core.pin.set(tx, admin, core.pin.hash("1234"), core.clock.now())
        before = core.pin.load(tx, admin)
    with pytest.raises(ParameterError):
        core.pin.hash("١٢٣٤")  # refused before anything is hashed or stored
    with core.store.transaction(write=False) as tx:
        assert core.pin.load(tx, admin) == before is not None


def test_removing_totp_deletes_seed_enrollment_and_recovery_codes(core: Core, admin: User) -> None:
    _enroll(core, admin)
    with core.store.transaction() as tx:
        core.recovery.issue(tx, admin)
        core.totp.begin(tx, admin, core.clock.now())
        core.totp.remove(tx, admin)
        tx.users.save(admin)
    with core.store.transaction(write=False) as tx:
        assert core.totp.load(tx, admin) is None
        assert tx.credentials.enrollment(admin.id) is None
        assert core.recovery.load(tx, admin) is None
        saved = tx.users.get(admin.id)
    assert saved is not None and not saved.twofa_active


@pytest.mark.parametrize(
    ("steps", "code", "slow"),
    [
        ((Step.PIN,), "4821", True),  # argon2
        ((Step.TOTP,), "123456", False),
        ((Step.TOTP,), "ABCD-EFGH-JKMN-PQRS", False),  # a recovery code: one keyed hash
        ((Step.TOTP, Step.PIN), "123456", False),
        ((Step.ENROLL_TOTP,), "123456", False),  # refused before any check
        ((), "4821", False),  # not pending: refused before any check
    ],
)
def test_only_a_pin_is_checked_with_a_slow_hash(
    core: Core, admin: User, steps: tuple[Step, ...], code: str, slow: bool
) -> None:
    with core.store.transaction(write=False) as tx:
        account = tx.accounts.get(admin.account_id)
    assert account is not None
    session = SessionRecord("h", admin.id, 0.0, 0.0, 1.0, steps)
    caller = Caller("t", "h", session, admin, account)
    assert auth.is_slow_check(core, Context(caller, None, 0.0), code) is slow
