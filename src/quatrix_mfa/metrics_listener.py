"""``/metrics`` on a listener of its own (``QUATRIX_MFA_METRICS_ADDR``).

prometheus_client's own ``start_http_server`` answers every path with the
metrics (and any method but GET with its own 405): a probe of ``/``, a
health check pointed at the wrong path, or a crawler all read them. This
listener answers ``GET``/``HEAD /metrics`` only: 404 for any other path, 405
(``Allow: GET, HEAD``) for any other method. With ``QUATRIX_MFA_METRICS_TOKEN``
set, it also asks for the bearer token, as the main port does (404 without).
It runs in ``serve``'s own process, on a daemon thread, for every worker.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from quatrix_mfa.api.observing import METRICS_PATH, metrics_allowed

StartResponse = Callable[..., Any]
Wsgi = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_READ_METHODS = ("GET", "HEAD")


def wsgi_app(registry: CollectorRegistry, token: str | None) -> Wsgi:
    """The listener's application: the metrics at ``/metrics`` and nowhere else."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        # Without the token (when one is set) nothing tells that /metrics is here.
        bearer = token is None or metrics_allowed(environ.get("HTTP_AUTHORIZATION"), token)
        if environ.get("PATH_INFO") != METRICS_PATH or not bearer:
            return _plain(start_response, "404 Not Found", b"Not Found\n")
        if method not in _READ_METHODS:
            allow = [("Allow", ", ".join(_READ_METHODS))]
            return _plain(start_response, "405 Method Not Allowed", b"Method Not Allowed\n", allow)
        body = b"".join(metrics({**environ, "REQUEST_METHOD": "GET"}, start_response))
        return [b""] if method == "HEAD" else [body]

    return app


def _plain(
    start_response: StartResponse,
    status: str,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        + (headers or []),
    )
    return [body]


class _Quiet(WSGIRequestHandler):
    """No line per scrape on stderr (the request log is the main port's)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress never holds up the exit


def start(host: str, port: int, registry: CollectorRegistry, token: str | None) -> WSGIServer:
    """Listen on ``host:port`` (IPv4 or IPv6) and serve on a daemon thread;
    OSError if the address cannot be had."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

    class Server(_Server):
        address_family = family

    server = make_server(host, port, wsgi_app(registry, token), Server, _Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
