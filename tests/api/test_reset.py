"""Password reset by mailed link, the page mailed links point to, and the
public account metadata: all reachable without a session."""

from __future__ import annotations

import re
import uuid

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.mail import readable_body
from tests.conftest import ADMIN_EMAIL, Api
from tests.support import outbox

USER = "bob@example.com"
PASSWORD = "another good password"
NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"^https://mfa\.example\.com/reset-password/([0-9a-f-]{36})$")


def _reset_ids(core: Core, to: str) -> list[str]:
    """The reset ids of every link mailed to ``to`` (in the form ``LINK``), oldest first."""
    return [m.group(1) for link in outbox.reset_links(core, to) if (m := LINK.match(link))]


def _request(api: Api, email: str, token: str | None = None) -> str:
    """Ask for a reset of ``email``; return the id of the link it mailed."""
    before = len(_reset_ids(api.core, email))
    response = api.post("/reset-password/request", {"email": [email]}, token)
    assert response.status_code in (200, 202), response.text
    ids = _reset_ids(api.core, email)
    assert len(ids) == before + 1, "no new reset mail"
    return ids[-1]


def _assert_error(response: object, status: int, code: int) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.json()["code"] == code  # type: ignore[attr-defined]


def test_known_and_unknown_emails_get_identical_answers(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    known = api.post("/reset-password/request", {"email": [USER]})
    unknown = api.post("/reset-password/request", {"email": ["eve@example.com"]})
    assert known.status_code == unknown.status_code == 200
    assert known.json() == {"email": [USER]}
    assert unknown.json() == {"email": ["eve@example.com"]}

    def shape(response: object) -> dict[str, str]:
        headers = dict(response.headers)  # type: ignore[attr-defined]
        headers.pop("date", None)
        headers.pop("x-request-id", None)  # each answer has its own
        return headers

    assert shape(known) == shape(unknown)


def test_emails_are_echoed_as_given(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    given = ["Bob@Example.COM", "nobody@example.org"]
    response = api.post("/reset-password/request", {"email": given})
    assert response.status_code == 200
    assert response.json() == {"email": given}
    assert len(_reset_ids(api.core, USER)) == 2  # the set-password link, then this one


def test_known_active_user_gets_exactly_one_mail_with_a_link(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    before = outbox.mails(api.core)
    assert api.post("/reset-password/request", {"email": [USER]}).status_code == 200
    new = outbox.mails(api.core)[len(before) :]
    assert [m.to for m in new] == [USER]
    body = readable_body(api.core.box, new[0])
    links = [line.strip() for line in body.splitlines() if LINK.match(line.strip())]
    assert len(links) == 1
    reset_id = LINK.match(links[0]).group(1)  # type: ignore[union-attr]
    assert str(uuid.UUID(reset_id)) == reset_id


def test_unknown_email_sends_no_mail(api: Api) -> None:
    before = len(outbox.mails(api.core))
    assert api.post("/reset-password/request", {"email": ["eve@example.com"]}).status_code == 200
    assert len(outbox.mails(api.core)) == before


def test_disabled_user_gets_no_mail(api: Api, admin_token: str) -> None:
    user_id = api.create_user(admin_token, USER, PASSWORD)
    edit = api.post("/user/edit", {"ids": [user_id], "status": "D"}, admin_token)
    assert edit.status_code == 200, edit.text
    before = len(outbox.mails(api.core, USER))
    response = api.post("/reset-password/request", {"email": [USER]})
    assert response.status_code == 200
    assert response.json() == {"email": [USER]}
    assert len(outbox.mails(api.core, USER)) == before


def test_second_request_within_a_minute_sends_no_second_mail(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    api.clock.advance(120)
    _request(api, USER)
    count = len(outbox.mails(api.core, USER))
    api.clock.advance(59)
    second = api.post("/reset-password/request", {"email": [USER]})
    assert second.status_code == 200
    assert second.json() == {"email": [USER]}
    assert len(outbox.mails(api.core, USER)) == count
    api.clock.advance(2)
    _request(api, USER)


def test_metadata_of_a_live_link(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    api.clock.advance(120)
    reset_id = _request(api, USER)
    response = api.get(f"/reset-password/metadata/{reset_id}")
    assert response.status_code == 200, response.text
    assert response.json() == {"id": reset_id, "multiple_accounts": False}
    upper = api.get(f"/reset-password/metadata/{reset_id.upper()}")
    assert upper.status_code == 200
    assert upper.json()["id"] == reset_id


def test_unknown_link_is_not_authenticated(api: Api) -> None:
    unknown = str(uuid.uuid4())
    _assert_error(api.get(f"/reset-password/metadata/{unknown}"), 401, 1)
    _assert_error(api.post(f"/reset-password/reset/{unknown}", {"password": NEW_PASSWORD}), 401, 1)


def test_malformed_link_id_is_a_parameter_error(api: Api) -> None:
    """DESIGN.md: bad UUIDs answer 400 code 2; ``details`` names the id."""
    for bad in ("not-a-uuid", "1234", "x" * 70):
        for response in (
            api.get(f"/reset-password/metadata/{bad}"),
            api.post(f"/reset-password/reset/{bad}", {"password": NEW_PASSWORD}),
        ):
            _assert_error(response, 400, 2)
            assert "id" in response.json()["details"]


def test_reset_link_expires_after_an_hour(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    api.clock.advance(120)
    reset_id = _request(api, USER)
    api.clock.advance(3599)
    assert api.get(f"/reset-password/metadata/{reset_id}").status_code == 200
    api.clock.advance(1)
    _assert_error(api.get(f"/reset-password/metadata/{reset_id}"), 401, 1)
    response = api.post(f"/reset-password/reset/{reset_id}", {"password": NEW_PASSWORD})
    _assert_error(response, 401, 1)
    assert api.login(USER, PASSWORD).status_code == 200


def test_set_password_link_for_a_new_user_lives_seven_days(api: Api, admin_token: str) -> None:
    created = api.post("/user/create", {"name": "carol", "email": "carol@example.com"}, admin_token)
    assert created.status_code == 201, created.text
    [reset_id] = _reset_ids(api.core, "carol@example.com")
    api.clock.advance(7 * 86400 - 1)
    assert api.get(f"/reset-password/metadata/{reset_id}").status_code == 200
    api.clock.advance(1)
    _assert_error(api.get(f"/reset-password/metadata/{reset_id}"), 401, 1)


def test_reset_sets_the_new_password(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    api.clock.advance(120)
    reset_id = _request(api, USER)
    response = api.post(f"/reset-password/reset/{reset_id}", {"password": NEW_PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json() == {"id": reset_id}
    assert api.login(USER, NEW_PASSWORD).status_code == 200
    _assert_error(api.login(USER, PASSWORD), 401, 1)


def test_a_reset_mails_a_notice_but_the_first_password_does_not(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    assert [m.subject for m in outbox.mails(api.core, USER)] == ["Set your Quatrix password"]
    api.clock.advance(120)
    reset_id = _request(api, USER)
    api.post(f"/reset-password/reset/{reset_id}", {"password": NEW_PASSWORD})
    mails = outbox.mails(api.core, USER)
    assert mails[-1].subject == "Your Quatrix password was reset"
    assert NEW_PASSWORD not in mails[-1].body and reset_id not in mails[-1].body


def test_weak_password_is_refused_and_the_link_stays_usable(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    api.clock.advance(120)
    reset_id = _request(api, USER)
    for weak in ("short", "password123", USER):
        response = api.post(f"/reset-password/reset/{reset_id}", {"password": weak})
        _assert_error(response, 400, 32)
    assert api.get(f"/reset-password/metadata/{reset_id}").status_code == 200
    assert api.login(USER, PASSWORD).status_code == 200
    ok = api.post(f"/reset-password/reset/{reset_id}", {"password": NEW_PASSWORD})
    assert ok.status_code == 200, ok.text
    assert api.login(USER, NEW_PASSWORD).status_code == 200


def test_used_link_is_refused(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    api.clock.advance(120)
    reset_id = _request(api, USER)
    assert (
        api.post(f"/reset-password/reset/{reset_id}", {"password": NEW_PASSWORD}).status_code == 200
    )
    again = api.post(f"/reset-password/reset/{reset_id}", {"password": "yet another passphrase"})
    _assert_error(again, 401, 1)
    _assert_error(api.get(f"/reset-password/metadata/{reset_id}"), 401, 1)
    assert api.login(USER, NEW_PASSWORD).status_code == 200


def test_a_reset_revokes_older_links_of_the_user(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    api.clock.advance(120)
    older = _request(api, USER)
    api.clock.advance(120)
    newer = _request(api, USER)
    assert api.post(f"/reset-password/reset/{newer}", {"password": NEW_PASSWORD}).status_code == 200
    _assert_error(api.get(f"/reset-password/metadata/{older}"), 401, 1)


def test_reset_closes_every_session_of_the_user(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    first = api.full_session(USER, PASSWORD)
    second = api.full_session(USER, PASSWORD)
    api.clock.advance(120)
    reset_id = _request(api, USER)
    assert (
        api.post(f"/reset-password/reset/{reset_id}", {"password": NEW_PASSWORD}).status_code == 200
    )
    for token in (first, second):
        _assert_error(api.get("/profile", token), 401, 1)
    assert api.get("/profile", admin_token).status_code == 200  # other users keep theirs
    fresh = api.full_session(USER, NEW_PASSWORD)
    assert api.get("/profile", fresh).json()["email"] == USER


def test_reset_clears_the_failure_counter(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    for _ in range(30):
        if api.login(USER, "wrong password!").status_code == 429:
            break
    else:
        raise AssertionError("wrong passwords were never throttled")
    assert api.login(USER, PASSWORD).status_code == 429
    reset_id = _request(api, USER)
    assert (
        api.post(f"/reset-password/reset/{reset_id}", {"password": NEW_PASSWORD}).status_code == 200
    )
    assert api.login(USER, NEW_PASSWORD).status_code == 200


def test_admin_session_request_answers_202_with_a_job_id(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    api.clock.advance(120)
    before = len(_reset_ids(api.core, USER))
    response = api.post("/reset-password/request", {"email": [USER]}, admin_token)
    assert response.status_code == 202, response.text
    assert set(response.json()) == {"job_id"}
    uuid.UUID(response.json()["job_id"])
    assert len(_reset_ids(api.core, USER)) == before + 1


def test_user_session_request_answers_like_anyone(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    token = api.full_session(USER, PASSWORD)
    response = api.post("/reset-password/request", {"email": [ADMIN_EMAIL]}, token)
    assert response.status_code == 200
    assert response.json() == {"email": [ADMIN_EMAIL]}


def test_empty_email_list_is_a_parameter_error(api: Api) -> None:
    _assert_error(api.post("/reset-password/request", {"email": []}), 400, 2)
    _assert_error(api.post("/reset-password/request", {"email": "bob@example.com"}), 400, 2)


def test_mailed_link_opens_the_set_password_page(api: Api, admin_token: str) -> None:
    api.create_user(admin_token, USER, PASSWORD)
    api.clock.advance(120)
    reset_id = _request(api, USER)
    page = api.http.get(f"http://testserver/reset-password/{reset_id}")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert f'action="/reset-password/{reset_id}"' in page.text
    assert 'name="new_password"' in page.text
    assert api.get(f"/reset-password/metadata/{reset_id}").status_code == 200  # not consumed
    unknown = api.http.get(f"http://testserver/reset-password/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert 'name="new_password"' not in unknown.text


def test_account_metadata_without_a_session(api: Api) -> None:
    response = api.get("/account/metadata")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "A"
    assert body["title"] == "Example"
    assert isinstance(body["language"], str) and body["language"]


def test_account_metadata_with_a_dead_token_describes_the_first_account(api: Api) -> None:
    response = api.get("/account/metadata", str(uuid.uuid4()))
    assert response.status_code == 200
    assert response.json()["title"] == "Example"
