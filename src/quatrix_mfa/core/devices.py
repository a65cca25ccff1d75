"""Trusted devices: "remember this device" (issue 13).

A login whose last factor succeeds with ``remember_device`` is given a random
device token (256 bits; only its keyed hash is stored, as for sessions). A
later password login of the same user that presents it skips the second-factor
steps: the password, the IP allow-list and throttling still apply, and a user
who must first enroll TOTP still must.

A token is good only while all of this holds, checked and its ``last_used``
stamped by one conditional UPDATE (storage/devices.py):

- it is stored (a revocation deletes the row) and belongs to the user whose
  password was just checked;
- it was given under the user's current credential epoch: any change of
  password or factors (set, remove, reset, recovery), a disabling and a
  "sign out everywhere" bump that epoch (core/credentials.py, which also
  deletes the rows); deleting the user deletes them (ON DELETE CASCADE);
- it was given under the account's current trust epoch: setting
  ``trusted_device_days`` to 0 bumps it, so raising the days later does not
  revive an old token;
- ``expires_at`` (created + the days when given) has not passed, and neither
  has created + the account's current days (lowering the days shortens every
  trust at once, and deletes the tokens older than the new days in the same
  transaction, so raising the days again revives none of them);
- the account's ``trusted_device_days`` is above 0.

A login through a trusted device is single-factor (not AAL2 in NIST SP
800-63B's terms, 4.2.3): its session names ``trusted_device``, never a real
factor, and such a session may not change or remove its user's second
factors or recovery codes (:func:`require_factor_proven`), or a stolen
device token plus the password would let someone move the factor itself to
their own phone. docs/security.md says what trust costs and what bounds it.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from quatrix_mfa.core import audit
from quatrix_mfa.core.admin import parse_ids, require_admin, targets
from quatrix_mfa.core.context import Context, Core
from quatrix_mfa.core.errors import ParameterError, SignedInByDevice
from quatrix_mfa.core.model import Account, Step, TrustedDevice, User
from quatrix_mfa.core.ports import Transaction
from quatrix_mfa.core.sessions import Caller

DAY = 86400.0
MAX_DAYS = 365
DEFAULT_DAYS = 30
# The factor a session opened by a trusted device names in its authentication record.
DEVICE_FACTOR = "trusted_device"

# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_PURPOSE = "device"


@dataclass(frozen=True)
class DeviceView:
    """One trusted device as its owner (or an administrator) sees it."""

    id: str
    label: str
    client_addr: str | None
    created: float
    last_used: float | None
    expires_at: float


def token_hash(core: Core, token: str) -> str:
    return core.tokens.hash(_PURPOSE, token)


# User-Agent → a short human label. Order matters: Edge and Opera also say
# "Chrome", Chrome also says "Safari", Android also says "Linux".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def label_for(user_agent: str | None) -> str:
    """A short label like "Firefox on Linux" from a User-Agent header; only
    names from the tables above reach it, never the header's own text."""
    agent = user_agent or ""
    browser = next((name for key, name in _BROWSERS if key in agent), None)
    system = next((name for key, name in _SYSTEMS if key in agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


def remember(
    core: Core,
    tx: Transaction,
    user: User,
    account: Account,
    now: float,
    seen: audit.Actor,
    label: str,
) -> str | None:
    """Inside the transaction of a login's last factor: give ``user`` a device
    token and return it (the only clear copy); None when the account has the
    feature off (``trusted_device_days`` 0)."""
    fresh = tx.accounts.get(account.id)
    days = fresh.trusted_device_days if fresh else 0
    if fresh is None or days <= 0:
        return None
    token = secrets.token_urlsafe(32)
    device_id = str(uuid.uuid4())
    tx.devices.add(
        TrustedDevice(
            token_hash=token_hash(core, token),
            id=device_id,
            user_id=user.id,
            account_id=fresh.id,
            label=label[:255],
            client_addr=seen.addr,
            created=now,
            last_used=None,
            expires_at=now + days * DAY,
            epoch=user.credential_epoch,
            trust_epoch=fresh.trust_epoch,
        )
    )
    seen.record(tx, now, audit.TRUST_GIVEN, target=user.id, device=device_id, days=days)
    return token


def skips(steps: Sequence[Step]) -> bool:
    """Whether a trusted device may stand in for these second-factor steps:
    proven factors only, never an enrollment still to be done."""
    return bool(steps) and Step.ENROLL_TOTP not in steps


# Why a token was refused (audited, and told to the edge): ``OTHER_USER`` is
# still good for its owner; every other reason means it will never count again.
OTHER_USER = "other_user"


def refusal(
    core: Core,
    tx: Transaction,
    user: User,
    account: Account,
    raw_token: str,
    now: float,
    seen: audit.Actor,
) -> str | None:
    """Inside the password login's transaction (``user`` fresh and locked):
    None if ``raw_token`` is a good device token of ``user`` (module doc),
    else why not (``malformed``, ``off``, ``unknown``, ``stale`` or
    :data:`OTHER_USER`). A use is stamped and audited; a refusal is audited
    with why, and the login goes on as if no token had come."""
    reason = None
    device_id = None
    if not _TOKEN.fullmatch(raw_token):
        reason = "malformed"
    elif account.trusted_device_days <= 0:
        reason = "off"
    else:
        hashed = token_hash(core, raw_token)
        created_after = now - account.trusted_device_days * DAY
        device_id = tx.devices.use(
            hashed, user.id, user.credential_epoch, account.trust_epoch, created_after, now
        )
        if device_id is None:
            owner = tx.devices.owner_of(hashed)
            # Never whose it is: only that it is not this user's.
            reason = "unknown" if owner is None else OTHER_USER if owner != user.id else "stale"
    if device_id is None:
        seen.record(tx, now, audit.TRUST_REFUSED, audit.DENIED, target=user.id, reason=reason)
        return reason
    seen.record(tx, now, audit.TRUST_USED, target=user.id, device=device_id)
    return None


def dead_for_good(reason: str | None) -> bool:
    """Whether a token refused for ``reason`` can never count again, for
    anyone: an edge that keeps it (the pages' cookie) may drop it then. A
    token of another user is not: its owner (another person on the same
    browser) still signs in with it."""
    return reason is not None and reason != OTHER_USER


def by_device(caller: Caller) -> bool:
    """Whether the caller's session was opened through a trusted device."""
    return DEVICE_FACTOR in caller.session.factors


def require_factor_proven(caller: Caller) -> None:
    """The one rule for every change of the caller's own second factors or
    recovery codes (set, replace, remove, new codes): a session opened through
    a trusted device is refused (403), since the device only stood in for
    those factors (NIST SP 800-63B 6.1.2.1: binding a new authenticator needs
    the existing second factor, not a substitute for it). A first enrollment
    forced at sign-in never comes through a device (:func:`skips`)."""
    if by_device(caller):
        raise SignedInByDevice()


def revoke_all(tx: Transaction, user_ids: Sequence[str]) -> int:
    """Delete every trusted device of these users (a change of credentials,
    a disabling); their epoch has moved too, so this tidies the lists."""
    return tx.devices.delete_for_users(user_ids)


def revoke_on_change(tx: Transaction, who: audit.Actor, user: User, now: float, why: str) -> None:
    """A change of the user's factors that keeps their credential epoch
    (a factor removed, new recovery codes): their devices go all the same,
    audited with ``why``, since trust stood in for the factors as they were."""
    if tx.devices.delete_for_users([user.id]):
        who.record(tx, now, audit.TRUST_REVOKED, why, target=user.id)


def shorten_trust_in_account(tx: Transaction, account: Account, now: float) -> int:
    """``trusted_device_days`` lowered (above 0): the account's devices older
    than the new days go, in one DELETE. Left in place, a later rise of the
    days would make them count again, since a use checks created + the days
    current then."""
    until = now - account.trusted_device_days * DAY
    return tx.devices.delete_in_account(account.id, created_until=until)


def end_trust_in_account(tx: Transaction, account: Account) -> None:
    """``trusted_device_days`` set to 0: the account's trust epoch moves (no
    old token counts again, whatever the days become later) and its devices go."""
    account.trust_epoch = tx.accounts.end_trust(account.id)
    tx.devices.delete_in_account(account.id)


def _view(device: TrustedDevice) -> DeviceView:
    return DeviceView(
        device.id,
        device.label,
        device.client_addr,
        device.created,
        device.last_used,
        device.expires_at,
    )


def _live(tx: Transaction, user: User, account: Account, now: float) -> list[TrustedDevice]:
    """The user's devices that would still be trusted now."""
    days = account.trusted_device_days
    return [
        d
        for d in tx.devices.of_user(user.id)
        if days > 0
        and d.epoch == user.credential_epoch
        and d.trust_epoch == account.trust_epoch
        and d.expires_at > now
        and d.created > now - days * DAY
    ]


def list_own(core: Core, ctx: Context) -> list[DeviceView]:
    """``GET /profile/devices``: the caller's trusted devices, newest first."""
    caller = ctx.signed_in
    caller.require_full()
    with core.store.transaction(write=False) as tx:
        return [_view(d) for d in _live(tx, caller.user, caller.account, ctx.now)]


def list_of_user(core: Core, ctx: Context, user_id: str) -> list[DeviceView]:
    """An administrator's view of one user's trusted devices (same account only)."""
    caller = require_admin(ctx)
    with core.store.transaction(write=False) as tx:
        (user,) = targets(tx, caller, [user_id])
        return [_view(d) for d in _live(tx, user, caller.account, ctx.now)]


def revoke_own(core: Core, ctx: Context, ids: Sequence[str]) -> list[str]:
    """``POST /profile/devices/delete``: revoke some of the caller's devices.

    All-or-nothing like the admin bulk calls (core/admin.py): an id that is
    not one of the caller's devices (unknown, already revoked, or someone
    else's: the three look alike) answers 400 naming it, and nothing changes.
    """
    caller, now = ctx.signed_in, ctx.now
    caller.require_full()
    wanted = parse_ids(ids)
    with core.store.transaction() as tx:
        tx.users.lock(caller.user.id)
        own = {d.id for d in tx.devices.of_user(caller.user.id)}
        unknown = [i for i in wanted if i not in own]
        if unknown:
            raise ParameterError("Unknown ids", {"ids": unknown})
        gone = tx.devices.delete_of_user(caller.user.id, wanted)
        ctx.actor().record(tx, now, audit.TRUST_REVOKED, target=caller.user.id, devices=gone)
    return gone


def revoke_for_users(core: Core, ctx: Context, ids: Sequence[str]) -> int:
    """``POST /user/devices/delete``: an administrator revokes every trusted
    device of these users of their account (400 on any unknown id, as
    every admin bulk call)."""
    caller, now = require_admin(ctx), ctx.now
    with core.store.transaction() as tx:
        users = targets(tx, caller, ids)
        who = ctx.actor()
        total = 0
        for user in users:
            count = tx.devices.delete_for_users([user.id])
            total += count
            who.record(tx, now, audit.TRUST_REVOKED, target=user.id, devices="all", count=count)
    return total
