"""In-process A/B of two source trees: CPU per request of GET /api/1.0/profile,
of a valid second factor and of a wrong code, each tree in its own process,
taking turns.

    .venv/bin/python bench/ab_inprocess.py BEFORE_SRC [AFTER_SRC] [--rounds 3]

``BEFORE_SRC``: the ``src`` folder of another checkout (``git worktree add
--detach /tmp/before <commit>``); ``AFTER_SRC`` defaults to this one's. Each
turn seeds its own data folder and calls the whole ASGI app in-process, as
``bench/hotpath.py`` does, with JSON log lines to /dev/null; it reports the
fastest of four blocks (this box's speed moves within minutes: the fastest
block is the least disturbed one).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def one_side(requests: int) -> None:
    """The child: measure the tree on ``sys.path`` (PYTHONPATH) and print a line."""
    sys.path.insert(0, str(BENCH))
    import hotpath
    import seed
    from workload import wrong_code

    import quatrix_mfa
    from quatrix_mfa import logs
    from quatrix_mfa.api.app import create_app
    from quatrix_mfa.settings import Settings

    data_dir = Path(tempfile.mkdtemp(prefix="qmfa-ab-"))
    os.environ.update(
        QUATRIX_MFA_DATA_DIR=str(data_dir), QUATRIX_MFA_ADDRESS_FAILURE_THRESHOLD="100000"
    )
    users = 2 * requests + 200
    seed.seed(Settings.from_env(), users, users, data_dir / "users.tsv")
    rows = [line.split("\t") for line in (data_dir / "users.tsv").read_text().splitlines()]
    sys.stdout.flush()
    report = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    logs.configure("json", "info")
    app = create_app(Settings.from_env(), background=False)
    gc.freeze()  # as serve does
    statuses: dict[int, list[int]] = {200: [], 401: []}

    async def run(requests: Any, count: int, expect: int = 200) -> float:
        return await hotpath.cpu_per_request(app, requests, count, statuses[expect])

    async def main() -> tuple[float, float, float]:
        profile = hotpath.profile_requests(rows[:1000])
        await run(profile, 200)
        profiles = [await run(profile, requests // 4) for _ in range(4)]
        verify = hotpath.verify_requests(rows[200:])  # half of the rows after 200
        verifies = [await run(verify, requests // 8) for _ in range(4)]
        wrong = hotpath.verify_requests(rows[200 + requests :], code=wrong_code)
        wrongs = [await run(wrong, requests // 8, 401) for _ in range(4)]
        return min(profiles), min(verifies), min(wrongs)

    profile, verify, wrong = asyncio.run(main())
    for expect, seen in statuses.items():
        if set(seen) != {expect}:
            raise SystemExit(f"unexpected answers: {sorted(set(seen))}, not {expect}")
    where = Path(quatrix_mfa.__file__).parent.parent
    print(
        f"profile {profile * 1e6:6.1f} µs  verify {verify * 1e6:7.1f} µs  "
        f"wrong {wrong * 1e6:7.1f} µs  ({where})",
        file=report,
    )


def main() -> None:
    import config  # bench/, first on the path when run as a script

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config.two_trees(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_side(args.requests)
        return
    for _ in range(args.rounds):
        for name, src in (("before", args.before), ("after", args.after)):
            env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
            cmd = [sys.executable, __file__, args.before, "--child"]
            cmd += ["--requests", str(args.requests)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            print(f"{name:6} {done.stdout.strip()}")


if __name__ == "__main__":
    main()
