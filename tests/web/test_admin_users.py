"""The admin console's users, in-process: who may open it, search, filters
and keyset paging, invite, edit, disable, delete, and the factor actions on
one user or a selection with core's all-or-nothing answer on the page."""

from __future__ import annotations

import re

import pytest

from quatrix_mfa.core.model import TOTP_KIND
from tests.conftest import ADMIN_EMAIL, latest_link
from tests.support.admin import (
    PASSWORD,
    add_users,
    emails_on,
    next_link,
    stored,
    walk,
)
from tests.web.conftest import Site

ADMIN_PATHS = ["/admin/users", "/admin/users/new", "/admin/settings", "/admin/audit"]


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_without_a_session_the_console_sends_to_sign_in_and_back(site: Site, path: str) -> None:
    response = site.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + path.replace("/", "%2F")


def test_a_signed_in_user_who_is_no_administrator_gets_403_everywhere(site: Site) -> None:
    (person,) = add_users(site.core, 1, "plain", password=True)
    site.sign_in(person.email, PASSWORD)
    assert 'href="/admin"' not in site.get("/account").text
    for path in [*ADMIN_PATHS, f"/admin/users/{person.id}"]:
        response = site.get(path)
        assert response.status_code == 403, path
        assert "Administrators only" in response.text
    refused = site.submit(
        "/account", "/admin/users/actions", {"ids": person.id, "action": "force-2fa"}
    )
    assert refused.status_code == 403
    assert not stored(site.core, person.email).twofa_forced


def test_admin_opens_the_console_from_the_nav_and_lands_on_users(site: Site) -> None:
    site.sign_in()
    assert 'href="/admin"' in site.get("/account").text
    assert site.get("/admin").headers["location"] == "/admin/users"


def test_the_list_pages_by_email_through_three_pages_without_gaps(site: Site) -> None:
    add_users(site.core, 120)
    site.sign_in()
    pages = walk(site, "/admin/users")
    assert len(pages) == 3
    seen = [email for page in pages for email in emails_on(page)]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 121
    link = next_link(site.get("/admin/users").text)
    assert link is not None
    second = site.get(link)
    assert "First page" in second.text and emails_on(second.text)[0] == seen[50]


def test_search_finds_by_email_or_name_and_filters_by_status(site: Site) -> None:
    add_users(site.core, 30)
    add_users(site.core, 2, "gone", status="D")
    site.sign_in()
    assert emails_on(site.get("/admin/users?q=USER01").text) == [
        f"user{n:03d}@example.com" for n in range(10, 20)
    ]
    assert emails_on(site.get("/admin/users?q=person 007").text) == ["user007@example.com"]
    assert emails_on(site.get("/admin/users?status=D").text) == [
        "gone000@example.com",
        "gone001@example.com",
    ]
    # % and _ are letters of the search, not wildcards.
    assert emails_on(site.get("/admin/users?q=%25").text) == []


def test_the_2fa_filters_follow_what_each_user_must_do(site: Site) -> None:
    plain, forced, chosen = add_users(site.core, 3)
    site.sign_in()
    site.submit("/admin/users", "/admin/users/actions", {"ids": forced.id, "action": "force-2fa"})
    with site.core.store.transaction() as tx:
        user = tx.users.get(chosen.id)
        assert user is not None
        user.twofa_active = True
        tx.users.save(user)
    listed = {
        state: set(emails_on(site.get(f"/admin/users?two_factor={state}").text))
        for state in ("none", "forced", "enroll", "active")
    }
    assert plain.email in listed["none"] and ADMIN_EMAIL in listed["none"]
    assert listed["forced"] == {forced.email}
    assert listed["enroll"] == {forced.email, chosen.email}
    assert listed["active"] == set()


def test_a_bad_filter_or_cursor_is_an_error_on_the_page_never_a_500(site: Site) -> None:
    site.sign_in()
    for query in (
        "after=" + "A" * 5000,
        "after=not-base64!",
        "after=WyJhIl0",  # ["a"]: a cursor of another shape
        "status=Z",
        "two_factor=sometimes",
        "q=" + "x" * 300,
    ):
        response = site.get("/admin/users?" + query)
        assert response.status_code == 400, query
        assert 'class="error"' in response.text


def test_inviting_a_user_mails_the_link_to_set_a_password(site: Site) -> None:
    site.sign_in()
    data = {"name": "New Person", "email": "New.Person@example.com", "role": "user"}
    response = site.submit("/admin/users/new", "/admin/users/new", data)
    assert response.status_code == 303, response.text
    user = stored(site.core, "new.person@example.com")
    assert response.headers["location"] == f"/admin/users/{user.id}?notice=created"
    assert "/reset-password/" in latest_link(site.core, "new.person@example.com")
    assert "invitation" in site.get(response.headers["location"]).text


def test_an_invitation_refused_shows_why_next_to_the_field_and_keeps_the_typing(
    site: Site,
) -> None:
    site.sign_in()
    cases = [
        ({"name": "Dup", "email": ADMIN_EMAIL}, "Another user has this email"),
        ({"name": "Odd", "email": "not an email"}, "Not an email address."),
        ({"name": "", "email": "empty.name@example.com"}, "Required."),
        ({"name": "x" * 300, "email": "long.name@example.com"}, "At most 255"),
    ]
    for data, reason in cases:
        response = site.submit("/admin/users/new", "/admin/users/new", {**data, "role": "user"})
        assert response.status_code == 400, data
        assert reason in response.text
        assert f'value="{data["email"]}"' in response.text
    assert site.get("/admin/users?q=example.com").status_code == 200
    assert emails_on(site.get("/admin/users").text) == [ADMIN_EMAIL]


def test_editing_a_user_changes_name_email_role_and_disables(site: Site) -> None:
    (person,) = add_users(site.core, 1)
    site.sign_in()
    page = f"/admin/users/{person.id}"
    data = {"name": "Renamed", "email": "renamed@example.com", "role": "admin", "status": "D"}
    response = site.submit(page, page, data)
    assert response.headers["location"] == page + "?notice=saved"
    user = stored(site.core, "renamed@example.com")
    assert (user.name, user.super_admin, user.status) == ("Renamed", True, "D")
    shown = site.get(response.headers["location"]).text
    assert 'value="Renamed"' in shown and "Saved." in shown


def test_the_last_administrator_cannot_step_down_and_nothing_changes(site: Site) -> None:
    site.sign_in()
    me = stored(site.core, ADMIN_EMAIL)
    page = f"/admin/users/{me.id}"
    data = {"name": "Still Me", "email": ADMIN_EMAIL, "role": "user", "status": "A"}
    response = site.submit(page, page, data)
    assert response.status_code == 400
    assert "must keep at least one active administrator" in response.text
    assert 'value="Still Me"' in response.text  # what was typed stays
    after = stored(site.core, ADMIN_EMAIL)
    assert after.super_admin and after.name == me.name


def test_deleting_needs_the_confirmation_and_then_the_user_is_gone(site: Site) -> None:
    (person,) = add_users(site.core, 1)
    site.sign_in()
    page = f"/admin/users/{person.id}"
    unconfirmed = site.submit(page, page + "/delete", {})
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.text
    assert stored(site.core, person.email)
    done = site.submit(page, page + "/delete", {"confirm": "yes"})
    assert done.headers["location"] == "/admin/users?notice=deleted"
    assert site.get(page).status_code == 404


def test_forcing_2fa_for_a_selection_changes_each_of_them(site: Site) -> None:
    users = add_users(site.core, 3)
    site.sign_in()
    ids = [users[0].id, users[2].id]
    response = site.submit(
        "/admin/users", "/admin/users/actions", {"ids": ids, "action": "force-2fa", "q": "user"}
    )
    assert response.headers["location"] == "/admin/users?q=user&notice=done"
    assert [stored(site.core, u.email).twofa_forced for u in users] == [True, False, True]


def test_a_refused_selection_names_the_ids_and_changes_none_of_them(site: Site) -> None:
    with_2fa, without = add_users(site.core, 2)
    site.sign_in()
    site.submit("/admin/users", "/admin/users/actions", {"ids": with_2fa.id, "action": "force-2fa"})
    before = [stored(site.core, u.email) for u in (with_2fa, without)]
    data = {"ids": [with_2fa.id, without.id], "action": "reset-2fa"}
    response = site.submit("/admin/users", "/admin/users/actions", data)
    assert response.status_code == 400
    assert "Nothing was changed." in response.text
    assert f"2FA is not on for: {without.email}" in response.text
    assert f'value="{with_2fa.id}" checked' in response.text  # the ticks stay
    after = [stored(site.core, u.email) for u in (with_2fa, without)]
    assert [u.credential_epoch for u in after] == [u.credential_epoch for u in before]


def test_setting_a_pin_for_a_selection_and_a_bad_pin_at_the_field(site: Site) -> None:
    users = add_users(site.core, 2)
    site.sign_in()
    ids = [u.id for u in users]
    bad = site.submit(
        "/admin/users", "/admin/users/actions", {"ids": ids, "action": "set-pin", "pin": "12"}
    )
    assert bad.status_code == 400
    assert 'id="pin-error"' in bad.text and "4 to 16 digits" in bad.text
    assert not any(stored(site.core, u.email).pin_active for u in users)
    good = {"ids": ids, "action": "set-pin", "pin": "4821"}
    assert site.submit("/admin/users", "/admin/users/actions", good).status_code == 303
    assert all(stored(site.core, u.email).pin_active for u in users)
    assert "No PIN is set for" not in site.get(f"/admin/users/{users[0].id}").text


def test_one_user_page_resets_2fa_and_explains_a_refusal(site: Site) -> None:
    (person,) = add_users(site.core, 1)
    site.sign_in()
    page = f"/admin/users/{person.id}"
    refused = site.submit(page, page + "/factors", {"action": "remove-pin"})
    assert refused.status_code == 400
    assert "Nothing was changed." in refused.text and "No PIN is set for" in refused.text
    assert site.submit(page, page + "/factors", {"action": "force-2fa"}).status_code == 303
    shown = site.get(page).text
    assert "Enrollment required" in shown and "forced" in shown
    assert TOTP_KIND not in stored(site.core, person.email).enrolled


def test_a_selection_without_users_or_with_foreign_ids_is_refused(site: Site) -> None:
    site.sign_in()
    empty = site.submit("/admin/users", "/admin/users/actions", {"action": "force-2fa"})
    assert empty.status_code == 400 and "Select at least one user" in empty.text
    odd = site.submit(
        "/admin/users",
        "/admin/users/actions",
        {"ids": ["not-a-uuid", "00000000-0000-4000-8000-000000000000"], "action": "force-2fa"},
    )
    assert odd.status_code == 400 and "not-a-uuid" in odd.text
    unknown = site.submit(
        "/admin/users",
        "/admin/users/actions",
        {"ids": "00000000-0000-4000-8000-000000000000", "action": "nonsense"},
    )
    assert unknown.status_code == 400 and "Choose an action" in unknown.text


def test_a_post_without_the_csrf_token_changes_nothing(site: Site) -> None:
    (person,) = add_users(site.core, 1)
    site.sign_in()
    page = f"/admin/users/{person.id}"
    posts = [
        ("/admin/users/actions", {"ids": person.id, "action": "force-2fa"}),
        ("/admin/users/new", {"name": "X", "email": "csrf@example.com", "role": "user"}),
        (page, {"name": "Changed", "email": person.email, "role": "admin", "status": "D"}),
        (page + "/delete", {"confirm": "yes"}),
        (page + "/factors", {"action": "force-2fa"}),
    ]
    for path, data in posts:
        assert site.http.post(path, data=data).status_code == 403, path
    after = stored(site.core, person.email)
    assert (after.name, after.status, after.twofa_forced) == (person.name, "A", False)
    assert emails_on(site.get("/admin/users").text) == [ADMIN_EMAIL, person.email]


@pytest.mark.parametrize(
    "user_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000", "x" * 2000]
)
def test_a_malformed_or_unknown_user_id_is_404_never_a_500(site: Site, user_id: str) -> None:
    site.sign_in()
    assert site.get(f"/admin/users/{user_id}").status_code == 404
    response = site.submit(
        "/admin/users", f"/admin/users/{user_id}/factors", {"action": "force-2fa"}
    )
    assert response.status_code == 404


def test_a_post_without_a_session_goes_to_sign_in_and_then_to_the_console(site: Site) -> None:
    response = site.submit("/login", "/admin/users/actions", {"action": "force-2fa"})
    assert response.headers["location"] == "/login?next=%2Fadmin"


def test_an_action_on_a_later_page_returns_to_that_page(site: Site) -> None:
    users = add_users(site.core, 60)
    site.sign_in()
    second = walk(site, "/admin/users")[1]
    after = re.search(r'name="after" value="([^"]+)"', second)
    assert after is not None
    target = users[55]
    data = {"ids": target.id, "action": "force-2fa", "after": after.group(1)}
    response = site.submit("/admin/users", "/admin/users/actions", data)
    assert response.headers["location"].startswith("/admin/users?after=")
    back = site.get(response.headers["location"]).text
    assert target.email in emails_on(back) and "Done." in back


def test_every_console_form_has_one_submit_button_and_a_label_for_every_field(
    site: Site,
) -> None:
    (person,) = add_users(site.core, 1)
    site.sign_in()
    pages = [
        site.get(path).text
        for path in (
            "/admin/users",
            "/admin/users/new",
            f"/admin/users/{person.id}",
            "/admin/settings",
            "/admin/audit",
        )
    ]
    pages.append(site.submit("/admin/settings", "/admin/settings/2fa", {"force_2fa": "yes"}).text)
    forms = [form for page in pages for form in re.findall(r"<form.*?</form>", page, re.S)]
    assert len(forms) >= 9
    seen = 0
    for form in forms:
        assert len(re.findall(r'<button type="submit"', form)) == 1, form
        labelled = set(re.findall(r'<label for="([^"]+)"', form))
        fields = re.findall(r'<(?:input|select|textarea) id="([^"]+)"', form)
        fields += re.findall(r'<input type="checkbox"[^>]* id="([^"]+)"', form)
        assert set(fields) <= labelled, (set(fields) - labelled, form)
        seen += len(fields)
    assert seen >= 15  # the check looked at the fields, not at nothing
