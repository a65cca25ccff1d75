"""Attack: making the service hash for free with ``set-mfa`` PIN calls.

Setting a PIN hashes it with argon2id, as costly as checking a password
guess. Fixed: any signed-in user could make the service hash on every call,
as often and as many at once as it liked (603 hashes in 10 s pushed an
administrator's login p50 from 26 to 50 ms). Now each PIN set counts against
the user and the address like a guess, and one session hashes one PIN at a
time, on any node (a claim on the session's row in the shared database).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from quatrix_mfa.core.sessions import token_hash
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, error
from tests.servers import race
from tests.support.http import SLOW_ARGON2

PIN = {"auth_type": "PIN", "code": "48213579"}
RACERS = 8


def test_setting_a_pin_over_and_over_is_throttled_like_guessing(api: Api, admin_token: str) -> None:
    token, answers = admin_token, []
    for _ in range(12):
        response = api.post("/profile/set-mfa", PIN, token)
        answers.append(response.status_code)
        if response.status_code == 200:
            token = response.json()["session_ids"]
    assert answers == [200] * 10 + [429] * 2
    error(api.post("/profile/set-mfa", PIN, token), 429, 13)


def test_a_malformed_pin_costs_no_hash_and_counts_nothing(api: Api, admin_token: str) -> None:
    for _ in range(15):
        error(api.post("/profile/set-mfa", {"auth_type": "PIN", "code": "12"}, admin_token), 400, 2)
    assert api.post("/profile/set-mfa", PIN, admin_token).status_code == 200


def test_one_session_hashes_one_pin_at_a_time(api: Api, make_api: Any) -> None:
    web: Api = make_api(argon2=SLOW_ARGON2)
    token = web.full_session(ADMIN_EMAIL, ADMIN_PASSWORD)
    answers = race([partial(web.post, "/profile/set-mfa", PIN, token)] * RACERS)
    outcomes = sorted((r.status_code, r.json().get("code")) for r in answers)
    assert outcomes.count((200, None)) == 1, outcomes
    # The others were turned away before hashing (429), or came after the
    # winner had closed the session (401). None hashed and then lost.
    assert set(outcomes) - {(200, None)} <= {(429, 13), (401, 1)}, outcomes
    assert (429, 13) in outcomes, outcomes
    for loser in answers:
        assert "meanwhile" not in loser.text, loser.text


def test_a_session_busy_hashing_on_another_node_is_turned_away(api: Api, admin_token: str) -> None:
    hashed = token_hash(api.core, admin_token)
    now = api.clock.now()
    with api.core.store.transaction() as tx:  # what another node's set-mfa holds
        assert tx.sessions.claim(hashed, now, now + 30)
    error(api.post("/profile/set-mfa", PIN, admin_token), 429, 13)
    api.clock.advance(31)  # that node died mid-hash: its claim lapses
    assert api.post("/profile/set-mfa", PIN, admin_token).status_code == 200
