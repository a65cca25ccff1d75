"""Prometheus metrics (issue 15, item 1): what an operator graphs and alerts on.

One set of metrics per process, in ``prometheus_client``'s default registry.
Under ``serve`` every worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (set by ``serve``, before any worker imports
this), and a scrape adds every worker's up (:func:`exposition`).

No label ever holds a user id, an email, an address or a token: the labels
are route templates, HTTP methods and statuses, and names from this code
(factor kinds, outcomes, close reasons), checked against fixed sets where
they pass through from elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from quatrix_mfa.core import audit
from quatrix_mfa.core.factors import drift
from quatrix_mfa.core.model import PIN_KIND, TOTP_KIND, AuditEvent

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The route label of a request no route matched: a raw path would let any
# client add label values (and put whatever it likes into them).
UNMATCHED = "unmatched"
OTHER = "other"
# The close reason of a session past its idle or absolute time (core/sessions.py).
EXPIRED = "expired"
# The factor of a second-factor outcome: the one that checked the code, which
# its form chooses (a recovery code's groups, digits for TOTP). Any other
# value stays out of the labels.
_FACTORS = frozenset({TOTP_KIND, PIN_KIND, "recovery"})
PASSWORD = "password"  # noqa: S105 - a label, not a password

REQUESTS = Counter(
    "quatrix_mfa_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "quatrix_mfa_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RATE_LIMITED = Counter(
    "quatrix_mfa_http_rate_limited_total",
    "Answers 429 (too many attempts), by route template.",
    ["route"],
)
LOGINS = Counter(
    "quatrix_mfa_logins_total",
    "Login steps by step (password, second_factor), outcome (ok, wrong, replayed, "
    "throttled, address_denied) and factor (password; totp, recovery or pin for the "
    "second factor).",
    ["step", "outcome", "factor"],
)
SESSIONS_OPENED = Counter(
    "quatrix_mfa_sessions_opened_total",
    "Sessions opened, pending a second factor or full.",
    ["state"],
)
SESSIONS_CLOSED = Counter(
    "quatrix_mfa_sessions_closed_total",
    "Session closings by reason (one per audited closing; a password change that "
    "ends all of a user's other sessions counts once; expired: one per session, found "
    "expired by a request or deleted by the background purge).",
    ["reason"],
)
MAIL = Counter(
    "quatrix_mfa_mail_total",
    "Mail by what happened: queued, sent, failed (an attempt to retry), given_up.",
    ["state"],
)
OUTBOX_DEPTH = Gauge(
    "quatrix_mfa_outbox_depth",
    "Mail waiting in the outbox (neither sent nor given up).",
    multiprocess_mode="livemostrecent",
)
ARGON2_WAITING = Gauge(
    "quatrix_mfa_argon2_waiting",
    "Password hashes (argon2id) waiting for a free hashing slot.",
    multiprocess_mode="livesum",
)
DB_POOL_IN_USE = Gauge(
    "quatrix_mfa_db_pool_in_use",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
METRIC_NAMES = frozenset(
    {
        "quatrix_mfa_http_requests_total",
        "quatrix_mfa_http_request_duration_seconds",
        "quatrix_mfa_http_rate_limited_total",
        "quatrix_mfa_logins_total",
        "quatrix_mfa_sessions_opened_total",
        "quatrix_mfa_sessions_closed_total",
        "quatrix_mfa_mail_total",
        "quatrix_mfa_outbox_depth",
        "quatrix_mfa_argon2_waiting",
        "quatrix_mfa_db_pool_in_use",
    }
)


# The children of the per-request metrics by their labels: ``labels()`` checks
# its arguments and takes the metric's lock on every call, which cost as much
# as the update itself. As bounded as the labels: route templates, and the
# methods and statuses that reach them.
_REQUEST_COUNTS: dict[tuple[str, str, int], Any] = {}
_LATENCIES: dict[str, Any] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """The hot path's whole cost: two or three counter and histogram updates."""
    count = _REQUEST_COUNTS.get((route, method, status))
    if count is None:
        count = REQUESTS.labels(route, method, str(status))
        _REQUEST_COUNTS[(route, method, status)] = count
    count.inc()
    latency = _LATENCIES.get(route)
    if latency is None:
        latency = _LATENCIES[route] = LATENCY.labels(route)
    latency.observe(seconds)
    if status == 429:
        RATE_LIMITED.labels(route).inc()


def _factor(detail: dict[str, object]) -> str:
    factor = detail.get("factor")
    return factor if isinstance(factor, str) and factor in _FACTORS else OTHER


def count_events(events: Iterable[AuditEvent]) -> None:
    """Login and session counters from the audit rows a transaction committed."""
    for event in events:
        if event.event == audit.LOGIN_PASSWORD:
            ok = event.outcome == audit.SUCCESS
            LOGINS.labels("password", "ok" if ok else "wrong", PASSWORD).inc()
        elif event.event == audit.LOGIN_FACTOR:
            if event.outcome == audit.SUCCESS:
                outcome = "ok"
            elif event.detail.get("reason") == drift.USED:
                outcome = "replayed"
            else:
                outcome = "wrong"
            LOGINS.labels("second_factor", outcome, _factor(event.detail)).inc()
        elif event.event == audit.THROTTLED:
            if event.detail.get("factor") == PASSWORD:
                LOGINS.labels("password", "throttled", PASSWORD).inc()
            else:
                LOGINS.labels("second_factor", "throttled", _factor(event.detail)).inc()
        elif event.event == audit.LOGIN_ADDRESS:
            LOGINS.labels("password", "address_denied", PASSWORD).inc()
        elif event.event == audit.SESSION_CLOSED:
            reason = event.outcome
            SESSIONS_CLOSED.labels(reason if reason.replace("_", "").isalpha() else OTHER).inc()


def multiprocess_dir() -> str | None:
    """The folder the workers write their values to, when ``serve`` set one up."""
    return os.environ.get(MULTIPROC_ENV) or None


def registry(files: bool | None = None) -> CollectorRegistry:
    """What a scrape reads: every worker's files, or this process's own values.

    ``files`` None: the files if this process writes its values there.
    prometheus_client picks memory or files when it is first imported, and a
    single-worker serve imports it before it sets the folder: its values are
    then in this process's memory and the folder stays empty."""
    from prometheus_client import values

    if files is None:
        files = values.ValueClass is not values.MutexValue
    if multiprocess_dir() is None or not files:
        from prometheus_client import REGISTRY

        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    return collected


def exposition() -> bytes:
    """The Prometheus text format of every metric."""
    return generate_latest(registry())
