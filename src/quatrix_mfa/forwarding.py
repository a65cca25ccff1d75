"""The client's address behind proxies we trust (``X-Forwarded-For``).

Every proxy on the way appends the address it saw to ``X-Forwarded-For``,
either to the last line or as a line of its own (HAProxy's ``option
forwardfor``); the lines are one list, in order (RFC 9110 §5.3). Everything
left of what our own proxies wrote is the client's to choose, so the list is
read from the right: entries written by our proxies are skipped, and the
first one that is not ours is the client as our outermost proxy saw it.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from quatrix_mfa.core.ipallow import Network, client_address

MAX_ADDR = 64  # longer is no address; the column that records it holds 64


def is_proxy(entry: str | None, proxies: Sequence[Network]) -> bool:
    """Whether ``entry`` is the address of one of our own proxies."""
    addr = client_address(entry)
    return addr is not None and any(addr.version == net.version and addr in net for net in proxies)


def forwarded_client(
    peer: str | None, lines: Sequence[str], trust_peer: bool, proxies: Sequence[Network]
) -> str | None:
    """The client's address for a request from ``peer`` carrying the
    ``X-Forwarded-For`` ``lines``.

    The header counts only when the peer is our proxy (``trust_peer``, or its
    address is in ``proxies``); then, from the right, the first entry that is
    not in ``proxies``. A chain of nothing but our proxies is a request one of
    them made itself: its first entry.
    """
    if not (trust_peer or is_proxy(peer, proxies)):
        return peer
    chain = [entry.strip() for line in lines for entry in line.split(",")]
    chain = [entry for entry in chain if entry]
    if not chain:
        return peer
    for entry in reversed(chain):
        if not is_proxy(entry, proxies):
            return entry[:MAX_ADDR]
    return chain[0][:MAX_ADDR]


def request_client(request: Request) -> str | None:
    """The client's address of a request to either edge (``api/``, ``web/``):
    the peer's, or behind our own proxies what they forwarded. Every
    ``X-Forwarded-For`` line is read: a proxy that adds a line of its own puts
    the address it saw in the last one, and the first line is the client's to
    choose. The trust settings are the app's (``create_app``)."""
    state = request.app.state
    return forwarded_client(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        state.trust_forwarded_for,
        state.trusted_proxies,
    )
