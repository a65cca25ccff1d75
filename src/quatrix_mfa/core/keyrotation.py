"""Re-encrypting every stored secret under the active key, with no downtime.

Rows are rewritten one at a time with a compare-and-set on the old
ciphertext; readers hold every key, old and new, so any row reads at any
moment. Runs until no row is left under an older key.
"""

from __future__ import annotations

from quatrix_mfa.core.context import Core

BATCH = 200


def reencrypt_all(core: Core, key_id: str) -> int:
    done = 0
    while True:
        with core.store.transaction(write=False) as tx:
            rows = tx.credentials.encrypted_rows(key_id, BATCH)
        if not rows:
            return done
        for table, user_id, ciphertext, old_key in rows:
            plaintext = core.box.open(ciphertext, old_key, user_id)
            sealed, new_key = core.box.seal(plaintext, user_id)
            assert new_key == key_id
            with core.store.transaction() as tx:
                if tx.credentials.reencrypt(table, user_id, ciphertext, sealed, new_key):
                    done += 1
