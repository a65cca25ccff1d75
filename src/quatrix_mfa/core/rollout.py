"""Staged 2FA: forcing 2FA with a grace period (issue 12, item 1).

An administrator who forces 2FA with ``mfa_grace_days`` > 0 gives the
account a deadline (``Account.mfa_enroll_by``). Until then a user without
2FA signs in as before, each login answer names the deadline, and their
sessions stay open; from the deadline on they must enroll at sign-in
(policy.login_steps) and their full sessions end: at once on every node,
because each request checks the deadline (sessions.settle_session), and for
good by :func:`advance`, which bumps their credential epochs.

:func:`advance` runs in the background on every node. Each step of a
deadline (the reminder when it starts, 7 days and 1 day before, the
enforcement) is claimed by one conditional UPDATE of the account's
``mfa_stage`` (storage), so of many nodes exactly one mails or closes.
"""

from __future__ import annotations

from quatrix_mfa.core import audit, mail
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.credentials import credentials_changed
from quatrix_mfa.core.model import TOTP_KIND, Account
from quatrix_mfa.core.ports import Transaction

DAY = 86400.0
MAX_GRACE_DAYS = 90
# The stages of a deadline's rollout, in order (Account.mfa_stage).
NOTHING_SENT, STARTED, WEEK_LEFT, DAY_LEFT, ENFORCED = range(5)


def due_stage(deadline: float, now: float) -> int:
    """How far the rollout of ``deadline`` should have gone at ``now``."""
    left = deadline - now
    if left <= 0:
        return ENFORCED
    if left <= DAY:
        return DAY_LEFT
    if left <= 7 * DAY:
        return WEEK_LEFT
    return STARTED


def change_forcing(
    tx: Transaction, ctx: Context, account: Account, was_forced: bool, grace_days: int | None
) -> bool:
    """Set the account's deadline for the forcing it now has (``force_2fa``
    already set by the caller); True if 2FA holds from now on for users
    without it, whose sessions must then close (today's behaviour, grace 0).

    ``grace_days`` counts only when 2FA becomes forced, or while a grace
    period still runs (a new deadline from now; 0 ends it now). Once a
    deadline passed, 2FA is simply forced and a grace does not reopen it.
    """
    now = ctx.now
    if not account.force_2fa:
        account.mfa_enroll_by = None
        return False
    in_grace = account.mfa_enroll_by is not None and now < account.mfa_enroll_by
    if was_forced and not in_grace:
        return False
    if grace_days is None:
        # Newly forced without a grace: today's behaviour; else the running one stays.
        if was_forced:
            return False
        grace_days = 0
    if grace_days == 0:
        account.mfa_enroll_by = None
        return True
    account.mfa_enroll_by = now + grace_days * DAY
    tx.accounts.restart_mfa_stage(account.id)
    return False


def advance(core: Core, now: float) -> dict[str, int]:
    """Mail the reminders that are due and end the sessions of users past a
    deadline, on every account in a rollout; returns how many mails and
    closings it made. Safe to run on many nodes at once."""
    done = {"reminders": 0, "closed": 0}
    with core.store.transaction(write=False) as tx:
        accounts = tx.accounts.in_mfa_rollout()
    for account in accounts:
        deadline = account.mfa_enroll_by
        assert deadline is not None
        stage = due_stage(deadline, now)
        if stage <= account.mfa_stage:
            continue
        with core.store.transaction() as tx:
            if not tx.accounts.claim_mfa_stage(account.id, deadline, stage):
                continue  # another node did it, or the deadline changed
            without = [u for u in tx.users.in_account(account.id) if TOTP_KIND not in u.enrolled]
            if stage == ENFORCED:
                for user in without:
                    credentials_changed(tx, user, "2fa_deadline_passed", now)
                done["closed"] += len(without)
                event = audit.MFA_ENFORCED
            else:
                for user in without:
                    if user.is_active:
                        mail.security_notice(
                            tx,
                            user.email,
                            "mfa_reminder",
                            now,
                            None,
                            deadline=mail.moment(deadline),
                            advice="tell your administrator.",
                        )
                        done["reminders"] += 1
                event = audit.MFA_REMINDED
            audit.record(
                tx, now, event, audit.SUCCESS, account=account.id, stage=stage, users=len(without)
            )
    return done
