"""IP allow-list, throttling delays, login steps, password rules and crypto primitives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from quatrix_mfa.core import ipallow, passwords, policy
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.crypto import Argon2Parameters, PasswordHasher, SecretBox, TokenHasher
from quatrix_mfa.core.errors import ErrorCode, ParameterError, TooManyAttempts, WeakPassword
from quatrix_mfa.core.model import Account, Step, User
from quatrix_mfa.core.throttling import ThrottlePolicy
from quatrix_mfa.keys import FileKeyRing, add_active_key, create_key_file
from tests.conftest import FAST_ARGON2

# IP allow-list


@pytest.mark.parametrize(
    ("entry", "inside", "outside"),
    [
        ("1.1.1.1", ["1.1.1.1"], ["1.1.1.2", "1.1.1.0", "11.1.1.1"]),
        ("1.1.1.1\\32", ["1.1.1.1"], ["1.1.1.2"]),
        ("1.1.1.0\\24", ["1.1.1.0", "1.1.1.77", "1.1.1.255"], ["1.1.2.1", "1.1.0.255"]),
        ("1.1.1.0/24", ["1.1.1.0", "1.1.1.77", "1.1.1.255"], ["1.1.2.1", "1.1.0.255"]),
        ("1.1.1.1-255", ["1.1.1.1", "1.1.1.128", "1.1.1.255"], ["1.1.1.0", "1.1.2.1"]),
        ("10.0.0.5-10", ["10.0.0.5", "10.0.0.7", "10.0.0.10"], ["10.0.0.4", "10.0.0.11"]),
        ("2001:db8::/32", ["2001:db8::1", "2001:db8:ffff::2"], ["2001:db9::1", "1.1.1.1"]),
        ("::1", ["::1"], ["::2", "127.0.0.1"]),
        (" 1.1.1.1 ", ["1.1.1.1"], ["1.1.1.2"]),
    ],
)
def test_allow_list_entry_admits_exactly_its_addresses(
    entry: str, inside: list[str], outside: list[str]
) -> None:
    assert ipallow.normalize([entry]) == [entry.strip()]
    for client in inside:
        assert ipallow.allows([entry], client), client
    for client in outside:
        assert not ipallow.allows([entry], client), client


def test_ipv4_mapped_ipv6_client_is_matched_as_ipv4() -> None:
    assert ipallow.allows(["1.1.1.0/24"], "::ffff:1.1.1.9")
    assert ipallow.allows(["1.1.1.1-20"], "::ffff:1.1.1.9")
    assert ipallow.allows(["1.1.1.9"], "::ffff:1.1.1.9")
    assert not ipallow.allows(["1.1.1.0/24"], "::ffff:1.1.2.9")


def test_any_matching_entry_admits_the_client() -> None:
    entries = ["10.0.0.1", "192.168.0.0/16", "1.1.1.1-5"]
    assert ipallow.allows(entries, "192.168.44.1")
    assert ipallow.allows(entries, "1.1.1.3")
    assert not ipallow.allows(entries, "1.1.1.6")


@pytest.mark.parametrize("client", [None, "", "unknown", "1.1.1", "1.1.1.1:443", "testclient"])
def test_unparsable_client_address_is_never_admitted(client: str | None) -> None:
    assert not ipallow.allows(["0.0.0.0/0", "::/0"], client)


def test_empty_allow_list_admits_nobody() -> None:
    assert not ipallow.allows([], "1.1.1.1")


def test_bad_allow_list_entries_are_named_in_details() -> None:
    bad = ["bogus", "1.1.1.300", "1.1.1.9-3", "1.1.1.1-256", "1.1.1.0/33", "1.1.1.1/", "x" * 80]
    with pytest.raises(ParameterError) as caught:
        ipallow.normalize(["1.1.1.1", *bad, "2001:db8::/32"])
    error = caught.value
    assert error.code == ErrorCode.PARAMETER
    assert error.details is not None
    assert error.details["ip_whitelist"] == [entry[:64] for entry in bad]


def test_allow_list_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(ParameterError) as caught:
        ipallow.normalize(["1.1.1.1"] * (ipallow.MAX_ENTRIES + 1))
    assert caught.value.details is not None and "ip_whitelist" in caught.value.details


# Throttling


def test_throttle_delay_starts_at_30_seconds_and_doubles_to_a_900_second_cap() -> None:
    rules = ThrottlePolicy()
    delays = [rules.delay(failures, threshold=10) for failures in range(1, 18)]
    assert delays == [0.0] * 9 + [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0, 900.0]
    assert rules.delay(10**9, threshold=10) == 900.0


def test_throttle_blocks_after_the_threshold_and_success_clears_the_user(core: Core) -> None:
    throttle = core.throttle
    user_key = throttle.user_key("Someone@Example.com")
    address_key = throttle.address_key("192.0.2.1")
    assert user_key == throttle.user_key("someone@example.com")
    assert "someone" not in user_key  # the email is not readable from the key
    now = core.clock.now()
    with core.store.transaction() as tx:
        # Each admitted attempt counts as a failure until it is forgiven.
        for _ in range(core.throttle_policy.user_threshold):
            throttle.admit(tx, user_key, address_key, now)
        with pytest.raises(TooManyAttempts) as caught:
            throttle.admit(tx, user_key, address_key, now)
        assert caught.value.retry_after == 30
        throttle.admit(tx, user_key, address_key, now + 30)  # the delay has passed
        with pytest.raises(TooManyAttempts) as caught:
            throttle.admit(tx, user_key, address_key, now + 30)
        assert caught.value.retry_after == 60
        throttle.succeeded(tx, user_key)
        counts = {s.key: s.failures for s in tx.throttle.states([user_key, address_key])}
        assert counts[user_key] == 0 and counts[address_key] > 0


def test_a_forgiven_attempt_leaves_no_count_and_no_block(core: Core) -> None:
    throttle = core.throttle
    user_key, address_key = throttle.user_key("a@example.com"), throttle.address_key("192.0.2.9")
    now = core.clock.now()
    with core.store.transaction() as tx:
        for _ in range(core.throttle_policy.user_threshold - 1):
            throttle.admit(tx, user_key, address_key, now)
        last = throttle.admit(tx, user_key, address_key, now)  # this one sets the block
        throttle.forgive(tx, last)
        throttle.admit(tx, user_key, address_key, now)  # so the next is let in
        states = {s.key: s for s in tx.throttle.states([user_key, address_key])}
    assert states[user_key].failures == core.throttle_policy.user_threshold


# Which steps a login needs

# (2FA needed, has a TOTP secret, has a PIN) -> steps, as DESIGN.md and decisions.md say.
EXPECTED_STEPS = {
    (False, False, False): (),
    (False, True, False): (),
    (False, False, True): (Step.PIN,),
    (False, True, True): (Step.PIN,),
    (True, True, False): (Step.TOTP,),
    (True, True, True): (Step.TOTP, Step.PIN),
    (True, False, False): (Step.ENROLL_TOTP,),
    (True, False, True): (Step.PIN, Step.ENROLL_TOTP),
}


def _account(force_2fa: bool) -> Account:
    return Account(id="a", name="A", created=0.0, modified=0.0, force_2fa=force_2fa)


def _user(twofa_active: bool, twofa_forced: bool, pin: bool) -> User:
    return User(
        id="u",
        account_id="a",
        email="u@example.com",
        name="U",
        created=0.0,
        modified=0.0,
        twofa_active=twofa_active,
        twofa_forced=twofa_forced,
        enrolled=frozenset({"pin"}) if pin else frozenset(),
    )


@pytest.mark.parametrize(
    ("account_forces", "active", "user_forced", "has_secret", "has_pin"),
    list(itertools.product([False, True], repeat=5)),
)
def test_login_steps_for_every_combination(
    account_forces: bool, active: bool, user_forced: bool, has_secret: bool, has_pin: bool
) -> None:
    account, user = _account(account_forces), _user(active, user_forced, has_pin)
    if has_secret:
        user.enrolled |= {"totp"}
    needs_2fa = account_forces or active or user_forced
    steps = policy.login_steps(account, user)
    assert steps == EXPECTED_STEPS[(needs_2fa, has_secret, has_pin)]
    assert ("2FA" in policy.active_methods(account, user)) == needs_2fa
    assert ("PIN" in policy.active_methods(account, user)) == has_pin
    assert ("2FA" in policy.forced_methods(account, user)) == (account_forces or user_forced)


def test_forced_pin_is_listed_as_forced() -> None:
    user = _user(False, False, True)
    user.pin_forced = True
    assert policy.forced_methods(_account(False), user) == ["PIN"]


# Passwords


@pytest.mark.parametrize(
    "good",
    [
        "correct horse battery",
        "12 chars ok!",
        "пароль-пароль",
        "x" * 254 + "yz",
        "Tr0ub4dor&3xy",
        "🦊🦊🦊🦊🐻🐻🐻🐻🐼🐼🐼🐼",  # ASVS 2.1.4: a code point is a character
        "quatrix is where I work",
    ],
)
def test_acceptable_password_passes(good: str) -> None:
    passwords.check_strength(good, "someone@example.com")


@pytest.mark.parametrize(
    "weak",
    [
        "",
        "short",
        "7chars!",
        "11 chars ok",  # ASVS 4.0.3 2.1.1: at least 12
        "password",
        "password1234",  # in the breached-password list (ASVS 2.1.7)
        "qwertyuiop123",
        "1qaz2wsx3edc",
        "Q W E R T Y U I O P 1 2 3",  # spaces do not hide a breached one
        "Quatrix2024!",  # the service's own name with digits
        "quatrix-mfa-1",
        "PassWord1",
        "12345678",
        "qwertyuiop",
        "aaaaaaaaaaaa",
        "abababababab",
        "someone@example.com",
        "SOMEONE@EXAMPLE.COM",
        "someone.1@example.com",
    ],
)
def test_weak_password_is_refused_with_code_32(weak: str) -> None:
    email = "someone.1@example.com" if weak.startswith("someone.1") else "someone@example.com"
    with pytest.raises(WeakPassword) as caught:
        passwords.check_strength(weak, email)
    assert caught.value.code == ErrorCode.WEAK_PASSWORD


def test_password_over_256_characters_is_refused_with_code_32() -> None:
    passwords.check_strength("abcd" * 64)  # exactly 256
    with pytest.raises(WeakPassword) as caught:
        passwords.check_strength("abcd" * 64 + "e")
    assert caught.value.code == ErrorCode.WEAK_PASSWORD


def test_base64_password_round_trips_utf8() -> None:
    for secret in ("correct horse battery", "pässwörd ✓ 密码", "a:b:c"):
        encoded = base64.b64encode(secret.encode()).decode()
        assert passwords.decode_base64_password(encoded, "new_password") == secret


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        "cGFzc3dvcmQ",  # missing padding
        "cGFz\nc3dvcmQ=",
        base64.b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
        "ä",
    ],
)
def test_malformed_base64_password_is_a_parameter_error_naming_the_field(value: str) -> None:
    with pytest.raises(ParameterError) as caught:
        passwords.decode_base64_password(value, "new_password")
    assert caught.value.details is not None and "new_password" in caught.value.details


# Crypto


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    assert create_key_file(path)
    return path


def test_secret_box_round_trips_and_hides_the_plaintext(key_file: Path) -> None:
    box = SecretBox(FileKeyRing(key_file))
    seed = b"twenty bytes of seed"
    first, key_id = box.seal(seed, "user-1")
    second, _ = box.seal(seed, "user-1")
    assert key_id == "k1"
    assert seed not in first
    assert first != second  # a fresh nonce every time
    assert box.open(first, key_id, "user-1") == seed
    assert box.open(second, key_id, "user-1") == seed


def test_ciphertext_is_bound_to_its_owner(key_file: Path) -> None:
    box = SecretBox(FileKeyRing(key_file))
    sealed, key_id = box.seal(b"seed", "user-1")
    with pytest.raises(InvalidTag):
        box.open(sealed, key_id, "user-2")


def test_tampered_ciphertext_does_not_open(key_file: Path) -> None:
    box = SecretBox(FileKeyRing(key_file))
    sealed, key_id = box.seal(b"seed", "user-1")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(InvalidTag):
        box.open(tampered, key_id, "user-1")


def test_unknown_key_id_is_a_key_error(key_file: Path) -> None:
    box = SecretBox(FileKeyRing(key_file))
    sealed, _ = box.seal(b"seed", "user-1")
    with pytest.raises(KeyError):
        box.open(sealed, "k99", "user-1")


def test_a_key_file_never_opens_another_key_files_ciphertext(tmp_path: Path) -> None:
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        create_key_file(path)
    sealed, key_id = SecretBox(FileKeyRing(paths[0])).seal(b"seed", "user-1")
    with pytest.raises(InvalidTag):
        SecretBox(FileKeyRing(paths[1])).open(sealed, key_id, "user-1")


def test_rotated_key_seals_new_secrets_and_old_ones_still_open(key_file: Path) -> None:
    old, old_id = SecretBox(FileKeyRing(key_file)).seal(b"old seed", "user-1")
    new_id = add_active_key(key_file)
    box = SecretBox(FileKeyRing(key_file))
    new, sealed_id = box.seal(b"new seed", "user-1")
    assert (old_id, sealed_id) == ("k1", new_id)
    assert new_id != old_id
    assert box.open(old, old_id, "user-1") == b"old seed"
    assert box.open(new, new_id, "user-1") == b"new seed"
    with pytest.raises(InvalidTag):
        box.open(new, old_id, "user-1")


def test_key_file_is_created_once_and_private(key_file: Path) -> None:
    before = key_file.read_bytes()
    assert not create_key_file(key_file)
    assert key_file.read_bytes() == before
    assert key_file.stat().st_mode & 0o077 == 0


def test_token_hasher_separates_purposes_and_keys(tmp_path: Path, key_file: Path) -> None:
    tokens = TokenHasher(FileKeyRing(key_file))
    value = "5f0e1c7a-6b1d-4c4e-9d1e-0c7f6b1d4c4e"
    session = tokens.hash("session", value)
    assert session == tokens.hash("session", value)
    assert len(session) == 64 and int(session, 16) >= 0
    assert session != tokens.hash("reset", value)
    assert session != tokens.hash("recovery", value)
    assert session != tokens.hash("session", value + " ")
    create_key_file(tmp_path / "other.json")
    other = TokenHasher(FileKeyRing(tmp_path / "other.json"))
    assert other.hash("session", value) != session


def test_token_hash_is_hmac_sha256_of_purpose_and_value(key_file: Path) -> None:
    # Stored session, reset and recovery hashes depend on this exact
    # construction (RFC 2104 with SHA-256): changing it would lock everyone out.
    keys = FileKeyRing(key_file)
    expected = hmac.new(keys.hmac_key, b"session\x00t\xc3\xb6ken", hashlib.sha256).hexdigest()
    assert TokenHasher(keys).hash("session", "t\u00f6ken") == expected


def test_token_hasher_survives_a_lone_surrogate(key_file: Path) -> None:
    tokens = TokenHasher(FileKeyRing(key_file))
    assert tokens.hash("session", "\ud800") != tokens.hash("session", "\ud801")


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(FAST_ARGON2)


@pytest.mark.parametrize("threads", [1, 2])
def test_password_hasher_runs_at_most_its_threads_at_once(threads: int) -> None:
    # OWASP's parameters (19 MiB, ~20-40 ms a hash): long enough that six
    # threads would overlap without the gate. The library call is wrapped only
    # to count who is inside it; every hash is real.
    hasher = PasswordHasher(Argon2Parameters(), threads=threads)
    stored = hasher.hash("correct horse battery")
    library = hasher._hasher
    inside, peak, lock = 0, 0, threading.Lock()

    class Counting:
        def verify(self, hash_: str, secret: bytes) -> bool:
            nonlocal inside, peak
            with lock:
                inside += 1
                peak = max(peak, inside)
            try:
                return library.verify(hash_, secret)
            finally:
                with lock:
                    inside -= 1

    hasher._hasher = Counting()  # type: ignore[assignment]
    with ThreadPoolExecutor(6) as pool:
        right = "correct horse battery"
        results = list(pool.map(lambda _: hasher.verify(stored, right), range(12)))
    assert results == [True] * 12
    assert 1 <= peak <= threads


def test_password_hasher_defaults_to_one_thread_per_available_cpu() -> None:
    assert PasswordHasher(FAST_ARGON2).threads == len(os.sched_getaffinity(0))
    assert PasswordHasher(FAST_ARGON2, threads=3).threads == 3


def test_password_hasher_verifies_only_the_right_secret(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse battery" not in stored
    assert stored != hasher.hash("correct horse battery")  # salted
    assert hasher.verify(stored, "correct horse battery")
    assert not hasher.verify(stored, "correct horse batterY")
    assert not hasher.verify(stored, "")


def test_password_hasher_refuses_a_missing_hash(hasher: PasswordHasher) -> None:
    assert hasher.verify(None, "anything") is False
    assert hasher.verify(None, "") is False


def test_password_hasher_refuses_a_garbage_hash(hasher: PasswordHasher) -> None:
    assert hasher.verify("not-a-hash", "anything") is False


def test_password_hasher_handles_odd_unicode(hasher: PasswordHasher) -> None:
    stored = hasher.hash("pa\ud800ss-word")
    assert hasher.verify(stored, "pa\ud800ss-word")
    assert not hasher.verify(stored, "pa\ud801ss-word")
