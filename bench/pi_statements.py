"""Count privacyIDEA's SQL statements per /validate/check, in-process (runs in its venv).

Usage: pi_statements.py CONFIG_FILE USERS_TSV FIRST COUNT
Prints JSON: statements per valid check and per wrong check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time

from privacyidea.app import create_app
from privacyidea.models import db
from sqlalchemy import event


def totp(secret_b32: str, step: int) -> str:
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(int.from_bytes(digest[offset : offset + 4], 'big') & 0x7FFFFFFF) % 1000000:06d}"


def main() -> None:
    cfg, users_tsv, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(users_tsv) as handle:
        rows = [line.split("\t") for line in handle.read().splitlines()]
    rows = rows[first : first + count]
    app = create_app("production", config_file=cfg, silent=True)
    seen = {"n": 0}
    out = {}
    with app.app_context():

        def on_statement(*args: object) -> None:
            seen["n"] += 1

        event.listen(db.engine, "before_cursor_execute", on_statement)
    client = app.test_client()
    client.post("/validate/check", data={"user": "nobody", "pass": "000000"})  # warm caches
    half = len(rows) // 2
    for name, part, valid in (("valid", rows[:half], True), ("wrong", rows[half:], False)):
        seen["n"] = 0
        step = int(time.time() // 30)
        accepted = 0
        for user, secret in part:
            code = totp(secret, step) if valid else f"{(int(totp(secret, step)) + 1) % 10**6:06d}"
            answer = client.post("/validate/check", data={"user": user, "pass": code}).get_json()
            accepted += bool(answer["result"]["value"])
        out[name] = {"statements": seen["n"] / len(part), "accepted": accepted, "of": len(part)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
