"""The schema. Alembic migrations create it; a test checks they agree."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import (
    true as sa_true,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Serial = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("status", String(1), nullable=False, default="A"),
    Column("created", Float, nullable=False),
    Column("modified", Float, nullable=False),
    Column("force_2fa", Boolean, nullable=False, default=False),
    Column("ip_restricted", Boolean, nullable=False, default=False),
    Column("ip_whitelist", JSON, nullable=False),
    Column("settings", JSON, nullable=False),
    # Staged 2FA and self-service recovery (migration 0007, core/rollout.py).
    Column("mfa_enroll_by", Float),
    Column("mfa_stage", Integer, nullable=False, server_default="0"),
    Column("mfa_self_recovery", Boolean, nullable=False, server_default=sa_true()),
    # Trusted devices and TOTP parameters of new enrollments (migration 0008).
    Column("trusted_device_days", Integer, nullable=False, server_default="30"),
    Column("trust_epoch", Integer, nullable=False, server_default="0"),
    Column("totp_algorithm", String(8), nullable=False, server_default="SHA1"),
    Column("totp_digits", Integer, nullable=False, server_default="6"),
    Column("totp_period", Integer, nullable=False, server_default="30"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "account_id",
        String(36),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("email", String(254), nullable=False),
    Column("name", String(255), nullable=False),
    Column("created", Float, nullable=False),
    Column("modified", Float, nullable=False),
    Column("super_admin", Boolean, nullable=False),
    Column("status", String(1), nullable=False),
    Column("language", String(32), nullable=False),
    Column("password_hash", String(255)),
    Column("twofa_active", Boolean, nullable=False),
    Column("twofa_forced", Boolean, nullable=False),
    Column("pin_forced", Boolean, nullable=False),
    Column("last_login", Float),
    Column("credential_epoch", Integer, nullable=False, server_default="0"),
    # An email is unique within an account (issue 17, item 7: unique across the
    # service, a create or edit told one account's admin another's emails).
    # Email first, so the index also serves the lookups by email alone.
    UniqueConstraint("email", "account_id", name="uq_users_email_account_id"),
)
# Across the service an email is unique only among the users who have set a
# password (the sign-in identities): login is by email alone, so one email
# signs in as at most one user. The index settles two invitations redeemed at
# once: the second password set fails (core: code 31), never both.
SIGN_IN_EMAIL = users.c.password_hash.is_not(None)
Index(
    "ix_users_sign_in_email",
    users.c.email,
    unique=True,
    sqlite_where=SIGN_IN_EMAIL,
    postgresql_where=SIGN_IN_EMAIL,
)

# The admin's user list pages by (email, id) within an account (a seek, no offset).
Index("ix_users_account_id_email_id", users.c.account_id, users.c.email, users.c.id)

# Second-factor credentials, several per user and kind (core/model.py Credential).
credentials = Table(
    "credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("secret", LargeBinary, nullable=False),
    Column("key_id", String(32)),
    Column("created", Float, nullable=False),
    Column("last_step", BigInteger),
    Column("label", String(255)),
    # TOTP parameters it was enrolled with (NULL: SHA1 / 6 / 30) and the step
    # offset of its last accepted code (migration 0008).
    Column("algorithm", String(8)),
    Column("digits", Integer),
    Column("period", Integer),
    Column("last_offset", Integer),
    # Future steps a refusal revealed as "your clock is ahead": never accepted.
    Column("burned_steps", JSON),
)
Index("ix_credentials_user_id_kind", credentials.c.user_id, credentials.c.kind)

totp_enrollments = Table(
    "totp_enrollments",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("algorithm", String(8)),
    Column("digits", Integer),
    Column("period", Integer),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("used_at", Float),
    UniqueConstraint("user_id", "code_hash"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "user_id",
        String(36),
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created", Float, nullable=False),
    # Indexed (migration 0010): the purge looks for idle sessions by it.
    Column("last_seen", Float, nullable=False, index=True),
    Column("expires_at", Float, nullable=False, index=True),
    Column("steps", String(16), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("epoch", Integer, nullable=False, server_default="0"),
    Column("kind", String(16), nullable=False, server_default="api"),
    Column("auth_time", Float, nullable=False, server_default="0"),
    Column("factors", String(64), nullable=False, server_default="password"),
    # Where the session was opened from (None: before migration 0003).
    Column("client_addr", String(64)),
    # Claimed by a slow hash (a PIN being set) until then (core/profile.py).
    Column("busy_until", Float),
)

throttle = Table(
    "throttle",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("blocked_until", Float, nullable=False),
    Column("updated", Float, nullable=False, index=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("event", String(64), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("actor_id", String(36)),
    Column("target_id", String(36), index=True),
    Column("account_id", String(36)),
    Column("client_addr", String(64)),
    Column("detail", JSON, nullable=False),
)
# The retention purge deletes by time (core/maintenance.py).
Index("ix_audit_log_at", audit_log.c.at)
# The admin's audit page: an account's rows newest first (a seek on id).
Index("ix_audit_log_account_id_id", audit_log.c.account_id, audit_log.c.id)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("to_addr", String(254), nullable=False),
    Column("subject", String(255), nullable=False),
    # A mail carrying a secret (a password link) keeps it out of ``body``: the
    # body holds a slot, ``secret`` the link sealed under ``key_id``
    # (core/mail.py). Both are emptied once the mail is delivered.
    Column("body", Text, nullable=False),
    Column("secret", LargeBinary),
    Column("key_id", String(32)),
    Column("created", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("claimed_until", Float),
    Column("sent_at", Float),
    Column("last_error", Text),
)
Index("ix_outbox_due", outbox.c.sent_at, outbox.c.next_attempt_at)

password_resets = Table(
    "password_resets",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column(
        "user_id",
        String(36),
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
    # Keyed hash of the address the link was mailed to: a link works only while
    # it is still the user's email (links from before 0003 have '' and never do).
    Column("email_hash", String(64), nullable=False),
    # A link that confirms a change of email carries the new address (and
    # ``email_hash`` the one it changes from); a password link has none.
    Column("new_email", String(254)),
)

# Lost-device recoveries (core/mfa_recovery.py): at most one open per user,
# which the partial unique index settles even between nodes.
mfa_recoveries = Table(
    "mfa_recoveries",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("account_id", String(36), nullable=False, index=True),
    Column("created", Float, nullable=False),
    Column("ready_at", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("closed_at", Float),
    Column("approved_by", String(36)),
)
OPEN_RECOVERY = mfa_recoveries.c.state == "open"
Index(
    "ix_mfa_recoveries_open_user",
    mfa_recoveries.c.user_id,
    unique=True,
    sqlite_where=OPEN_RECOVERY,
    postgresql_where=OPEN_RECOVERY,
)

# "Remember this device" tokens (core/devices.py), stored hashed. A token is
# good while ``epoch`` is its user's credential epoch and ``trust_epoch`` its
# account's, and ``expires_at`` has not passed.
trusted_devices = Table(
    "trusted_devices",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("id", String(36), nullable=False, unique=True),
    Column(
        "user_id",
        String(36),
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("account_id", String(36), nullable=False),
    Column("label", String(255), nullable=False),
    Column("client_addr", String(64)),
    Column("created", Float, nullable=False),
    Column("last_used", Float),
    Column("expires_at", Float, nullable=False, index=True),
    Column("epoch", Integer, nullable=False),
    Column("trust_epoch", Integer, nullable=False),
)

# The deployment's keys, by id (migration 0009): a keyed check value of each
# (never the key), so a node with another deployment's key file, or without a
# key in use, is refused; ``active`` marks the key new secrets are sealed
# under, one switch for every node. The HMAC key is the row "hmac".
key_checks = Table(
    "key_checks",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("check_value", String(64), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created", Float, nullable=False),
)

# Running nodes: the key ids each holds, and when it last said so.
nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(128), primary_key=True),
    Column("key_ids", Text, nullable=False),
    Column("heartbeat", Float, nullable=False),
    Column("started", Float, nullable=False),
    Column("code_revision", String(32), nullable=False),
)

# Expand-then-contract (README, "Upgrades"): the oldest code revision that
# still works on this schema. Each migration sets it; code older than that
# refuses to start.
schema_compat = Table(
    "schema_compat",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("oldest_code_revision", String(32), nullable=False),
)
