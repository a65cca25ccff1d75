"""A background loop's failures are logged without flooding the log: the
first at once, then at most one line a minute counting the rest, and one
line when a round works again (README, "When the database goes away")."""

from __future__ import annotations

import logging

import pytest

from quatrix_mfa.logs import LoopFailures

LOGGER = "quatrix_mfa.test_loop"


class Seconds:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_a_loop_failing_every_second_writes_one_line_a_minute_and_one_when_it_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = Seconds()
    failures = LoopFailures(logging.getLogger(LOGGER), "background round", clock=clock)
    for _ in range(150):  # two and a half minutes of a round a second, all failing
        failures.failed(ConnectionRefusedError("secret detail"))
        clock.now += 1.0
    failures.succeeded()
    failures.succeeded()  # a second good round says nothing more
    assert lines(caplog) == [
        "background round failed: ConnectionRefusedError",
        "background round failed: ConnectionRefusedError (59 more since the last line)",
        "background round failed: ConnectionRefusedError (59 more since the last line)",
        "background round recovered after 150 failures",
    ]
    assert all("secret detail" not in line for line in lines(caplog))


def test_a_new_outage_after_a_recovery_is_logged_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = Seconds()
    failures = LoopFailures(logging.getLogger(LOGGER), "node heartbeat", clock=clock)
    failures.failed(TimeoutError())
    clock.now += 5.0
    failures.succeeded()
    clock.now += 5.0
    failures.failed(OSError())
    assert lines(caplog) == [
        "node heartbeat failed: TimeoutError",
        "node heartbeat recovered after 1 failures",
        "node heartbeat failed: OSError",
    ]
