"""``serve`` and ``migrate``: start a node, upgrade or take back the schema."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from quatrix_mfa.settings import PREFIX, Settings, host_port


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.cli_setup import first_admin, initialise
    from quatrix_mfa.keys import read_key_file
    from quatrix_mfa.settings import ConfigError
    from quatrix_mfa.startup import (
        check_metrics_apart,
        check_port,
        node_name,
        open_checked,
        prepare_data_dir,
    )

    settings = settings.listening_on(args.host, args.port)
    try:
        settings.check_plain_http(listening_host=args.host)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    for warning in settings.exposure_warnings():  # it still starts: the values may be meant
        print(f"warning: {warning}", file=sys.stderr)
    check_port(args.host, args.port)
    check_metrics_apart(args.port, settings.metrics_addr)
    if args.init_admin and not settings.key_file.exists():
        # The documented first start (./scripts/serve): this is ``init``, which
        # makes keys for a new database only and refuses on one with users.
        status = initialise(settings, args.init_admin, args.account_name, None)
        if status:
            return status
    read_key_file(settings.key_file)
    prepare_data_dir(settings, create=False)
    open_checked(settings, wait_seconds=args.wait_for_db, upgrade=not args.no_migrate).dispose()
    if args.init_admin:
        status = first_admin(settings, args.init_admin, args.account_name, None)
        if status:
            return status
    # The workers build the app from the environment: links follow this
    # address, and all of them are one node (one row in the nodes table).
    os.environ[PREFIX + "PUBLIC_URL"] = settings.public_url
    # Each serve is a node of its own even when two are given one NODE_ID (the
    # same environment on every host): a start's random suffix keeps their
    # heartbeats apart, so rotate-key and keys activate count both.
    base = (settings.node_id or node_name(args.port))[:120]
    os.environ[PREFIX + "NODE_ID"] = f"{base}~{secrets.token_hex(3)}"
    with _observability(settings, args.workers):
        return _run(settings, args)


@contextlib.contextmanager
def _observability(settings: Settings, workers: int) -> Iterator[None]:
    """Logs on stdout in the configured format; the workers' metrics in a
    private folder (prometheus_client's multi-process mode: every worker
    writes its values there, a scrape adds them up), removed when serve ends;
    ``/metrics`` on its own listener when ``QUATRIX_MFA_METRICS_ADDR`` says so."""
    from quatrix_mfa import logs
    from quatrix_mfa.metrics import MULTIPROC_ENV

    log_format = settings.log_format or logs.default_format()
    logs.configure(log_format, settings.log_level)
    # The workers configure theirs from the same variables (app_from_env).
    os.environ[PREFIX + "LOG_FORMAT"] = log_format
    # In the data folder (private, 0700): a serve killed without its cleanup
    # (SIGKILL) leaves its folder there, not in the machine's /tmp.
    try:
        folder = tempfile.mkdtemp(prefix="metrics-", dir=settings.data_dir)
    except OSError:  # a read-only data folder (keys mounted elsewhere, PostgreSQL)
        folder = tempfile.mkdtemp(prefix="quatrix-mfa-metrics-")
    # Before prometheus_client is imported here or in a worker: it picks its
    # value store (memory or files) at import.
    os.environ[MULTIPROC_ENV] = folder
    try:
        if settings.metrics_addr is not None:
            from quatrix_mfa import metrics, metrics_listener
            from quatrix_mfa.startup import StartupError

            host, port = settings.metrics_addr
            registry = metrics.registry(files=workers > 1)
            try:
                metrics_listener.start(host, port, registry, settings.metrics_token)
            except OSError as error:  # taken, or no such address here: one line, no traceback
                raise StartupError(
                    f"{PREFIX}METRICS_ADDR={host_port((host, port))}: "
                    f"cannot listen there ({error.strerror})"
                ) from None
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa import serving

    def announce() -> None:
        # Once the port accepts and every worker serves: a script that waits
        # for this line may connect at once.
        print(
            f"quatrix-mfa on {settings.public_url}/ (pages) and {settings.public_url}/api/1.0 "
            f"({args.workers} worker(s))",
            flush=True,
        )

    protocol = _http_protocol()
    if not serving.run(settings, args.host, args.port, args.workers, protocol, announce):
        return 3  # uvicorn's STARTUP_FAILURE: the app did not start
    return 0


def _http_protocol() -> Any:
    """httptools with bounds on request heads and arrival time; h11 (16 KiB
    bound on heads, no arrival bound) without httptools."""
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it on CPython
        return "h11"
    from quatrix_mfa.api.http_protocol import LimitedHttpToolsProtocol

    return LimitedHttpToolsProtocol


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Upgrade the schema to this code's newest revision, or move it to ``--to``."""
    from quatrix_mfa.startup import StartupError, connect, require_database
    from quatrix_mfa.storage import migrate

    require_database(settings)
    url = settings.effective_database_url
    engine = connect(url, args.wait_for_db)
    try:
        before = migrate.current_revision(engine)
    finally:
        engine.dispose()
    known = migrate.known_revisions()
    head = migrate.head_revision()
    target = args.to or head
    if target not in known:
        raise StartupError(f"unknown revision {target}: this code knows {', '.join(sorted(known))}")
    if before is not None and before not in known:
        raise StartupError(
            f"the database schema is at revision {before}, newer than this code's {head}: "
            f"run 'migrate' from the newer release"
        )
    if before is not None and int(target) < int(before):
        blocked = migrate.without_downgrade(before, target)
        if blocked:
            raise StartupError(
                f"cannot take the schema from {before} back to {target}: revision "
                f"{', '.join(blocked)} has no downgrade (restore the backup taken before "
                f"upgrading); nothing was changed"
            )
        migrate.downgrade(url, target)
    else:
        migrate.upgrade(url, target)
    print(f"Schema at revision {target} (was {before or 'empty'}).")
    return 0


def register(commands: Any) -> None:
    """serve, migrate."""
    from quatrix_mfa.cli import int_between, text

    serve = commands.add_parser(
        "serve", help="check the key file and database, migrate the schema, then serve HTTP"
    )
    serve.add_argument("--host", default="127.0.0.1", type=text)
    serve.add_argument("--port", type=int_between(1, 65535), default=8080)
    serve.add_argument("--workers", type=int_between(1, 256), default=1)
    serve.add_argument(
        "--init-admin",
        metavar="EMAIL",
        type=text,
        help="on the first start of a new deployment, run init with this administrator "
        "and print the link that sets their password",
    )
    serve.add_argument("--account-name", default="Quatrix", type=text)
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not upgrade the schema (run 'quatrix-mfa migrate' first); refuse if it "
        "does not fit this code",
    )
    serve.add_argument(
        "--wait-for-db",
        metavar="SECONDS",
        type=int_between(0, 3600),
        default=0,
        help="retry connecting to the database for this long, a line per attempt (default 0)",
    )
    serve.set_defaults(func=cmd_serve)
    migrate = commands.add_parser(
        "migrate", help="upgrade the database schema to this release (or --to REV, also down)"
    )
    migrate.add_argument("--to", metavar="REV", type=text, help="revision to move to, e.g. 0008")
    migrate.add_argument("--wait-for-db", metavar="SECONDS", type=int_between(0, 3600), default=0)
    migrate.set_defaults(func=cmd_migrate)
