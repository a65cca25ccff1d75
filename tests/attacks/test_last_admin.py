"""Attack (PostgreSQL): two administrators stepping down at once.

An account must keep an active administrator (``POST /user/edit`` refuses the
change that leaves none). Fixed: the rule was checked, then committed, under
READ COMMITTED: two admins demoting each other at once each counted the other
still in place, both answers were 200 and the account had no administrator
left (every admin call 403, and ``init`` says it is already initialised). Now
every change of role or status locks the account row first and re-reads the
caller under that lock, so the second change sees the first.

SQLite runs one writer at a time, so there the race cannot happen at all.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, only_on
from tests.servers import assert_one_winner, race

SECOND = "second.admin@example.com"
SECOND_PASSWORD = "the second admin's passphrase"
ROUNDS = 12
# The loser's change is refused: it would leave no administrator (400 code 2),
# or the loser was no administrator any more by the time it ran (403 code 3).
REFUSED = {(400, 2), (403, 3)}

pytestmark = only_on("postgresql", "SQLite runs one writer at a time: no race to lose")


def demote(api: Api, token: str, user_id: str) -> Any:
    return api.post("/user/edit", {"ids": [user_id], "super_admin": "N"}, token)


def test_two_admins_demoting_each_other_at_once_leave_one(api: Api, admin_token: str) -> None:
    first_id = api.get("/profile", admin_token).json()["id"]
    second_id = api.create_user(admin_token, SECOND, SECOND_PASSWORD, super_admin="Y")
    for _ in range(ROUNDS):
        first = api.full_session(ADMIN_EMAIL, ADMIN_PASSWORD)
        second = api.full_session(SECOND, SECOND_PASSWORD)
        answers = race(
            [lambda: demote(api, first, second_id), lambda: demote(api, second, first_id)]
        )
        winner = assert_one_winner(answers, REFUSED)
        assert [u["super_admin"] for u in winner.json()] == ["N"]
        # Promote the one demoted again, as the one left.
        left = first if winner is answers[0] else second
        demoted = second_id if winner is answers[0] else first_id
        response = api.post("/user/edit", {"ids": [demoted], "super_admin": "Y"}, left)
        assert response.status_code == 200, response.text


def test_two_admins_deleting_each_other_at_once_leave_one(api: Api, admin_token: str) -> None:
    first_id = api.get("/profile", admin_token).json()["id"]
    for round_ in range(ROUNDS):
        email = f"round{round_}.admin@example.com"
        second_id = api.create_user(admin_token, email, SECOND_PASSWORD, super_admin="Y")
        second = api.full_session(email, SECOND_PASSWORD)
        answers = race(
            [
                lambda: api.post("/user/delete", {"ids": [second_id]}, admin_token),
                lambda: api.post("/user/delete", {"ids": [first_id]}, second),
            ]
        )
        # The loser no longer exists: refused under the lock (403), or its
        # session was already gone when it was read (401).
        winner = assert_one_winner(answers, {(403, 3), (401, 1)}, winner_status=202)
        if winner is answers[1]:
            break  # the first admin is gone; the second is the one left
