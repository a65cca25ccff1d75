"""TOTP parameters and drift diagnosis in core (issue 13): RFC 6238 Appendix B
through each seed's :class:`Parameters`, the Key Uri Format parameters, and
the burned-step list's rules."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from quatrix_mfa.core.errors import ParameterError
from quatrix_mfa.core.factors import drift, totp

# RFC 6238 Appendix B, 8 digits, 30 s: time -> code, per algorithm; the seed
# is the ASCII digits repeated to the digest's length.
APPENDIX_B = {
    "SHA1": {59: "94287082", 1111111109: "07081804", 1234567890: "89005924"},
    "SHA256": {
        59: "46119246",
        1111111109: "68084774",
        1111111111: "67062674",
        1234567890: "91819424",
        2000000000: "90698825",
        20000000000: "77737706",
    },
    "SHA512": {
        59: "90693936",
        1111111109: "25091201",
        1111111111: "99943326",
        1234567890: "93441116",
        2000000000: "38618901",
        20000000000: "47863826",
    },
}
SEEDS = {"SHA1": 20, "SHA256": 32, "SHA512": 64}
SEED_SHA1 = b"12345678901234567890"


@pytest.mark.parametrize(
    ("algorithm", "when", "expected"),
    [(a, when, code) for a, codes in APPENDIX_B.items() for when, code in codes.items()],
)
def test_rfc6238_appendix_b_vectors_match_through_parameters(
    algorithm: str, when: int, expected: str
) -> None:
    seed = (b"1234567890" * 7)[: SEEDS[algorithm]]
    params = totp.Parameters(algorithm, 8, 30)
    assert totp.code_at(seed, when, 8, params.digest, 30) == expected
    assert totp.matching_step(seed, expected, when, None, params) == when // 30
    # Its own step spent, or burned: refused.
    assert totp.matching_step(seed, expected, when, when // 30, params) is None
    assert totp.matching_step(seed, expected, when, None, params, burned=[when // 30]) is None


def test_a_sixty_second_period_counts_steps_of_sixty_seconds() -> None:
    params = totp.Parameters("SHA1", 6, 60)
    code = totp.code_at(SEED_SHA1, 1_800_000_000, 6, params.digest, 60)
    assert totp.matching_step(SEED_SHA1, code, 1_800_000_059, None, params) == 30_000_000
    assert totp.matching_step(SEED_SHA1, code, 1_800_000_000 + 120, None, params) is None


def test_the_uri_carries_the_seeds_parameters() -> None:
    uri = totp.provisioning_uri(SEED_SHA1, "a@example.com", "Ex", totp.Parameters("SHA512", 8, 60))
    query = parse_qs(urlsplit(uri).query)
    assert (query["algorithm"], query["digits"], query["period"]) == (["SHA512"], ["8"], ["60"])


def test_a_code_of_the_other_length_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError):
        totp.check_length(totp.DEFAULT, "12345678")
    with pytest.raises(ParameterError):
        totp.check_length(totp.Parameters("SHA1", 8, 30), "123456")
    totp.check_length(totp.DEFAULT, "1234567")  # just a wrong code
    totp.check_length(totp.DEFAULT, "abcdefgh")


@pytest.mark.parametrize(
    ("algorithm", "digits", "period", "field"),
    [
        ("MD5", 6, 30, "totp_algorithm"),
        ("SHA1", 7, 30, "totp_digits"),
        ("SHA1", 6, 45, "totp_period"),
    ],
)
def test_unsupported_parameters_name_their_field(
    algorithm: str, digits: int, period: int, field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        totp.check_parameters(algorithm, digits, period)


# Diagnosis -------------------------------------------------------------------

NOW = 1_800_000_010.0
STEP = int(NOW // 30)


def at(steps: int) -> str:
    return totp.code_at(SEED_SHA1, NOW + steps * 30)


@pytest.mark.parametrize("steps", [-20, -2, 2, 20])
def test_a_code_outside_the_window_within_ten_minutes_is_the_clock(steps: int) -> None:
    found = drift.diagnose(SEED_SHA1, at(steps), NOW, totp.DEFAULT, STEP - 30, ())
    assert found == drift.Diagnosis(drift.CLOCK, STEP + steps, steps, 30)
    assert found.details() == {"reason": "clock", "clock_offset_seconds": steps * 30}


@pytest.mark.parametrize("steps", [-1, 0, 1, -21, 21])
def test_inside_the_window_or_beyond_ten_minutes_nothing_is_said(steps: int) -> None:
    assert drift.diagnose(SEED_SHA1, at(steps), NOW, totp.DEFAULT, None, ()) is None


def test_the_last_accepted_step_and_a_burned_one_are_used() -> None:
    assert drift.diagnose(SEED_SHA1, at(-5), NOW, totp.DEFAULT, STEP - 5, ()).reason == drift.USED
    assert drift.diagnose(SEED_SHA1, at(-1), NOW, totp.DEFAULT, STEP, ()).reason == drift.USED
    assert drift.diagnose(SEED_SHA1, at(0), NOW, totp.DEFAULT, None, [STEP]).reason == drift.USED
    # Older than the last accepted step, outside the window: never accepted, a clock behind.
    assert drift.diagnose(SEED_SHA1, at(-8), NOW, totp.DEFAULT, STEP - 5, ()).reason == drift.CLOCK


def test_only_a_future_clock_match_reveals_a_code_to_come() -> None:
    assert drift.reveals_future(drift.Diagnosis(drift.CLOCK, STEP + 2, 2, 30))
    assert not drift.reveals_future(drift.Diagnosis(drift.CLOCK, STEP - 2, -2, 30))
    assert not drift.reveals_future(drift.Diagnosis(drift.USED, STEP + 2, 2, 30))


def test_burn_keeps_live_steps_prunes_dead_ones_and_refuses_when_full() -> None:
    assert drift.burn(None, STEP + 3, STEP) == [STEP + 3]
    # Steps the window still covers (STEP - 1) stay; older ones go.
    assert drift.burn([STEP - 2, STEP - 1, STEP + 5], STEP + 3, STEP) == [
        STEP - 1,
        STEP + 3,
        STEP + 5,
    ]
    assert drift.burn([STEP + 3], STEP + 3, STEP) == [STEP + 3]
    full = list(range(STEP + 10, STEP + 10 + drift.BURN_LIMIT))
    assert drift.burn(full, STEP + 3, STEP) is None
    assert drift.burn(full, STEP + 10, STEP) == full  # already burned: nothing to add
