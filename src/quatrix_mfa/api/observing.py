"""Every request measured, logged and given an id (issue 15, items 1 and 2);
``/metrics`` on the main port for a scraper with the bearer token.

The middleware is plain ASGI (no per-request objects of Starlette's): per
request it reads the clock twice, updates two or three metrics and writes one
log line; nothing else is measured on the request path.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quatrix_mfa import logs, metrics, observe
from quatrix_mfa.core.ipallow import Network
from quatrix_mfa.forwarding import forwarded_client

METRICS_PATH = "/metrics"
_HEADER = observe.REQUEST_ID_HEADER.lower().encode()
_XFF = b"x-forwarded-for"
# Where Observe leaves the request's id for the server-error middleware, which
# answers an unexpected error from outside Observe (so past its send).
_ID_IN_SCOPE = "quatrix_mfa.request_id"
# Where the HTTP protocol (api/http_protocol.py) leaves its own answer (status,
# request id) to a request the app had begun: the rest of its body never came
# (408) or could not be parsed (400). That answer is what the client got.
PROTOCOL_ANSWER = "quatrix_mfa.protocol_answer"
# The status logged and counted for a request whose client went away while
# the app was still reading it, before any answer began (nginx's "client
# closed request"): nobody was answered, so it is no server error. A client
# that leaves after sending the whole request is logged with the app's status.
CLIENT_CLOSED = 499


def route_of(scope: Scope, prefix: str = "") -> str:
    """The template of the route that answered (``/api/1.0/user/{id}``), never
    the path: a fixed label for anything no route matched.

    FastAPI (0.165) puts the router's own route in the scope, whose template
    lacks the prefix it was included under (``/user/{id}``): ``prefix`` is
    put back in front of the templates of requests under it."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str) or not path:
        return metrics.UNMATCHED
    if prefix and not path.startswith(prefix) and scope["path"].startswith(prefix + "/"):
        return prefix + path
    return path


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


@dataclass(slots=True)
class Observed:
    """One request as :class:`Recorder` records it, from its arrival to its log line."""

    started: float
    info: observe.RequestInfo
    token: contextvars.Token[observe.RequestInfo | None]
    echoed: tuple[bytes, bytes]  # the X-Request-Id header of the answer
    status: int = 500  # what the client gets if the app raises before answering
    answering: bool = False  # an answer has begun
    client_gone: bool = False  # the app read a disconnect before an answer began


class Recorder:
    """A request's id, metrics and log line: what :class:`Observe` does around
    every request, and ``api/hot.py``'s session check in front of it."""

    def __init__(self, trusted_proxies: Sequence[Network] = (), prefix: str = "") -> None:
        self.trusted_proxies = tuple(trusted_proxies)
        self.prefix = prefix

    @staticmethod
    def begin(scope: Scope) -> Observed:
        """A request arrives: its clock starts, its id is chosen (the client's
        X-Request-Id when well-formed) and made the current request's."""
        started = time.perf_counter()
        answered = scope.get(PROTOCOL_ANSWER)  # before the app even began: its id
        chosen = answered[1] if answered else observe.request_id_from(_header(scope, _HEADER))
        info, token = observe.begin(chosen)
        return Observed(started, info, token, (_HEADER, info.request_id.encode()))

    @staticmethod
    def request_id(scope: Scope) -> str | None:
        """The id :class:`Observe` gave the request in ``scope``, if it saw it."""
        found = scope.get(_ID_IN_SCOPE)
        return found if isinstance(found, str) else None

    @staticmethod
    def id_for(scope: Scope) -> str:
        """The id of the request in ``scope``: the one :class:`Observe` gave
        it, or the one it will give it (the client's, when well-formed)."""
        return Recorder.request_id(scope) or observe.request_id_from(_header(scope, _HEADER))

    def finish(self, scope: Scope, seen: Observed) -> None:
        """The request is answered: its metrics and its log line, with the
        status the client got (the HTTP protocol's own answer, if it gave one;
        :data:`CLIENT_CLOSED` if the client left while the app read it)."""
        seconds = time.perf_counter() - seen.started
        route = route_of(scope, self.prefix)
        method = scope["method"]
        status = seen.status
        answered = scope.get(PROTOCOL_ANSWER)
        if answered is not None:
            status = answered[0]
        elif seen.client_gone:
            status = CLIENT_CLOSED
        metrics.observe_request(route, method, status, seconds)
        if logs.REQUESTS.isEnabledFor(logging.INFO):
            client = scope.get("client")
            xff = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == _XFF]
            peer = client[0] if client else None
            addr = forwarded_client(peer, xff, self.trusted_proxies)
            logs.request_line(method, route, status, seconds, addr, seen.info)
        observe.end(seen.token)


class Observe:
    """Request id, metrics and the request's log line, around everything else."""

    def __init__(
        self, app: ASGIApp, trusted_proxies: Sequence[Network] = (), prefix: str = ""
    ) -> None:
        self.app = app
        self.recorder = Recorder(trusted_proxies, prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = self.recorder.begin(scope)
        scope[_ID_IN_SCOPE] = seen.info.request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
                seen.answering = True
                message["headers"] = [*message.get("headers", ()), seen.echoed]
            await send(message)

        async def receive_noting_gone() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not seen.answering:
                seen.client_gone = True
            return message

        try:
            await self.app(scope, receive_noting_gone, send_with_id)
        finally:
            self.recorder.finish(scope, seen)


def metrics_allowed(authorization: str | None, token: str | None) -> bool:
    """``Authorization: Bearer <token>`` with the configured token, compared in
    constant time; never without a token configured."""
    if not token or authorization is None:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
