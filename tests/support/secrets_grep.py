"""The whole-run secrets grep (issue 15, item 2): no password, code, PIN,
token, secret or link id in any log line of the whole test run.

For the whole session (tests/conftest.py takes these hooks): every secret
the run uses is kept (tests/support/secret_sources.py, at the HTTP boundary
of every httpx client, the browser's requests and the settings given to
server processes), every log line is collected (tests/support/log_lines.py:
the test process's records and the output of every quatrix-mfa process),
and at the end each line is searched for every secret
(tests/support/secret_book.py). A secret found fails the run: its kind, the
test or process that logged it and the line with the secret masked are
printed, and pytest exits with status 1. The log folder is kept then (its
path is printed), else removed.

``QUATRIX_MFA_TEST_SECRETS_GREP=off`` turns it off (to time the suite
without it), ``=keep`` keeps the log folder even when nothing leaked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import log_lines, secret_sources
from tests.support.secret_book import Hit, SecretBook, masked

SWITCH = "QUATRIX_MFA_TEST_SECRETS_GREP"
SHOWN = 20  # leaks printed in full; the rest are counted
STATS_KEY = "logged secrets"  # in the summary line: "3 logged secrets"


@dataclass
class Leak:
    where: str  # the test or process that logged the line
    line: str  # masked
    hits: list[Hit]


@dataclass
class Run:
    """The state of one session's grep."""

    folder: Path
    book: SecretBook = field(default_factory=SecretBook)
    current: str = ""  # the test running now
    handler: log_lines.RunLog | None = None
    undo: list[Any] = field(default_factory=list)
    lines: int = 0
    leaks: list[Leak] = field(default_factory=list)

    def origin(self) -> str:
        return self.current

    def record(self, kind: str, value: str) -> None:
        self.book.add(kind, value, self.current or "(between tests)")

    def saw_environment(self, env: Mapping[str, str]) -> None:
        secret_sources.from_environment(env, self.record)


_run: Run | None = None


def mailed(body: str) -> None:
    """A mail a test read from the outbox: keep the ids of the links in it."""
    if _run is not None:
        secret_sources.from_text(body, _run.record)


def browser_request(request: Any) -> None:
    """Playwright's ``request`` event: keep the secrets a page posts."""
    if _run is not None:
        secret_sources.from_browser_request(request, _run.record)


def _patch_httpx(run: Run) -> None:
    """Every httpx client (TestClient is one) reports what it sends and receives."""
    original = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
        secret_sources.from_request(request, run.record)  # used even if no answer comes
        response = original(self, request, **kw)
        secret_sources.from_answer(response, run.record)
        return response

    httpx.Client.send = send  # type: ignore[method-assign]
    run.undo.append(lambda: setattr(httpx.Client, "send", original))


def pytest_sessionstart(session: pytest.Session) -> None:
    global _run
    if os.environ.get(SWITCH, "").lower() in ("off", "0", "false", "no"):
        return
    run = Run(Path(tempfile.mkdtemp(prefix="quatrix-mfa-test-logs-")))
    run.handler = log_lines.RunLog(run.folder, run.origin)
    log_lines.install_handler(run.handler)
    _patch_httpx(run)
    run.undo.append(log_lines.patch_popen(run.folder, run.origin, run.saw_environment))
    _run = run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if _run is None:
        return (yield)
    _run.current = item.nodeid
    assert _run.handler is not None
    log_lines.install_handler(_run.handler)  # a test may have replaced the root's handlers
    try:
        return (yield)
    finally:
        _run.current = ""


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _run
    run, _run = _run, None
    if run is None:
        return
    for undo in reversed(run.undo):
        undo()
    assert run.handler is not None
    log_lines.remove_handler(run.handler)
    run.leaks = list(search(run))
    session.config.stash[_KEY] = run
    if run.leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.stats.setdefault(STATS_KEY, []).extend(run.leaks)
    elif os.environ.get(SWITCH, "").lower() != "keep":
        shutil.rmtree(run.folder, ignore_errors=True)


def search(run: Run) -> Iterator[Leak]:
    """Every line of the run that holds a secret of the run."""
    for where, line in log_lines.lines(run.folder):
        run.lines += 1
        hits = list(run.book.search(line))
        if hits:
            # A process's command line may hold a secret too (a test's argument).
            where = masked(where, list(run.book.search(where)), width=len(where))
            yield Leak(where, masked(line, hits), hits)


_KEY = pytest.StashKey[Run]()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    run = terminalreporter.config.stash.get(_KEY, None)
    if run is None:
        return
    kinds = ", ".join(f"{n} {kind}" for kind, n in run.book.kinds().items())
    summary = f"{run.lines} log lines searched for {len(run.book)} secrets"
    summary += f" ({kinds})" if kinds else ""
    if not run.leaks:
        terminalreporter.write_line(f"secrets grep: no secret in any log line; {summary}")
        if run.folder.exists():
            terminalreporter.write_line(f"secrets grep: the lines are in {run.folder}")
        return
    terminalreporter.write_sep("=", "secrets in log lines", red=True, bold=True)
    for leak in run.leaks[:SHOWN]:
        kinds_found = ", ".join(sorted({h.secret.kind for h in leak.hits}))
        used = ", ".join(sorted({h.secret.origin for h in leak.hits}))
        terminalreporter.write_line(f"{kinds_found} logged by {leak.where} (used by {used}):")
        terminalreporter.write_line(f"    {leak.line}")
    if len(run.leaks) > SHOWN:
        terminalreporter.write_line(f"... and {len(run.leaks) - SHOWN} more lines")
    terminalreporter.write_line(f"{summary}; the lines are in {run.folder}", red=True)
