"""Configuration from the environment, validated once at start-up.

A bad value raises :class:`ConfigError` with a one-line message naming the
variable; nothing reads the environment anywhere else.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from quatrix_mfa.core.crypto import Argon2Parameters
from quatrix_mfa.core.ipallow import Network
from quatrix_mfa.smtp import SmtpTarget, parse_sender
from quatrix_mfa.urlmask import UserinfoError, check_userinfo, leaks, mask_url

PREFIX = "QUATRIX_MFA_"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"
# Plain http is fine where nothing crosses a network: this machine only.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# A trusted proxy network wider than a /8 is a mistake more often than a
# network of proxies (0.0.0.0/0 trusts every peer): serve warns about it.
BROADEST_PROXY_PREFIX = 8
T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration variable has a value we cannot use."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""
    smtp_url: str | None = None
    mail_from: str = "quatrix-mfa@localhost"
    public_url: str = DEFAULT_PUBLIC_URL
    # False: QUATRIX_MFA_PUBLIC_URL is unset and ``serve`` may put the address
    # it listens on in its place (:meth:`listening_on`).
    public_url_set: bool = False
    allow_plain_http: bool = False
    session_idle_seconds: int = 900
    session_max_seconds: int = 12 * 3600
    # The older switch: a loopback peer is our proxy (forwarding.trusted_networks).
    trust_forwarded_for: bool = False
    # Our own proxies: a peer among them is trusted, and reading
    # X-Forwarded-For from the right skips their entries.
    trusted_proxies: tuple[Network, ...] = ()
    argon2: Argon2Parameters = field(default_factory=Argon2Parameters)
    argon2_threads: int = 0  # 0: one per CPU this process may use
    user_failure_threshold: int = 10
    address_failure_threshold: int = 100
    db_pool_size: int = 10
    # The most seconds a unit of work waits for PostgreSQL (a free pooled
    # connection, its answers, the commit) before it gives up with a 503,
    # even when the server is there but does not answer (storage/deadline.py).
    db_timeout_seconds: int = 5
    audit_retention_days: int = 365
    # How long a lost-device recovery waits before it may complete (72 h).
    recovery_wait_seconds: int = 259200
    # QUATRIX_MFA_KEYS_FILE: the key file elsewhere, e.g. a mounted secret.
    keys_file: Path | None = None
    # This node's name in the nodes table (default: host name and process id;
    # ``serve`` sets host name and port, shared by its workers).
    node_id: str = ""
    # /metrics on its own listener (host, port), or on the main port for
    # requests with this bearer token; neither: no /metrics (issue 15, item 1).
    metrics_addr: tuple[str, int] | None = None
    metrics_token: str | None = None
    # Logs on stdout: "json" or "text" ("" = text on a terminal, else json).
    log_format: str = ""
    log_level: str = "info"
    # Slow and stuck clients (issue 15 item 7): a request's head and body must
    # arrive within this many seconds of its first byte (else 408), and a
    # connection idle between requests closes after ``keepalive_seconds``.
    body_timeout_seconds: int = 10
    keepalive_seconds: int = 5
    # Rolling restarts (issue 15 item 6): after SIGTERM, /readyz answers 503
    # and the node keeps serving for ``drain_seconds``, then stops accepting
    # and gives the requests in flight up to ``shutdown_seconds``.
    drain_seconds: int = 5
    shutdown_seconds: int = 20

    @property
    def key_file(self) -> Path:
        return self.keys_file or self.data_dir / "keys.json"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'quatrix-mfa.db').resolve()}"

    def listening_on(self, host: str, port: int) -> Settings:
        """With no public URL configured, links follow the address ``serve``
        listens on (an unspecified address, ``0.0.0.0`` or ``::``, is
        reached on this machine as 127.0.0.1)."""
        if self.public_url_set:
            return self
        if host in {"", "0.0.0.0", "::"}:  # noqa: S104 - a name for "every address", not a bind
            host = "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        return replace(self, public_url=f"http://{shown}:{port}")

    def check_plain_http(self, listening_host: str | None = None) -> None:
        """Refuse plain http that crosses the network: a public URL on another
        machine's name, or ``serve`` listening on an address other machines
        reach (``0.0.0.0``, a LAN address) while its links say ``http://``.
        Cookies, passwords and reset links would be readable on the way."""
        parts = urlsplit(self.public_url)  # lower-cases the scheme: HTTP:// is http
        hosts = {parts.hostname or ""}
        if listening_host is not None:
            hosts.add(listening_host.strip("[]"))
        plain = parts.scheme == "http" and not hosts <= LOOPBACK_HOSTS
        if plain and not self.allow_plain_http:
            raise ConfigError(
                f"{PREFIX}PUBLIC_URL={self.public_url!r}: plain http reachable from other "
                f"machines (public URL or listening address other than 127.0.0.1 or "
                f"localhost); use https, or set {PREFIX}ALLOW_PLAIN_HTTP=true"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every ``QUATRIX_MFA_*`` variable; raise ConfigError on the first bad one."""
        env = os.environ if env is None else env

        def get(name: str, parse: Callable[[str], T], default: T, secret: bool = False) -> T:
            KNOWN.add(PREFIX + name)
            raw = env.get(PREFIX + name)
            if raw is None or raw == "":
                return default
            try:
                return parse(raw)
            except (ValueError, TypeError) as error:
                # The value is shown with any password in it masked: error
                # lines end up in logs and terminals.
                shown = "***" if secret else mask_url(raw)
                reason = mask_url(str(error))
                if not isinstance(error, UserinfoError) and leaks(
                    reason, raw
                ):  # a parser quoting a piece of the password
                    reason = "not a valid URL"
                raise ConfigError(f"{PREFIX}{name}={shown!r}: {reason}") from None

        settings = cls(
            data_dir=get("DATA_DIR", Path, Path("var")),
            database_url=get("DATABASE_URL", _database_url, ""),
            smtp_url=get("SMTP_URL", _smtp_url, None),
            mail_from=get("MAIL_FROM", parse_sender, "quatrix-mfa@localhost"),
            public_url=get("PUBLIC_URL", _http_url, DEFAULT_PUBLIC_URL),
            public_url_set=bool(env.get(PREFIX + "PUBLIC_URL")),
            allow_plain_http=get("ALLOW_PLAIN_HTTP", _boolean, False),
            session_idle_seconds=get("SESSION_IDLE_SECONDS", _positive(60, 86400), 900),
            session_max_seconds=get("SESSION_MAX_SECONDS", _positive(300, 30 * 86400), 12 * 3600),
            trust_forwarded_for=get("TRUST_FORWARDED_FOR", _boolean, False),
            trusted_proxies=get("TRUSTED_PROXIES", _networks, ()),
            argon2=Argon2Parameters(
                time_cost=get("ARGON2_TIME_COST", _positive(1, 100), 2),
                memory_kib=get("ARGON2_MEMORY_KIB", _positive(8, 4 * 1024 * 1024), 19456),
                parallelism=get("ARGON2_PARALLELISM", _positive(1, 64), 1),
            ),
            argon2_threads=get("ARGON2_THREADS", _positive(1, 1024), 0),
            user_failure_threshold=get("USER_FAILURE_THRESHOLD", _positive(1, 1000), 10),
            address_failure_threshold=get("ADDRESS_FAILURE_THRESHOLD", _positive(1, 100000), 100),
            db_pool_size=get("DB_POOL_SIZE", _positive(1, 1000), 10),
            db_timeout_seconds=get("DB_TIMEOUT_SECONDS", _positive(1, 300), 5),
            audit_retention_days=get("AUDIT_RETENTION_DAYS", _positive(1, 36500), 365),
            recovery_wait_seconds=get("RECOVERY_WAIT_SECONDS", _positive(60, 90 * 86400), 259200),
            keys_file=get("KEYS_FILE", Path, None),
            node_id=get("NODE_ID", _node_id, ""),
            metrics_addr=get("METRICS_ADDR", _host_port, None),
            metrics_token=get("METRICS_TOKEN", _token, None, secret=True),
            log_format=get("LOG_FORMAT", _choice("json", "text"), ""),
            log_level=get("LOG_LEVEL", _choice("debug", "info", "warning", "error"), "info"),
            body_timeout_seconds=get("BODY_TIMEOUT_SECONDS", _positive(1, 3600), 10),
            keepalive_seconds=get("KEEPALIVE_SECONDS", _positive(1, 3600), 5),
            drain_seconds=get("DRAIN_SECONDS", _positive(0, 3600), 5),
            shutdown_seconds=get("SHUTDOWN_SECONDS", _positive(1, 3600), 20),
        )
        settings.check_plain_http()
        settings.check_consistent()
        return settings

    def exposure_warnings(self) -> list[str]:
        """Values that work but open more than they likely mean to: one line
        each, naming the variable and the risk (``serve`` prints them)."""
        found = []
        broad = [str(n) for n in self.trusted_proxies if n.prefixlen < BROADEST_PROXY_PREFIX]
        if broad:
            found.append(
                f"{PREFIX}TRUSTED_PROXIES holds {', '.join(broad)}: nearly any peer may then "
                f"name the client address in X-Forwarded-For, and so dodge the per-address "
                f"throttle and the IP allow-list; list only your own proxies"
            )
        metrics = self.metrics_addr
        if metrics is not None and not self.metrics_token and not _is_loopback(metrics[0]):
            found.append(
                f"{PREFIX}METRICS_ADDR={host_port(metrics)} is reachable from other machines "
                f"and {PREFIX}METRICS_TOKEN is unset: anyone who can connect reads the "
                f"metrics; listen on 127.0.0.1 or set a token"
            )
        return found

    def check_consistent(self) -> None:
        """Values that are each fine but wrong together (issue 15, item 9)."""
        if self.session_idle_seconds > self.session_max_seconds:
            raise ConfigError(
                f"{PREFIX}SESSION_IDLE_SECONDS={self.session_idle_seconds} is longer than "
                f"{PREFIX}SESSION_MAX_SECONDS={self.session_max_seconds}"
            )
        # RFC 9106 section 3.1: the memory is at least 8 KiB per lane.
        if self.argon2.memory_kib < 8 * self.argon2.parallelism:
            raise ConfigError(
                f"{PREFIX}ARGON2_MEMORY_KIB={self.argon2.memory_kib} is less than 8 x "
                f"{PREFIX}ARGON2_PARALLELISM={self.argon2.parallelism} (RFC 9106)"
            )


# Every variable from_env reads (filled as it reads them) and the test suite's
# own: any other QUATRIX_MFA_* variable is most likely a typo.
KNOWN: set[str] = {PREFIX + "TEST_PG", PREFIX + "TEST_DB"}


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """``QUATRIX_MFA_*`` names in ``env`` that nothing reads (call after from_env)."""
    env = os.environ if env is None else env
    return sorted(name for name in env if name.startswith(PREFIX) and name not in KNOWN)


def _is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address; a name other than localhost may
    be any machine's."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _positive(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _node_id(raw: str) -> str:
    if len(raw) > 128 or not raw.isprintable():
        raise ValueError("at most 128 printable characters")
    return raw


def host_port(address: tuple[str, int]) -> str:
    """``host:port`` as it is written, an IPv6 host in brackets (``[::1]:9108``)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ``host:port``: a name or an IPv4 address; ``[v6]:port``: an IPv6 address,
# bracketed as in a URL (RFC 3986 section 3.2.2). ASCII digits only.
_PLAIN_HOST_PORT = re.compile(r"([A-Za-z0-9._-]+):([0-9]{1,5})")  # "_": container names
_BRACKETED_HOST_PORT = re.compile(
    r"\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[A-Za-z0-9._-]+)?)\]"  # a colon: IPv6 only
    r":([0-9]{1,5})"
)


def _host_port(raw: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``, e.g. ``127.0.0.1:9108`` or ``[::1]:9108``."""
    found = _PLAIN_HOST_PORT.fullmatch(raw.strip()) or _BRACKETED_HOST_PORT.fullmatch(raw.strip())
    if found is None or not 1 <= int(found.group(2)) <= 65535:
        raise ValueError("must be host:port or [IPv6]:port, e.g. 127.0.0.1:9108 or [::1]:9108")
    return found.group(1), int(found.group(2))


def _token(raw: str) -> str:
    if len(raw) < 16 or not raw.isascii() or not raw.isprintable() or " " in raw:
        raise ValueError("at least 16 printable ASCII characters, no spaces")
    return raw


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _networks(raw: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks (``10.0.0.0/8, 2001:db8::1``)."""
    found = []
    for entry in raw.split(","):
        if entry.strip():
            try:
                found.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{entry.strip()!r} is not an address or network") from None
    return tuple(found)


DATABASE_SCHEMES = frozenset(
    {"sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg"}
)


def _database_url(raw: str) -> str:
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in DATABASE_SCHEMES:
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    check_userinfo(raw)
    if scheme.lower().startswith("sqlite"):
        if not rest.startswith("/"):
            raise ValueError("a SQLite URL is sqlite:////absolute/path or sqlite:///relative")
        return raw
    parts = urlsplit(raw)
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("a PostgreSQL URL names a host: postgresql://user:password@host/db")
    _ = parts.port  # raises ValueError for a bad port
    if not parts.path.strip("/"):
        raise ValueError("a PostgreSQL URL names the database: postgresql://host/db")
    return raw


def _smtp_url(raw: str) -> str:
    check_userinfo(raw)
    SmtpTarget.parse(raw)  # smtp.py: smtp:// or smtps://, AUTH, STARTTLS, timeout
    return raw


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http(s):// URL")
    if parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise ValueError("links are built from it: no query (?) or fragment (#)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("no user or password in the public URL")
    _ = parts.port  # raises ValueError for a bad port
    return raw.rstrip("/")
