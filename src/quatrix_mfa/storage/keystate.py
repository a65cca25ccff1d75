"""The deployment's keys and nodes in the database (migration 0009).

Plain SQL over an engine: used at start-up, by the ``keys`` commands and by
each node's heartbeat, never on a request's path (the active key id is read
here and cached by the key ring).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, insert, select, union, update
from sqlalchemy.exc import IntegrityError

from quatrix_mfa.storage.tables import credentials, key_checks, nodes, outbox, totp_enrollments

# The HMAC key's row in key_checks (AES key ids are k1, k2, ...).
HMAC_ROW = "hmac"


@dataclass(frozen=True)
class KeyCheck:
    key_id: str
    check_value: str
    active: bool


@dataclass(frozen=True)
class Node:
    node_id: str
    key_ids: frozenset[str]
    heartbeat: float
    code_revision: str


class KeyState:
    """Key check values, the active key id and the nodes' heartbeats."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read that takes no write lock: on SQLite a plain BEGIN (the
        engine's default is BEGIN IMMEDIATE), so reading the active key inside
        a writer's transaction, as sealing does, never waits for that writer."""
        with self.engine.connect() as conn:
            conn.info["begin"] = "BEGIN"
            yield conn

    def checks(self) -> dict[str, KeyCheck]:
        with self._reading() as conn:
            rows = conn.execute(select(key_checks)).all()
        return {r.key_id: KeyCheck(r.key_id, r.check_value, bool(r.active)) for r in rows}

    def active_key_id(self) -> str | None:
        with self._reading() as conn:
            found = conn.execute(
                select(key_checks.c.key_id).where(key_checks.c.active.is_(True))
            ).scalar()
        return None if found is None else str(found)

    def register(self, values: dict[str, str], active: str | None, now: float) -> None:
        """Insert check values for key ids not yet known (a known one is never
        replaced: the first writer wins, and the caller checks again after).
        ``active`` is marked active only if no key is active yet."""
        with self.engine.begin() as conn:
            has_active = conn.execute(
                select(func.count()).where(key_checks.c.active.is_(True))
            ).scalar()
            for key_id, value in values.items():
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(key_checks).values(
                                key_id=key_id,
                                check_value=value,
                                active=bool(key_id == active and not has_active),
                                created=now,
                            )
                        )
                except IntegrityError:
                    continue  # another node or command registered it first

    def activate(self, key_id: str) -> None:
        """Make ``key_id`` the one active key, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(update(key_checks).values(active=key_checks.c.key_id == key_id))

    def forget(self, key_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(key_checks).where(
                    key_checks.c.key_id == key_id, key_checks.c.active.is_(False)
                )
            )

    def key_ids_in_use(self) -> set[str]:
        """Every key id some stored secret is sealed under."""
        query = union(
            *(
                select(table.c.key_id).where(table.c.key_id.is_not(None)).distinct()
                for table in (credentials, totp_enrollments, outbox)
            )
        )
        with self._reading() as conn:
            return {str(r[0]) for r in conn.execute(query)}

    def count_under(self, key_id: str, mail_only: bool = False) -> int:
        """Secrets sealed under ``key_id`` (only those in the outbox if ``mail_only``)."""
        total = 0
        with self._reading() as conn:
            for table in (outbox,) if mail_only else (credentials, totp_enrollments, outbox):
                total += int(
                    conn.execute(select(func.count()).where(table.c.key_id == key_id)).scalar_one()
                )
        return total

    def heartbeat(
        self, node_id: str, key_ids: Iterable[str], now: float, code_revision: str
    ) -> None:
        """Record that ``node_id`` is alive and holds ``key_ids``."""
        held = json.dumps(sorted(key_ids))
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(nodes)
                .where(nodes.c.node_id == node_id)
                .values(key_ids=held, heartbeat=now, code_revision=code_revision)
            ).rowcount
            if not changed:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(nodes).values(
                                node_id=node_id,
                                key_ids=held,
                                heartbeat=now,
                                started=now,
                                code_revision=code_revision,
                            )
                        )
                except IntegrityError:  # the same node id from a second worker
                    conn.execute(
                        update(nodes)
                        .where(nodes.c.node_id == node_id)
                        .values(key_ids=held, heartbeat=now)
                    )

    def leave(self, node_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(nodes).where(nodes.c.node_id == node_id))

    def live_nodes(self, now: float, window: float) -> list[Node]:
        """Nodes heard from within ``window`` seconds; older rows are removed."""
        with self.engine.begin() as conn:
            conn.execute(delete(nodes).where(nodes.c.heartbeat < now - 10 * window))
            rows = conn.execute(
                select(nodes).where(nodes.c.heartbeat >= now - window).order_by(nodes.c.node_id)
            ).all()
        return [
            Node(r.node_id, frozenset(json.loads(r.key_ids)), r.heartbeat, r.code_revision)
            for r in rows
        ]
