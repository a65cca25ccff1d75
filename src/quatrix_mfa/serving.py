"""``serve``'s uvicorn server: a graceful stop for rolling restarts (issue 15 item 6).

On SIGTERM (or a first Ctrl-C) a worker

1. starts draining at once: ``/readyz`` answers 503, so a load balancer with
   health checks stops sending here, and every answer carries
   ``Connection: close``, so kept-alive clients and proxies reconnect;
2. keeps serving for ``drain_seconds``;
3. stops accepting: connections the kernel has already queued are accepted
   first and get a moment to send their request, since closing the
   listening socket would reset them with a request already sent (a proxy
   cannot retry a POST that may have arrived); from then on connecting is
   refused, which a proxy retries on another node even for a POST;
4. lets the requests in flight finish, up to ``shutdown_seconds``;
5. runs the application's shutdown (mail still queued is sent).

With ``--workers N`` each worker listens on a socket of its own, all bound to
the port with ``SO_REUSEPORT``: the kernel spreads new connections over them.
On one shared socket, the worker that woke first accepted every connection a
client opened at once, and kept-alive they stayed there (bench/analysis.md).
The supervisor holds the port bound (not listening: it takes no connections),
logs each worker that ended unasked (crashed, killed, hung) and the one that
replaces it, and marks it dead for the metrics (its counters stay counted,
its live gauges go).

A second SIGINT stops at once, as in uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import select
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from prometheus_client import multiprocess as prometheus_multiprocess
from uvicorn.supervisors import multiprocess

from quatrix_mfa import logs, metrics
from quatrix_mfa.api import draining
from quatrix_mfa.api.http_protocol import LimitedHttpToolsProtocol
from quatrix_mfa.settings import Settings

log = logging.getLogger(__name__)

# How long a connection accepted while stopping may take to send its request.
FIRST_REQUEST_GRACE = 1.0


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain period before its graceful shutdown.

    ``announce``: called once the socket listens and the application has
    started (``serve``'s banner: whoever reads it may connect at once)."""

    def __init__(
        self,
        config: uvicorn.Config,
        drain_seconds: float,
        announce: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.drain_ends: float | None = None
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit and self.announce is not None:
            self.announce()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_ends is None and not self.should_exit:
            # A signal handler: only note the time; on_tick acts on it.
            self._captured_signals.append(sig)
            self.drain_ends = time.monotonic() + self.drain_seconds
            draining.start()
            return
        if sig == signal.SIGTERM:
            return  # systemd and uvicorn's parent may both send it: one drain
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_ends is not None and not self.should_exit:
            # Answers already under way but not yet begun close their connection too.
            for connection in list(self.server_state.connections):
                cycle = getattr(connection, "cycle", None)
                if cycle is not None and not cycle.response_started:
                    cycle.keep_alive = False
            if time.monotonic() >= self.drain_ends:
                self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            for listener in server.sockets:
                await _accept_queued(listener)
            server.close()
        for sock in sockets or []:
            sock.close()
        await self._await_first_requests()
        await super().shutdown(sockets)

    async def _await_first_requests(self) -> None:
        """uvicorn closes every connection without a request in progress: wait
        (briefly) for those just accepted to send theirs."""
        deadline = time.monotonic() + FIRST_REQUEST_GRACE
        while time.monotonic() < deadline and any(
            getattr(c, "requests_begun", 1) == 0 for c in self.server_state.connections
        ):
            await asyncio.sleep(0.01)


async def _accept_queued(listener: Any, limit: float = 1.0) -> None:
    """Let the event loop accept what the kernel has queued on ``listener``
    (readable = a connection waiting), for at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and select.select([listener], [], [], 0)[0]:
        await asyncio.sleep(0.001)


def _port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` with ``SO_REUSEPORT``, as every
    worker's listening socket and the supervisor's hold on the port are."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    return sock


class _DrainingProcess(multiprocess.Process):
    """A worker of ``serve --workers N`` running :class:`DrainingServer` on a
    listening socket of its own (``SO_REUSEPORT``, see the module's doc)."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        # In the worker: the supervisor's socket (bound, not listening) is
        # only its hold on the port; this worker listens on its own.
        for held in sockets or []:
            held.close()
        own = _port_socket(self.config.host, self.config.port)
        own.listen(self.config.backlog)
        super().target([own])

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:  # made in the worker, as uvicorn's own
            self._server = DrainingServer(self.config, getattr(self.config, "drain_seconds", 0.0))
        return self._server

    def join(self) -> None:
        super().join()
        # Whichever way it ended (stopped, killed as hung, replaced), its
        # counters and histograms stay in their files and go on being added
        # up; its live gauges (pool, hashes waiting, outbox) are dropped, as
        # prometheus_client's multi-process mode asks of the parent.
        if self.pid is not None and metrics.multiprocess_dir() is not None:
            with contextlib.suppress(OSError):
                prometheus_multiprocess.mark_process_dead(self.pid)  # type: ignore[no-untyped-call]


class _Supervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor of ``serve --workers N``; ``announce`` once every
    worker started serving."""

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket.socket],
        announce: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config, sockets)
        self.announce = announce

    def keep_subprocess_alive(self) -> None:
        before = list(self.processes)
        # None: still running when looked at; uvicorn kills one that stopped answering.
        exited = [process.process.exitcode for process in before]
        super().keep_subprocess_alive()
        for old, code, new in zip(before, exited, self.processes, strict=True):
            if new is not old:
                log.error(
                    "worker %s %s; worker %s replaces it",
                    old.process.pid,
                    _how_it_ended(code),
                    new.process.pid,
                    extra={
                        logs.FIELDS: {"worker_pid": old.process.pid, "new_pid": new.process.pid}
                    },
                )
        # Checked on each tick of the supervisor's loop (not waited for in a
        # loop of its own, which would leave signals unanswered meanwhile):
        # a start slowed down by a busy machine takes as long as it takes.
        if self.announce is None or self.should_exit.is_set():
            return
        if all(process.is_ready(timeout=1) for process in self.processes):
            self.announce()
            self.announce = None

    def handle_term(self) -> None:
        # The supervisor's hold on the port (bound, not listening) goes first:
        # once the workers stop listening, connecting must be refused.
        for sock in self.sockets:
            sock.close()
        super().handle_term()

    handle_int = handle_term


def _how_it_ended(exitcode: int | None) -> str:
    """A worker's end in words, from its exit code as multiprocessing has it."""
    if exitcode is None:
        return "stopped answering and was killed"
    if exitcode < 0:
        try:
            return f"was ended by {signal.Signals(-exitcode).name}"
        except ValueError:  # a real-time signal has no name
            return f"was ended by signal {-exitcode}"
    return f"exited with status {exitcode}"


def config(settings: Settings, host: str, port: int, workers: int, http: Any) -> uvicorn.Config:
    """The uvicorn configuration of ``serve`` with this deployment's time bounds."""
    if http is LimitedHttpToolsProtocol:
        http = functools.partial(
            LimitedHttpToolsProtocol, body_timeout=float(settings.body_timeout_seconds)
        )
    result = uvicorn.Config(
        "quatrix_mfa.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        log_config=None,  # the handlers of logs.configure, not uvicorn's own
        access_log=False,
        proxy_headers=False,
        http=http,
        timeout_keep_alive=settings.keepalive_seconds,
        timeout_graceful_shutdown=settings.shutdown_seconds,
    )
    result.drain_seconds = float(settings.drain_seconds)  # type: ignore[attr-defined]
    return result


def _stop_here(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    http: Any,
    announce: Callable[[], None] | None = None,
) -> bool:
    """Serve until stopped, as ``uvicorn.run`` does, with :class:`DrainingServer`;
    False if a single worker failed to start. ``announce`` is called once the
    port accepts connections and every worker serves."""
    cfg = config(settings, host, port, workers, http)
    if workers > 1:
        sock = _port_socket(host, port)  # a port in use fails here, before any worker
        cfg.port = sock.getsockname()[1]  # port 0: the workers join the one it got
        # uvicorn's supervisor makes its workers by this module-level name.
        multiprocess.Process = _DrainingProcess  # type: ignore[misc]
        try:
            _Supervisor(cfg, [sock], announce).run()
        finally:
            sock.close()
        return True
    server = DrainingServer(cfg, float(settings.drain_seconds), announce)
    # uvicorn raises the signal that stopped it again once it is done: with
    # SIGTERM's default action the process would end there, before serve's
    # clean-up (the metrics folder). As an exception, the clean-up runs.
    signal.signal(signal.SIGTERM, _stop_here)
    with contextlib.suppress(KeyboardInterrupt):  # the re-raised signal after a graceful stop
        server.run()
    return server.started
