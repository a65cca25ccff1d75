"""Storage of issue 13's TOTP columns, on SQLite and PostgreSQL: each seed's
parameters, the step offset written with the replay guard, the burned steps
(a JSON list) and the query behind the admin's clock-drift marker."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from quatrix_mfa.core.context import Core
from quatrix_mfa.core.model import Account, Credential, TotpEnrollment, User
from tests.support.storage import NOW, new_user


@pytest.fixture
def user(core: Core, account: Account) -> User:
    with core.store.transaction() as tx:
        return new_user(tx, account, "tina@example.com")


def seed(core: Core, user: User, **fields: object) -> Credential:
    base = Credential(str(uuid.uuid4()), user.id, "totp", b"sealed", "k1", NOW)
    credential = dataclasses.replace(base, **fields)
    with core.store.transaction() as tx:
        tx.credentials.add(credential)
    return credential


def stored(core: Core, user: User) -> Credential:
    with core.store.transaction(write=False) as tx:
        return tx.credentials.of_user(user.id, "totp")[-1]


def test_a_seed_keeps_its_parameters_and_null_means_the_old_defaults(
    core: Core, user: User
) -> None:
    seed(core, user)
    assert (stored(core, user).algorithm, stored(core, user).digits) == (None, None)
    with core.store.transaction() as tx:
        tx.credentials.delete(user.id, "totp")
    seed(core, user, algorithm="SHA512", digits=8, period=60)
    found = stored(core, user)
    assert (found.algorithm, found.digits, found.period) == ("SHA512", 8, 60)


def test_a_pending_enrollment_keeps_its_parameters(core: Core, user: User) -> None:
    with core.store.transaction() as tx:
        tx.credentials.put_enrollment(
            TotpEnrollment(user.id, b"sealed", "k1", NOW + 600, "SHA256", 8, 60)
        )
    with core.store.transaction(write=False) as tx:
        found = tx.credentials.enrollment(user.id)
    assert found is not None and (found.algorithm, found.digits, found.period) == ("SHA256", 8, 60)


def test_the_offset_is_written_only_with_a_step_that_advances(core: Core, user: User) -> None:
    credential = seed(core, user)
    with core.store.transaction() as tx:
        assert tx.credentials.advance_step(user.id, credential.id, 100, 1)
        assert not tx.credentials.advance_step(user.id, credential.id, 100, -1)
    found = stored(core, user)
    assert (found.last_step, found.last_offset) == (100, 1)


def test_burned_steps_round_trip_as_a_list_of_integers(core: Core, user: User) -> None:
    credential = seed(core, user)
    steps = [60_000_002, 60_000_005, 2**40]
    with core.store.transaction() as tx:
        tx.credentials.set_burned_steps(user.id, credential.id, steps)
    assert stored(core, user).burned_steps == steps


def test_drift_offsets_name_only_seeds_a_step_off(core: Core, account: Account) -> None:
    with core.store.transaction() as tx:
        users = [new_user(tx, account, f"u{n}@example.com") for n in range(4)]
    for person, offset in zip(users, (None, 0, 1, -1), strict=True):
        seed(core, person, last_offset=offset)
    with core.store.transaction(write=False) as tx:
        found = tx.credentials.drift_offsets([u.id for u in users])
    assert found == {users[2].id: 1, users[3].id: -1}
