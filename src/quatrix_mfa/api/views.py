"""Core records shaped into the spec's response bodies."""

from __future__ import annotations

from quatrix_mfa.api.schemas import ProfileResp, SettingsResp, ShareTypes, UserResp
from quatrix_mfa.core import mail, policy
from quatrix_mfa.core.model import Account, User

# The profile's fixed defaults, given rather than defaulted: pydantic deep-copies
# a default per instance, and the session check builds one per request. Only
# ever serialized, so one instance serves every answer.
_NO_SHARE_TYPES = ShareTypes()


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def user_resp(account: Account, user: User) -> UserResp:
    return UserResp(
        id=user.id,
        name=user.name,
        email=user.email,
        super_admin=_yn(user.super_admin),
        status=user.status,
        language=user.language,
        created=user.created,
        modified=user.modified,
        last_login=user.last_login,
        auth_methods=policy.active_methods(account, user),
        forced_auth=policy.forced_methods(account, user),
    )


def profile_resp(account: Account, user: User) -> ProfileResp:
    return ProfileResp(
        id=user.id,
        name=user.name,
        email=user.email,
        super_admin=_yn(user.super_admin),
        account_id=account.id,
        created=user.created,
        modified=user.modified,
        status=user.status,
        language=user.language,
        auth_methods=policy.active_methods(account, user),
        forced_auth=policy.forced_methods(account, user),
        account_status="A" if account.status == "A" else "S",
        services=[],
        share_types=_NO_SHARE_TYPES,
    )


def settings_resp(account: Account) -> SettingsResp:
    free = account.settings
    return SettingsResp(
        title=str(free.get("title") or account.name),
        bcc=list(free.get("bcc") or []),
        billing_emails=list(free.get("billing_emails") or []),
        email_footer=str(free.get("email_footer") or ""),
        modified=account.modified,
        language=str(free.get("language") or "eng"),
        pgp_enabled=bool(free.get("pgp_enabled", False)),
        share_types=dict(free.get("share_types") or {}),
        auth_methods=account.auth_methods,
        ip_whitelist=account.ip_whitelist,
        mfa_enroll_by=enroll_by(account),
        mfa_self_recovery=account.mfa_self_recovery,
        trusted_device_days=account.trusted_device_days,
        totp_algorithm=account.totp_algorithm,
        totp_digits=account.totp_digits,
        totp_period=account.totp_period,
    )


def enroll_by(account: Account) -> str | None:
    """The account's 2FA deadline as the API shows it (RFC 3339 UTC), if any."""
    deadline = account.mfa_enroll_by if account.force_2fa else None
    return None if deadline is None else mail.moment(deadline)
