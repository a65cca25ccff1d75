"""The schema revisions a test of upgrades speaks of, from this code's migrations:
its head, the two before it, and the one a next release would add."""

from __future__ import annotations

from quatrix_mfa.storage import migrate


def _shifted(revision: str, by: int) -> str:
    return f"{int(revision) + by:04d}"


HEAD: str = migrate.head_revision() or ""
PREVIOUS = _shifted(HEAD, -1)
TWO_BACK = _shifted(HEAD, -2)
NEXT = _shifted(HEAD, 1)
