"""How much of a second-factor check holds SQLite's one writer, and what that
allows a second worker process to gain (Amdahl's law).

    .venv/bin/python bench/writer_share.py [--rounds 4] [--block 500]

Every valid code is spent in a write transaction (the replay guard, the
session's rotation, the audit row: DESIGN.md), and a wrong code is counted in
one. SQLite lets one connection write at a time, and the writers of all
worker processes queue on one lock (``storage/store.WriterQueue``). If a
check holds it for a share ``s`` of its time, N processes can do at most
``1 / (s + (1 - s) / N)`` times the checks of one, however many CPUs they have.

In-process, as ``bench/hotpath.py`` measures (the whole ASGI app with
``api/hot.py``, JSON log lines to /dev/null, one request at a time): the
wall time per request, and the wall time between the outermost take and give
of the writer lock, timed by wrapping ``WriterQueue``'s two methods in this
process only. Served requests cost more outside the lock (uvicorn, the
socket), so the served share is smaller than this; ``bench/run``'s cores
run measures the served ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import hotpath  # noqa: E402 - bench/ is not a package
from workload import wrong_code  # noqa: E402

REPORT = sys.stderr  # stdout takes the request log lines (to /dev/null)


class HeldTime:
    """Wall seconds the outermost holder of a ``WriterQueue`` held it, summed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._since = 0.0

    def install(self) -> None:
        from quatrix_mfa.storage.store import WriterQueue

        take, give = WriterQueue._take, WriterQueue._give

        def timed_take(queue: WriterQueue, blocking: bool) -> bool:
            taken = take(queue, blocking)
            if taken and queue._depth == 1:
                self._since = time.perf_counter()
            return taken

        def timed_give(queue: WriterQueue) -> None:
            if queue._depth == 1:
                self.seconds += time.perf_counter() - self._since
            give(queue)

        WriterQueue._take = timed_take  # type: ignore[method-assign]
        WriterQueue._give = timed_give  # type: ignore[method-assign]


async def _rounds(
    what: str, requests: Iterator[hotpath.Request], rounds: int, block: int, held: HeldTime
) -> None:
    app = hotpath._app(hot=True)
    statuses: list[int] = []
    await hotpath.cpu_per_request(app, requests, 50, statuses)  # warm-up
    shares = []
    for number in range(1, rounds + 1):
        held.seconds = 0.0
        started = time.perf_counter()
        await hotpath.cpu_per_request(app, requests, block, statuses)
        wall = time.perf_counter() - started
        share = held.seconds / wall
        shares.append(share)
        print(
            f"{what:10} round {number}: {wall / block * 1e6:6.0f} µs a request, the writer "
            f"held {held.seconds / block * 1e6:5.0f} µs ({share:.0%})",
            file=REPORT,
        )
    expected = {200} if what == "valid" else {401}
    if set(statuses) != expected:
        raise SystemExit(f"{what}: unexpected answers {sorted(set(statuses))}")
    worst = min(shares)  # the smallest share allows the most
    bound = 1 / (worst + (1 - worst) / 2)
    print(
        f"{what:10} share {min(shares):.0%}-{max(shares):.0%}: two processes do at most "
        f"{bound:.2f}x one",
        file=REPORT,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--block", type=int, default=500)
    args = parser.parse_args()
    per_side = args.rounds * args.block + 50
    rows = hotpath.seeded_rows(2 * per_side, "qmfa-writer-share-")
    hotpath.log_to_devnull("json")
    held = HeldTime()
    held.install()
    valid = hotpath.verify_requests(rows[:per_side])
    asyncio.run(_rounds("valid", valid, args.rounds, args.block, held))
    wrong = hotpath.verify_requests(rows[per_side:], code=wrong_code)
    asyncio.run(_rounds("wrong code", wrong, args.rounds, args.block, held))


if __name__ == "__main__":
    main()
