"""Break-glass from the shell (issue 15, item 4): ``quatrix-mfa user ...`` run
as real subprocesses on a real database (SQLite, and PostgreSQL with
``--db=postgresql``), their effects checked through the HTTP API."""

from __future__ import annotations

import os
from typing import Any

import pytest

from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.keys import create_key_file
from quatrix_mfa.storage import migrate
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, error
from tests.support import outbox
from tests.support.http import assert_throttled, audit_rows
from tests.support.scenario import PASSWORD, WRONG_PASSWORD
from tests.support.shell import LINK, Cli
from tests.support.shell import cli as cli  # the fixtures too
from tests.support.shell import open_api as open_api

BOB = "bob@example.com"
USER_COMMANDS = ("unlock", "reset-mfa", "make-admin", "reset-link")


@pytest.fixture
def api(cli: Cli, open_api: Any) -> Api:
    """The CLI's data folder and database with the first admin (as ``init``
    makes them, made in-process to keep the subprocesses to the commands
    under test); the API on them."""
    cli.data_dir.mkdir(parents=True)
    migrate.upgrade(cli.effective_url)
    create_key_file(cli.settings().key_file)  # as init does: nothing else makes keys
    built: Api = open_api()
    assert bootstrap(built.core, ADMIN_EMAIL, "Quatrix", ADMIN_PASSWORD).created
    # At or ahead of the real time the subprocesses stamp with: a block set
    # through the API still holds when a command looks at it.
    built.clock.advance(20)
    return built


def refused(result: Any, *words: str) -> None:
    """A refusal: status 1, nothing on stdout, one line on stderr naming ``words``."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


def cli_rows(api: Api, event: str) -> list[Any]:
    return [row for row in audit_rows(api) if row.event == event and row.detail.get("via") == "cli"]


def table(cli: Cli, *args: str) -> dict[str, list[str]]:
    result = cli.run("user", "list", *args)
    assert result.returncode == 0, result.stderr
    header, *rows, total = result.stdout.splitlines()
    assert header.split("\t")[:4] == ["EMAIL", "ROLE", "STATUS", "2FA"]
    assert total == f"{len(rows)} user(s)"
    return {row.split("\t")[0]: row.split("\t")[1:] for row in rows}


# user list -----------------------------------------------------------------------


def test_user_list_shows_every_user_with_role_status_and_2fa(cli: Cli, api: Api) -> None:
    admin = api.full_session()
    api.scenario.user_with_totp(admin, "tina@example.com")
    api.scenario.invite(admin, BOB, super_admin=True)
    foreign = api.scenario.foreign_admin()

    users = table(cli)
    assert users[ADMIN_EMAIL][:4] == ["admin", "active", "off", "off"]
    assert users["tina@example.com"][:4] == ["user", "active", "on", "off"]
    assert users[BOB][:2] == ["admin", "active"]
    assert foreign.email in users
    assert all(row[4] == "-" for row in users.values())  # nobody locked

    own = table(cli, "--account", foreign.account_id)
    assert list(own) == [foreign.email]
    assert own[foreign.email][6].startswith(foreign.account_id)


def test_user_list_of_an_unknown_account_is_refused(cli: Cli, api: Api) -> None:
    refused(cli.run("user", "list", "--account", "not-an-id"), "not-an-id")
    unknown = "00000000-0000-4000-8000-000000000000"
    refused(cli.run("user", "list", "--account", unknown), unknown)


# user unlock ---------------------------------------------------------------------


def test_unlock_lets_a_throttled_admin_sign_in_again(cli: Cli, api: Api) -> None:
    for _ in range(10):
        error(api.login(ADMIN_EMAIL, WRONG_PASSWORD), 401, 1)
    assert_throttled(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 30)
    assert table(cli)[ADMIN_EMAIL][4] != "-"  # LOCKED UNTIL

    result = cli.run("user", "unlock", ADMIN_EMAIL.upper())
    assert result.returncode == 0, result.stderr
    assert f"Unlocked {ADMIN_EMAIL} (was locked until" in result.stdout
    assert api.login(ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 200
    assert table(cli)[ADMIN_EMAIL][4] == "-"
    [row] = cli_rows(api, "admin.user_unlocked")
    assert row.actor_id is None and row.target_id is not None


def test_unlock_clears_the_link_request_counter_too(cli: Cli, api: Api) -> None:
    for _ in range(10):
        assert api.post("/reset-password/request", {"email": [ADMIN_EMAIL]}).status_code == 200
    assert_throttled(api.post("/reset-password/request", {"email": [ADMIN_EMAIL]}), 30)
    assert cli.run("user", "unlock", ADMIN_EMAIL).returncode == 0
    assert api.post("/reset-password/request", {"email": [ADMIN_EMAIL]}).status_code == 200


# user reset-mfa ------------------------------------------------------------------


def test_reset_mfa_removes_the_key_and_codes_and_ends_every_session(cli: Cli, api: Api) -> None:
    token, secret, codes = api.enroll_totp(api.full_session())
    result = cli.run("user", "reset-mfa", ADMIN_EMAIL)
    assert result.returncode == 0, result.stderr
    assert f"Reset 2FA of {ADMIN_EMAIL}" in result.stdout

    error(api.get("/profile", token), 401, 1)
    login = api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert login.status_code == 207 and login.headers["Mfa-Code"] == "3"  # enroll again
    pending = login.json()["session_id"]
    for code in (api.code(secret), codes[0]):
        wrong = api.post("/session/login", {"auth_type": "2FA", "code": code}, pending)
        assert wrong.status_code != 200
    assert cli.scalar("SELECT count(*) FROM credentials") == 0
    [row] = cli_rows(api, "factor.reset")
    assert row.actor_id is None and row.detail["factor"] == "2FA"
    assert any("2FA" in text and "reset" in text for text in outbox.texts(api.core, ADMIN_EMAIL))


def test_reset_mfa_of_a_user_without_2fa_is_refused_and_changes_nothing(cli: Cli, api: Api) -> None:
    token = api.full_session()
    refused(cli.run("user", "reset-mfa", ADMIN_EMAIL), "2FA is not active", ADMIN_EMAIL)
    assert api.get("/profile", token).status_code == 200
    assert not cli_rows(api, "factor.reset")


# user make-admin -----------------------------------------------------------------


def test_make_admin_gives_a_user_the_admin_api(cli: Cli, api: Api) -> None:
    admin = api.full_session()
    api.scenario.create_user(admin, BOB)
    bob = api.full_session(BOB, PASSWORD)
    error(api.get("/user", bob), 403, 3)

    result = cli.run("user", "make-admin", BOB)
    assert result.returncode == 0, result.stderr
    assert api.get("/user", bob).status_code == 200
    assert table(cli)[BOB][:2] == ["admin", "active"]
    [row] = cli_rows(api, "admin.user_edited")
    assert row.actor_id is None and row.detail["super_admin"] is True


def test_make_admin_enables_a_disabled_user(cli: Cli, api: Api) -> None:
    admin = api.full_session()
    bob_id = api.scenario.create_user(admin, BOB)
    assert api.post("/user/edit", {"ids": [bob_id], "status": "D"}, admin).status_code == 200
    error(api.login(BOB, PASSWORD), 401, 1)

    assert cli.run("user", "make-admin", BOB).returncode == 0
    bob = api.full_session(BOB, PASSWORD)
    assert api.get("/profile", bob).json()["super_admin"] == "Y"


# user reset-link -----------------------------------------------------------------


def test_reset_link_prints_a_one_time_link_that_sets_the_password(cli: Cli, api: Api) -> None:
    result = cli.run("user", "reset-link", ADMIN_EMAIL)
    assert result.returncode == 0, result.stderr
    match = LINK.search(result.stdout)
    assert match, result.stdout
    assert outbox.latest_link(api.core, ADMIN_EMAIL) == match.group(1)  # mailed as well
    reset_id = match.group(2)
    new = "a brand new admin passphrase"
    assert api.post(f"/reset-password/reset/{reset_id}", {"password": new}).status_code == 200
    assert api.login(ADMIN_EMAIL, new).status_code == 200
    error(api.login(ADMIN_EMAIL, ADMIN_PASSWORD), 401, 1)
    again = api.post(f"/reset-password/reset/{reset_id}", {"password": "yet another passphrase"})
    error(again, 401, 1)
    [row] = cli_rows(api, "password.link_issued")
    assert row.actor_id is None


def test_reset_link_of_a_disabled_user_is_refused(cli: Cli, api: Api) -> None:
    admin = api.full_session()
    bob_id = api.scenario.create_user(admin, BOB)
    assert api.post("/user/edit", {"ids": [bob_id], "status": "D"}, admin).status_code == 200
    mailed = len(outbox.mails(api.core, BOB))
    refused(cli.run("user", "reset-link", BOB), BOB, "disabled")
    assert len(outbox.mails(api.core, BOB)) == mailed


# Refusals ------------------------------------------------------------------------


def test_an_unknown_email_is_one_line_and_a_failure(cli: Cli, api: Api) -> None:
    before = len(audit_rows(api))
    for command in USER_COMMANDS:
        refused(cli.run("user", command, "nobody@example.com"), "nobody@example.com")
    assert len(audit_rows(api)) == before


def test_an_email_that_is_not_utf8_is_refused_before_anything_is_read(cli: Cli, api: Api) -> None:
    # Bytes a shell passes as they are; Python holds them as lone surrogates.
    email = os.fsdecode(b"\xff\xfe@example.com")
    before = len(audit_rows(api))
    for argument, args in (
        *(("email", ("user", command, email)) for command in USER_COMMANDS),
        ("--account", ("user", "unlock", ADMIN_EMAIL, "--account", email)),
        ("--user", ("audit", "--user", email)),
    ):
        result = cli.run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith(
            f"error: argument {argument}: b'\\xff\\xfe@example.com' is not UTF-8 text"
        ), line
    assert len(audit_rows(api)) == before


def test_commands_on_a_data_folder_without_keys_fail_cleanly(cli: Cli) -> None:
    result = cli.run("user", "list")
    assert result.returncode == 2
    assert "keys.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (cli.data_dir / "keys.json").exists()  # no new key was made
