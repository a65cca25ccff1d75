"""The audit trail: append-only rows, one per security-relevant event."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Connection, insert, or_, select

from quatrix_mfa import observe
from quatrix_mfa.core.model import AuditEvent
from quatrix_mfa.core.ports import AuditQuery
from quatrix_mfa.storage.prepared import Prepared
from quatrix_mfa.storage.rows import RecordReader, delete_some
from quatrix_mfa.storage.tables import audit_log

# A fresh dict: the caller owns what it is given.
_EVENT = RecordReader(AuditEvent, audit_log, convert={"detail": dict})
# Most requests append a row: built once, run on the driver's cursor.
_ADD_AUDIT = Prepared(insert(audit_log))


class SqlAuditRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # This transaction's rows: logged and counted once it commits (store.py).
        self.appended: list[AuditEvent] = []

    def append(self, event: AuditEvent) -> None:
        info = observe.current()
        if info is not None:
            # The request's id ties the row to its log line (issue 15, item 2).
            event = replace(event, detail={**event.detail, "request_id": info.request_id})
        self.appended.append(event)
        _ADD_AUDIT.rowcount(
            self.conn,
            {
                "at": event.at,
                "event": event.event,
                "outcome": event.outcome,
                "actor_id": event.actor_id,
                "target_id": event.target_id,
                "account_id": event.account_id,
                "client_addr": event.client_addr,
                "detail": event.detail,
            },
        )

    def find(
        self, account_id: str, query: AuditQuery, before: int | None, limit: int
    ) -> list[AuditEvent]:
        # ix_audit_log_account_id_id: the account's rows newest first, from ``before`` on.
        found = select(audit_log).where(audit_log.c.account_id == account_id)
        if before is not None:
            found = found.where(audit_log.c.id < before)
        if query.user_id is not None:
            found = found.where(
                or_(audit_log.c.actor_id == query.user_id, audit_log.c.target_id == query.user_id)
            )
        if query.event is not None:
            found = found.where(audit_log.c.event == query.event)
        if query.outcome is not None:
            found = found.where(audit_log.c.outcome == query.outcome)
        if query.since is not None:
            found = found.where(audit_log.c.at >= query.since)
        if query.until is not None:
            found = found.where(audit_log.c.at < query.until)
        found = found.order_by(audit_log.c.id.desc()).limit(limit)
        return [_EVENT(r) for r in self.conn.execute(found)]

    def list(self, target_id: str | None = None, limit: int = 1000) -> list[AuditEvent]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if target_id is not None:
            query = query.where(
                or_(audit_log.c.target_id == target_id, audit_log.c.actor_id == target_id)
            )
        return [_EVENT(r) for r in reversed(list(self.conn.execute(query)))]

    def purge(self, before: float, limit: int) -> int:
        # ix_audit_log_at finds the old rows without reading the rest.
        return delete_some(self.conn, audit_log, audit_log.c.id, audit_log.c.at < before, limit)
