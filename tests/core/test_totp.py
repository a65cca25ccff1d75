"""TOTP (RFC 6238) and HOTP (RFC 4226): published test vectors, drift, replay, URI."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from quatrix_mfa.core.factors import totp

# RFC 6238 Appendix B: the seed is the ASCII string, repeated to the digest's length.
SEED_SHA1 = b"12345678901234567890"
SEED_SHA256 = b"12345678901234567890123456789012"
SEED_SHA512 = b"1234567890123456789012345678901234567890123456789012345678901234"

RFC6238_VECTORS = [
    (59, SEED_SHA1, hashlib.sha1, "94287082"),
    (59, SEED_SHA256, hashlib.sha256, "46119246"),
    (59, SEED_SHA512, hashlib.sha512, "90693936"),
    (1111111109, SEED_SHA1, hashlib.sha1, "07081804"),
    (1111111109, SEED_SHA256, hashlib.sha256, "68084774"),
    (1111111109, SEED_SHA512, hashlib.sha512, "25091201"),
    (1111111111, SEED_SHA1, hashlib.sha1, "14050471"),
    (1111111111, SEED_SHA256, hashlib.sha256, "67062674"),
    (1111111111, SEED_SHA512, hashlib.sha512, "99943326"),
    (1234567890, SEED_SHA1, hashlib.sha1, "89005924"),
    (1234567890, SEED_SHA256, hashlib.sha256, "91819424"),
    (1234567890, SEED_SHA512, hashlib.sha512, "93441116"),
    (2000000000, SEED_SHA1, hashlib.sha1, "69279037"),
    (2000000000, SEED_SHA256, hashlib.sha256, "90698825"),
    (2000000000, SEED_SHA512, hashlib.sha512, "38618901"),
    (20000000000, SEED_SHA1, hashlib.sha1, "65353130"),
    (20000000000, SEED_SHA256, hashlib.sha256, "77737706"),
    (20000000000, SEED_SHA512, hashlib.sha512, "47863826"),
]

# RFC 4226 Appendix D: HOTP(K, C) for C = 0..9, 6 digits, K = SEED_SHA1.
RFC4226_VALUES = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]

FULLWIDTH_DIGITS = "".join(chr(0xFF10 + d) for d in range(10))

# A fixed instant 10 s into a step, so every neighbouring step is well defined.
NOW = 1_800_000_010.0
STEP = int(NOW // 30)


@pytest.mark.parametrize(("now", "secret", "digest", "expected"), RFC6238_VECTORS)
def test_totp_matches_rfc6238_appendix_b(
    now: int, secret: bytes, digest: Callable[..., Any], expected: str
) -> None:
    assert totp.code_at(secret, now, digits=8, digest=digest) == expected


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226_VALUES)))
def test_hotp_matches_rfc4226_appendix_d(counter: int, expected: str) -> None:
    assert totp.hotp(SEED_SHA1, counter) == expected


@pytest.mark.parametrize("length", [14, 16, 20, 32, 64])
@pytest.mark.parametrize("digest", [hashlib.sha1, hashlib.sha256, hashlib.sha512])
def test_codes_are_pyotps_own_for_keys_of_any_length(
    length: int, digest: Callable[..., Any]
) -> None:
    # The key is kept as bytes, not decoded from base32 per code as pyotp does.
    key = bytes(range(7, 7 + length))
    plain = pyotp.HOTP(totp.base32(key), digits=8, digest=digest)
    for counter in (0, 1, 2**31, 2**40 + 3, *range(STEP - 20, STEP + 21)):
        assert totp.hotp(key, counter, digits=8, digest=digest) == plain.at(counter)


def test_a_key_shorter_than_pyotp_accepts_is_refused_as_pyotp_does() -> None:
    with pytest.raises(ValueError, match="at least 112 bits"):
        pyotp.HOTP(totp.base32(bytes(13)))
    with pytest.raises(ValueError, match="at least 112 bits"):
        totp.hotp(bytes(13), 0)


def test_default_code_is_six_digit_sha1_over_30_second_steps() -> None:
    # RFC 6238's SHA-1 vector at T=59 ends in the 6-digit HOTP of counter 1.
    assert totp.code_at(SEED_SHA1, 59) == "287082"
    assert totp.code_at(SEED_SHA1, 30) == totp.code_at(SEED_SHA1, 59.999)
    assert totp.code_at(SEED_SHA1, 29.999) == totp.hotp(SEED_SHA1, 0)


def test_time_step_counts_whole_periods_since_the_epoch() -> None:
    assert totp.time_step(0) == 0
    assert totp.time_step(29.999) == 0
    assert totp.time_step(30) == 1
    assert totp.time_step(1111111109) == 0x23523EC  # RFC 6238 Appendix B, column T


def _code(step_offset: int) -> str:
    return totp.hotp(SEED_SHA1, STEP + step_offset)


def test_the_fixture_codes_of_neighbouring_steps_differ() -> None:
    # Otherwise the drift tests below could pass by coincidence.
    codes = [_code(offset) for offset in range(-3, 4)]
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_code_within_one_step_of_drift_is_accepted(offset: int) -> None:
    assert totp.matching_step(SEED_SHA1, _code(offset), NOW, None) == STEP + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_code_two_or_more_steps_away_is_refused(offset: int) -> None:
    assert totp.matching_step(SEED_SHA1, _code(offset), NOW, None) is None


def test_code_of_the_last_accepted_step_is_refused() -> None:
    assert totp.matching_step(SEED_SHA1, _code(0), NOW, last_step=STEP) is None


def test_code_of_a_step_before_the_last_accepted_one_is_refused() -> None:
    assert totp.matching_step(SEED_SHA1, _code(-1), NOW, last_step=STEP) is None
    assert totp.matching_step(SEED_SHA1, _code(0), NOW, last_step=STEP + 1) is None


def test_code_of_a_step_after_the_last_accepted_one_is_accepted() -> None:
    assert totp.matching_step(SEED_SHA1, _code(0), NOW, last_step=STEP - 1) == STEP
    assert totp.matching_step(SEED_SHA1, _code(1), NOW, last_step=STEP) == STEP + 1


def test_code_from_another_secret_is_refused() -> None:
    other = b"\x01" * 20
    assert totp.matching_step(other, _code(0), NOW, None) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:5],  # 5 digits
        lambda c: c + "0",  # 7 digits
        lambda c: " " + c,
        lambda c: c + "\n",
        lambda c: c[:3] + " " + c[3:],
        lambda c: c[:5] + "a",
        lambda c: c.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),  # Arabic-Indic
        lambda c: c.translate(str.maketrans("0123456789", FULLWIDTH_DIGITS)),  # fullwidth
        lambda c: "",
    ],
)
def test_code_that_is_not_six_ascii_digits_is_refused(mangle: Callable[[str], str]) -> None:
    assert totp.matching_step(SEED_SHA1, mangle(_code(0)), NOW, None) is None


def test_eight_digit_code_of_the_current_step_is_refused() -> None:
    eight = totp.code_at(SEED_SHA1, NOW, digits=8)
    assert totp.matching_step(SEED_SHA1, eight, NOW, None) is None


def test_new_secret_is_random_and_160_bits() -> None:
    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) == 20 for s in secrets)


def test_base32_is_unpadded_and_round_trips() -> None:
    encoded = totp.base32(SEED_SHA1)
    assert "=" not in encoded
    assert pyotp.TOTP(encoded).byte_secret() == SEED_SHA1


def test_provisioning_uri_is_the_key_uri_format() -> None:
    uri = totp.provisioning_uri(SEED_SHA1, "alice@example.com", "Acme Corp")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Acme Corp:alice@example.com"
    assert " " not in uri
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "secret": totp.base32(SEED_SHA1),
        "issuer": "Acme Corp",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }


def test_provisioning_uri_is_read_back_by_an_authenticator_library() -> None:
    uri = totp.provisioning_uri(SEED_SHA1, "bob+tag@example.com", "Quatrix")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.byte_secret() == SEED_SHA1
    assert parsed.issuer == "Quatrix"
    assert parsed.name == "bob+tag@example.com"
    assert parsed.digits == 6
    assert parsed.interval == 30
    assert parsed.at(NOW) == totp.code_at(SEED_SHA1, NOW)


def test_provisioning_uri_escapes_separators_in_the_label() -> None:
    uri = totp.provisioning_uri(SEED_SHA1, "eve&x=1?#@example.com", "A/B")
    parts = urlsplit(uri)
    assert parts.fragment == ""
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["secret"] == totp.base32(SEED_SHA1)
    assert query["issuer"] == "A/B"
    assert "x" not in query
    assert unquote(parts.path) == "/A/B:eve&x=1?#@example.com"
