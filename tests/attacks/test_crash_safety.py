"""Attack: ``kill -9`` the server in the middle of factor changes and logins.

A real ``quatrix-mfa serve`` process (node A of a two-node cluster on one
database) gets, all at once: users confirming 2FA (``POST /profile/set-mfa``),
admin bulk calls (``/user/reset-mfa``, ``/user/delete``, ``/user/set-mfa``
PIN, several ids each) and login bursts (password logins; 2FA logins with a
TOTP code, then recovery codes). At a random moment it is SIGKILLed, then
restarted on the same database; the loop repeats with fresh users. The
moments come from ``random.Random(SEED)``, a fixed seed (printed), so every
run draws the same delays; only the machine's own timing varies.

"The state the API promised" (DESIGN.md, "MFA endpoints" and "Sessions"),
checked in the database (read-only) and over the API after the restart:

* set-mfa 2FA is all or nothing. Old: 2FA off, no secret, no recovery codes,
  the pending secret, the old session live, login without a code. New: 2FA on,
  the secret active with the confirming code's step spent, ten unused
  recovery codes, no pending secret, the old session closed, one session (the
  fresh one) left, and a login needs a code. Answered 200: new, and the
  returned session and recovery codes work.
* An admin bulk call is all or nothing for all its ids together (answered:
  new). reset-mfa new: 2FA on, no secret, no codes, no session, login asks to
  enroll (Mfa-Code 3). delete new: the users and all their rows are gone.
  set-mfa PIN new: PIN set and forced, no session, login asks for the PIN.
* Every session a login handed out is live; every code that was accepted
  (answered 200, or committed unanswered) is spent: refused again, 401 code 11.
* For every user at all times: a secret implies 2FA on; a secret comes with
  exactly ten recovery codes and no secret with none; a forced PIN is set.

A crash that left a secret without codes, codes without a secret, half of a
bulk call, or a code accepted twice would break one of these.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import func, select

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.factors import recovery, totp
from quatrix_mfa.storage.store import SqlTransaction
from quatrix_mfa.storage.tables import recovery_codes, sessions
from tests.conftest import ADMIN_EMAIL, basic, error
from tests.multinode_support import (
    PASSWORD,
    Cluster,
    client,
    cluster_fixtures,
    login_with_code,
    next_code,
)
from tests.servers import GENEROUS_ENV

SEED = 18_2026  # random.Random(SEED) draws every send delay and kill moment
LOOPS = 5
SLOW_LOOPS = 15
SPREAD = 0.4  # factor changes are sent within this many seconds of the start
KILL_WITHIN = 0.15  # the kill comes this long at most after the first one is answered
BATCH = 3  # ids per admin bulk call
PIN = "4321"
Outcome = httpx.Response | httpx.TransportError


@dataclass(frozen=True)
class Factors:
    """What the database holds for one user."""

    twofa: bool
    secret: bool
    codes: int  # recovery code rows, used or not
    codes_left: int
    enrolling: bool  # a pending secret
    pin: bool
    pin_forced: bool
    sessions: int
    last_step: int | None = field(default=None, compare=False)


def stored(core: Core, email: str) -> Factors | None:
    with core.store.transaction(write=False) as tx:
        user = tx.users.by_email(email)
        if user is None:
            return None
        conn = cast(SqlTransaction, tx).conn
        secrets = tx.credentials.of_user(user.id, "totp")
        secret = secrets[-1] if secrets else None

        def count(table: Any) -> int:
            query = select(func.count()).where(table.c.user_id == user.id)
            return int(conn.execute(query).scalar_one())

        return Factors(
            twofa=user.twofa_active,
            secret=secret is not None,
            codes=count(recovery_codes),
            codes_left=tx.credentials.recovery_codes_left(user.id),
            enrolling=tx.credentials.enrollment(user.id) is not None,
            pin=user.pin_active,
            pin_forced=user.pin_forced,
            sessions=count(sessions),
            last_step=secret.last_step if secret else None,
        )


PLAIN = Factors(False, False, 0, 0, False, False, False, 1)
ENROLLING = Factors(False, False, 0, 0, True, False, False, 1)
ENROLLED = Factors(True, True, recovery.COUNT, recovery.COUNT, False, False, False, 1)
RESET = Factors(True, False, 0, 0, False, False, False, 0)
PIN_SET = Factors(False, False, 0, 0, False, True, True, 0)


@dataclass
class Enrolling:
    """A user confirming 2FA during the burst."""

    email: str
    old_token: str
    secret: bytes
    code: str = ""
    sent_at: float = 0.0
    outcome: Outcome | None = None


@dataclass
class Bulk:
    """One admin bulk call over several users: (email, their session) each."""

    path: str
    body: dict[str, Any]
    users: list[tuple[str, str]]
    before: Factors
    after: Factors | None  # None: the users are gone
    outcome: Outcome | None = None


@dataclass
class Burst:
    enrolling: list[Enrolling]
    bulks: list[Bulk]
    plain: list[str]  # emails logging in with the password only
    with_2fa: dict[str, tuple[bytes, list[str]]]  # email -> (secret, recovery codes)
    start: threading.Barrier = field(default_factory=lambda: threading.Barrier(1))
    logins: list[tuple[str, str]] = field(default_factory=list)  # (email, full token)
    accepted: list[tuple[str, str, str]] = field(default_factory=list)  # (email, code, token)
    attempted: list[tuple[str, str]] = field(default_factory=list)  # (email, code) sent


cluster = cluster_fixtures("crash", GENEROUS_ENV)[0]  # restarted by each loop itself


def prepare(nodes: Cluster, loop: int) -> Burst:
    """Fresh users for one loop, every one with a live session."""
    enrolling = []
    for _ in range(4):
        email = nodes.create_user(f"enroll{loop}")[1]
        token = nodes.full_session(nodes.a, email)
        enrolling.append(Enrolling(email, token, nodes.generate(nodes.a, token)))
    bulks = []
    for path, body, before, after in (
        ("/user/reset-mfa", {"auth_type": "2FA"}, ENROLLED, RESET),
        ("/user/delete", {}, PLAIN, None),
        ("/user/set-mfa", {"auth_type": "PIN", "code": PIN}, PLAIN, PIN_SET),
    ):
        for _ in range(2):
            users, ids = [], []
            for _ in range(BATCH):
                user_id, email = nodes.create_user(f"bulk{loop}")
                if before is ENROLLED:
                    token = nodes.enroll(email)[1]
                else:
                    token = nodes.full_session(nodes.a, email)
                users.append((email, token))
                ids.append(user_id)
            bulks.append(Bulk(path, {"ids": ids, **body}, users, before, after))
    plain = [nodes.create_user(f"plain{loop}")[1] for _ in range(2)]
    with_2fa = {}
    for _ in range(2):
        email = nodes.create_user(f"login{loop}")[1]
        secret, _, codes = nodes.enroll(email)
        with_2fa[email] = (secret, codes)
    return Burst(enrolling, bulks, plain, with_2fa)


def connect_and_wait(http: httpx.Client, nodes: Cluster, burst: Burst) -> None:
    """Open the connection to node A, then wait until every thread is ready."""
    assert http.get(f"{nodes.a.root}/healthz").status_code == 200
    burst.start.wait(60)


def send(delay: float, call: Callable[[], Outcome]) -> Outcome:
    time.sleep(delay)
    try:
        return call()
    except httpx.TransportError as exc:
        return exc


def confirm(nodes: Cluster, burst: Burst, user: Enrolling, delay: float) -> None:
    with client() as http:
        connect_and_wait(http, nodes, burst)

        def call() -> Outcome:
            user.sent_at = time.time()
            user.code = totp.code_at(user.secret, user.sent_at)
            body = {"auth_type": "2FA", "code": user.code}
            headers = {"X-Auth-Token": user.old_token}
            return http.post(f"{nodes.a.api}/profile/set-mfa", headers=headers, json=body)

        user.outcome = send(delay, call)


def admin_call(nodes: Cluster, burst: Burst, bulk: Bulk, delay: float) -> None:
    with client() as http:
        connect_and_wait(http, nodes, burst)
        headers = {"X-Auth-Token": nodes.admin_token}
        url = f"{nodes.a.api}{bulk.path}"
        bulk.outcome = send(
            delay, functools.partial(http.post, url, headers=headers, json=bulk.body)
        )


def keep_logging_in(nodes: Cluster, burst: Burst, email: str) -> None:
    auth = {"Authorization": basic(email, PASSWORD)}
    with client() as http:
        connect_and_wait(http, nodes, burst)
        while True:
            try:
                response = http.get(f"{nodes.a.api}/session/login", headers=auth)
            except httpx.TransportError:
                return
            assert response.status_code == 200, response.text
            burst.logins.append((email, response.json()["session_id"]))


def keep_using_codes(nodes: Cluster, burst: Burst, email: str) -> None:
    """Log in with a second factor: a TOTP code first, then the recovery codes."""
    secret, codes = burst.with_2fa[email]
    with client() as http:
        connect_and_wait(http, nodes, burst)
        for i in range(len(codes) + 1):
            code = next_code(secret) if i == 0 else codes[i - 1]
            try:
                finished = login_with_code(http, nodes.a.api, email, code, burst.attempted)
            except httpx.TransportError:
                return
            assert finished.status_code == 200, finished.text
            burst.accepted.append((email, code, finished.json()["session_id"]))


def answered(outcomes: list[Outcome | None]) -> int:
    return sum(isinstance(outcome, httpx.Response) for outcome in outcomes)


def factor_outcomes(burst: Burst) -> list[Outcome | None]:
    return [u.outcome for u in burst.enrolling] + [b.outcome for b in burst.bulks]


def run_burst(nodes: Cluster, burst: Burst, rng: random.Random) -> None:
    """Fire everything at node A; once a factor change is answered, SIGKILL A at a
    random moment: some changes are done, some in flight, some not yet sent."""
    tasks: list[Callable[[], None]] = []
    tasks += [
        functools.partial(confirm, nodes, burst, u, rng.uniform(0, SPREAD)) for u in burst.enrolling
    ]
    tasks += [
        functools.partial(admin_call, nodes, burst, b, rng.uniform(0, SPREAD)) for b in burst.bulks
    ]
    tasks += [functools.partial(keep_logging_in, nodes, burst, e) for e in burst.plain]
    tasks += [functools.partial(keep_using_codes, nodes, burst, e) for e in burst.with_2fa]
    burst.start = threading.Barrier(len(tasks) + 1)
    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        futures = [pool.submit(task) for task in tasks]
        try:
            burst.start.wait(60)
            deadline = time.monotonic() + 30
            while not answered(factor_outcomes(burst)) and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, KILL_WITHIN))
            nodes.a.crash()
        finally:
            burst.start.abort()  # (only if a thread never got ready)
            nodes.a.stop()
            for future in futures:
                future.result(timeout=60)


def assert_code_spent(nodes: Cluster, email: str, code: str) -> None:
    pending = nodes.login(nodes.a, email)
    assert pending.status_code == 207 and pending.headers["Mfa-Code"] == "1", pending.text
    body = {"auth_type": "2FA", "code": code}
    error(nodes.post(nodes.a, "/session/login", body, pending.json()["session_id"]), 401, 11)


def check_enrolling(nodes: Cluster, user: Enrolling) -> None:
    """set-mfa: old or new, never half; new if it was answered."""
    state = stored(nodes.core, user.email)
    old_session = nodes.get(nodes.a, "/profile", user.old_token)
    outcome = user.outcome
    if isinstance(outcome, httpx.Response):
        assert outcome.status_code == 200, outcome.text
    if isinstance(outcome, httpx.Response) or state != ENROLLING:
        assert state is not None and state == ENROLLED, state
        # The confirming code's step is the last accepted one: spent.
        assert state.last_step == totp.time_step(user.sent_at), (state, user.sent_at)
        error(old_session, 401, 1)
        assert_code_spent(nodes, user.email, user.code)
    else:
        assert old_session.status_code == 200, old_session.text
        assert nodes.login(nodes.a, user.email).status_code == 200
    if isinstance(outcome, httpx.Response):
        data = outcome.json()
        assert nodes.get(nodes.a, "/profile", data["session_ids"]).status_code == 200
        pending = nodes.login(nodes.a, user.email).json()["session_id"]
        body = {"auth_type": "2FA", "code": data["recovery_codes"][0]}
        assert nodes.post(nodes.a, "/session/login", body, pending).status_code == 200


def check_bulk(nodes: Cluster, bulk: Bulk) -> None:
    """An admin bulk call: all its users old, or all new; new if it was answered."""
    states = [stored(nodes.core, email) for email, _ in bulk.users]
    outcome = bulk.outcome
    if isinstance(outcome, httpx.Response):
        assert outcome.status_code in (200, 202), outcome.text
    done = isinstance(outcome, httpx.Response) or states[0] != bulk.before
    assert states == [bulk.after if done else bulk.before] * len(states), (bulk.path, states)
    for email, token in bulk.users:
        session = nodes.get(nodes.a, "/profile", token)
        login = nodes.login(nodes.a, email)
        if not done:
            assert session.status_code == 200, session.text
            assert login.status_code == (207 if bulk.before is ENROLLED else 200), login.text
        elif bulk.after is None:
            error(session, 401, 1)
            error(login, 401, 1)
        else:
            error(session, 401, 1)
            assert login.status_code == 207, login.text
            assert login.headers["Mfa-Code"] == ("3" if bulk.after is RESET else "2")


def check_logins(nodes: Cluster, burst: Burst) -> None:
    """Every session handed out is live; every accepted code is spent."""
    latest = [[t for e, t in burst.logins if e == email][-10:] for email in burst.plain]
    for token in [t for ts in latest for t in ts] + [t for _, _, t in burst.accepted]:
        assert nodes.get(nodes.a, "/profile", token).status_code == 200
    for email, (secret, codes) in burst.with_2fa.items():
        accepted = [code for e, code, _ in burst.accepted if e == email]
        unanswered = sum(1 for e, _ in burst.attempted if e == email) - len(accepted)
        state = stored(nodes.core, email)
        assert state is not None and state.codes == recovery.COUNT
        used_recovery = len([c for c in accepted if c in codes])
        left = recovery.COUNT - used_recovery
        assert left - unanswered <= state.codes_left <= left, (state, accepted, unanswered)
        for code in accepted:
            assert_code_spent(nodes, email, code)


def check_invariants(nodes: Cluster) -> None:
    """Whatever happened to them, no user's factors are half set."""
    with nodes.core.store.transaction(write=False) as tx:
        admin = tx.users.by_email(ADMIN_EMAIL)
        assert admin is not None
        emails = [u.email for u in tx.users.in_account(admin.account_id)]
    for email in emails:
        state = stored(nodes.core, email)
        assert state is not None
        assert not state.secret or state.twofa, (email, state)
        assert state.codes == (recovery.COUNT if state.secret else 0), (email, state)
        assert state.pin or not state.pin_forced, (email, state)


def crash_loops(nodes: Cluster, loops: int, seed: int = SEED) -> None:
    print(f"crash safety: random.Random({seed})")
    rng = random.Random(seed)
    done, cut = 0, 0
    for loop in range(loops):
        nodes.ensure_running()
        burst = prepare(nodes, loop)
        run_burst(nodes, burst, rng)
        nodes.ensure_running()  # restart A on the same database
        for user in burst.enrolling:
            check_enrolling(nodes, user)
        for bulk in burst.bulks:
            check_bulk(nodes, bulk)
        check_logins(nodes, burst)
        check_invariants(nodes)
        outcomes = factor_outcomes(burst)
        done += answered(outcomes)
        cut += len(outcomes) - answered(outcomes)
    # The kills landed mid-burst: some factor changes were answered, others cut.
    assert done and cut, (done, cut, f"seed {seed}")


def test_kill_9_mid_burst_leaves_factors_old_or_new_and_codes_spent(cluster: Cluster) -> None:
    crash_loops(cluster, LOOPS)


@pytest.mark.slow
def test_many_kill_9_loops_leave_factors_old_or_new_and_codes_spent(cluster: Cluster) -> None:
    crash_loops(cluster, SLOW_LOOPS)
