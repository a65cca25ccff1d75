"""Structured logs (issue 15, item 2): a line per request and per security event.

``QUATRIX_MFA_LOG_FORMAT`` chooses JSON lines (one object per line, what log
shippers read) or plain text (for a person at a terminal; the default there),
``QUATRIX_MFA_LOG_LEVEL`` the least level written. Both go to stdout.

What goes into a line is chosen where it is logged: the request line names
route templates (never a path, which may hold a reset id), the security-event
line the audit row's fields. No secret reaches either: the audit rows hold
none (core/audit.py), and a request's headers and bodies are never logged.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from quatrix_mfa import observe
from quatrix_mfa.core.model import AuditEvent

REQUESTS = logging.getLogger("quatrix_mfa.request")
SECURITY = logging.getLogger("quatrix_mfa.security")
FORMATS = ("json", "text")
LEVELS = ("debug", "info", "warning", "error")
# The fields a record may carry besides the message: ``extra={"fields": {...}}``.
FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger, message,
    the request id of the request in flight, and the record's own fields."""

    # Made once: ``json.dumps`` with options builds a new encoder per call.
    _encode = json.JSONEncoder(default=str, separators=(",", ":")).encode

    def __init__(self) -> None:
        super().__init__()
        # Every request writes a line: the date and time to the second are
        # formatted once a second, not once a line (one tuple: read whole).
        self._stamp = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached, stamp = self._stamp
        if second != cached:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._stamp = (second, stamp)
        line: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            line.update(fields)
        if "request_id" not in line:
            info = observe.current()
            if info is not None:
                line["request_id"] = info.request_id
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type only: its text may quote a value, its
            # traceback locals are not printed but its message might be.
            line["error"] = record.exc_info[0].__name__
        return self._encode(line)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...`` for a person reading along."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        fields = getattr(record, FIELDS, None)
        extra = ""
        if isinstance(fields, dict):
            extra = "".join(f" {k}={v}" for k, v in fields.items() if v is not None)
        if record.exc_info and record.exc_info[0] is not None:
            extra += f" error={record.exc_info[0].__name__}"
        return f"{stamp} {record.levelname} {record.name}: {record.getMessage()}{extra}"


def default_format(stream: Any = None) -> str:
    """``text`` on a terminal, ``json`` otherwise (a pipe, a file, journald)."""
    stream = sys.stdout if stream is None else stream
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def configure(log_format: str, level: str) -> None:
    """Send every log record at ``level`` or above to stdout in ``log_format``.

    The root logger's handlers are replaced: uvicorn's and the libraries'
    records come out in the same format. SQLAlchemy's statement logging stays
    at WARNING whatever the level: at INFO it prints the statements' parameters.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    # Neither format prints where a record was made, nor its thread or process:
    # not gathered, as the logging HOWTO's "Optimization" section shows (a
    # tenth of the request line's cost, which every request pays).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_log = logging.getLogger(name)
        uvicorn_log.handlers = []
        uvicorn_log.propagate = True


def request_line(
    method: str, route: str, status: int, seconds: float, addr: str | None, info: Any
) -> None:
    """The one line of a request, at INFO (5xx at ERROR)."""
    if not REQUESTS.isEnabledFor(logging.INFO):
        return
    level = logging.ERROR if status >= 500 else logging.INFO
    fields = {
        "request_id": info.request_id,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "client_addr": addr,
        "user_id": info.user_id,
    }
    REQUESTS.log(level, "%s %s %s", method, route, status, extra={FIELDS: fields})


def security_events(events: Iterable[AuditEvent]) -> None:
    """A line per committed audit row: the security events, as the audit trail has them."""
    if not SECURITY.isEnabledFor(logging.INFO):
        return
    for event in events:
        fields = {
            "event": event.event,
            "outcome": event.outcome,
            "actor_id": event.actor_id,
            "target_id": event.target_id,
            "account_id": event.account_id,
            "client_addr": event.client_addr,
            "detail": event.detail,
        }
        SECURITY.info("%s %s", event.event, event.outcome, extra={FIELDS: fields})


class LoopFailures:
    """The failures of one background loop, logged without flooding the log.

    A loop that runs every second writes a line per round while the database
    is down; the README promises at most one a minute. The first failure is
    logged at once, then at most one line every ``every`` seconds counting
    the failures not logged since, and one line when a round works again.
    Only the error's type is logged: its text may quote a value.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._what = what
        self._every = every
        self._clock = clock
        self._failures = 0  # since the last round that worked
        self._unlogged = 0  # since the last line
        self._logged_at = 0.0

    def failed(self, error: BaseException) -> None:
        """A round failed with ``error``."""
        now = self._clock()
        self._failures += 1
        if self._failures == 1 or now - self._logged_at >= self._every:
            more = f" ({self._unlogged} more since the last line)" if self._unlogged else ""
            self._log.warning("%s failed: %s%s", self._what, type(error).__name__, more)
            self._logged_at = now
            self._unlogged = 0
        else:
            self._unlogged += 1

    def succeeded(self) -> None:
        """A round worked: one line if it follows failures."""
        if self._failures:
            self._log.warning("%s recovered after %d failures", self._what, self._failures)
        self._failures = 0
        self._unlogged = 0
