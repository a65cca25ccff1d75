"""Attack: guessing passwords and second-factor codes, from one address and from many.

An attacker who can try guesses as fast as it likes will find a weak password
or a 6-digit code; DESIGN.md ("Throttling") makes guessing slow: failures count
per email and per client address, past a threshold the answer is 429 code 13
with ``Retry-After``, and the delay doubles up to 15 minutes. These tests run
the attacker's loops on the fake clock against that rule, where
tests/api/test_throttling.py proves its parts one by one:

* an attacker who waits out every ``Retry-After`` (the best it can do) gets
  10 guesses, then one per delay: 109 a day, for passwords and for codes alike;
* guessing from a new address every time (a botnet, seen through a trusted
  proxy) gets no more guesses per email; a forged ``X-Forwarded-For`` gets no
  fresh address budget when the header is not trusted;
* spraying one guess at many emails from one address stops at the address
  limit, and the sprayed users are not locked; the addresses of one IPv6 /64
  are one address (fixed: each had its own budget);
* guesses sent in parallel get no more than guesses sent one by one (fixed:
  they all passed the check before the first was counted);
* refused attempts do not count, so hammering a locked email does not lengthen
  the lock; only the user's own complete login resets the count, never the
  attacker's login to an account of its own;
* locking one user (by passwords or by codes) locks no other user.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, error
from tests.support.codes import wrong_code
from tests.support.encoding import b64
from tests.support.http import SLOW_ARGON2, assert_throttled, login_from, totp_user
from tests.support.scenario import PASSWORD
from tests.support.scenario import WRONG_PASSWORD as WRONG

HOUR = 3600.0
DAY = 24 * HOUR
PIN = "4821"
VICTIM = "tina@example.com"
# A secret check that takes milliseconds, as in production: the window a race needs.


def allowed_guesses(seconds: float) -> int:
    """Guesses checked in ``seconds`` for one email, per DESIGN.md and the README:
    10 at once, then one after each delay of 30 s, doubling up to 15 minutes."""
    count, at, delay = 10, 0.0, 30.0
    while at + delay < seconds:
        at, count, delay = at + delay, count + 1, min(2 * delay, 900.0)
    return count


def attack(api: Api, guess: Callable[[], Any], seconds: float) -> tuple[list[Any], list[int]]:
    """Guess for ``seconds`` of fake time, waiting exactly ``Retry-After`` after each 429:
    (the answers to the guesses that were checked, the ``Retry-After`` values seen).
    It stops at a 429 whose wait would end past ``seconds``, so the email is still
    locked afterwards."""
    end = api.clock.now() + seconds
    checked: list[Any] = []
    waits: list[int] = []
    while True:
        response = guess()
        if response.status_code != 429:
            checked.append(response)
            assert len(checked) <= allowed_guesses(seconds), "guessing is not slowed down"
            continue
        error(response, 429, 13)
        assert "X-Auth-Token" not in response.headers
        waits.append(int(response.headers["Retry-After"]))
        if api.clock.now() + waits[-1] >= end:
            return checked, waits
        api.clock.advance(waits[-1])


def addresses() -> Iterator[str]:
    """A botnet: a different client address for every request."""
    for n in range(1 << 24):
        yield f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


# Guessing passwords ----------------------------------------------------------------


def test_patient_password_guesser_gets_109_guesses_a_day(api: Api) -> None:
    checked, waits = attack(api, lambda: api.login(ADMIN_EMAIL, WRONG), DAY)
    assert allowed_guesses(DAY) == 109
    assert len(checked) == 109
    assert all(response.json()["code"] == 1 for response in checked)
    assert waits[:7] == [30, 60, 120, 240, 480, 900, 900]
    assert max(waits) == 900
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 900)


def test_fresh_address_for_every_guess_gets_no_more_guesses_per_email(
    api: Api, admin_token: str, make_api: Any
) -> None:
    api.create_user(admin_token, "bob@example.com", PASSWORD)
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    botnet = addresses()
    checked, _ = attack(api, lambda: login_from(web, next(botnet), ADMIN_EMAIL, WRONG), HOUR)
    assert len(checked) == allowed_guesses(HOUR) == 17
    response = login_from(web, next(botnet))  # the right password, from a new address
    error(response, 429, 13)
    # The addresses did nothing wrong but one failure each: another user gets in from them.
    assert login_from(web, "10.0.0.0", "bob@example.com", PASSWORD).status_code == 200


def test_forged_forwarded_for_gets_no_fresh_address_budget_when_not_trusted(
    api: Api, make_api: Any
) -> None:
    web: Api = make_api(address_failure_threshold=20)
    botnet = addresses()
    for i in range(20):  # one guess per email: only the address count can stop this
        error(login_from(web, next(botnet), f"user{i}@example.com", WRONG), 401, 1)
    assert_throttled(login_from(web, next(botnet), "user99@example.com", WRONG), 30)
    assert_throttled(login_from(web, next(botnet)), 30)


def test_addresses_of_one_ipv6_network_share_one_address_budget(api: Api, make_api: Any) -> None:
    """Found by this attack: every IPv6 address had a budget of its own, and one host
    owns at least a /64, so it could take a new address, and 100 new guesses, at will.
    Now the address count is per /64, and an IPv4-mapped address counts as its IPv4."""
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=20)
    for i in range(20):
        error(login_from(web, f"2001:db8:6:6::{i + 1:x}", f"u{i}@example.com", WRONG), 401, 1)
    assert_throttled(login_from(web, "2001:db8:6:6:ffff:1:2:3", "v@example.com", WRONG), 30)
    assert login_from(web, "2001:db8:6:7::1").status_code == 200  # the next /64: someone else
    for i in range(20):
        error(login_from(web, "::ffff:192.0.2.8", f"w{i}@example.com", WRONG), 401, 1)
    assert_throttled(login_from(web, "192.0.2.8"), 30)


def test_spraying_many_emails_from_one_address_locks_the_address_not_the_users(
    api: Api, admin_token: str, make_api: Any
) -> None:
    for name in ("bob", "carol"):
        api.create_user(admin_token, f"{name}@example.com", PASSWORD)
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=20)
    targets = ["bob@example.com", "carol@example.com"] + [f"u{i}@example.com" for i in range(28)]
    answers = [login_from(web, "203.0.113.66", email, WRONG).status_code for email in targets]
    assert answers == [401] * 20 + [429] * 10
    assert_throttled(login_from(web, "203.0.113.66", "bob@example.com", PASSWORD), 30)
    for email in ("bob@example.com", "carol@example.com"):
        assert login_from(web, "198.51.100.9", email, PASSWORD).status_code == 200


def test_hammering_a_locked_email_does_not_lengthen_the_lock(api: Api) -> None:
    for _ in range(10):
        error(api.login(ADMIN_EMAIL, WRONG), 401, 1)
    for tick in range(120):  # four tries a second for the whole 30 s
        assert_throttled(api.login(ADMIN_EMAIL, WRONG), 30 - tick // 4)
        api.clock.advance(0.25)
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200


def test_attackers_own_logins_do_not_reset_the_victims_count(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, "mallory@example.com", PASSWORD)
    for _ in range(10):
        error(api.login(ADMIN_EMAIL, WRONG), 401, 1)
        assert api.login("mallory@example.com", PASSWORD).status_code == 200
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 30)
    assert api.login("mallory@example.com", PASSWORD).status_code == 200


def test_victims_login_after_a_long_lock_resets_the_count_entirely(api: Api) -> None:
    _, waits = attack(api, lambda: api.login(ADMIN_EMAIL, WRONG), HOUR)
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), waits[-1])
    assert waits[-1] == 900
    api.clock.advance(900)
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200
    # Back to the start: ten checked guesses, then the first, shortest delay.
    for _ in range(10):
        error(api.login(ADMIN_EMAIL, WRONG), 401, 1)
    assert_throttled(api.login(ADMIN_EMAIL, WRONG), 30)


# Guessing second factors -------------------------------------------------------------


def pin_users(api: Api, admin_token: str, *emails: str) -> None:
    ids = [api.create_user(admin_token, email, PASSWORD) for email in emails]
    response = api.post("/user/set-mfa", {"ids": ids, "auth_type": "PIN", "code": PIN}, admin_token)
    assert response.status_code == 200, response.text


def code_guesser(
    web: Api, email: str, auth_type: str, codes: Iterator[str], origin: Iterator[str]
) -> Callable[[], Any]:
    """An attacker who knows ``email``'s password and guesses its second factor:
    a password login for a pending session, then one code (429 at either step)."""

    def guess() -> Any:
        addr = next(origin)
        login = login_from(web, addr, email, PASSWORD)
        if login.status_code == 429:
            return login
        assert login.status_code == 207, login.text
        body = {"auth_type": auth_type, "code": next(codes)}
        headers = {"X-Forwarded-For": addr}
        return web.post("/session/login", body, login.json()["session_id"], headers=headers)

    return guess


def wrong_codes(api: Api, auth_type: str, secret: str, recovery: list[str]) -> Iterator[str]:
    for n in range(10**4):
        if auth_type == "PIN":
            yield f"{n:04d}" if f"{n:04d}" != PIN else "0000"
        elif auth_type == "recovery":
            guess = f"ABCD-EFGH-JKMN-{n:04d}"
            assert guess not in recovery
            yield guess
        else:
            yield wrong_code(api, secret)


@pytest.mark.parametrize("factor", ["2FA", "PIN", "recovery"])
def test_code_guesser_from_many_addresses_gets_the_same_budget_and_locks_no_one_else(
    api: Api, admin_token: str, make_api: Any, factor: str
) -> None:
    secret, recovery = "", list[str]()
    if factor == "PIN":
        pin_users(api, admin_token, VICTIM)
    else:
        _, secret, recovery = totp_user(api, admin_token, VICTIM)
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True)
    auth_type = "PIN" if factor == "PIN" else "2FA"
    guess = code_guesser(
        web, VICTIM, auth_type, wrong_codes(api, factor, secret, recovery), addresses()
    )
    checked, waits = attack(api, guess, HOUR)
    assert len(checked) == allowed_guesses(HOUR)
    assert all(response.json()["code"] == 11 for response in checked)
    assert waits[:6] == [30, 60, 120, 240, 480, 900]
    # Another user is not locked out by any of this.
    other = api.full_session()
    assert api.get("/profile", other).status_code == 200
    # The victim: refused while locked, then in with the right code, which resets the count.
    assert_throttled(login_from(web, "192.0.2.1", VICTIM, PASSWORD), waits[-1])
    api.clock.advance(waits[-1])
    right = PIN if factor == "PIN" else api.code(secret)
    pending = login_from(web, "192.0.2.1", VICTIM, PASSWORD)
    assert pending.status_code == 207, pending.text
    token = pending.json()["session_id"]
    assert (
        api.post("/session/login", {"auth_type": auth_type, "code": right}, token).status_code
        == 200
    )
    checked, waits = attack(api, guess, 1.0)
    assert len(checked) == 10 and waits == [30]


def test_code_guessing_across_users_from_one_address_stops_at_the_address_limit(
    api: Api, admin_token: str, make_api: Any
) -> None:
    pin_users(
        api, admin_token, "ann@example.com", "ben@example.com", "cat@example.com", "dan@example.com"
    )
    web: Api = make_api(peer="127.0.0.1", trust_forwarded_for=True, address_failure_threshold=12)
    attacker = iter(lambda: "203.0.113.66", None)
    for email in ("ann@example.com", "ben@example.com", "cat@example.com"):
        guess = code_guesser(web, email, "PIN", iter(["1111", "2222", "3333", "4444"]), attacker)
        for _ in range(4):
            error(guess(), 401, 11)
    dan = code_guesser(web, "dan@example.com", "PIN", iter([PIN]), attacker)
    assert_throttled(dan(), 30)
    # Each user had four wrong codes: from their own addresses they all get in.
    for email in ("ann@example.com", "ben@example.com", "cat@example.com", "dan@example.com"):
        own = code_guesser(web, email, "PIN", iter([PIN]), iter(lambda: "198.51.100.4", None))
        assert own().status_code == 200


# Guessing in parallel ------------------------------------------------------------------


def in_parallel(calls: list[Callable[[], Any]]) -> list[int]:
    """Start ``calls`` at the same moment, one thread each; their status codes."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = []

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        statuses.append(call().status_code)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.parametrize("factor", ["password", "PIN", "2FA", "recovery"])
def test_parallel_guesses_get_no_more_than_ten(
    api: Api, admin_token: str, make_api: Any, factor: str
) -> None:
    """Found by this attack: the check came before the slow secret check and the
    count after it, so 30 guesses sent at once were all checked (PostgreSQL),
    or 15 (SQLite). Now an attempt is counted before its secret is checked."""
    web: Api = make_api(argon2=SLOW_ARGON2)
    if factor == "password":
        calls = [lambda: web.login(ADMIN_EMAIL, WRONG)] * 30
    elif factor in ("2FA", "recovery"):
        # Checked inside one write transaction; parallel guesses queue on the user.
        _, secret, _ = totp_user(web, admin_token, VICTIM)
        tokens = [web.login(VICTIM, PASSWORD).json()["session_id"] for _ in range(30)]
        guess = wrong_code(web, secret) if factor == "2FA" else "ABCD-EFGH-JKMN-PQRS"
        body = {"auth_type": "2FA", "code": guess}
        calls = [partial(web.post, "/session/login", body, token) for token in tokens]
    else:
        pin_users(web, admin_token, VICTIM)
        tokens = [web.login(VICTIM, PASSWORD).json()["session_id"] for _ in range(30)]
        body = {"auth_type": "PIN", "code": "0000"}
        calls = [partial(web.post, "/session/login", body, token) for token in tokens]
    statuses = in_parallel(calls)
    assert sorted(statuses) == [401] * 10 + [429] * 20, sorted(statuses)


@pytest.mark.parametrize("call", ["set-password", "set-mfa"])
def test_parallel_guesses_with_a_stolen_session_get_no_more_than_ten(
    make_api: Any, api: Api, call: str
) -> None:
    """A stolen full session guessing the current password (set-password) or an
    enrollment code (set-mfa) in parallel gets the same ten guesses as a login."""
    web: Api = make_api(argon2=SLOW_ARGON2)
    token = web.full_session()
    if call == "set-password":
        body = {"password": b64("not the password"), "new_password": b64("a new long passphrase")}
        path, refused = "/profile/set-password", 400
    else:
        secret = web.get("/profile/2fa/generate", token).json()["secret"]
        body = {"auth_type": "2FA", "code": wrong_code(web, secret)}
        path, refused = "/profile/set-mfa", 401
    statuses = in_parallel([partial(web.post, path, body, token)] * 30)
    assert sorted(statuses) == [refused] * 10 + [429] * 20
    # The owner, with the right password, is held back just the same: that is the price.
    error(web.login(ADMIN_EMAIL, ADMIN_PASSWORD), 429, 13)
