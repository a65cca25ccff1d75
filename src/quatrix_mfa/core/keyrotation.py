"""Re-encrypting every stored secret under the active key, with no downtime.

Rows are rewritten one at a time with a compare-and-set on the old
ciphertext; readers hold every key, old and new, so any row reads at any
moment. Runs in batches until no row is left under another key, so it is
resumable (a rerun continues where a killed one stopped) and idempotent (a
row already under the key is not touched). A row that cannot be opened
(a key missing from the file, a damaged ciphertext) is counted and left as
it is, never fatal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.crypto import KeyUnavailable

BATCH = 200


@dataclass
class Reencrypted:
    done: int = 0
    # (table, user id, key id) of each row that could not be opened.
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)


def reencrypt_all(
    core: Core, key_id: str, progress: Callable[[Reencrypted], None] | None = None
) -> Reencrypted:
    """Re-seal every secret not under ``key_id`` (the active key) under it."""
    result = Reencrypted()
    skipped: set[tuple[str, str, bytes]] = set()
    while True:
        with core.store.transaction(write=False) as tx:
            rows = tx.credentials.encrypted_rows(key_id, BATCH)
        fresh = [row for row in rows if (row[0], row[1], row[2]) not in skipped]
        if not fresh:
            return result
        for table, user_id, ciphertext, old_key in fresh:
            try:
                plaintext = core.box.open(ciphertext, old_key, user_id)
            except KeyUnavailable:
                skipped.add((table, user_id, ciphertext))
                result.unreadable.append((table, user_id, old_key))
                continue
            sealed, new_key = core.box.seal(plaintext, user_id)
            if new_key != key_id:  # this process's ring has not seen the switch
                raise RuntimeError(f"the active key is {new_key}, not {key_id}")
            with core.store.transaction() as tx:
                if tx.credentials.reencrypt(table, user_id, ciphertext, sealed, new_key):
                    result.done += 1
        if progress is not None:
            progress(result)
