"""Site settings of an account: forced 2FA and the IP allow-list, plus the
spec's free-form settings (title, language, ...) kept as given."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quatrix_mfa.core import audit, devices, ipallow, policy, rollout
from quatrix_mfa.core.admin import require_admin
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.credentials import credentials_changed
from quatrix_mfa.core.errors import ParameterError, QuatrixError
from quatrix_mfa.core.factors import totp as totp_factor
from quatrix_mfa.core.model import IP, TOTP_KIND, TWO_FA, Account, User
from quatrix_mfa.core.ports import Transaction, UserQuery
from quatrix_mfa.core.sessions import authenticate

# The methods an account can switch on, with stable ids (uuid5 of the key).
AUTH_METHODS = [(1, IP), (2, TWO_FA)]
_METHOD_NAMESPACE = uuid.UUID("6f1c9a4e-3c1b-4a5e-9c57-2f3d8f1a0b11")


@dataclass(frozen=True)
class AuthMethod:
    rank: int
    id: str
    key: str


def auth_methods() -> list[AuthMethod]:
    return [
        AuthMethod(rank, str(uuid.uuid5(_METHOD_NAMESPACE, key)), key) for rank, key in AUTH_METHODS
    ]


IMPACT_LIST = 1000
# The users that forcing 2FA signs out (set_settings): those without a TOTP key.
_WITHOUT_2FA = UserQuery(kind=TOTP_KIND, has_kind=False)


@dataclass(frozen=True)
class MfaImpact:
    """What forcing 2FA on the account would do now: its users, those without
    2FA (they must enroll at their next sign-in), and the open sessions of
    theirs that would end; with the first ``IMPACT_LIST`` of them by email."""

    users: int
    users_without_2fa: int
    sessions_to_end: int
    first_users: list[User]


def mfa_impact(core: Core, ctx: Context) -> MfaImpact:
    """The preview before forcing 2FA. Already forced, saving it again ends no
    session (set_settings closes them only when 2FA becomes forced)."""
    caller, now = require_admin(ctx), ctx.now
    account_id = caller.account.id
    idle_since = now - core.sessions.idle_seconds
    with core.store.transaction(write=False) as tx:
        account = tx.accounts.get(account_id)
        assert account is not None
        users = tx.users.count(account_id, UserQuery())
        without = tx.users.count(account_id, _WITHOUT_2FA)
        first = tx.users.find(account_id, _WITHOUT_2FA, None, IMPACT_LIST) if without else []
        ending = 0
        if without and not policy.account_forces_now(account, now):
            ending = tx.sessions.count_open(account_id, _WITHOUT_2FA, now, idle_since)
    return MfaImpact(users, without, ending, first)


def get_settings(core: Core, ctx: Context) -> Account:
    return require_admin(ctx).account


def set_settings(
    core: Core,
    ctx: Context,
    free_form: dict[str, Any],
    methods: Sequence[str] | None,
    ip_whitelist: list[str] | None,
    *,
    grace_days: int | None = None,
    self_recovery: bool | None = None,
    device_days: int | None = None,
    totp: dict[str, Any] | None = None,
) -> Account:
    """Change settings. Forcing 2FA closes the sessions of users without a
    secret, or with ``grace_days`` gives them until a deadline (core/rollout.py);
    an allow-list that would shut out the caller's own address is refused, and
    a new or narrowed one closes every session opened outside it.
    ``device_days`` (0 to 365) is how long a trusted device lasts; 0 ends
    every trust of the account for good (core/devices.py). ``totp``:
    any of ``totp_algorithm``, ``totp_digits``, ``totp_period``, for the
    enrollments started from now on (each seed keeps its own)."""
    caller, now, addr = require_admin(ctx), ctx.now, ctx.addr
    with core.store.transaction() as tx:
        account = tx.accounts.get(caller.account.id)
        assert account is not None
        was_forced = account.force_2fa
        was_allowed = list(account.ip_whitelist) if account.ip_restricted else None
        if ip_whitelist is not None:
            account.ip_whitelist = ipallow.normalize(ip_whitelist)
        if methods is not None:
            account.force_2fa = TWO_FA in methods
            account.ip_restricted = IP in methods
        if account.ip_restricted:
            if not account.ip_whitelist:
                raise ParameterError.field("ip_whitelist", "IP needs at least one entry")
            if not ipallow.allows(account.ip_whitelist, addr):
                raise ParameterError.field(
                    "ip_whitelist",
                    f"would lock out your own address ({addr or 'none seen'}); behind a proxy, "
                    "let the service trust the address it forwards",
                )
        if grace_days is not None and not 0 <= grace_days <= rollout.MAX_GRACE_DAYS:
            raise ParameterError.field("mfa_grace_days", f"0 to {rollout.MAX_GRACE_DAYS} days")
        if device_days is not None and not 0 <= device_days <= devices.MAX_DAYS:
            raise ParameterError.field("trusted_device_days", f"0 to {devices.MAX_DAYS} days")
        enforce_now = rollout.change_forcing(tx, ctx, account, was_forced, grace_days)
        if self_recovery is not None:
            account.mfa_self_recovery = self_recovery
        if totp:
            _set_totp_parameters(account, totp)
        account.settings.update(free_form)
        account.modified = now
        end_trust = device_days == 0 and account.trusted_device_days > 0
        shorten = device_days is not None and 0 < device_days < account.trusted_device_days
        if device_days is not None:
            account.trusted_device_days = device_days
        tx.accounts.save(account)
        if enforce_now:
            for user in tx.users.in_account(account.id):
                if not core.totp.enrolled(tx, user):
                    credentials_changed(tx, user, "2fa_forced_by_account", now)
        if end_trust:
            # After the user rows above: a login locks its user, then the device.
            devices.end_trust_in_account(tx, account)
        elif shorten:
            devices.shorten_trust_in_account(tx, account, now)
        if account.ip_restricted and account.ip_whitelist != was_allowed:
            _close_outside(tx, ctx, account)
        audit.record(
            tx,
            now,
            audit.SETTINGS_CHANGED,
            audit.SUCCESS,
            actor=caller.user.id,
            account=account.id,
            addr=addr,
            auth_methods=account.auth_methods,
            mfa_enroll_by=account.mfa_enroll_by,
            mfa_self_recovery=account.mfa_self_recovery,
            trusted_device_days=account.trusted_device_days,
            totp_algorithm=account.totp_algorithm,
            totp_digits=account.totp_digits,
            totp_period=account.totp_period,
        )
    return account


def _set_totp_parameters(account: Account, given: dict[str, Any]) -> None:
    """Check and set the TOTP parameters of new enrollments (400 naming the
    field for a value not supported; the transaction then changes nothing)."""
    chosen: dict[str, Any] = {
        "totp_algorithm": account.totp_algorithm,
        "totp_digits": account.totp_digits,
        "totp_period": account.totp_period,
    }
    unknown = set(given) - set(chosen)
    if unknown:
        raise ParameterError.field(sorted(unknown)[0], "not a TOTP parameter")
    chosen.update(given)
    try:
        params = totp_factor.check_parameters(
            **{k.removeprefix("totp_"): v for k, v in chosen.items()}
        )
    except ValueError as bad:
        allowed = {
            "totp_algorithm": "one of " + ", ".join(totp_factor.ALGORITHMS),
            "totp_digits": "6 or 8",
            "totp_period": "30 or 60",
        }
        name = str(bad)
        raise ParameterError.field(name, allowed[name]) from None
    account.totp_algorithm = params.algorithm
    account.totp_digits = params.digits
    account.totp_period = params.period


def _close_outside(tx: Transaction, ctx: Context, account: Account) -> None:
    """Close the sessions of ``account`` opened outside its allow-list (a
    session from before addresses were kept counts as outside), but the
    caller's own, which the list was just checked to hold."""
    keep = ctx.signed_in.token_hash
    outside = [
        (token_hash, user_id)
        for token_hash, user_id, addr in tx.sessions.addresses_in_account(account.id)
        if token_hash != keep and not ipallow.allows(account.ip_whitelist, addr)
    ]
    tx.sessions.close([token_hash for token_hash, _ in outside])
    who = ctx.actor()
    for user_id in sorted({user_id for _, user_id in outside}):
        who.record(tx, ctx.now, audit.SESSION_CLOSED, "outside_ip_allow_list", target=user_id)


def public_account(core: Core, ctx: Context, token: str | None) -> Account | None:
    """The account ``GET /account/metadata`` describes: the caller's (a session
    used from inside its account's allow-list), or the first one."""
    if token:
        try:
            return authenticate(core, token, ctx.addr).account
        except QuatrixError:
            pass
    with core.store.transaction(write=False) as tx:
        return tx.accounts.first()
