"""Whether this process is draining: SIGTERM received, about to stop.

Set by ``quatrix_mfa.serving`` when a ``serve`` worker gets SIGTERM; read by
``/readyz`` (503, so a load balancer stops sending here) and by the HTTP
protocol (every answer from then on closes its connection, so a client or
proxy reconnects, to another node once this one stops accepting). One flag
per process: every worker of ``serve --workers N`` gets its own SIGTERM.
"""

from __future__ import annotations

import threading

_draining = threading.Event()


def start() -> None:
    _draining.set()


def active() -> bool:
    return _draining.is_set()
