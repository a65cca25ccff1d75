"""Single-use things used at once by many clients: exactly one wins.

The same TOTP code, the same recovery code and the same password-reset link
are sent concurrently from many threads (in-process). DESIGN.md: the replay
check is one atomic statement, so two workers racing with the same code
cannot both win. The same races across two real server processes are in
tests/attacks/test_replay.py.

Through the API every check takes the user's row first, which alone would
serialise the racers; the last tests drive the factors from two transactions
that both verified the code and take no user lock, so only the atomic
check-and-set in ``redeem`` stands between them and a double win.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from quatrix_mfa.core.factors import totp
from quatrix_mfa.core.model import User
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, latest_link
from tests.servers import assert_one_winner, race
from tests.support.codes import wrong_code
from tests.support.http import audit_rows

RACERS = 20
ROUNDS = 3
WRONG_CODE = {(401, 11)}
# High enough that the losers of a race answer "wrong code", not "throttled".
GENEROUS = {"user_failure_threshold": 1000, "address_failure_threshold": 100000}


def pending_sessions(
    api: Api, count: int, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> list[str]:
    tokens = []
    for _ in range(count):
        response = api.login(email, password)
        assert response.status_code == 207, response.text
        assert response.headers["Mfa-Code"] == "1"
        tokens.append(response.json()["session_id"])
    return tokens


@pytest.fixture
def racing_api(api: Api, make_api: Any) -> Api:
    """The app on the same database (admin bootstrapped by ``api``), generous throttle."""
    built: Api = make_api(**GENEROUS)
    return built


def test_same_totp_code_from_many_threads_wins_exactly_once(racing_api: Api) -> None:
    api = racing_api
    token, secret, _ = api.enroll_totp(api.full_session())
    for _ in range(ROUNDS):
        tokens = pending_sessions(api, RACERS)
        code = api.code(secret)
        body = {"auth_type": "2FA", "code": code}
        responses = race([lambda t=t: api.post("/session/login", body, t) for t in tokens])
        winner = assert_one_winner(responses, WRONG_CODE)
        full = winner.json()["session_id"]
        assert full not in tokens
        assert api.get("/profile", full).status_code == 200
        # The code is spent for good: even a fresh pending session cannot use it.
        (late,) = pending_sessions(api, 1)
        assert api.post("/session/login", body, late).json()["code"] == 11
        api.clock.advance(totp.PERIOD)
    assert api.get("/profile", token).status_code == 200


def test_each_thread_with_its_own_client_still_gets_one_winner(
    racing_api: Api, make_api: Any
) -> None:
    api = racing_api
    _, secret, _ = api.enroll_totp(api.full_session())
    tokens = pending_sessions(api, RACERS)
    clients = [make_api(**GENEROUS) for _ in range(4)]
    body = {"auth_type": "2FA", "code": api.code(secret)}
    calls = [
        lambda t=t, c=clients[i % len(clients)]: c.post("/session/login", body, t)
        for i, t in enumerate(tokens)
    ]
    assert_one_winner(race(calls), WRONG_CODE)


def test_same_recovery_code_from_many_threads_wins_exactly_once(racing_api: Api) -> None:
    api = racing_api
    _, _, recovery = api.enroll_totp(api.full_session())
    for round_ in range(ROUNDS):
        tokens = pending_sessions(api, RACERS)
        body = {"auth_type": "2FA", "code": recovery[round_]}
        responses = race([lambda t=t: api.post("/session/login", body, t) for t in tokens])
        winner = assert_one_winner(responses, WRONG_CODE)
        assert api.get("/profile", winner.json()["session_id"]).status_code == 200
        (late,) = pending_sessions(api, 1)
        assert api.post("/session/login", body, late).json()["code"] == 11
        api.clock.advance(totp.PERIOD)
    # The unused codes still work.
    (pending,) = pending_sessions(api, 1)
    body = {"auth_type": "2FA", "code": recovery[ROUNDS]}
    assert api.post("/session/login", body, pending).status_code == 200


def test_same_reset_link_from_many_threads_sets_the_password_once(
    racing_api: Api, admin_token: str
) -> None:
    api = racing_api
    email = "racer@example.com"
    created = api.post("/user/create", {"name": "Racer", "email": email}, admin_token)
    assert created.status_code == 201, created.text
    reset_id = latest_link(api.core, email).rsplit("/", 1)[1]
    passwords = [f"racing password number {i}" for i in range(RACERS)]
    responses = race(
        [
            lambda p=p: api.post(f"/reset-password/reset/{reset_id}", {"password": p})
            for p in passwords
        ]
    )
    winner = assert_one_winner(responses, {(401, 1)})
    assert winner.json()["id"] == reset_id
    won = passwords[responses.index(winner)]
    logins = {p: api.login(email, p).status_code for p in passwords}
    assert logins[won] == 200
    assert [p for p, status in logins.items() if status == 200] == [won]
    assert api.get(f"/reset-password/metadata/{reset_id}").status_code == 401


def test_one_user_logging_in_from_many_threads_always_gets_in(
    racing_api: Api, make_api: Any
) -> None:
    """Found on PostgreSQL: a successful login reset the throttle row by deleting
    it while other logins of the same user upserted it, and they deadlocked (500)."""
    clients = [make_api(**GENEROUS) for _ in range(4)]
    calls = [
        lambda c=clients[i % len(clients)]: c.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        for i in range(RACERS)
    ]
    for _ in range(ROUNDS):
        assert [r.status_code for r in race(calls)] == [200] * RACERS


def test_logins_and_code_checks_of_one_user_at_once_never_fail(
    racing_api: Api, make_api: Any
) -> None:
    """Every writer takes the user's row before the throttle rows, so password
    logins and second-factor checks of one user, all at once, never deadlock."""
    api = racing_api
    _, secret, _ = api.enroll_totp(api.full_session())
    tokens = pending_sessions(api, RACERS // 2)
    clients = [make_api(**GENEROUS) for _ in range(4)]
    wrong = {"auth_type": "2FA", "code": wrong_code(api, secret)}
    calls = [
        lambda c=clients[i % len(clients)]: c.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        for i in range(RACERS // 2)
    ] + [
        lambda c=clients[i % len(clients)], t=t: c.post("/session/login", wrong, t)
        for i, t in enumerate(tokens)
    ]
    statuses = [r.status_code for r in race(calls)]
    assert statuses == [207] * (RACERS // 2) + [401] * (RACERS // 2)


def one_of_two_transactions_wins(api: Api, db_kind: str, factor: Any, code: str) -> User:
    """Two threads verify ``code`` for the admin, wait until both have, then both
    redeem, each in its own write transaction, neither taking the user's row:
    exactly one may win. Returns the admin."""
    both_verified = threading.Barrier(2)
    store, now = api.core.store, api.clock.now()
    with store.transaction(write=False) as tx:
        user = tx.users.by_email(ADMIN_EMAIL)
    assert user is not None

    def verify(tx: Any) -> Any:
        credential = factor.load(tx, user)
        match = None if credential is None else factor.verify(credential, user, code, now)
        assert match is not None, "the code must verify for both racers"
        both_verified.wait(timeout=30)
        return match

    def attempt() -> bool:
        if db_kind == "sqlite":  # writers run one at a time: verify in a reader first
            with store.transaction(write=False) as tx:
                match = verify(tx)
            with store.transaction() as tx:
                return bool(factor.redeem(tx, user, match, now))
        with store.transaction() as tx:  # both transactions open, both verified
            return bool(factor.redeem(tx, user, verify(tx), now))

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(attempt) for _ in range(2)]
        assert sorted(future.result(timeout=60) for future in futures) == [False, True]
    return user


def test_two_transactions_redeeming_one_totp_code_without_the_user_lock_one_wins(
    api: Api, db_kind: str
) -> None:
    _, secret, _ = api.enroll_totp(api.full_session())
    for _ in range(ROUNDS):
        user = one_of_two_transactions_wins(api, db_kind, api.core.totp, api.code(secret))
        with api.core.store.transaction(write=False) as tx:
            credential = api.core.totp.load(tx, user)
        assert credential is not None
        assert credential.last_step == totp.time_step(api.clock.now())  # spent once
        api.clock.advance(totp.PERIOD)


def test_two_transactions_redeeming_one_recovery_code_without_the_user_lock_one_wins(
    api: Api, db_kind: str
) -> None:
    _, _, recovery = api.enroll_totp(api.full_session())
    for round_, code in enumerate(recovery[:ROUNDS]):
        user = one_of_two_transactions_wins(api, db_kind, api.core.recovery, code)
        with api.core.store.transaction(write=False) as tx:
            assert tx.credentials.recovery_codes_left(user.id) == len(recovery) - round_ - 1


def test_one_factor_removed_from_many_threads_at_once_is_removed_once(racing_api: Api) -> None:
    api = racing_api
    set_pin = api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "4829"}, api.full_session())
    assert set_pin.status_code == 200, set_pin.text
    token = set_pin.json()["session_ids"]
    before = len(audit_rows(api))
    body = {"auth_type": "PIN"}
    responses = race([lambda: api.post("/profile/remove-mfa", body, token)] * 8)
    assert_one_winner(responses, {(400, 15)})  # the others find it off
    removed = [row for row in audit_rows(api)[before:] if row.event == "factor.removed"]
    assert len(removed) == 1
