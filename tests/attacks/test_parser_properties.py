"""Property tests for every parser of untrusted text we own: the Basic
``Authorization`` header, IP allow-list entries, PINs, recovery codes, UUID
lists and base64 passwords.

An attacker controls all of these strings. A parser that raises anything but
our own refusal turns bad input into a 500; one that is more lenient than its
format (another Unicode digit, another spelling of an id, a zero-padded
octet) lets two components read one value two ways. So each parser must
accept its canonical forms and give them back unchanged, read every other
spelling it accepts exactly like the canonical one, and refuse the rest with
the domain error, whatever the input.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import uuid

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from quatrix_mfa.api.routes.auth import parse_basic
from quatrix_mfa.core import ipallow, passwords
from quatrix_mfa.core.admin import MAX_IDS, parse_ids
from quatrix_mfa.core.errors import ErrorCode, NotAuthenticated, ParameterError
from quatrix_mfa.core.factors import pin, recovery
from tests.conftest import basic

# Reproducible in CI: the same examples every run.
props = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text without lone surrogates: what a UTF-8 request can carry.
TEXT = st.text(st.characters(exclude_categories=["Cs"]))
ANY_TEXT = st.text()
CONTROL = st.characters(categories=["Cc"])
HEX = "[0-9a-fA-F]"
UUID_TEXT = re.compile(f"{HEX}{{8}}-{HEX}{{4}}-{HEX}{{4}}-{HEX}{{4}}-{HEX}{{12}}")


# Basic header ---------------------------------------------------------------

EMAILS = st.text(st.characters(exclude_categories=["Cs", "Cc"], exclude_characters=":"), min_size=1)


@props
@given(EMAILS, TEXT, st.sampled_from(["Basic", "basic", "BASIC", "bAsIc"]))
def test_basic_credentials_round_trip(email: str, password: str, scheme: str) -> None:
    header = basic(email, password).replace("Basic", scheme, 1)
    assume(len(header) < 2048)
    assert parse_basic(header) == (email, password)


@props
@given(st.one_of(ANY_TEXT, st.binary().map(lambda b: b.decode("latin-1"))))
@example("Basic " + base64.b64encode(b"a\x00b@example.com:pw").decode())
@example("Basic " + base64.b64encode(b"\xff\xfe:pw").decode())
@example("Basic =")
@example("Basic " + "QQ==" * 600)
def test_any_authorization_header_gives_credentials_or_401(header: str) -> None:
    try:
        email, _ = parse_basic(header)
    except NotAuthenticated as refused:
        assert refused.code == ErrorCode.NOT_AUTHENTICATED
        return
    assert email and ":" not in email
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in email)
    assert header.split(" ", 1)[0].lower() == "basic"


@props
@given(EMAILS, EMAILS, CONTROL, TEXT)
def test_basic_email_with_a_control_character_is_refused(
    before: str, after: str, control: str, password: str
) -> None:
    """A NUL in the email reached the database and made PostgreSQL fail (500)."""
    with pytest.raises(NotAuthenticated):
        parse_basic(basic(before + control + after, password))


@props
@given(st.sampled_from(["Bearer", "Digest", "Basic:", "Basicx", ""]), TEXT)
def test_other_schemes_are_refused(scheme: str, rest: str) -> None:
    with pytest.raises(NotAuthenticated):
        parse_basic(f"{scheme} {base64.b64encode(rest.encode()).decode()}")


# IP allow-list --------------------------------------------------------------

OCTET = st.integers(0, 255)
PREFIX3 = st.tuples(OCTET, OCTET, OCTET).map(lambda t: ".".join(map(str, t)))
NETWORKS = st.one_of(
    st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
    st.tuples(st.ip_addresses(v=6), st.integers(0, 128)),
).map(lambda pair: ipaddress.ip_network(f"{pair[0]}/{pair[1]}", strict=False))


@props
@given(ANY_TEXT)
@example("1.1.1.1-\u0662\u0665\u0665")  # Arabic-Indic digits
@example("1.1.1.1-\uff12\uff15")  # fullwidth digits
@example("fe80::1%eth0")
@example("1.1.1.1\\\\24")
def test_allow_list_entry_is_a_rule_or_value_error(text: str) -> None:
    try:
        ipallow.parse_rule(text)
    except ValueError:
        return
    entry = text.strip()
    assert entry.isascii(), "an accepted entry must be ASCII: another reader may not parse it"
    assert re.fullmatch(r"[0-9a-fA-F.:/\\-]+", entry), entry


@props
@given(st.lists(ANY_TEXT, max_size=5))
def test_allow_list_is_cleaned_or_refused_naming_the_bad_entries(entries: list[str]) -> None:
    try:
        cleaned = ipallow.normalize(entries)
    except ParameterError as refused:
        assert refused.details is not None
        bad = refused.details["ip_whitelist"]
        assert bad and all(len(entry) <= 64 for entry in bad)
        return
    assert cleaned == [entry.strip() for entry in entries]
    assert ipallow.normalize(cleaned) == cleaned


@props
@given(PREFIX3, OCTET, OCTET, OCTET)
def test_last_octet_range_admits_exactly_its_addresses(
    prefix: str, low: int, high: int, octet: int
) -> None:
    low, high = min(low, high), max(low, high)
    entry = f"{prefix}.{low}-{high}"
    assert ipallow.normalize([entry]) == [entry]
    assert ipallow.allows([entry], f"{prefix}.{octet}") == (low <= octet <= high)
    assert ipallow.allows([entry], f"::ffff:{prefix}.{octet}") == (low <= octet <= high)


DESCENDING = st.integers(1, 255).flatmap(
    lambda start: st.tuples(st.just(start), st.integers(0, start - 1))
)


@props
@given(PREFIX3, DESCENDING)
def test_range_with_its_end_before_its_start_is_refused(
    prefix: str, bounds: tuple[int, int]
) -> None:
    start, end = bounds
    with pytest.raises(ValueError):
        ipallow.parse_rule(f"{prefix}.{start}-{end}")


@props
@given(PREFIX3, st.integers(0, 255), st.integers(1, 2))
@example("1.1.1", 10, 1)  # "1.1.1.1-010": octal 8 to some readers, 10 to others
def test_zero_padded_range_end_is_refused_like_a_zero_padded_octet(
    prefix: str, end: int, zeros: int
) -> None:
    with pytest.raises(ValueError):
        ipallow.parse_rule(f"{prefix}.0-{'0' * zeros}{end}")
    with pytest.raises(ValueError):
        ipallow.parse_rule(f"{prefix}.0{end}")


@props
@given(NETWORKS, st.ip_addresses())
def test_network_admits_exactly_its_addresses_in_both_notations(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
    client: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    slash = str(network)
    backslash = slash.replace("/", "\\")
    assert ipallow.normalize([slash, backslash]) == [slash, backslash]
    inside = client.version == network.version and client in network
    assert ipallow.allows([slash], str(client)) == inside
    assert ipallow.allows([backslash], str(client)) == inside


@props
@given(st.lists(st.one_of(NETWORKS.map(str), ANY_TEXT), max_size=3), ANY_TEXT)
def test_any_client_address_is_admitted_or_not_without_error(
    entries: list[str], client: str
) -> None:
    allowed = ipallow.allows(entries, client)
    if allowed:
        ipaddress.ip_address(client)  # only a real address is ever admitted


def test_stored_entry_that_no_longer_parses_admits_nobody_and_breaks_nothing() -> None:
    """Entries saved before the rules tightened must not turn logins into 500s."""
    stored = ["1.1.1.1-010", "1.1.1.1-\u0662\u0665\u0665", "fe80::1%eth0"]
    for client in ("1.1.1.1", "1.1.1.10", "1.1.1.8", "fe80::1"):
        assert not ipallow.allows(stored, client)
    assert ipallow.allows([*stored, "1.1.1.0/24"], "1.1.1.10")


# PIN ------------------------------------------------------------------------


@props
@given(st.from_regex(r"[0-9]{4,16}", fullmatch=True))
def test_pin_of_4_to_16_ascii_digits_is_kept_as_typed(code: str) -> None:
    assert pin.parse_pin(code) == code


@props
@given(st.one_of(ANY_TEXT, st.text("0123456789\u0660\u0661\uff10\uff11\u00b2 ")))
def test_pin_is_4_to_16_ascii_digits_or_a_parameter_error(code: str) -> None:
    canonical = re.fullmatch(r"[0-9]{4,16}", code) is not None and code.isascii()
    try:
        assert pin.parse_pin(code, field="code") == code
    except ParameterError as refused:
        assert not canonical
        assert refused.details is not None and "code" in refused.details
        return
    assert canonical


# Recovery codes -------------------------------------------------------------


def _retyped(code: str, data: st.DataObject) -> str:
    """``code`` as a person might type it: any case, dashes or spaces anywhere."""
    out = []
    for char in code.replace("-", ""):
        out.append(char.lower() if data.draw(st.booleans()) else char)
        out.append(data.draw(st.sampled_from(["", "", "", "-", " "])))
    return "".join(out)


@props
@given(st.data())
def test_issued_recovery_code_reads_back_however_it_is_typed(data: st.DataObject) -> None:
    code = recovery.new_code()
    typed = _retyped(code, data)
    assume(len(typed) <= 64)
    assert recovery.normalize(code) == code.replace("-", "")
    assert recovery.normalize(typed) == code.replace("-", "")


@props
@given(ANY_TEXT)
@example("ABCD-EFGH-JKMN-PQR\u017f")  # LATIN SMALL LETTER LONG S upper-cases to "S"
@example("ABCD-EFGH-JKMN-PQR\u0131")  # dotless i upper-cases to "I", read as "1"
@example("ABCD-EFGH-JKMN-PQ\ufb00")  # the "ff" ligature upper-cases to "FF"
def test_recovery_code_normalizes_to_16_crockford_characters_or_none(text: str) -> None:
    normalized = recovery.normalize(text)
    assert recovery.looks_like_recovery_code(text) == (normalized is not None)
    if normalized is None:
        return
    assert text.isascii(), "only ASCII input may read as a code"
    assert len(normalized) == 16
    assert set(normalized) <= set(recovery.ALPHABET)
    assert recovery.normalize(normalized) == normalized


# UUID lists -----------------------------------------------------------------


@props
@given(st.lists(st.uuids(), min_size=1, max_size=20), st.data())
def test_uuid_list_is_canonical_and_deduplicated_in_order(
    ids: list[uuid.UUID], data: st.DataObject
) -> None:
    spelled = [data.draw(st.sampled_from([str(i), str(i).upper()])) for i in ids]
    expected = list(dict.fromkeys(str(i) for i in ids))
    assert parse_ids(spelled) == expected
    assert parse_ids(spelled + spelled[::-1]) == expected


ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10)))
ODD_SPELLINGS = st.uuids().flatmap(
    lambda i: st.sampled_from(
        [
            i.hex,
            "{" + str(i) + "}",
            i.urn,
            "0x" + i.hex[2:],
            " " + i.hex[1:],
            "+" + i.hex[1:],
            i.hex[:4] + "_" + i.hex[5:],
            str(i).translate(ARABIC_INDIC),
            "-" + str(i) + "-",
        ]
    )
)


@props
@given(st.lists(st.one_of(ANY_TEXT, ODD_SPELLINGS, st.uuids().map(str)), max_size=5))
def test_uuid_list_accepts_only_the_hyphenated_hex_form(raw: list[str]) -> None:
    """``uuid.UUID`` also reads braces, "urn:uuid:", "0x", "_", "+", spaces and
    other scripts' digits; an id is only ever written one way."""
    bad = [r[:64] for r in raw if not UUID_TEXT.fullmatch(r)]
    try:
        parsed = parse_ids(raw)
    except ParameterError as refused:
        assert refused.details is not None
        assert refused.details["ids"] == (bad or "at least one id")
        return
    assert raw and not bad, raw
    assert parsed == list(dict.fromkeys(r.lower() for r in raw))


def test_uuid_list_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(ParameterError):
        parse_ids([str(uuid.uuid4()) for _ in range(MAX_IDS + 1)])


# Base64 passwords -----------------------------------------------------------


@props
@given(TEXT)
def test_base64_password_round_trips(password: str) -> None:
    encoded = base64.b64encode(password.encode()).decode()
    assert passwords.decode_base64_password(encoded, "new_password") == password


@props
@given(st.one_of(ANY_TEXT, st.binary().map(lambda b: base64.b64encode(b).decode())))
def test_any_base64_password_decodes_or_is_a_parameter_error(value: str) -> None:
    try:
        decoded = passwords.decode_base64_password(value, "password")
    except ParameterError as refused:
        assert refused.details is not None and "password" in refused.details
        return
    assert base64.b64encode(decoded.encode()).decode() == value or _non_canonical(value)


def _non_canonical(value: str) -> bool:
    """Base64 whose unused bits are not zero decodes, to the same bytes."""
    raw = base64.b64decode(value, validate=True)
    return base64.b64encode(raw).decode() != value
