"""The pages' languages: every message of the templates and of web/*.py is
translated in the German catalog (a new English text without its German
fails here), and the language follows ``Accept-Language``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from playwright.sync_api import expect

from quatrix_mfa.web import i18n
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, latest_link
from tests.servers import Server
from tests.support.admin import stored
from tests.web.conftest import SITE, Site

WEB = Path(str(resources.files("quatrix_mfa.web")))
GERMAN = {"Accept-Language": "de-DE,de;q=0.9"}
# The same mapping as babel.cfg (scripts/i18n), read at test time.
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def extracted() -> set[str]:
    """Every message id Babel's extractor finds in the templates and web/*.py."""
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(WEB), METHODS, OPTIONS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def singular(message_id: str | tuple[str, ...]) -> str:
    """A plural message's id is (singular, plural); it is known by its singular."""
    return message_id if isinstance(message_id, str) else message_id[0]


def translated(text: str | tuple[str, ...]) -> bool:
    """Every form is there: a plural needs each of the language's forms."""
    return bool(text) if isinstance(text, str) else all(text)


def test_every_message_of_the_pages_is_translated_in_german() -> None:
    messages = extracted()
    assert "Sign in" in messages and "Wrong email or password." in messages  # both kinds read
    with (WEB / "locale" / "de" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="de")
    untranslated = sorted(
        message
        for message in messages
        if (entry := catalog.get(message)) is None or not translated(entry.string) or entry.fuzzy
    )
    assert not untranslated, "not translated in de/messages.po (run scripts/i18n):\n" + "\n".join(
        untranslated
    )


def test_the_template_catalog_lists_every_message() -> None:
    with (WEB / "locale" / "messages.pot").open("rb") as pot:
        template = {singular(message.id) for message in read_po(pot) if message.id}
    assert extracted() <= template, "run scripts/i18n"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9", "de"),
        ("de", "de"),
        ("fr-CH, fr;q=0.9, de;q=0.5, en;q=0.3", "de"),
        ("en", "en"),
        ("en-US,en;q=0.9,de;q=0.8", "en"),
        ("fr", "en"),
        ("de;q=0, en", "en"),
        ("", "en"),
        (None, "en"),
        ("de;q=nonsense,,;;=", "en"),
        ("*", "en"),
    ],
)
def test_the_language_follows_accept_language(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


def test_a_page_asked_for_in_german_is_german(site: Site) -> None:
    page = site.get("/login", headers=GERMAN)
    assert page.status_code == 200
    assert '<html lang="de">' in page.text
    assert page.headers["content-language"] == "de"
    assert "<h1>Anmelden</h1>" in page.text and "Passwort vergessen?" in page.text
    assert "Sign in" not in page.text


@pytest.mark.parametrize("header", [{"Accept-Language": "en"}, {}, {"Accept-Language": "fr"}])
def test_a_page_asked_for_in_english_another_language_or_none_is_english(
    site: Site, header: dict[str, str]
) -> None:
    page = site.get("/login", headers=header)
    assert '<html lang="en">' in page.text
    assert "<h1>Sign in</h1>" in page.text and "Anmelden" not in page.text


def test_what_a_handler_says_is_in_the_readers_language(site: Site) -> None:
    wrong = site.submit(
        "/login", "/login", {"email": ADMIN_EMAIL, "password": "not it"}, headers=GERMAN
    )
    assert wrong.status_code == 401
    assert "E-Mail-Adresse oder Passwort falsch." in wrong.text
    missing = site.submit("/login", "/login", {"email": "", "password": ""}, headers=GERMAN)
    assert "Pflichtfeld." in missing.text
    notice = site.get("/login?notice=signed-out", headers=GERMAN)
    assert "Sie sind abgemeldet." in notice.text


def test_the_not_found_page_speaks_the_readers_language(site: Site) -> None:
    page = site.get("/nowhere", headers=GERMAN)
    assert page.status_code == 404
    assert '<html lang="de">' in page.text and "Seite nicht gefunden" in page.text


def test_a_browser_set_to_german_gets_the_pages_in_german(browser: Any, server: Server) -> None:
    context = browser.new_context(base_url=server.root, locale="de-DE")
    try:
        page = context.new_page()
        page.goto("/login")
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
        expect(page.get_by_label("Passwort")).to_have_attribute("autocomplete", "current-password")
    finally:
        context.close()


def test_the_password_rules_and_refusals_are_said_in_german(site: Site) -> None:
    site.submit("/forgot-password", "/forgot-password", {"email": ADMIN_EMAIL})
    path = latest_link(site.core, ADMIN_EMAIL).removeprefix(SITE)
    form = site.get(path, headers=GERMAN)
    assert "Mindestens 12 Zeichen (höchstens 256)" in form.text
    short = {"new_password": "kurz", "confirm_password": "kurz"}
    refused = site.submit(path, path, short, headers=GERMAN)
    assert refused.status_code == 400
    assert "Zu kurz: mindestens 12 Zeichen." in refused.text
    differ = {"new_password": "a fine new passphrase", "confirm_password": "another one"}
    assert "Die beiden Passwörter unterscheiden sich." in (
        site.submit(path, path, differ, headers=GERMAN).text
    )


def test_the_account_pages_speak_german(site: Site) -> None:
    site.sign_in()
    assert "2FA ist ausgeschaltet." in site.get("/account?notice=2fa-off", headers=GERMAN).text
    differ = {
        "current_password": ADMIN_PASSWORD,
        "new_password": "a fine new passphrase",
        "confirm_password": "another one",
    }
    refused = site.submit("/account/password", "/account/password", differ, headers=GERMAN)
    assert refused.status_code == 400
    assert "Die beiden neuen Passwörter stimmen nicht überein." in refused.text


def test_the_consoles_refusals_from_core_are_said_in_german(site: Site) -> None:
    """Core's English (``error.msg``) never reaches a German page: an
    all-or-nothing refusal names the users, the allow-list its lock-out."""
    site.sign_in()
    me = stored(site.core, ADMIN_EMAIL)
    data = {"ids": me.id, "action": "remove-pin"}
    refused = site.submit("/admin/users", "/admin/users/actions", data, headers=GERMAN)
    assert refused.status_code == 400
    assert f"Keine PIN gesetzt für: {ADMIN_EMAIL}" in refused.text
    assert "PIN is not active" not in refused.text
    locked = {"ip_restricted": "yes", "ip_whitelist": "10.0.0.1"}
    answer = site.submit("/admin/settings", "/admin/settings/ip", locked, headers=GERMAN)
    assert answer.status_code == 400
    assert "Diese Liste würde Sie aussperren" in answer.text
    assert "would lock out" not in answer.text
