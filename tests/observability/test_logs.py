"""Issue 15, item 2: a JSON line per request and per security event, the
request id kept or made, echoed and in the audit row; the log settings."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from quatrix_mfa import logs
from quatrix_mfa.settings import ConfigError, Settings, host_port
from tests.conftest import ADMIN_EMAIL, Api, basic
from tests.support.http import audit_rows

GENERATED = 32  # hex characters of a request id we make


def json_lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    """``logger``'s records as the JSON formatter writes them."""
    formatter = logs.JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger]


def test_one_json_line_per_request_with_its_route_status_and_user(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    token = api.full_session()
    caplog.set_level(logging.INFO, logger="quatrix_mfa")
    caplog.clear()
    response = api.get("/profile", token, headers={"X-Request-Id": "req-42.a_B"})
    assert response.headers["X-Request-Id"] == "req-42.a_B"
    [line] = json_lines(caplog, "quatrix_mfa.request")
    assert line["request_id"] == "req-42.a_B"
    assert line["method"] == "GET"
    assert line["route"] == "/api/1.0/profile"
    assert line["status"] == 200
    assert line["level"] == "info"
    assert line["client_addr"] == "testclient"
    assert isinstance(line["duration_ms"], float)
    assert line["time"].endswith("Z")
    with api.core.store.transaction(write=False) as tx:
        admin = tx.users.by_email(ADMIN_EMAIL)
    assert admin is not None and line["user_id"] == admin.id


def test_an_unmatched_path_is_logged_under_a_fixed_route(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="quatrix_mfa")
    api.get("/reset-password/reset-nothing/abc-secret-looking-id")
    [line] = json_lines(caplog, "quatrix_mfa.request")
    assert line["route"] == "unmatched"
    assert line["status"] == 404
    assert line["user_id"] is None
    assert "abc-secret-looking-id" not in json.dumps(line)


@pytest.mark.parametrize(
    "sent", ["", "a" * 65, "has space", "semi;colon", 'quote"d', "ümlaut", "a/b"]
)
def test_a_malformed_request_id_is_replaced_by_one_of_ours(api: Api, sent: str) -> None:
    response = api.get("/session/login", headers={"X-Request-Id": sent.encode()})  # type: ignore[dict-item]
    echoed = response.headers["X-Request-Id"]
    assert echoed != sent
    assert len(echoed) == GENERATED and int(echoed, 16) >= 0


def test_the_request_id_is_in_the_audit_row_and_the_security_event_line(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="quatrix_mfa")
    auth = {"Authorization": basic(ADMIN_EMAIL, "not the password at all"), "X-Request-Id": "r-1"}
    response = api.get("/session/login", headers=auth)
    assert response.status_code == 401
    assert response.headers["X-Request-Id"] == "r-1"
    row = audit_rows(api)[-1]
    assert (row.event, row.outcome) == ("login.password", "failure")
    assert row.detail["request_id"] == "r-1"
    [event] = json_lines(caplog, "quatrix_mfa.security")
    assert event["event"] == "login.password" and event["outcome"] == "failure"
    assert event["detail"]["request_id"] == "r-1"
    assert event["client_addr"] == "testclient"


def test_an_answer_without_a_request_id_gets_a_new_one_each_time(api: Api) -> None:
    first = api.get("/session/login").headers["X-Request-Id"]
    second = api.get("/session/login").headers["X-Request-Id"]
    assert first != second and len(first) == GENERATED


def test_text_lines_name_the_same_fields() -> None:
    record = logging.LogRecord("quatrix_mfa.request", logging.INFO, "", 0, "GET /x 200", (), None)
    record.fields = {"route": "/x", "status": 200, "user_id": None}
    line = logs.TextFormatter().format(record)
    assert line.endswith("INFO quatrix_mfa.request: GET /x 200 route=/x status=200")


def test_the_format_defaults_to_text_on_a_terminal_and_json_elsewhere() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.default_format(Tty()) == "text"
    assert logs.default_format(io.StringIO()) == "json"


def test_log_and_metrics_settings_are_read_and_checked() -> None:
    env = {
        "QUATRIX_MFA_LOG_FORMAT": "JSON",
        "QUATRIX_MFA_LOG_LEVEL": "warning",
        "QUATRIX_MFA_METRICS_ADDR": "[::1]:9108",
        "QUATRIX_MFA_METRICS_TOKEN": "s3cret-metrics-token-123",
    }
    settings = Settings.from_env(env)
    assert settings.log_format == "json" and settings.log_level == "warning"
    assert settings.metrics_addr == ("::1", 9108)
    assert settings.metrics_token == "s3cret-metrics-token-123"
    defaults = Settings.from_env({})
    assert defaults.log_format == "" and defaults.log_level == "info"
    assert defaults.metrics_addr is None and defaults.metrics_token is None


@pytest.mark.parametrize(
    ("raw", "address", "written"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108), "127.0.0.1:9108"),
        ("[::1]:9108", ("::1", 9108), "[::1]:9108"),
        ("[::]:9108", ("::", 9108), "[::]:9108"),
        ("metrics_host:9108", ("metrics_host", 9108), "metrics_host:9108"),  # a container's
    ],
)
def test_a_metrics_address_is_written_back_as_it_was_given(
    raw: str, address: tuple[str, int], written: str
) -> None:
    settings = Settings.from_env({"QUATRIX_MFA_METRICS_ADDR": raw})
    assert settings.metrics_addr == address
    assert host_port(address) == written


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "verbose"),
        ("METRICS_ADDR", "9108"),
        ("METRICS_ADDR", "127.0.0.1:99999"),
        ("METRICS_ADDR", "127.0.0.1:0"),
        ("METRICS_ADDR", "[::1"),
        ("METRICS_ADDR", "::1:9108"),  # an IPv6 address takes brackets
        ("METRICS_ADDR", "[127.0.0.1]:9108"),  # brackets are for IPv6 only
        ("METRICS_ADDR", "http://127.0.0.1:9108"),
        ("METRICS_ADDR", "127.0.0.1:\u0669\u0661\u0660\u0668"),  # Arabic-Indic 9108
        ("METRICS_ADDR", "127.0.0.1:\u00b2"),
        ("METRICS_TOKEN", "short-token"),
    ],
)
def test_a_bad_log_or_metrics_setting_is_one_line_naming_it(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({f"QUATRIX_MFA_{name}": raw})
    message = str(refused.value)
    assert message.startswith(f"QUATRIX_MFA_{name}=") and "\n" not in message
    if name == "METRICS_TOKEN":
        assert raw not in message  # a secret is never printed


def test_the_new_variables_are_no_unknown_variables() -> None:
    from quatrix_mfa.settings import unknown_variables

    env = {f"QUATRIX_MFA_{n}": "" for n in ("LOG_FORMAT", "LOG_LEVEL", "METRICS_ADDR")}
    env["QUATRIX_MFA_METRICS_TOKEN"] = ""
    Settings.from_env(env)
    assert unknown_variables(env) == []
