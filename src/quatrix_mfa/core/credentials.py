"""What a change of a user's credentials does, in one place.

A password set or reset, a factor set, reset or forced, a user disabled, 2FA
forced by the account: each calls :func:`credentials_changed`, which bumps
the user's credential epoch, closes their sessions, revokes their trusted
devices and tells them by mail.

The epoch is what makes the closing complete. Every session stores the epoch
it was made under, and the one statement that reads a session for a request
refuses one whose epoch is not its user's (storage: ``get_with_owner``). So a
session opened by a request that was already past its checks when the change
committed (a slow argon2 hash in flight) is dead on arrival, on every node;
and a slow write re-checks one number before it commits (:func:`still_current`).
"""

from __future__ import annotations

from quatrix_mfa.core import audit, mail
from quatrix_mfa.core.errors import NotAuthenticated
from quatrix_mfa.core.model import RecoveryState, User
from quatrix_mfa.core.ports import Transaction


def credentials_changed(
    tx: Transaction,
    user: User,
    reason: str,
    now: float,
    *,
    keep: str | None = None,
    notice: tuple[str, str] | None = None,
    addr: str | None = None,
) -> int:
    """Bump ``user``'s credential epoch (``user`` is updated to it), close every
    session of theirs but ``keep`` (which moves to the new epoch), audit the
    closing with ``reason`` and, with ``notice`` = (what, change), mail the user
    that their ``what`` was ``change`` (OWASP ASVS 4.0.3 2.2.3, 2.5.5), from
    the client address ``addr``.
    Returns the new epoch."""
    user.credential_epoch = tx.users.bump_epoch(user.id)
    tx.sessions.close_for_users([user.id], keep=keep)
    # Trusted devices were given under the old epoch, so none counts any more
    # (core/devices.py); deleting them also takes them off the user's list.
    if tx.devices.delete_for_users([user.id]):
        audit.record(
            tx,
            now,
            audit.TRUST_REVOKED,
            reason,
            target=user.id,
            account=user.account_id,
            devices="all",
        )
    if keep is not None:
        tx.sessions.restamp(keep, user.credential_epoch)
    audit.record(tx, now, audit.SESSION_CLOSED, reason, target=user.id, account=user.account_id)
    _end_recovery(tx, user, now, addr)
    if notice is not None:
        what, change = notice
        mail.credential_changed(tx, user.email, what, change, now, addr)
    return user.credential_epoch


def _end_recovery(tx: Transaction, user: User, now: float, addr: str | None) -> None:
    """Any change of credentials ends the user's open lost-device recovery:
    whoever set a factor, enrolled again, reset a password or had an
    administrator reset 2FA has dealt with the loss, and a recovery left open
    would later remove the factors they have just set (a completed recovery
    is closed before its own change, so it is not found here)."""
    found = tx.recoveries.open_for_user(user.id)
    if found is None or not tx.recoveries.close(found.id_hash, RecoveryState.CANCELLED, now):
        return
    how = "by a change of your password or second factors"
    mail.security_notice(tx, user.email, "recovery_cancelled", now, addr, how=how)
    audit.Actor(None, user.account_id, addr).record(
        tx, now, audit.RECOVERY_CANCELLED, target=user.id, how=how
    )


def still_current(tx: Transaction, user_id: str, epoch: int, token_hash: str | None) -> User:
    """For a write that follows slow work (an argon2 hash): in its own
    transaction, with the user row locked, the user is still active, their
    credentials are the ones the slow work checked (``epoch`` unchanged) and
    the session it acts for (``token_hash``) is still open; else 401 and the
    write does not happen. Returns the user as now stored."""
    fresh = tx.users.get(user_id)  # locks the row on PostgreSQL
    if fresh is None or not fresh.is_active or fresh.credential_epoch != epoch:
        raise NotAuthenticated("Your credentials changed meanwhile: sign in again")
    if token_hash is not None and tx.sessions.get(token_hash) is None:
        raise NotAuthenticated("The session was closed meanwhile")
    return fresh
