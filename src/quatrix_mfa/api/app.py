"""``create_app(settings)``: the one place the application is assembled."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from quatrix_mfa import __version__, forwarding, logs, metrics, web
from quatrix_mfa.api import draining, errors
from quatrix_mfa.api.caching import NoStore
from quatrix_mfa.api.hot import HotRoutes, SessionCheck
from quatrix_mfa.api.limits import BodyLimit
from quatrix_mfa.api.observing import METRICS_PATH, Observe, Recorder, metrics_allowed
from quatrix_mfa.api.routes import account, auth, devices, profile, recovery, reset, users
from quatrix_mfa.api.routes import settings as site_settings
from quatrix_mfa.core import maintenance
from quatrix_mfa.core.clock import Clock, SystemClock
from quatrix_mfa.core.context import Core, LinkPolicy, SessionPolicy
from quatrix_mfa.core.crypto import PasswordHasher
from quatrix_mfa.core.throttling import ThrottlePolicy
from quatrix_mfa.keys import FileKeyRing
from quatrix_mfa.mailer import OutboxSender
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage import migrate
from quatrix_mfa.storage.deployment import (
    HEARTBEAT_SECONDS,
    ActiveKey,
    NodeStatus,
    beat,
    default_node_id,
    file_verifier,
)
from quatrix_mfa.storage.keystate import KeyState
from quatrix_mfa.storage.store import SqlStore

API_PREFIX = "/api/1.0"
MAIL_INTERVAL = 1.0
PURGE_INTERVAL = 60.0
CHECKPOINT_INTERVAL = 0.25
MAIL_FLUSH_SECONDS = 5.0
# /readyz gives the database this long (at most QUATRIX_MFA_DB_TIMEOUT_SECONDS).
READY_SECONDS = 2.0
log = logging.getLogger(__name__)


def _store(settings: Settings) -> SqlStore:
    return SqlStore.from_url(
        settings.effective_database_url, settings.db_pool_size, settings.db_timeout_seconds
    )


def build_core(
    settings: Settings, clock: Clock | None = None, store: SqlStore | None = None
) -> Core:
    """The core over the configured database and key file.

    The key file must exist (``init`` makes it, nothing here does:
    :class:`quatrix_mfa.keys.KeyFileError` otherwise). The active key id is the
    database's (``keys activate``), the file's until the database names one."""
    store = store or _store(settings)
    return Core(
        store=store,
        clock=clock or SystemClock(),
        keys=FileKeyRing(
            settings.key_file,
            ActiveKey(KeyState(store.engine)),
            verify=file_verifier(settings.key_file, KeyState(store.engine)),
        ),
        passwords=PasswordHasher(settings.argon2, settings.argon2_threads or None),
        sessions=SessionPolicy(
            idle_seconds=settings.session_idle_seconds, max_seconds=settings.session_max_seconds
        ),
        links=LinkPolicy(
            link=reset.link_builder(settings.public_url),
            email_link=reset.link_builder(settings.public_url, reset.EMAIL_LINK_PATH),
            recovery_link=reset.link_builder(settings.public_url, reset.RECOVERY_LINK_PATH),
            recovery_wait_seconds=float(settings.recovery_wait_seconds),
        ),
        throttle_policy=ThrottlePolicy(
            user_threshold=settings.user_failure_threshold,
            address_threshold=settings.address_failure_threshold,
        ),
        audit_retention_seconds=settings.audit_retention_days * 86400.0,
    )


def sample_gauges(core: Core, store: SqlStore) -> None:
    """The gauges of the metrics, once a round of the background loop: the
    database pool's connections in use, hashes waiting, the outbox's depth."""
    metrics.DB_POOL_IN_USE.set(store.connections_in_use())
    waiting = getattr(core.passwords, "waiting", 0)
    metrics.ARGON2_WAITING.set(waiting if isinstance(waiting, int) else 0)
    with store.transaction(write=False) as tx:
        metrics.OUTBOX_DEPTH.set(tx.outbox.waiting())


async def _background(
    core: Core, sender: OutboxSender | None, store: SqlStore, stopping: asyncio.Event
) -> None:
    """Mail delivery and purging of expired rows, off the request path, until
    ``stopping`` is set: the round under way then ends as it would (a mail
    being sent is marked sent, not left leased for another node's minute)."""
    last_purge = 0.0
    failures = logs.LoopFailures(log, "background round")
    while not stopping.is_set():
        try:
            if sender is not None:
                await run_in_threadpool(sender.deliver_due)
            now = core.clock.now()
            # Every round: a 2FA deadline's sessions end within a minute of it.
            await run_in_threadpool(maintenance.mfa_rollout, core, now)
            if now - last_purge >= PURGE_INTERVAL:
                last_purge = now
                await run_in_threadpool(maintenance.purge, core, now)
            await run_in_threadpool(sample_gauges, core, store)
        except Exception as error:  # a bad round must not end the loop
            failures.failed(error)
        else:
            failures.succeeded()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), MAIL_INTERVAL)


async def _flush(
    background: asyncio.Task[None] | None,
    core: Core,
    sender: OutboxSender | None,
    store: SqlStore,
) -> None:
    """On the way out: the background round under way ends, then what mail is
    due is sent (a reset link asked for just before a restart goes now, not
    when a node is next up) and the gauges are sampled a last time, so the
    metrics' last values are this worker's final ones. Bounded, as SMTP may hang."""
    started = time.monotonic()
    if background is not None:
        try:
            await asyncio.wait_for(background, MAIL_FLUSH_SECONDS)
        except Exception as error:  # TimeoutError cancels it; leases expire: another node sends it
            log.warning("background round at shutdown failed: %s", type(error).__name__)
    left = max(MAIL_FLUSH_SECONDS - (time.monotonic() - started), 0.1)
    try:
        if sender is not None:
            await asyncio.wait_for(run_in_threadpool(sender.deliver_due), left)
        await run_in_threadpool(sample_gauges, core, store)
    except Exception as error:  # leases expire: another node sends it
        log.warning("mail flush at shutdown failed: %s", type(error).__name__)


class Node:
    """This process as a node of the deployment: its heartbeat records the key
    ids it holds (``keys activate`` waits for every live node) and rechecks
    its key file against the database (``/readyz`` says why it is not ready)."""

    def __init__(self, core: Core, store: SqlStore, node_id: str) -> None:
        self.state = KeyState(store.engine)
        self.ring = core.keys
        self.node_id = node_id
        self.status = NodeStatus()
        self.failures = logs.LoopFailures(log, "node heartbeat")

    def beat(self) -> None:
        try:
            beat(
                self.state,
                self.ring,
                self.node_id,
                migrate.head_revision() or "",
                self.status,
                # Wall time, not the core's clock: other processes (keys
                # activate) compare it with theirs.
                time.time(),
            )
        except Exception as error:  # the database away, or not migrated: readyz says so
            self.failures.failed(error)
        else:
            self.failures.succeeded()

    def leave(self) -> None:
        with contextlib.suppress(Exception):
            self.state.leave(self.node_id)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await run_in_threadpool(self.beat)


async def _checkpoints(store: SqlStore) -> None:
    """SQLite's log copied into the database file a few times a second, so no
    request's commit has to (storage/engine.py says why)."""
    failures = logs.LoopFailures(log, "checkpoint")
    while True:
        try:
            await run_in_threadpool(store.checkpoint)
        except Exception as error:  # a failed round must not end the loop
            failures.failed(error)
        else:
            failures.succeeded()
        await asyncio.sleep(CHECKPOINT_INTERVAL)


class _App(FastAPI):
    """FastAPI, with room for a layer in front of its own middleware (the
    server-error, telemetry and body-limit layers it puts outermost)."""

    front: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.front is None else self.front(stack)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    background: bool = True,
    hot_paths: bool = True,
) -> FastAPI:
    """Build the ASGI app for ``settings``; nothing is built at import time.

    ``hot_paths=False`` leaves out ``api/hot.py``: every request goes through
    FastAPI's router, as the tests and benchmarks that compare the two need."""
    store = _store(settings)
    core = build_core(settings, clock, store)
    sender = (
        OutboxSender(core, settings.smtp_url, settings.mail_from) if settings.smtp_url else None
    )

    node = Node(core, store, settings.node_id or default_node_id())
    node.beat()  # refuses a foreign key file before the first request (readyz)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = []
        stopping = asyncio.Event()
        rounds = None
        if background:
            tasks.append(asyncio.create_task(node.run()))
            rounds = asyncio.create_task(_background(core, sender, store, stopping))
            if store.is_sqlite:
                tasks.append(asyncio.create_task(_checkpoints(store)))
        yield
        stopping.set()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if background:
            await _flush(rounds, core, sender, store)
            await run_in_threadpool(node.leave)
        store.dispose()

    app = _App(
        title="quatrix-mfa",
        version=__version__,
        description="Quatrix API 1.0: login, sessions and multi-factor authentication",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry instrumentation looks for configured
        # providers on every request (~10 µs of the session check's CPU,
        # bench/analysis.md); this service's metrics and log lines are its own
        # (api/observing.py), so FastAPI's are off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.core = core
    app.state.trusted_proxies = forwarding.trusted_networks(
        settings.trust_forwarded_for, settings.trusted_proxies
    )
    app.state.public_url = settings.public_url
    app.state.store = store
    app.state.outbox_sender = sender
    app.state.node = node
    for module in (auth, profile, users, site_settings, recovery, devices):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(reset.router, prefix=API_PREFIX)
    app.include_router(account.router, prefix=API_PREFIX)
    web.install(app, core, public_url=settings.public_url)
    _add_health(app, store, node.status, min(READY_SECONDS, settings.db_timeout_seconds))
    if settings.metrics_token and settings.metrics_addr is None:
        _add_metrics(app, settings.metrics_token)
    errors.install(app)
    web.install_error_pages(app)  # after errors.install: a page path's 404 is a page
    if hot_paths:  # innermost: the second factor answered before FastAPI's router
        app.add_middleware(HotRoutes, prefix=API_PREFIX, exception_handlers=app.exception_handlers)
    app.add_middleware(BodyLimit)
    app.add_middleware(NoStore, prefix=API_PREFIX)  # outside BodyLimit: its refusals too
    # Outermost of ours: every answer is counted, logged and carries the request id.
    app.add_middleware(Observe, trusted_proxies=app.state.trusted_proxies, prefix=API_PREFIX)
    if hot_paths:  # in front of everything: the session check (api/hot.py)
        app.front = functools.partial(
            SessionCheck,
            path=f"{API_PREFIX}/profile",
            recorder=Recorder(app.state.trusted_proxies, API_PREFIX),
            exception_handlers=app.exception_handlers,
        )
    return app


# Every method, so that none answers 405 (nor "/metrics/" a redirect) to
# someone without the token: that would tell them the path exists.
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _add_metrics(app: FastAPI, token: str) -> None:
    """``/metrics`` on the main port, for the bearer of ``token``; anyone else
    gets the 404 of a path that does not exist, whatever the method."""

    def metrics_page(request: Request) -> Response:
        if request.url.path != METRICS_PATH or not metrics_allowed(
            request.headers.get("authorization"), token
        ):
            raise StarletteHTTPException(404)
        if request.method not in ("GET", "HEAD"):
            raise StarletteHTTPException(405, headers={"Allow": "GET, HEAD"})
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    for path in (METRICS_PATH, f"{METRICS_PATH}/"):
        app.add_api_route(path, metrics_page, methods=_ANY_METHOD, include_in_schema=False)


def _add_health(app: FastAPI, store: SqlStore, status: NodeStatus, seconds: float) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        if draining.active():  # SIGTERM: the load balancer should stop sending here
            return errors.error_response(503, -1, "Not ready: shutting down")
        try:
            # A short bound of its own: a load balancer's probe gives up
            # after a few seconds, and a late 503 reads as a dead node.
            problem = await store.run_within(
                seconds, functools.partial(migrate.schema_problem, store.engine)
            )
        except Exception:  # any database error, or no answer in time: "not ready"
            problem = "database unreachable"
        problem = problem or status.problem
        if problem:
            return errors.error_response(503, -1, f"Not ready: {problem}")
        return JSONResponse({"status": "ready"})


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (used by ``quatrix-mfa serve``)."""
    settings = Settings.from_env()
    if settings.log_format:  # serve sets it: the worker logs as serve does
        logs.configure(settings.log_format, settings.log_level)
    app = create_app(settings)
    # What is built by now lives as long as the process. Frozen, it is out of
    # the collector's sight: a full collection had scanned all of it, pausing
    # every request in flight for ~50 ms (the p99 of second-factor checks at
    # 16 concurrent fell from ~50 ms to ~25 ms; bench/analysis.md).
    gc.freeze()
    return app
