"""Mail that real providers accept (issue 15, item 8), against aiosmtpd:
STARTTLS and AUTH required, implicit TLS, the sender's name, Date and
Message-ID, retries that stop, stale links dropped, and an outbox that keeps
no live link."""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from quatrix_mfa.mailer import MAX_ATTEMPTS, OutboxSender, retry_delay
from quatrix_mfa.settings import Settings
from tests.conftest import ADMIN_EMAIL, Api, error
from tests.servers import free_port
from tests.support import outbox
from tests.support.shell import Cli
from tests.support.smtp import (
    AUTH_WITHOUT_TLS,
    SMTP_PASSWORD,
    SMTP_USER,
    Certificates,
    SmtpServer,
    make_certificates,
)

SENDER = "Quatrix MFA <noreply@mfa.example.com>"
CAROL = "carol@example.com"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def started(server: SmtpServer) -> Iterator[SmtpServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def strict(certificates: Certificates) -> Iterator[SmtpServer]:
    """A submission server: STARTTLS, then AUTH, both required."""
    yield from started(SmtpServer(free_port(), certificates=certificates, auth=True))


@pytest.fixture
def plain() -> Iterator[SmtpServer]:
    """An old relay: no TLS, no AUTH."""
    yield from started(SmtpServer(free_port()))


def login_url(server: SmtpServer, scheme: str = "smtp", password: str = SMTP_PASSWORD) -> str:
    user = f"{quote(SMTP_USER, safe='')}:{quote(password, safe='')}"
    return f"{scheme}://{user}@{server.host}:{server.port}"


def mailer(make_api: Any, url: str, certificates: Certificates | None = None) -> OutboxSender:
    if certificates is not None:
        url += ("&" if "?" in url else "?") + f"cafile={certificates.ca_file}"
    built: Api = make_api(smtp_url=url, mail_from=SENDER)
    sender = built.http.app.state.outbox_sender  # type: ignore[attr-defined]
    assert isinstance(sender, OutboxSender)
    return sender


def invite(api: Api, admin_token: str, email: str = CAROL) -> tuple[str, str]:
    """The admin invites ``email``: (user id, the reset id of the mailed link)."""
    return api.scenario.invite(admin_token, email)


def the_row(api: Api, to: str = CAROL) -> Any:
    [row] = outbox.mails(api.core, to)
    return row


def refused(api: Api, admin_token: str, sender: OutboxSender, server: SmtpServer) -> str:
    """An invitation the sender does not deliver to ``server``: the error it kept."""
    invite(api, admin_token)
    assert sender.deliver_due() == 0
    assert server.handler.messages == []
    row = the_row(api)
    assert row.sent_at is None and row.attempts == 1 and not row.given_up
    return str(row.last_error)


# How mail goes out ----------------------------------------------------------------


def test_mail_goes_over_starttls_with_auth_and_carries_date_and_message_id(
    api: Api, admin_token: str, make_api: Any, strict: SmtpServer, certificates: Certificates
) -> None:
    sender = mailer(make_api, login_url(strict), certificates)
    _, reset_id = invite(api, admin_token)
    assert sender.deliver_due() == 1
    [message] = strict.handler.to(CAROL)
    assert strict.handler.sessions == [{"tls": True, "authenticated": True}]
    assert message["From"] == SENDER
    assert strict.handler.messages[0][0] == "noreply@mfa.example.com"  # the envelope
    assert message["Date"].datetime.timestamp() == pytest.approx(the_row(api).created, abs=1)
    assert re.fullmatch(r"<[^<>@\s]+@mfa\.example\.com>", message["Message-ID"])
    assert reset_id in message.get_content()
    row = the_row(api)
    assert row.sent_at is not None and row.body == "" and row.secret is None  # purged


def test_message_ids_differ_between_mails_and_stay_across_retries(
    api: Api, admin_token: str, make_api: Any, plain: SmtpServer
) -> None:
    sender = mailer(make_api, plain.url)
    invite(api, admin_token)
    invite(api, admin_token, "dave@example.com")
    first, second = outbox.mails(api.core)[-2:]
    assert sender.message(first)["Message-ID"] == sender.message(first)["Message-ID"]
    assert sender.message(first)["Message-ID"] != sender.message(second)["Message-ID"]


@pytest.mark.filterwarnings(AUTH_WITHOUT_TLS)  # aiosmtpd counts STARTTLS only as TLS
def test_mail_goes_over_implicit_tls_with_auth(
    api: Api, admin_token: str, make_api: Any, certificates: Certificates
) -> None:
    server = SmtpServer(free_port(), certificates=certificates, implicit=True, auth=True)
    for running in started(server):
        sender = mailer(make_api, login_url(running, "smtps"), certificates)
        invite(api, admin_token)
        assert sender.deliver_due() == 1
        assert running.handler.sessions == [{"tls": True, "authenticated": True}]
        assert len(running.handler.to(CAROL)) == 1


def test_a_wrong_smtp_password_leaves_the_mail_queued_with_the_error(
    api: Api, admin_token: str, make_api: Any, strict: SmtpServer, certificates: Certificates
) -> None:
    sender = mailer(make_api, login_url(strict, password="not it"), certificates)
    kept = refused(api, admin_token, sender, strict)
    assert "SMTPAuthenticationError" in kept
    assert "not it" not in kept


def test_a_certificate_from_an_unknown_authority_is_refused(
    api: Api, admin_token: str, make_api: Any, strict: SmtpServer
) -> None:
    sender = mailer(make_api, login_url(strict))  # the system's authorities only
    assert "SSLCertVerificationError" in refused(api, admin_token, sender, strict)


def test_starttls_is_used_when_offered_and_required_on_request(
    api: Api, admin_token: str, make_api: Any, plain: SmtpServer
) -> None:
    required = mailer(make_api, plain.url + "?starttls=require")
    assert "STARTTLS" in refused(api, admin_token, required, plain)
    # Without the requirement an old relay still gets its mail.
    api.clock.advance(retry_delay(1))
    assert mailer(make_api, plain.url).deliver_due() == 1
    assert plain.handler.sessions == [{"tls": False, "authenticated": False}]


@pytest.mark.filterwarnings(AUTH_WITHOUT_TLS)
def test_a_password_is_never_sent_in_clear_over_the_network(
    api: Api, admin_token: str, make_api: Any
) -> None:
    # 127.0.0.2 is this machine too, but not by a name the sender trusts as such:
    # it stands for a relay across the network that offers AUTH without TLS.
    server = SmtpServer(free_port(), host="127.0.0.2", auth=True)  # AUTH offered, no TLS
    for running in started(server):
        sender = mailer(make_api, login_url(running))
        assert "not sent in clear" in refused(api, admin_token, sender, running)


def test_a_server_that_never_answers_costs_one_timeout(
    api: Api, admin_token: str, make_api: Any
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never greets
        sender = mailer(make_api, f"smtp://127.0.0.1:{silent.getsockname()[1]}?timeout=1")
        invite(api, admin_token)
        started_at = time.monotonic()
        assert sender.deliver_due() == 0
        assert time.monotonic() - started_at < 5
    row = the_row(api)
    assert row.attempts == 1 and "timed out" in (row.last_error or "")


# Retries that stop ----------------------------------------------------------------


def test_retries_back_off_then_stop_and_the_outbox_command_says_why(
    api: Api, admin_token: str, make_api: Any, settings: Settings
) -> None:
    sender = mailer(make_api, f"smtp://127.0.0.1:{free_port()}?timeout=2")  # nobody listens
    invite(api, admin_token)
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert sender.deliver_due() == 0
        row = the_row(api)
        assert row.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            waits.append(row.next_attempt_at - api.clock.now())
            api.clock.advance(waits[-1])
    assert waits == [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert waits == sorted(waits)
    row = the_row(api)
    assert row.given_up and row.body == "" and row.secret is None
    assert (row.last_error or "").startswith(f"failed after {MAX_ATTEMPTS} attempts: ")

    api.clock.advance(86400)
    assert sender.deliver_due() == 0
    assert the_row(api).attempts == MAX_ATTEMPTS  # never tried again

    shown = Cli(settings.data_dir, settings.database_url).run("outbox")
    assert shown.returncode == 0, shown.stderr
    assert f"to {CAROL}" in shown.stdout
    assert f"NOT SENT after {MAX_ATTEMPTS} attempts: failed after" in shown.stdout
    assert "ConnectionRefusedError" in shown.stdout


def test_the_outbox_command_shows_a_queued_mails_last_error(
    api: Api, admin_token: str, make_api: Any, settings: Settings
) -> None:
    sender = mailer(make_api, f"smtp://127.0.0.1:{free_port()}")
    invite(api, admin_token)
    assert sender.deliver_due() == 0
    shown = Cli(settings.data_dir, settings.database_url).run("outbox")
    assert "queued (1 attempts), next " in shown.stdout
    assert "last error: ConnectionRefusedError" in shown.stdout


# Stale mail is dropped ------------------------------------------------------------


def test_an_invitation_whose_link_was_used_is_dropped_not_sent(
    api: Api, admin_token: str, make_api: Any, plain: SmtpServer
) -> None:
    _, reset_id = invite(api, admin_token)
    api.scenario.driver.redeem_link(reset_id, "carol's long passphrase")
    assert mailer(make_api, plain.url).deliver_due() == 0
    assert plain.handler.to(CAROL) == []
    row = the_row(api)
    assert (
        row.given_up
        and row.last_error == "dropped: the link was used or revoked, or its user deleted"
    )
    assert row.body == "" and row.secret is None


def test_a_reset_mail_whose_link_expired_is_dropped(
    api: Api, admin_token: str, make_api: Any, plain: SmtpServer
) -> None:
    api.post("/reset-password/request", {"email": [ADMIN_EMAIL]})
    api.clock.advance(3601)
    sender = mailer(make_api, plain.url)
    assert sender.deliver_due() == 0
    assert plain.handler.to(ADMIN_EMAIL) == []
    assert the_row(api, ADMIN_EMAIL).last_error == "dropped: the link expired"


def test_mail_to_a_deleted_user_with_a_link_is_dropped(
    api: Api, admin_token: str, make_api: Any, plain: SmtpServer
) -> None:
    user_id, _ = invite(api, admin_token)
    assert api.post("/user/delete", {"ids": [user_id]}, admin_token).status_code == 202
    assert mailer(make_api, plain.url).deliver_due() == 0
    assert plain.handler.to(CAROL) == []
    assert the_row(api).last_error == "dropped: the link was used or revoked, or its user deleted"


def test_mail_with_a_live_link_still_goes_out(
    api: Api, admin_token: str, make_api: Any, plain: SmtpServer
) -> None:
    invite(api, admin_token)  # a live link
    api.scenario.user(admin_token, "dave@example.com")  # invited, password set
    api.clock.advance(60)  # one link a minute per user
    assert api.post("/reset-password/request", {"email": ["dave@example.com"]}).status_code == 200
    sender = mailer(make_api, plain.url)
    delivered = sender.deliver_due()
    assert len(plain.handler.to(CAROL)) == 1
    assert len(plain.handler.to("dave@example.com")) == 1  # the live reset link
    assert delivered == 1 + 1
    assert [m.last_error for m in outbox.mails(api.core, "dave@example.com") if m.given_up] == [
        "dropped: the link was used or revoked, or its user deleted"  # his redeemed invitation
    ]


# No live link at rest -------------------------------------------------------------


def test_a_link_read_from_the_outbox_table_does_not_work(
    api: Api, admin_token: str, settings: Settings, tmp_path: Path
) -> None:
    _, reset_id = invite(api, admin_token)
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM outbox")).all()
    finally:
        engine.dispose()
    raw = b"".join(
        value if isinstance(value, bytes) else str(value).encode() for row in rows for value in row
    )
    assert reset_id.encode() not in raw
    assert b"/reset-password/" not in raw
    for found in {m.decode() for m in UUID.findall(raw)} | {str(uuid.uuid4())}:
        error(api.get(f"/reset-password/metadata/{found}"), 401, 1)
    assert api.get(f"/reset-password/metadata/{reset_id}").status_code == 200


def test_an_email_confirmation_for_a_change_taken_back_is_dropped(
    api: Api, admin_token: str, make_api: Any, plain: SmtpServer
) -> None:
    dave = api.scenario.user(admin_token, "dave@example.com")
    new = "dave.new@example.com"
    assert api.post("/user/edit", {"ids": [dave.id], "email": new}, admin_token).status_code == 200
    back = {"ids": [dave.id], "email": "dave@example.com"}
    assert api.post("/user/edit", back, admin_token).status_code == 200
    mailer(make_api, plain.url).deliver_due()
    assert plain.handler.to(new) == []
    assert (
        the_row(api, new).last_error == "dropped: the link was used or revoked, or its user deleted"
    )
    # The notice to the current address has no link: it went out.
    assert any("dave.new@example.com" in m.get_content() for m in plain.handler.to(dave.email))


# Configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "smtp://mail.example.com",
        "smtp://mail.example.com:587?starttls=require",
        "smtps://user%40example.com:p%3Ass@mail.example.com?timeout=5",
        "smtp://relay:25?cafile=/etc/ssl/private-ca.pem",
    ],
)
def test_smtp_urls_a_provider_needs_are_accepted(url: str) -> None:
    assert Settings.from_env({"QUATRIX_MFA_SMTP_URL": url}).smtp_url == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("smtp://mail.example.com?starttls=maybe", "starttls"),
        ("smtps://mail.example.com?starttls=require", "starttls"),
        ("smtp://mail.example.com?tls=on", "unknown parameter"),
        ("smtp://mail.example.com?timeout=0", "timeout"),
        ("imap://mail.example.com", "smtp://"),
    ],
)
def test_bad_smtp_urls_are_refused_by_name(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match="QUATRIX_MFA_SMTP_URL") as refused:
        Settings.from_env({"QUATRIX_MFA_SMTP_URL": url})
    assert problem in str(refused.value)


@pytest.mark.parametrize("sender", ["Quatrix MFA <mfa@example.com>", '"IT, MFA" <mfa@example.com>'])
def test_the_sender_may_have_a_name(sender: str) -> None:
    assert Settings.from_env({"QUATRIX_MFA_MAIL_FROM": sender}).mail_from == sender


@pytest.mark.parametrize("sender", ["a@b@c", "Name <a@b@c>", "a@b, c@d", "Name <>", "no-at-sign"])
def test_a_sender_that_is_not_one_address_is_refused(sender: str) -> None:
    with pytest.raises(ValueError, match="QUATRIX_MFA_MAIL_FROM"):
        Settings.from_env({"QUATRIX_MFA_MAIL_FROM": sender})
