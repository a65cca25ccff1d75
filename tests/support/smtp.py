"""A real SMTP server for the mail tests (aiosmtpd): plain, with STARTTLS,
or implicit TLS, and SMTP AUTH, on a certificate made at test time.

aiosmtpd warns of AUTH without TLS (:data:`AUTH_WITHOUT_TLS`) for every
connection to such a server; the tests that build one on purpose say so."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AUTH_WITHOUT_TLS = "ignore:Requiring AUTH while not requiring TLS:UserWarning"
SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret smtp pass:word@"


@dataclass
class Collector:
    """An aiosmtpd handler that keeps every message it receives, and how it came."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        # STARTTLS sets session.ssl; implicit TLS shows on the connection only.
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        seen = {"tls": tls, "authenticated": bool(session.authenticated)}
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
            self.sessions.append(seen)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for _, rcpt, m in self.messages if address in rcpt]


@dataclass
class SlowCollector(Collector):
    """A :class:`Collector` that takes ``delay`` seconds to accept a message;
    ``receiving`` is set as the first one starts arriving."""

    delay: float = 1.0
    receiving: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiving.set()
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Certificates:
    """A test authority and a server certificate it signed for 127.0.0.1/localhost."""

    ca_file: Path
    context: ssl.SSLContext  # the server's


def make_certificates(folder: Path) -> Certificates:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quatrix-mfa test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(leaf.public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return Certificates(ca_file, context)


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == SMTP_USER.encode()
        and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    """An SMTP server on ``host:port``. With ``certificates``: STARTTLS
    (``implicit``: TLS from the first byte instead); with ``auth``: AUTH
    required (and, with STARTTLS, TLS required before it)."""

    port: int
    handler: Collector = field(default_factory=Collector)
    controller: Controller | None = None
    host: str = "127.0.0.1"
    certificates: Certificates | None = None
    implicit: bool = False
    auth: bool = False

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self.certificates is not None and self.implicit:
            options["ssl_context"] = self.certificates.context
        elif self.certificates is not None:
            options.update(tls_context=self.certificates.context, require_starttls=True)
        if self.auth:
            # aiosmtpd counts only STARTTLS as TLS for AUTH: with implicit TLS
            # (or none, to see that we refuse) it must not ask for it.
            options.update(
                authenticator=_authenticator,
                auth_required=True,
                auth_require_tls=self.certificates is not None and not self.implicit,
            )
        self.controller = Controller(self.handler, hostname=self.host, port=self.port, **options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
