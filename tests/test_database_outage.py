"""Issue 15, item 5: the database goes away under load and comes back.

A real ``quatrix-mfa serve`` (two workers) under a light load of reads
(``GET /profile``) and writes (``POST /user/create``, one user and its
mail in one transaction). While the database is away every request gets a
defined answer within a few seconds (a 503 ErrorModel with ``Retry-After``,
never a 500, never a dropped connection), ``/readyz`` says 503, and the
service recovers by itself once the database is back; every write that was
answered 201 is there afterwards, and no user is left without their mail.
PostgreSQL is the test's own (stopped with ``pg_ctl -m fast`` and started
again, or stalled: every process of it frozen with SIGSTOP, then continued);
SQLite's disk is a small tmpfs filled to the last block, then freed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import only_on
from tests.support.load import Answer, Load, serving, sign_in
from tests.support.own_postgres import OwnPostgres
from tests.support.own_postgres import own_postgres as own_postgres  # the fixture
from tests.support.shell import Cli

# "Within a few seconds": the engine's connect timeout is 3 s, the pool's 5 s.
ANSWER_SECONDS = 6.0
RECOVERY_SECONDS = 10.0
# A stalled server: QUATRIX_MFA_DB_TIMEOUT_SECONDS for the test (the default
# is 5), /readyz's own bound (api/app.py), and what a busy box adds to them.
STALL_TIMEOUT = 3
READY_SECONDS = 2
SLACK = 1.5


def assert_defined_answers(answers: list[Answer], within: float = ANSWER_SECONDS) -> None:
    """Every answer is a success or a 503 ErrorModel with Retry-After, in time."""
    dropped = [a for a in answers if a.status == 0]
    assert not dropped, dropped[:3]
    unexpected = [a for a in answers if a.status not in (200, 201, 503)]
    assert not unexpected, unexpected[:3]
    for answer in answers:
        assert answer.seconds < within, answer
        if answer.status == 503:
            assert answer.retry_after is not None and int(answer.retry_after) > 0, answer
            assert '"code":-1' in answer.body.replace(" ", ""), answer


def assert_friendly_page(base: str, token: str, within: float = ANSWER_SECONDS) -> None:
    """A page (not the API) says so in the reader's language, 503 with Retry-After."""
    page = httpx.get(
        f"{base}/account",
        cookies={"qmfa_session": token},
        headers={"Accept-Language": "de"},
        timeout=within,
    )
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert int(page.headers["Retry-After"]) > 0
    assert "Vorübergehend nicht verfügbar" in page.text


def wait_for_recovery(
    base: str, load: Load, back: float, within: float, settle: float = 1.5
) -> float:
    """Reads and writes both succeed again within ``within`` of ``back`` (the
    later one's start is returned), and ``settle`` later /readyz says 200."""
    recovered = max(
        load.wait_for(lambda a, kind=kind: a.kind == kind and a.status in (200, 201), back, within)
        for kind in ("read", "write")
    )
    time.sleep(settle)
    assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    return recovered


def assert_settled(answers: list[Answer], recovered: float) -> None:
    """Once recovered, every answer is a success again."""
    settled = [a for a in answers if a.at >= recovered + 0.5]
    assert settled and all(a.status in (200, 201) for a in settled), settled[:3]


def assert_writes_kept(cli: Cli, answers: list[Answer]) -> None:
    """Each 201 is in the database, and every user made has their mail (the
    user and the mail are one transaction: never one without the other)."""
    created = [a.email for a in answers if a.status == 201]
    assert created
    in_db = cli.scalar(
        "SELECT count(*) FROM users WHERE email IN ("
        + ", ".join(f"'{email}'" for email in created)
        + ")"
    )
    assert in_db == len(created)
    without_mail = cli.scalar(
        "SELECT count(*) FROM users u WHERE u.email LIKE 'load%' AND NOT EXISTS "
        "(SELECT 1 FROM outbox o WHERE o.to_addr = u.email)"
    )
    assert without_mail == 0


def assert_quiet_log(log: Path) -> None:
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "unhandled" not in text, text[-3000:]


def assert_background_loops_logged_once(log: Path, workers: int = 2) -> None:
    """Each background loop of each worker wrote one line when the outage met
    it and one when it was over, not one a round (README: at most one a minute)."""
    messages = [
        json.loads(line)["message"] for line in log.read_text().splitlines() if line[:1] == "{"
    ]
    failed = [m for m in messages if m.startswith("background round failed")]
    assert 1 <= len(failed) <= workers, failed
    recovered = [m for m in messages if m.startswith("background round recovered after")]
    assert 1 <= len(recovered) <= workers, recovered
    assert len([m for m in messages if m.startswith("node heartbeat failed")]) <= workers


@only_on("postgresql", "starts a PostgreSQL of its own: once per suite is enough")
def test_postgresql_stopped_under_load_answers_503_and_recovers_by_itself(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "data", own_postgres.url)
    own_postgres.start()
    cli.init()
    log = tmp_path / "serve.log"
    with serving(cli, log) as base, Load(f"{base}/api/1.0", sign_in(base)).running() as load:
        time.sleep(1.0)
        own_postgres.stop()
        stopped = time.monotonic()
        load.wait_for(lambda a: a.status == 503, stopped, ANSWER_SECONDS)
        ready = httpx.get(f"{base}/readyz", timeout=ANSWER_SECONDS)
        assert ready.status_code == 503
        assert_friendly_page(base, load.token)
        time.sleep(2.0)
        own_postgres.start()
        back = time.monotonic()
        recovered = wait_for_recovery(base, load, back, RECOVERY_SECONDS)
    answers = load.answers
    assert_defined_answers(answers)
    during = [a for a in answers if stopped + 0.5 <= a.at <= back - 0.5]
    assert during and all(a.status == 503 for a in during), during[:3]
    assert_settled(answers, recovered)
    assert_writes_kept(cli, answers)
    assert_quiet_log(log)
    assert_background_loops_logged_once(log)


@only_on("postgresql", "freezes a PostgreSQL of its own: once per suite is enough")
def test_postgresql_stalled_under_load_answers_503_in_time_and_recovers_by_itself(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    """The server there but silent (a hung VM, a partition): its kernel takes
    every connection and byte, nothing answers. Each request still gets its
    503 within QUATRIX_MFA_DB_TIMEOUT_SECONDS, /readyz within its own
    shorter bound, and the service goes on by itself once the server runs."""
    cli = Cli(tmp_path / "data", own_postgres.url)
    own_postgres.start()
    cli.init()
    log = tmp_path / "serve.log"
    # No drain after SIGTERM at the end: five seconds of nothing to see here.
    env = {"DB_TIMEOUT_SECONDS": str(STALL_TIMEOUT), "DRAIN_SECONDS": "0"}
    with (
        serving(cli, log, **env) as base,
        Load(f"{base}/api/1.0", sign_in(base)).running() as load,
    ):
        time.sleep(0.5)
        with own_postgres.stalled():
            stalled = time.monotonic()
            load.wait_for(lambda a: a.status == 503, stalled, STALL_TIMEOUT + SLACK)
            asked = time.monotonic()
            ready = httpx.get(f"{base}/readyz", timeout=STALL_TIMEOUT + SLACK)
            assert ready.status_code == 503
            # Its own bound, shorter than a request's: a probe must not time out.
            assert time.monotonic() - asked < READY_SECONDS + 0.75 < STALL_TIMEOUT
            # By now it has stood still for more than one timeout (two rounds).
            assert_friendly_page(base, load.token, within=STALL_TIMEOUT + SLACK)
        back = time.monotonic()
        recovered = wait_for_recovery(base, load, back, STALL_TIMEOUT, settle=0.5)
    answers = load.answers
    assert_defined_answers(answers, within=STALL_TIMEOUT + SLACK)
    # Answered while the server stood still: every one a 503.
    during = [a for a in answers if stalled + 0.5 <= a.at and a.at + a.seconds < back]
    assert during and all(a.status == 503 for a in during), during[:3]
    assert_settled(answers, recovered)
    # The writes answered 201 just before the stall are there, as every other.
    assert any(a.status == 201 and a.at + a.seconds < stalled for a in answers)
    assert_writes_kept(cli, answers)
    assert_quiet_log(log)


@contextlib.contextmanager
def small_disk(size_mib: int) -> Iterator[Path]:
    """A tmpfs of ``size_mib`` MiB of its own (needs root, as the suite runs)."""
    folder = Path(tempfile.mkdtemp(prefix="qmfa-small-disk-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0755", "tmpfs", str(folder)],
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)
        with contextlib.suppress(OSError):
            folder.rmdir()


def fill(path: Path) -> None:
    """Write ``path`` until the disk holds not one more byte."""
    chunk = b"\0" * (1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while chunk:
            try:
                os.write(fd, chunk)
            except OSError:
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)


@only_on("sqlite", "fills a SQLite file's own disk: once per suite is enough")
def test_sqlite_disk_full_answers_503_and_recovers_without_corruption(tmp_path: Path) -> None:
    with small_disk(32) as disk:
        cli = Cli(disk / "data", None)
        cli.init()
        log = tmp_path / "serve.log"
        filler = disk / "filler"
        with serving(cli, log) as base, Load(f"{base}/api/1.0", sign_in(base)).running() as load:
            time.sleep(0.5)
            fill(filler)
            full = time.monotonic()
            load.wait_for(lambda a: a.kind == "write" and a.status == 503, full, 30)
            filler.unlink()
            freed = time.monotonic()
            recovered = load.wait_for(
                lambda a: a.kind == "write" and a.status == 201, freed, RECOVERY_SECONDS
            )
            time.sleep(1.5)
            assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        answers = load.answers
        assert_defined_answers(answers)
        assert_settled(answers, recovered)
        assert_writes_kept(cli, answers)
        assert cli.scalar("PRAGMA integrity_check") == "ok"
        assert_quiet_log(log)
