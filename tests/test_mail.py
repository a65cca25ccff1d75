"""Mail delivery from the outbox to a real SMTP server (aiosmtpd), retries
after failures, and requests that never wait for SMTP."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quatrix_mfa import metrics
from quatrix_mfa.api.app import create_app
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.context import Core
from quatrix_mfa.mailer import OutboxSender, retry_delay
from quatrix_mfa.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, basic, latest_link
from tests.servers import free_port
from tests.support import outbox
from tests.support.http import totp_user
from tests.support.metrics import delta, parse, value
from tests.support.scenario import PASSWORD as SCENARIO_PASSWORD
from tests.support.smtp import SlowCollector, SmtpServer

SENDER = "noreply@mfa.example.com"
CAROL = "carol@example.com"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _sender(api: Api) -> OutboxSender:
    sender = api.http.app.state.outbox_sender  # type: ignore[attr-defined]
    assert isinstance(sender, OutboxSender)
    return sender


def _create(api: Api, admin_token: str, email: str = CAROL) -> None:
    response = api.post("/user/create", {"name": email.split("@")[0], "email": email}, admin_token)
    assert response.status_code == 201, response.text


def test_password_set_mail_is_delivered_over_smtp(
    api: Api, admin_token: str, make_api: Any, smtp: SmtpServer
) -> None:
    mailer = make_api(smtp_url=smtp.url, mail_from=SENDER)
    _create(api, admin_token)
    link = latest_link(api.core, CAROL)
    assert _sender(mailer).deliver_due() == 1
    [message] = smtp.handler.to(CAROL)
    assert message["To"] == CAROL
    assert message["From"] == SENDER
    assert message["Subject"] == "Set your Quatrix password"
    assert link in message.get_content()
    assert link.startswith("https://mfa.example.com/reset-password/")
    assert smtp.handler.messages[0][0] == SENDER  # the envelope sender too
    [row] = outbox.mails(api.core, CAROL)
    assert row.sent_at == api.clock.now()
    assert row.attempts == 1
    # Delivered, the mail keeps only its envelope: no body, no sealed link.
    assert (row.body, row.secret, row.key_id) == ("", None, None)
    # Delivered mail is never sent again.
    api.clock.advance(3600)
    assert _sender(mailer).deliver_due() == 0
    assert len(smtp.handler.to(CAROL)) == 1


def test_the_mailed_link_sets_the_password(
    api: Api, admin_token: str, make_api: Any, smtp: SmtpServer
) -> None:
    mailer = make_api(smtp_url=smtp.url, mail_from=SENDER)
    _create(api, admin_token)
    _sender(mailer).deliver_due()
    [message] = smtp.handler.to(CAROL)
    link = next(w for w in message.get_content().split() if "/reset-password/" in w)
    reset_id = link.rsplit("/", 1)[1]
    response = api.post(f"/reset-password/reset/{reset_id}", {"password": "carol's new passphrase"})
    assert response.status_code == 200, response.text
    assert api.login(CAROL, "carol's new passphrase").status_code == 200


def test_failed_send_stays_queued_and_is_retried_later(
    api: Api, admin_token: str, make_api: Any
) -> None:
    server = SmtpServer(free_port())  # nothing listens there yet
    mailer = make_api(smtp_url=server.url, mail_from=SENDER)
    _create(api, admin_token)
    start = api.clock.now()
    assert _sender(mailer).deliver_due() == 0
    [row] = outbox.mails(api.core, CAROL)
    assert row.sent_at is None
    assert row.attempts == 1
    assert row.next_attempt_at == start + retry_delay(1)
    assert row.last_error

    # Not due yet: no new attempt.
    api.clock.advance(retry_delay(1) - 1)
    assert _sender(mailer).deliver_due() == 0
    assert outbox.mails(api.core, CAROL)[0].attempts == 1

    # Due, still failing: the delay grows.
    api.clock.advance(1)
    assert _sender(mailer).deliver_due() == 0
    [row] = outbox.mails(api.core, CAROL)
    assert row.attempts == 2
    assert row.next_attempt_at == api.clock.now() + retry_delay(2)
    assert retry_delay(2) > retry_delay(1)

    server.start()
    try:
        assert _sender(mailer).deliver_due() == 0  # the server is back, but the mail waits
        api.clock.advance(retry_delay(2))
        assert _sender(mailer).deliver_due() == 1
        assert len(server.handler.to(CAROL)) == 1
    finally:
        server.stop()
    [row] = outbox.mails(api.core, CAROL)
    assert row.sent_at == api.clock.now()
    assert row.attempts == 3


def test_stopped_smtp_server_leaves_mail_queued(
    api: Api, admin_token: str, make_api: Any, smtp: SmtpServer
) -> None:
    mailer = make_api(smtp_url=smtp.url, mail_from=SENDER)
    _create(api, admin_token, "dave@example.com")
    assert _sender(mailer).deliver_due() == 1
    smtp.stop()
    _create(api, admin_token)
    assert _sender(mailer).deliver_due() == 0
    [row] = outbox.mails(api.core, CAROL)
    assert row.sent_at is None and row.attempts == 1
    smtp.start()
    api.clock.advance(retry_delay(1))
    assert _sender(mailer).deliver_due() == 1
    assert len(smtp.handler.to(CAROL)) == 1
    assert len(smtp.handler.to("dave@example.com")) == 1


def test_request_does_not_wait_for_an_unreachable_smtp_server(api: Api, make_api: Any) -> None:
    closed = make_api(smtp_url=f"smtp://127.0.0.1:{free_port()}", mail_from=SENDER)
    token = closed.full_session()
    response = closed.post("/user/create", {"name": "carol", "email": CAROL}, token)
    assert response.status_code == 201, response.text
    [row] = outbox.mails(api.core, CAROL)
    assert row.attempts == 0 and row.sent_at is None  # queued, not tried in the request


def _app(settings: Settings, smtp_url: str) -> Any:
    """An app on the real clock with the background loop, and the first admin."""
    app = create_app(replace(settings, smtp_url=smtp_url, mail_from=SENDER), background=True)
    assert bootstrap(app.state.core, ADMIN_EMAIL, "Example", ADMIN_PASSWORD).created
    return app


def _wait_for(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_mail_asked_for_just_before_shutdown_is_sent_on_the_way_out_and_counted(
    settings: Settings,
) -> None:
    """Issue 15 item 6: a stopping worker lets the background round that is
    sending a mail finish (cancelled, it left the mail leased and unsent for a
    minute), sends what is due and leaves its metrics at their final values."""
    slow = SmtpServer(free_port(), handler=SlowCollector(delay=1.0))
    slow.start()
    try:
        app = _app(settings, slow.url)
        core: Core = app.state.core
        before = parse(metrics.exposition().decode())
        with TestClient(app, base_url="http://testserver/api/1.0") as http:
            response = http.post("/reset-password/request", json={"email": [ADMIN_EMAIL]})
            assert response.status_code == 200, response.text
            assert slow.handler.receiving.wait(10)  # a background round is sending it
        # The lifespan has ended: nothing runs any more, and it was all done.
        assert len(slow.handler.to(ADMIN_EMAIL)) == 1
    finally:
        slow.stop()
    [row] = outbox.mails(core, ADMIN_EMAIL)
    assert row.sent_at is not None
    after = parse(metrics.exposition().decode())
    assert delta(before, after, "quatrix_mfa_mail_total", state="sent") == 1
    assert value(after, "quatrix_mfa_outbox_depth") == 0


def test_background_loop_delivers_mail(settings: Settings, smtp: SmtpServer) -> None:
    app = _app(settings, smtp.url)
    core: Core = app.state.core
    with TestClient(app, base_url="http://testserver/api/1.0") as http:
        response = http.post("/reset-password/request", json={"email": [ADMIN_EMAIL]})
        assert response.status_code == 200, response.text
        assert _wait_for(lambda: smtp.handler.to(ADMIN_EMAIL))
        [message] = smtp.handler.to(ADMIN_EMAIL)
        assert message["Subject"] == "Reset your Quatrix password"
        assert message["From"] == SENDER
        link = next(w for w in message.get_content().split() if "/reset-password/" in w)
        reset = http.post(
            f"/reset-password/reset/{link.rsplit('/', 1)[1]}", json={"password": "a new passphrase"}
        )
        assert reset.status_code == 200, reset.text
        assert _wait_for(lambda: outbox.mails(core, ADMIN_EMAIL)[0].sent_at is not None)


def test_requests_are_served_while_smtp_hangs(settings: Settings) -> None:
    """A server that accepts connections and never greets holds the sender, not requests."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(10)
    app = _app(settings, f"smtp://127.0.0.1:{listener.getsockname()[1]}")
    stuck: socket.socket | None = None
    try:
        with TestClient(app, base_url="http://testserver/api/1.0") as http:
            auth = {"Authorization": basic(ADMIN_EMAIL, ADMIN_PASSWORD)}
            token = http.get("/session/login", headers=auth).json()["session_id"]
            headers = {"X-Auth-Token": token}
            first = http.post("/user/create", json={"name": "c", "email": CAROL}, headers=headers)
            assert first.status_code == 201, first.text
            stuck, _ = listener.accept()  # the sender is now waiting for a greeting
            second = http.post(
                "/user/create", json={"name": "d", "email": "dave@example.com"}, headers=headers
            )
            assert second.status_code == 201, second.text
            assert http.get("/profile", headers=headers).status_code == 200
            # Answered while the sender still waits: had the requests waited for
            # it, its 10 s timeout would have failed Carol's mail by now.
            core: Core = app.state.core
            assert outbox.mails(core, CAROL)[0].last_error is None
            # Let the sender fail now rather than at its timeout.
            stuck.close()
            listener.close()
            assert _wait_for(lambda: outbox.mails(core, CAROL)[0].last_error is not None)
            assert outbox.mails(core, CAROL)[0].sent_at is None
    finally:
        if stuck is not None:
            stuck.close()
        listener.close()


def test_a_started_recovery_is_mailed_over_smtp_and_its_link_cancels_it(
    api: Api, admin_token: str, make_api: Any, smtp: SmtpServer
) -> None:
    """Issue 12: the owner hears of a recovery at once, with a link that works."""
    mailer = make_api(smtp_url=smtp.url, mail_from=SENDER)
    tina = "tina@example.com"
    totp_user(api, admin_token, tina)
    pending = api.login(tina, SCENARIO_PASSWORD).json()["session_id"]
    assert api.post("/session/recover-mfa", None, pending).status_code == 202
    _sender(mailer).deliver_due()
    [*_, message] = smtp.handler.to(tina)
    assert message["Subject"] == "A recovery of your Quatrix second factors was started"
    link = next(w for w in message.get_content().split() if "/recover-mfa/cancel/" in w)
    assert link.startswith("https://mfa.example.com/recover-mfa/cancel/")
    [*_, to_admin] = smtp.handler.to(ADMIN_EMAIL)
    assert tina in to_admin["Subject"]
    assert api.post(f"/recover-mfa/cancel/{link.rsplit('/', 1)[1]}").status_code == 200
    _sender(mailer).deliver_due()
    assert smtp.handler.to(tina)[-1]["Subject"].startswith("The recovery of your Quatrix")
