"""What every command checks before it touches anything, each failure one line.

:class:`StartupError` carries the line (no traceback, passwords masked); the
command line prints it and exits 2. The order is chosen so that a refusal
writes nothing: the key file is read before the database is opened, and a
SQLite database that does not exist is never created by a command but
``init``.
"""

from __future__ import annotations

import errno
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from quatrix_mfa.keys import make_private_dir, read_key_file
from quatrix_mfa.settings import PREFIX, Settings, host_port
from quatrix_mfa.storage import migrate
from quatrix_mfa.storage.deployment import verify_or_adopt
from quatrix_mfa.storage.engine import make_engine
from quatrix_mfa.urlmask import mask_url


class StartupError(Exception):
    """A command cannot start; the message is one line saying why and what to do."""


def one_line(text_: object) -> str:
    """``text_`` on one line, passwords in URLs masked."""
    return mask_url(" ".join(str(text_).split()))


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def prepare_data_dir(settings: Settings, create: bool) -> None:
    """The data folder exists (made 0700 if ``create``) and, when it holds the
    SQLite database, is writable."""
    folder = settings.data_dir
    database = sqlite_path(settings.effective_database_url)
    if create:
        try:
            make_private_dir(folder)
            if database is not None:
                make_private_dir(database.parent)
        except OSError as error:
            raise StartupError(
                f"cannot create the data folder {folder} ({PREFIX}DATA_DIR): "
                f"{error.strerror or error}"
            ) from None
    if database is None:
        return
    where = database.parent
    if not where.is_dir():
        raise StartupError(
            f"the database folder {where} does not exist ({PREFIX}DATA_DIR or "
            f"{PREFIX}DATABASE_URL); run 'quatrix-mfa init' for a new deployment"
        )
    try:
        # A real write, not os.access: a read-only mount or a full disk too.
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as error:
        raise StartupError(
            f"the data folder {where} is not writable ({error.strerror or error}): SQLite "
            f"writes its database and log there; fix its owner or mode"
        ) from None


def require_database(settings: Settings) -> None:
    """Refuse to open a SQLite database that does not exist (opening creates it)."""
    database = sqlite_path(settings.effective_database_url)
    if database is not None and not database.exists():
        raise StartupError(
            f"no database at {database}: run 'quatrix-mfa init' for a new deployment, "
            f"or set {PREFIX}DATA_DIR / {PREFIX}DATABASE_URL"
        )


def describe_db_error(url: str, error: BaseException) -> str:
    """One line: which database (host, port, password masked) and the driver's reason."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"database URL {mask_url(url)!r} is not valid ({PREFIX}DATABASE_URL)"
    if parsed.drivername.startswith("sqlite"):
        where = f"SQLite database {parsed.database}"
    else:
        where = f"database {parsed.database or ''} at {parsed.host or 'localhost'}:" + str(
            parsed.port or 5432
        )
    cause: Any = getattr(error, "orig", None) or error
    reason = one_line(cause).removeprefix("connection failed: ")
    # psycopg repeats the server's answer with hints; the first sentence is the reason.
    return f"{where}: {reason[:300]}"


def connect(url: str, wait_seconds: float, say: Callable[[str], None] | None = None) -> Engine:
    """An engine whose database answers, retrying for ``wait_seconds`` with a
    line per failed attempt (``serve --wait-for-db``)."""
    try:
        engine = make_engine(url, pool_size=1)
    except (ArgumentError, SQLAlchemyError, ValueError, ImportError) as error:
        raise StartupError(describe_db_error(url, error)) from None
    deadline = time.monotonic() + wait_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return engine
        except SQLAlchemyError as error:
            line = describe_db_error(url, error)
            if time.monotonic() >= deadline:
                engine.dispose()
                raise StartupError(line) from None
            (say or _stderr)(f"waiting for the database (attempt {attempt}): {line}")
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def check_port(host: str, port: int) -> None:
    """Refuse a port another process listens on, before anything else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {host} is in use by another process: stop it, or "
                    f"choose another with --port"
                ) from None
            raise StartupError(
                f"cannot listen on {host}:{port}: {error.strerror or error}"
            ) from None


def check_metrics_apart(port: int, metrics_addr: tuple[str, int] | None) -> None:
    """Refuse a ``METRICS_ADDR`` on serve's own port, whatever either host is:
    names, wildcards and spellings of one address (``localhost``, ``127.1``,
    ``0``) cannot be told apart reliably before binding, and on a shared
    address the metrics listener would take the port first, so serve could
    not bind it."""
    if metrics_addr is not None and metrics_addr[1] == port:
        raise StartupError(
            f"{PREFIX}METRICS_ADDR={host_port(metrics_addr)} is on the port serve listens on "
            f"(--port {port}): give /metrics a port of its own"
        )


def node_name(port: int) -> str:
    """A node's id in the nodes table: host name and port, shared by its workers."""
    return f"{socket.gethostname()}:{port}"


def ensure_schema(engine: Engine, url: str, upgrade: bool) -> None:
    """The schema fits this code: upgraded if ``upgrade`` (and it is not newer)."""
    problem = migrate.schema_problem(engine)
    if problem is None:
        return
    if upgrade and migrate.current_revision(engine) in {None, *migrate.known_revisions()}:
        migrate.upgrade(url)
        problem = migrate.schema_problem(engine)
    if problem:
        raise StartupError(problem)


def open_checked(
    settings: Settings,
    *,
    wait_seconds: float = 0.0,
    upgrade: bool = False,
    say: Callable[[str], None] | None = None,
) -> Engine:
    """Key file, database, schema and keys checked, in an order that writes
    nothing before the last check but the schema upgrade (if asked) and, on a
    database from before migration 0009, the key check values."""
    read_key_file(settings.key_file)
    require_database(settings)
    url = settings.effective_database_url
    engine = connect(url, wait_seconds, say)
    try:
        ensure_schema(engine, url, upgrade)
        verify_or_adopt(settings.key_file, engine, time.time())
    except BaseException:
        engine.dispose()
        raise
    return engine
