"""Where mail goes and how we get there: ``QUATRIX_MFA_SMTP_URL`` and the sender.

``smtp://[user:password@]host[:port][?starttls=require&timeout=S&cafile=PATH]``
speaks SMTP on port 25 by default and upgrades to TLS with STARTTLS (RFC
3207) whenever the server offers it; ``starttls=require`` refuses to send
over a server that does not. ``smtps://`` is TLS from the first byte
(implicit TLS, RFC 8314 §3.3), port 465 by default. ``user:password`` (URL
encoded) logs in with SMTP AUTH (RFC 4954), and only over TLS or to this
machine: a password is not sent over the network in clear. Certificates are
checked against the system's authorities, or ``cafile``. ``timeout`` bounds
the connect and every command (10 s by default), so a stuck server holds
the sender, never a request.

``QUATRIX_MFA_MAIL_FROM`` is an address or ``Name <address>``.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.policy import default as default_policy
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_TIMEOUT = 10.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_QUERY = frozenset({"starttls", "timeout", "cafile"})


class SmtpRefused(smtplib.SMTPException):
    """Our own refusal to go on with a server: no STARTTLS where it is
    required, a password that would travel in clear."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool = False
    require_starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line
    timeout: float = DEFAULT_TIMEOUT
    cafile: str | None = None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """The target of ``url``; ValueError naming what is wrong (never the password)."""
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("must look like smtp://host:port or smtps://host:port")
        port = parts.port  # ValueError for a bad port
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        unknown = sorted(set(query) - _QUERY)
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r} (starttls, timeout, cafile)")
        if parts.path not in {"", "/"} or parts.fragment:
            raise ValueError("no path or fragment after host:port")
        starttls = _one(query, "starttls", "auto")
        if starttls not in {"auto", "require"}:
            raise ValueError("starttls must be 'require' (or left out: used when offered)")
        if starttls == "require" and parts.scheme == "smtps":
            raise ValueError("starttls=require is for smtp://; smtps:// is TLS throughout")
        timeout = float(_one(query, "timeout", str(DEFAULT_TIMEOUT)))
        if not 0 < timeout <= 600:
            raise ValueError("timeout must be between 0 and 600 seconds")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit else 25),
            implicit_tls=implicit,
            require_starttls=starttls == "require",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            timeout=timeout,
            cafile=_one(query, "cafile", "") or None,
        )

    @property
    def on_this_machine(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    def tls_context(self) -> ssl.SSLContext:
        # Verified against the system's authorities (or cafile), host name checked.
        return ssl.create_default_context(cafile=self.cafile)

    def connect(self) -> smtplib.SMTP:
        """An open, greeted connection, on TLS if the URL or the server allows,
        logged in if the URL has a user; the caller sends and quits."""
        smtp: smtplib.SMTP
        if self.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.tls_context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            tls = self.implicit_tls
            if not tls and smtp.has_extn("starttls"):
                smtp.starttls(context=self.tls_context())
                smtp.ehlo()  # RFC 3207 §4.2: what the server offers may change
                tls = True
            if not tls and self.require_starttls:
                raise SmtpRefused("the server does not offer STARTTLS (starttls=require)")
            if self.username is not None:
                if not tls and not self.on_this_machine:
                    raise SmtpRefused("no TLS: the password is not sent in clear")
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


def _one(query: dict[str, list[str]], name: str, default: str) -> str:
    values = query.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise ValueError(f"{name} given twice")
    return values[0]


def parse_sender(raw: str) -> str:
    """``QUATRIX_MFA_MAIL_FROM``: one address, bare or as ``Name <address>``
    (RFC 5322 §3.4); ValueError otherwise. Returned as given, trimmed."""
    text = raw.strip()
    if any(c in text for c in "\r\n"):
        raise ValueError("must be one line")
    try:
        header = default_policy.header_factory("from", text)
        addresses: tuple[Address, ...] = header.addresses
        defects = header.defects
    except (ValueError, IndexError):
        raise ValueError("must be an email address or Name <address>") from None
    if defects or len(addresses) != 1:
        raise ValueError("must be an email address or Name <address>")
    address = addresses[0]
    if not address.username or not address.domain or "@" in address.domain:
        raise ValueError("must be an email address or Name <address>")
    return text


def sender_domain(sender: str) -> str:
    """The domain of the sender's address, for Message-ID (RFC 5322 §3.6.4)."""
    header = default_policy.header_factory("from", sender)
    return str(header.addresses[0].domain)
