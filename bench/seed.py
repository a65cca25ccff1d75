"""Seed a quatrix-mfa database with N users, TOTP factors and sessions, fast.

Rows go straight in through the storage layer's tables (batched inserts),
with secrets sealed by ``core.box.seal`` and session tokens hashed by
``core.tokens.hash`` exactly as the service does, so the service reads them
as its own. Passwords are not hashed per user (that would take argon2
hours): every user gets one hash of the same password, made once with the
configured argon2id parameters.

Each user gets: an active TOTP secret (no step used yet), one pending
session waiting for TOTP (``Mfa-Code: 1``) and one full session. The
pending sessions are given a long life so a benchmark can use them later;
the service never creates such sessions itself (its pending life is 5 min).

``--export`` users, spread evenly over the table, are written to a TSV file for the load driver:
``email  totp_secret_base32  pending_token  full_token``.

Usage: seed.py --data-dir DIR [--database-url URL] --users N --export K --out FILE
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import insert

from quatrix_mfa.api.app import build_core
from quatrix_mfa.core.bootstrap import bootstrap
from quatrix_mfa.core.factors import totp
from quatrix_mfa.core.sessions import token_hash
from quatrix_mfa.keys import create_key_file
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage import migrate, tables
from quatrix_mfa.storage.store import SqlStore

PASSWORD = "bench passphrase 2026"  # noqa: S105 - a benchmark account, not a secret
BATCH = 5000
PENDING_LIFE = 7 * 24 * 3600.0


def email_of(index: int) -> str:
    return f"user{index:07d}@bench.example"


def seed(settings: Settings, count: int, export: int, out: Path) -> None:
    migrate.upgrade(settings.effective_database_url)
    # As ``init`` does for a new deployment: the key file only it makes.
    create_key_file(settings.key_file)
    core = build_core(settings)
    created = bootstrap(core, "admin@bench.example", "Bench", PASSWORD)
    if not created.created:
        sys.exit("seed: the database is not empty; give a fresh data folder / database")
    account_id = created.account.id
    password_hash = core.passwords.hash(PASSWORD)
    store = core.store
    assert isinstance(store, SqlStore)
    now = core.clock.now()
    stride = max(1, count // export)  # exported users spread over the whole table
    started = time.perf_counter()
    with out.open("w") as handle:
        for first in range(0, count, BATCH):
            users, secrets, sessions = [], [], []
            for index in range(first, min(first + BATCH, count)):
                user_id = str(uuid.uuid4())
                email = email_of(index)
                users.append(
                    {
                        "id": user_id,
                        "account_id": account_id,
                        "email": email,
                        "name": f"User {index}",
                        "created": now,
                        "modified": now,
                        "super_admin": False,
                        "status": "A",
                        "language": "eng",
                        "password_hash": password_hash,
                        "twofa_active": True,
                        "twofa_forced": False,
                        "pin_forced": False,
                        "last_login": None,
                    }
                )
                secret = totp.new_secret()
                ciphertext, key_id = core.box.seal(secret, user_id)
                secrets.append(
                    {
                        "id": str(uuid.uuid4()),
                        "user_id": user_id,
                        "kind": "totp",
                        "secret": ciphertext,
                        "key_id": key_id,
                        "created": now,
                        "last_step": None,
                    }
                )
                pending, full = str(uuid.uuid4()), str(uuid.uuid4())
                for token, steps, expires in (
                    (pending, "1", now + PENDING_LIFE),
                    (full, "", now + core.sessions.max_seconds),
                ):
                    sessions.append(
                        {
                            "token_hash": token_hash(core, token),
                            "user_id": user_id,
                            "created": now,
                            "last_seen": now,
                            "expires_at": expires,
                            "steps": steps,
                            "failures": 0,
                            "auth_time": now,
                        }
                    )
                if index % stride == 0 and index // stride < export:
                    handle.write(f"{email}\t{totp.base32(secret)}\t{pending}\t{full}\n")
            with store.transaction() as tx:
                tx.conn.execute(insert(tables.users), users)
                tx.conn.execute(insert(tables.credentials), secrets)
                tx.conn.execute(insert(tables.sessions), sessions)
            done = min(first + BATCH, count)
            if done % 100_000 == 0 or done == count:
                rate = done / (time.perf_counter() - started)
                print(f"seed: {done:,} users ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--export", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir, database_url=args.database_url)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    seed(settings, args.users, min(args.export or args.users, args.users), args.out)


if __name__ == "__main__":
    main()
