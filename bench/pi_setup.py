"""Set up the privacyIDEA reference with its own tool (pi-manage), stdlib only.

privacyIDEA is installed by ``bench/run`` into its own venv under
``bench/.work/pi`` (never vendored). This script writes a config file
(SQLite in WAL mode, production settings), creates keys and tables, a
flat-file (passwd) resolver with N users in one realm, and imports one
TOTP token (SHA-1, 6 digits, 30 s, no PIN) per user with
``pi-manage token import``. It writes ``users.tsv`` (user, base32 secret)
for the load driver.

Usage: pi_setup.py PI_VENV WORK_DIR USERS
"""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

REALM = "bench"
RESOLVER = "benchfile"


def main() -> None:
    venv, work, count = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), int(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    db = work / "pi.sqlite"
    cfg = work / "pi.cfg"
    cfg.write_text(
        "\n".join(
            [
                f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{db}'",
                f"SECRET_KEY = '{secrets.token_hex(24)}'",
                f"PI_PEPPER = '{secrets.token_hex(24)}'",
                f"PI_ENCFILE = '{work / 'enckey'}'",
                f"PI_AUDIT_KEY_PRIVATE = '{work / 'audit-private.pem'}'",
                f"PI_AUDIT_KEY_PUBLIC = '{work / 'audit-public.pem'}'",
                f"PI_LOGFILE = '{work / 'privacyidea.log'}'",
                "PI_LOGLEVEL = 30",
                "",
            ]
        )
    )
    env = dict(os.environ, PRIVACYIDEA_CONFIGFILE=str(cfg))
    manage = [str(venv / "bin" / "pi-manage")]

    def run(*args: str) -> None:
        subprocess.run(manage + list(args), env=env, check=True, stdout=subprocess.DEVNULL)

    run("setup", "create_enckey")
    run("setup", "create_audit_keys")
    run("setup", "create_tables")
    with sqlite3.connect(db) as conn:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        sys.exit(f"pi_setup: SQLite journal mode is {mode}, not WAL")

    passwd = work / "users.passwd"
    rows, tokens = [], ["# version: 2"]
    with (work / "users.tsv").open("w") as out:
        for index in range(count):
            name = f"user{index:06d}"
            rows.append(f"{name}:x:{10000 + index}:100:{name}:/home/{name}:/bin/false")
            key = secrets.token_bytes(20)
            tokens.append(f"{name},{RESOLVER},{REALM},TOTP{index:06d},{key.hex()},totp,6,30")
            out.write(f"{name}\t{base64.b32encode(key).decode().rstrip('=')}\n")
    passwd.write_text("\n".join(rows) + "\n")
    resolver_conf = work / "resolver.conf"
    resolver_conf.write_text(repr({"fileName": str(passwd)}))
    run("config", "resolver", "create", RESOLVER, "passwdresolver", str(resolver_conf))
    run("config", "realm", "create", REALM, RESOLVER)
    run("config", "realm", "set_default", REALM)
    token_file = work / "tokens.csv"
    token_file.write_text("\n".join(tokens) + "\n")
    run("token", "import", "-t", REALM, str(token_file))
    print(f"pi_setup: {count} users with TOTP tokens in realm {REALM!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
