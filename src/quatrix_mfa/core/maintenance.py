"""Background purging of rows that no longer mean anything.

Each purge deletes at most ``BATCH`` rows per transaction, so a large
backlog never holds a long lock on the tables that requests use.
"""

from __future__ import annotations

from collections.abc import Callable

from quatrix_mfa.core import rollout
from quatrix_mfa.core.context import Core
from quatrix_mfa.core.ports import Transaction

BATCH = 1000
SENT_MAIL_KEPT = 7 * 24 * 3600.0
# A failure counter untouched for a day (and not blocking) is forgotten.
THROTTLE_KEPT = 24 * 3600.0


def purge(core: Core, now: float) -> dict[str, int]:
    """Delete expired sessions, enrollments and reset links, idle throttle
    counters, old delivered mail and audit rows past their retention; returns
    how many rows of each."""
    jobs: dict[str, Callable[[Transaction], int]] = {
        "enrollments": lambda tx: tx.credentials.purge_enrollments(now, BATCH),
        "resets": lambda tx: tx.resets.purge(now, BATCH),
        "devices": lambda tx: tx.devices.purge_expired(now, BATCH),
        "throttle": lambda tx: tx.throttle.purge_idle(now - THROTTLE_KEPT, now, BATCH),
        "outbox": lambda tx: tx.outbox.purge_sent(now - SENT_MAIL_KEPT, BATCH),
        "audit": lambda tx: tx.audit.purge(now - core.audit_retention_seconds, BATCH),
    }
    purged = {"sessions": _purge_sessions(core, now), **dict.fromkeys(jobs, 0)}
    for name, job in jobs.items():
        while True:
            with core.store.transaction() as tx:
                count = job(tx)
            purged[name] += count
            if count < BATCH:
                break
    return purged


def _purge_sessions(core: Core, now: float) -> int:
    """Expired sessions, found in a read and deleted by key in a short write.

    Found by index since migration 0010; before, finding them read every
    session, and inside a write transaction that scan held SQLite's one
    writer, every login and code check, for as long as it took (seconds a
    minute at 1,000,000 users). A read costs no writer, however it is made.
    """
    idle = core.sessions.idle_seconds
    purged = 0
    while True:
        with core.store.transaction(write=False) as tx:
            found = tx.sessions.expired(now, idle, BATCH)
        if found:
            with core.store.transaction() as tx:
                purged += tx.sessions.delete_expired(found, now, idle)
        if len(found) < BATCH:
            return purged


def mfa_rollout(core: Core, now: float) -> dict[str, int]:
    """The 2FA deadlines' due work (reminder mails, ending the sessions of
    users past a deadline without 2FA), each step claimed by one node:
    see :func:`quatrix_mfa.core.rollout.advance`. The background runs it
    every round, so sessions end within a minute of a deadline."""
    return rollout.advance(core, now)
