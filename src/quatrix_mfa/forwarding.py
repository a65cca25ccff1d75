"""The client's address behind proxies we trust (``X-Forwarded-For``).

Every proxy on the way appends the address it saw to ``X-Forwarded-For``,
either to the last line or as a line of its own (HAProxy's ``option
forwardfor``); the lines are one list, in order (RFC 9110 §5.3). Everything
left of what our own proxies wrote is the client's to choose, so the list is
read from the right: entries written by our proxies are skipped, and the
first one that is not ours is the client as our outermost proxy saw it.

Our proxies are ``QUATRIX_MFA_TRUSTED_PROXIES`` (addresses and networks);
the older on/off ``QUATRIX_MFA_TRUST_FORWARDED_FOR`` means the loopback
addresses, a proxy on this host (deploy/nginx.conf).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

from quatrix_mfa.core.ipallow import Network, client_address

# What QUATRIX_MFA_TRUST_FORWARDED_FOR=true trusts: a proxy on this host. Any
# other peer, whatever it sends, is the client.
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def trusted_networks(trust_forwarded_for: bool, proxies: Sequence[Network]) -> tuple[Network, ...]:
    """Our proxies: those configured, and with the old switch on the loopback ones."""
    return (*proxies, *LOOPBACK) if trust_forwarded_for else tuple(proxies)


def is_proxy(entry: str | None, proxies: Sequence[Network]) -> bool:
    """Whether ``entry`` is the address of one of our own proxies."""
    addr = client_address(entry)
    return addr is not None and any(addr.version == net.version and addr in net for net in proxies)


def forwarded_client(
    peer: str | None, lines: Sequence[str], proxies: Sequence[Network]
) -> str | None:
    """The client's address for a request from ``peer`` carrying the
    ``X-Forwarded-For`` ``lines``.

    The header counts only when the peer's address is in ``proxies``; then,
    from the right, the first entry that is not in ``proxies``. A chain of
    nothing but our proxies is a request one of them made itself: its first
    entry. An entry that is not an IP address ("unknown", a name, garbage) is
    no address we could throttle or allow: it and everything left of it are
    ignored, and the client is the last hop we could read (our proxy that
    passed it on, or the peer). Addresses come back in their canonical form
    (``2001:DB8:0::1`` is ``2001:db8::1``, ``::ffff:192.0.2.1`` is
    ``192.0.2.1``), so one client is one throttle key and one audit value.
    """
    if not is_proxy(peer, proxies):
        return peer
    client = peer
    for line in reversed(lines):
        for entry in reversed(line.split(",")):
            if not entry.strip():
                continue  # "a, , b": an empty element is no hop (RFC 9110 §5.6.1)
            addr = client_address(entry.strip())
            if addr is None:
                return client
            client = str(addr)
            if not is_proxy(client, proxies):
                return client
    return client


def request_client(request: Request) -> str | None:
    """The client's address of a request to either edge (``api/``, ``web/``):
    the peer's, or behind our own proxies what they forwarded. Every
    ``X-Forwarded-For`` line is read: a proxy that adds a line of its own puts
    the address it saw in the last one, and the first line is the client's to
    choose. The trusted proxies are the app's (``create_app``)."""
    return forwarded_client(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        request.app.state.trusted_proxies,
    )
