"""Append-only audit trail: one row per security event (DESIGN.md, "Audit and mail").

Rows carry who, whom, what, outcome and from where; never a secret or a code.
"""

# ruff: noqa: S105 - event names, not passwords

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quatrix_mfa.core.model import AuditEvent
from quatrix_mfa.core.ports import Transaction

LOGIN_PASSWORD = "login.password"
LOGIN_FACTOR = "login.second_factor"
LOGIN_ADDRESS = "login.address_denied"
THROTTLED = "login.throttled"
FACTOR_SET = "factor.set"
FACTOR_REMOVED = "factor.removed"
FACTOR_RESET = "factor.reset"
FACTOR_ENROLL_STARTED = "factor.enroll_started"
SESSION_CLOSED = "session.closed"
PASSWORD_CHANGED = "password.changed"
REAUTHENTICATED = "session.reauthenticated"
RECOVERY_CODES_REPLACED = "factor.recovery_codes_replaced"
PASSWORD_RESET_REQUESTED = "password.reset_requested"
PASSWORD_RESET = "password.reset"
USER_CREATED = "admin.user_created"
USER_EDITED = "admin.user_edited"
USER_DELETED = "admin.user_deleted"
EMAIL_CHANGE_REQUESTED = "email.change_requested"
EMAIL_CHANGED = "email.changed"
SETTINGS_CHANGED = "admin.settings_changed"
MFA_REMINDED = "mfa.reminders_sent"
MFA_ENFORCED = "mfa.deadline_enforced"
RECOVERY_STARTED = "recovery.started"
RECOVERY_CANCELLED = "recovery.cancelled"
RECOVERY_APPROVED = "recovery.approved"
RECOVERY_COMPLETED = "recovery.completed"
# Trusted devices (core/devices.py).
TRUST_GIVEN = "device.trusted"
TRUST_USED = "device.trust_used"
TRUST_REFUSED = "device.trust_refused"
TRUST_REVOKED = "device.trust_revoked"
# A stored secret under a key this node lacks (crypto.KeyUnavailable).
KEY_UNAVAILABLE = "keys.unavailable"
# Break-glass from the server's shell (core/breakglass.py); its other changes
# are recorded as the administrators' are (factor.reset, admin.user_edited).
USER_UNLOCKED = "admin.user_unlocked"
PASSWORD_LINK_ISSUED = "password.link_issued"

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"


def record(
    tx: Transaction,
    now: float,
    event: str,
    outcome: str,
    *,
    actor: str | None = None,
    target: str | None = None,
    account: str | None = None,
    addr: str | None = None,
    **detail: Any,
) -> None:
    tx.audit.append(
        AuditEvent(
            at=now,
            event=event,
            outcome=outcome,
            actor_id=actor,
            target_id=target,
            account_id=account,
            client_addr=addr,
            detail=detail,
        )
    )


@dataclass(frozen=True)
class Actor:
    """Who acts, in which account, from where: every row they cause carries all three."""

    user_id: str | None = None
    account_id: str | None = None
    addr: str | None = None

    def record(
        self,
        tx: Transaction,
        now: float,
        event: str,
        outcome: str = SUCCESS,
        *,
        target: str | None = None,
        **detail: Any,
    ) -> None:
        record(
            tx,
            now,
            event,
            outcome,
            actor=self.user_id,
            target=target,
            account=self.account_id,
            addr=self.addr,
            **detail,
        )
