"""Configuration: every QUATRIX_MFA_* variable, its default, its parsing, and a
ConfigError naming the variable for a value we cannot use."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from quatrix_mfa.core.crypto import Argon2Parameters
from quatrix_mfa.settings import ConfigError, Settings, unknown_variables


def from_env(**values: str) -> Settings:
    return Settings.from_env({f"QUATRIX_MFA_{k}": v for k, v in values.items()})


def test_defaults_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert settings.data_dir == Path("var")
    assert settings.database_url == ""
    assert settings.smtp_url is None
    assert settings.mail_from == "quatrix-mfa@localhost"
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.session_idle_seconds == 900
    assert settings.session_max_seconds == 12 * 3600
    assert settings.trust_forwarded_for is False
    assert settings.trusted_proxies == ()
    assert settings.argon2 == Argon2Parameters(time_cost=2, memory_kib=19456, parallelism=1)
    assert settings.user_failure_threshold == 10
    assert settings.address_failure_threshold == 100
    assert settings.db_pool_size == 10
    assert settings.db_timeout_seconds == 5
    assert settings.audit_retention_days == 365
    assert settings.argon2_threads == 0  # one per available CPU


def test_from_env_defaults_match_the_dataclass_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_empty_values_mean_the_default() -> None:
    names = ["DATA_DIR", "DATABASE_URL", "SMTP_URL", "SESSION_IDLE_SECONDS", "TRUST_FORWARDED_FOR"]
    assert from_env(**dict.fromkeys(names, "")) == Settings.from_env({})


def test_unrelated_variables_are_ignored() -> None:
    env = {"QUATRIX_SESSION_IDLE_SECONDS": "abc", "SMTP_URL": "nonsense", "HOME": "/root"}
    assert Settings.from_env(env) == Settings.from_env({})


def test_every_variable_is_read(tmp_path: Path) -> None:
    settings = from_env(
        DATA_DIR=str(tmp_path),
        DATABASE_URL="postgresql+psycopg://mfa@db.example.com:5432/mfa",
        SMTP_URL="smtp://mail.example.com:2525",
        MAIL_FROM="noreply@mfa.example.com",
        PUBLIC_URL="https://mfa.example.com/",
        SESSION_IDLE_SECONDS="600",
        SESSION_MAX_SECONDS="3600",
        TRUST_FORWARDED_FOR="yes",
        TRUSTED_PROXIES="10.0.0.0/8, 2001:db8::1",
        ARGON2_TIME_COST="3",
        ARGON2_MEMORY_KIB="65536",
        ARGON2_PARALLELISM="4",
        USER_FAILURE_THRESHOLD="5",
        ADDRESS_FAILURE_THRESHOLD="50",
        DB_POOL_SIZE="20",
        DB_TIMEOUT_SECONDS="2",
        ARGON2_THREADS="3",
        AUDIT_RETENTION_DAYS="90",
        RECOVERY_WAIT_SECONDS="86400",
    )
    assert settings.data_dir == tmp_path
    assert settings.database_url == "postgresql+psycopg://mfa@db.example.com:5432/mfa"
    assert settings.effective_database_url == settings.database_url
    assert settings.smtp_url == "smtp://mail.example.com:2525"
    assert settings.mail_from == "noreply@mfa.example.com"
    assert settings.public_url == "https://mfa.example.com"  # trailing slash dropped
    assert settings.session_idle_seconds == 600
    assert settings.session_max_seconds == 3600
    assert settings.trust_forwarded_for is True
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::1/128"),
    )
    assert settings.argon2 == Argon2Parameters(time_cost=3, memory_kib=65536, parallelism=4)
    assert settings.user_failure_threshold == 5
    assert settings.address_failure_threshold == 50
    assert settings.db_pool_size == 20
    assert settings.db_timeout_seconds == 2
    assert settings.argon2_threads == 3
    assert settings.audit_retention_days == 90
    assert settings.recovery_wait_seconds == 86400


def test_default_database_is_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    settings = from_env(DATA_DIR=str(tmp_path / "data"))
    assert (
        settings.effective_database_url
        == f"sqlite:///{(tmp_path / 'data').resolve()}/quatrix-mfa.db"
    )
    assert settings.key_file == tmp_path / "data" / "keys.json"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" on ", True),
        ("yes", True),
        ("0", False),
        ("false", False),
        ("Off", False),
        ("no", False),
    ],
)
def test_trust_forwarded_for_reads_booleans(raw: str, expected: bool) -> None:
    assert from_env(TRUST_FORWARDED_FOR=raw).trust_forwarded_for is expected


@pytest.mark.parametrize(
    "url",
    ["sqlite:///var/x.db", "sqlite+pysqlite:///x.db", "postgresql://u@h/db", "postgres://u@h/db"],
)
def test_database_urls_that_are_accepted(url: str) -> None:
    assert from_env(DATABASE_URL=url).database_url == url


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("SESSION_IDLE_SECONDS", 60, 86400),
        ("SESSION_MAX_SECONDS", 300, 30 * 86400),
        ("ARGON2_TIME_COST", 1, 100),
        ("ARGON2_MEMORY_KIB", 8, 4 * 1024 * 1024),
        ("ARGON2_PARALLELISM", 1, 64),
        ("USER_FAILURE_THRESHOLD", 1, 1000),
        ("ADDRESS_FAILURE_THRESHOLD", 1, 100000),
        ("DB_POOL_SIZE", 1, 1000),
        ("DB_TIMEOUT_SECONDS", 1, 300),
        ("ARGON2_THREADS", 1, 1024),
        ("AUDIT_RETENTION_DAYS", 1, 36500),
    ],
)
def test_numbers_are_checked_against_their_range(name: str, low: int, high: int) -> None:
    # Idle time within the maximum (check_consistent): the other one at its widest.
    other = {"SESSION_IDLE_SECONDS": "60", "SESSION_MAX_SECONDS": str(30 * 86400)}
    other.pop(name, None)
    assert from_env(**other, **{name: str(low)}) != from_env(**other, **{name: str(high)})
    for bad in (str(low - 1), str(high + 1), "abc", "1.5", "-"):
        with pytest.raises(ConfigError) as error:
            from_env(**other, **{name: bad})
        assert f"QUATRIX_MFA_{name}" in str(error.value)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SESSION_IDLE_SECONDS", "abc"),
        ("SMTP_URL", "http://x"),
        ("SMTP_URL", "smtp://"),
        ("SMTP_URL", "smtp://mail.example.com:notaport"),
        ("SMTP_URL", "smtp://mail.example.com:99999"),
        ("TRUST_FORWARDED_FOR", "maybe"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("DATABASE_URL", "mysql://u@h/db"),
        ("DATABASE_URL", "var/db.sqlite"),
        ("PUBLIC_URL", "mfa.example.com"),
        ("PUBLIC_URL", "ftp://mfa.example.com"),
        ("PUBLIC_URL", "https://"),
        ("MAIL_FROM", "not an address"),
        ("MAIL_FROM", "no-at-sign"),
    ],
)
def test_bad_values_raise_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_env(**{name: value})
    message = str(error.value)
    assert message.startswith(f"QUATRIX_MFA_{name}=")
    assert "\n" not in message
    assert isinstance(error.value, ValueError)


def test_first_bad_variable_is_reported_even_among_good_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="QUATRIX_MFA_DB_POOL_SIZE"):
        from_env(DATA_DIR=str(tmp_path), SMTP_URL="smtp://mail:25", DB_POOL_SIZE="0")


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUATRIX_MFA_SESSION_IDLE_SECONDS", "120")
    assert Settings.from_env().session_idle_seconds == 120
    monkeypatch.setenv("QUATRIX_MFA_SESSION_IDLE_SECONDS", "12")
    with pytest.raises(ConfigError, match="QUATRIX_MFA_SESSION_IDLE_SECONDS"):
        Settings.from_env()


@pytest.mark.parametrize(
    "url",
    [
        "http://mfa.example.com",
        "http://10.0.0.5:8080",
        "http://[2001:db8::1]:8080",
        "HTTP://mfa.example.com",
    ],
)
def test_a_plain_http_public_url_on_another_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_env(PUBLIC_URL=url)
    message = str(error.value)
    assert message.startswith("QUATRIX_MFA_PUBLIC_URL=")
    assert "QUATRIX_MFA_ALLOW_PLAIN_HTTP" in message
    assert "\n" not in message


def test_plain_http_on_another_host_starts_when_explicitly_allowed() -> None:
    settings = from_env(PUBLIC_URL="http://mfa.example.com", ALLOW_PLAIN_HTTP="true")
    assert settings.public_url == "http://mfa.example.com"
    assert settings.allow_plain_http is True


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8089",
        "http://localhost:8080",
        "http://[::1]:8080",
        "https://mfa.example.com",
        "https://10.0.0.5",
    ],
)
def test_plain_http_on_this_machine_and_https_anywhere_are_accepted(url: str) -> None:
    assert from_env(PUBLIC_URL=url).public_url == url


def test_unset_public_url_follows_the_address_serve_listens_on() -> None:
    assert Settings.from_env({}).listening_on("127.0.0.1", 8089).public_url == (
        "http://127.0.0.1:8089"
    )
    assert Settings().listening_on("0.0.0.0", 9000).public_url == "http://127.0.0.1:9000"
    assert Settings().listening_on("::1", 9000).public_url == "http://[::1]:9000"
    configured = from_env(PUBLIC_URL="https://mfa.example.com")
    assert configured.listening_on("127.0.0.1", 8089).public_url == "https://mfa.example.com"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.2"])
def test_listening_beyond_this_machine_with_plain_http_links_is_refused(host: str) -> None:
    settings = Settings().listening_on(host, 9000)
    with pytest.raises(ConfigError, match="QUATRIX_MFA_ALLOW_PLAIN_HTTP"):
        settings.check_plain_http(listening_host=host)
    https = from_env(PUBLIC_URL="https://mfa.example.com").listening_on(host, 9000)
    https.check_plain_http(listening_host=host)  # behind a TLS proxy: fine
    allowed = from_env(ALLOW_PLAIN_HTTP="true").listening_on(host, 9000)
    allowed.check_plain_http(listening_host=host)


def test_listening_on_this_machine_with_plain_http_links_is_accepted() -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        Settings().listening_on(host, 9000).check_plain_http(listening_host=host)


@pytest.mark.parametrize("wait", ["0", "59", "7776001", "3d", "-1"])
def test_a_recovery_wait_out_of_range_is_refused(wait: str) -> None:
    with pytest.raises(ConfigError, match="RECOVERY_WAIT_SECONDS"):
        from_env(RECOVERY_WAIT_SECONDS=wait)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"PUBLIC_URL": "https://mfa.example.com/?x=1"}, "PUBLIC_URL"),
        ({"PUBLIC_URL": "https://mfa.example.com/#top"}, "PUBLIC_URL"),
        ({"PUBLIC_URL": "https://user:secret@mfa.example.com"}, "PUBLIC_URL"),
        ({"MAIL_FROM": "a@b@c"}, "MAIL_FROM"),
        ({"MAIL_FROM": "Name <a@b@c>"}, "MAIL_FROM"),
        ({"SESSION_IDLE_SECONDS": "7200", "SESSION_MAX_SECONDS": "3600"}, "SESSION_IDLE_SECONDS"),
        ({"ARGON2_MEMORY_KIB": "16", "ARGON2_PARALLELISM": "4"}, "ARGON2_MEMORY_KIB"),
        ({"DATABASE_URL": "postgresq://mfa:hunter2@db/mfa"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://mfa:hunter2@db:99999/mfa"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://mfa:hunter2@db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:/relative.db"}, "DATABASE_URL"),
        ({"NODE_ID": "x" * 200}, "NODE_ID"),
    ],
)
def test_values_wrong_alone_or_together_name_the_variable_on_one_line(
    values: dict[str, str], named: str
) -> None:
    """Issue 15, item 9: accepted quietly before, each one is refused now."""
    with pytest.raises(ConfigError) as error:
        from_env(**values)
    message = str(error.value)
    assert f"QUATRIX_MFA_{named}" in message
    assert "\n" not in message
    assert "hunter2" not in message and "secret" not in message.split(":", 1)[-1]


def test_a_sender_with_a_display_name_is_accepted() -> None:
    assert from_env(MAIL_FROM="Quatrix <noreply@example.com>").mail_from == (
        "Quatrix <noreply@example.com>"
    )


def test_the_key_file_may_live_outside_the_data_folder(tmp_path: Path) -> None:
    assert from_env(DATA_DIR=str(tmp_path)).key_file == tmp_path / "keys.json"
    mounted = tmp_path / "secrets" / "mfa-keys.json"
    assert from_env(DATA_DIR=str(tmp_path), KEYS_FILE=str(mounted)).key_file == mounted


def test_unknown_variables_are_named_and_known_ones_are_not() -> None:
    env = {"QUATRIX_MFA_SESION_IDLE_SECONDS": "60", "QUATRIX_MFA_DATA_DIR": "var", "HOME": "/"}
    Settings.from_env(env)
    assert unknown_variables(env) == ["QUATRIX_MFA_SESION_IDLE_SECONDS"]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"TRUSTED_PROXIES": "0.0.0.0/0"}, "QUATRIX_MFA_TRUSTED_PROXIES"),
        ({"TRUSTED_PROXIES": "10.0.0.1,::/0"}, "QUATRIX_MFA_TRUSTED_PROXIES"),
        ({"TRUSTED_PROXIES": "128.0.0.0/1"}, "QUATRIX_MFA_TRUSTED_PROXIES"),
        ({"TRUSTED_PROXIES": "10.0.0.0/7"}, "QUATRIX_MFA_TRUSTED_PROXIES"),
        ({"METRICS_ADDR": "0.0.0.0:9108"}, "QUATRIX_MFA_METRICS_ADDR"),
        ({"METRICS_ADDR": "[::]:9108"}, "QUATRIX_MFA_METRICS_ADDR"),
        ({"METRICS_ADDR": "192.0.2.10:9108"}, "QUATRIX_MFA_METRICS_ADDR"),
        ({"METRICS_ADDR": "metrics.internal:9108"}, "QUATRIX_MFA_METRICS_ADDR"),
    ],
)
def test_settings_that_expose_too_much_are_named_in_one_warning(
    values: dict[str, str], named: str
) -> None:
    [warning] = from_env(**values).exposure_warnings()
    assert warning.startswith(named)
    assert "\n" not in warning


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"TRUSTED_PROXIES": "10.0.0.0/8,2001:db8::/32,127.0.0.1"},
        {"TRUST_FORWARDED_FOR": "true"},
        {"METRICS_ADDR": "127.0.0.1:9108"},
        {"METRICS_ADDR": "[::1]:9108"},
        {"METRICS_ADDR": "localhost:9108"},
        {"METRICS_ADDR": "0.0.0.0:9108", "METRICS_TOKEN": "a-bearer-token-of-32-characters!"},
    ],
)
def test_settings_within_bounds_give_no_warning(values: dict[str, str]) -> None:
    assert from_env(**values).exposure_warnings() == []
