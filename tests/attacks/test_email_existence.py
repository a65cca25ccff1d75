"""Issue 17, item 7: an administrator of one account learned whether an email
existed in another, since create and edit answered code 31 for an email taken
anywhere (and the first account to take an address kept it from the others).

Now an email is unique within an account, and across the service only among
users who have set a password. An admin who creates or edits to another
account's email gets the answer a free email gets (status, body, the same
statements, the same mail), and cannot reserve the address: the other
account's user keeps signing in, and the invitation cannot set a password
while someone else signs in with that address.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from quatrix_mfa.core.model import Account, User
from tests.conftest import ADMIN_EMAIL, Api, error
from tests.servers import assert_one_winner, race
from tests.support import outbox
from tests.support.http import visible
from tests.support.scenario import FOREIGN_EMAIL, FOREIGN_PASSWORD
from tests.support.storage import store_of

# Same length as FOREIGN_EMAIL, so even Content-Length matches.
FREE_EMAIL = "outsidex@elsewhere.example"
PASSWORD = "member password 123"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TAKEN = {(400, 31)}
_NUMBER = re.compile(r"(?<=member|invite)[12]")


@contextmanager
def statements(api: Api) -> Iterator[list[str]]:
    """The SQL text of every statement run while entered (parameters left out)."""
    seen: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The key ring's read of the active key id (storage/deployment.py
        # ActiveKey) runs when its cache has aged, whatever the request: not
        # work that depends on the email.
        if "key_checks" not in statement:
            seen.append(statement)

    engine = store_of(api.core).engine
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)


def answer_and_work(api: Api, call: Callable[[], Any], email: str) -> tuple[Any, list[str]]:
    """What the admin sees of ``call`` (ids and the echoed email masked) and
    the statements it ran."""
    with statements(api) as seen:
        response = call()
    status, body, headers = visible(response, email)
    return (status, _UUID.sub("ID", body), headers), list(seen)


def test_create_with_another_accounts_email_answers_as_a_free_email(
    api: Api, admin_token: str
) -> None:
    api.scenario.foreign_admin()

    def create(email: str) -> Callable[[], Any]:
        return lambda: api.post("/user/create", {"name": "Probe", "email": email}, admin_token)

    taken = answer_and_work(api, create(FOREIGN_EMAIL), FOREIGN_EMAIL)
    free = answer_and_work(api, create(FREE_EMAIL), FREE_EMAIL)
    assert taken[0][0] == 201
    assert taken == free
    # The invitation is mailed either way (the admin's side sees no difference).
    assert [m.subject for m in outbox.mails(api.core, FOREIGN_EMAIL)] == [
        m.subject for m in outbox.mails(api.core, FREE_EMAIL)
    ]
    assert outbox.mails(api.core, ADMIN_EMAIL) == []


def test_edit_to_another_accounts_email_answers_as_a_free_email(api: Api, admin_token: str) -> None:
    api.scenario.foreign_admin()
    # Users who sign in (their change waits for the new address), and invited
    # users without a password (theirs applies at once): neither tells.
    with_password = [api.create_user(admin_token, f"member{i}@example.com") for i in (1, 2)]
    invited = [api.scenario.invite(admin_token, f"invite{i}@example.com")[0] for i in (1, 2)]
    for first, second in (with_password, invited):

        def edit(user_id: str, email: str) -> Callable[[], Any]:
            return lambda: api.post("/user/edit", {"ids": [user_id], "email": email}, admin_token)

        taken = answer_and_work(api, edit(first, FOREIGN_EMAIL), FOREIGN_EMAIL)
        free = answer_and_work(api, edit(second, FREE_EMAIL), FREE_EMAIL)
        assert taken[0][0] == 200
        assert (taken[0][0], taken[0][2], taken[1]) == (free[0][0], free[0][2], free[1])
        # The two users differ only in their number (name and current email).
        assert _NUMBER.sub("N", taken[0][1]) == _NUMBER.sub("N", free[0][1])


def test_an_invitation_cannot_take_another_accounts_sign_in_email(
    api: Api, admin_token: str
) -> None:
    api.scenario.foreign_admin()
    _, reset_id = api.scenario.invite(admin_token, FOREIGN_EMAIL)
    refused = api.post(f"/reset-password/reset/{reset_id}", {"password": PASSWORD})
    assert "another organisation" in error(refused, 400, 31)["msg"]
    assert api.get(f"/reset-password/metadata/{reset_id}").status_code == 200  # still unused
    assert api.login(FOREIGN_EMAIL, FOREIGN_PASSWORD).status_code == 200
    assert api.login(FOREIGN_EMAIL, PASSWORD).status_code == 401


def test_a_changed_email_cannot_take_another_accounts_sign_in_email(
    api: Api, admin_token: str
) -> None:
    # The confirmation goes to the address, whose holder alone could follow it.
    api.scenario.foreign_admin()
    member = api.create_user(admin_token, "member@example.com", PASSWORD)
    api.post("/user/edit", {"ids": [member], "email": FOREIGN_EMAIL}, admin_token)
    error(api.post(f"/confirm-email/{outbox.latest_confirm_id(api.core, FOREIGN_EMAIL)}"), 400, 31)
    assert api.get(f"/user/metadata/{member}", admin_token).json()["email"] == "member@example.com"
    assert api.login(FOREIGN_EMAIL, FOREIGN_PASSWORD).status_code == 200


def test_an_invitation_does_not_reserve_a_free_email(api: Api, admin_token: str) -> None:
    """An admin who invites an address first keeps it from no other account:
    whoever sets a password first signs in with it."""
    _, early = api.scenario.invite(admin_token, FREE_EMAIL)
    foreign_token = api.full_session(*_foreign(api))
    api.scenario.create_user(foreign_token, FREE_EMAIL, "the real owner's password")
    assert api.login(FREE_EMAIL, "the real owner's password").status_code == 200
    error(api.post(f"/reset-password/reset/{early}", {"password": PASSWORD}), 400, 31)


def test_forgot_password_of_a_shared_email_reaches_the_user_who_signs_in(
    api: Api, admin_token: str
) -> None:
    api.scenario.foreign_admin()
    twin, _ = api.scenario.invite(admin_token, FOREIGN_EMAIL)
    api.clock.advance(120)
    asked = api.post("/reset-password/request", {"email": [FOREIGN_EMAIL]})
    assert asked.status_code == 200
    reset_id = outbox.latest_reset_id(api.core, FOREIGN_EMAIL)
    new_password = "the holder's new password"
    response = api.post(f"/reset-password/reset/{reset_id}", {"password": new_password})
    assert response.status_code == 200, response.text
    assert api.login(FOREIGN_EMAIL, new_password).status_code == 200
    with api.core.store.transaction(write=False) as tx:
        invited = tx.users.get(twin)
    assert invited is not None and invited.password_hash is None


def test_same_account_duplicates_are_still_refused(api: Api, admin_token: str) -> None:
    member = api.create_user(admin_token, "member@example.com", PASSWORD)
    body = {"name": "Twin", "email": "MEMBER@example.com"}
    error(api.post("/user/create", body, admin_token), 400, 31)
    error(api.post("/user/edit", {"ids": [member], "email": ADMIN_EMAIL}, admin_token), 400, 31)


def test_invitations_of_one_email_redeemed_at_once_sign_in_as_one_user(api: Api) -> None:
    """The race is settled by the unique index of sign-in emails: one password
    is set, every other redemption answers 31, never a 500."""
    racers = 4
    links = [_invite_in_new_account(api, f"Org {n}", FREE_EMAIL) for n in range(racers)]
    passwords = [f"racer number {n} password" for n in range(racers)]
    responses = race(
        [
            lambda r=r, p=p: api.post(f"/reset-password/reset/{r}", {"password": p})
            for r, p in zip(links, passwords, strict=True)
        ]
    )
    winner = assert_one_winner(responses, TAKEN)
    won = passwords[responses.index(winner)]
    assert api.login(FREE_EMAIL, won).status_code == 200
    with api.core.store.transaction(write=False) as tx:
        holder = tx.users.by_email(FREE_EMAIL)
        assert holder is not None and holder.password_hash is not None


def _foreign(api: Api) -> tuple[str, str]:
    api.scenario.foreign_admin()
    return FOREIGN_EMAIL, FOREIGN_PASSWORD


def _invite_in_new_account(api: Api, name: str, email: str) -> str:
    """An account with an admin (who signs in) and an invited user with
    ``email``; the reset id of the invitation."""
    now = api.clock.now()
    account = Account(id=str(uuid.uuid4()), name=name, created=now, modified=now)
    admin_email = f"admin.{account.id[:8]}@example.com"
    admin = User(
        id=str(uuid.uuid4()),
        account_id=account.id,
        email=admin_email,
        name=name,
        created=now,
        modified=now,
        super_admin=True,
        password_hash=api.core.passwords.hash(FOREIGN_PASSWORD),
    )
    with api.core.store.transaction() as tx:
        tx.accounts.add(account)
        tx.users.add(admin)
    token = api.full_session(admin_email, FOREIGN_PASSWORD)
    return api.scenario.invite(token, email)[1]
