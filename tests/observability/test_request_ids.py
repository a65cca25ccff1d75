"""observe.request_id_from: a client's well-formed id is kept, else a new one
that nobody can foresee, never the same in two processes."""

from __future__ import annotations

import os
import re

from quatrix_mfa import observe

NEW_ID = re.compile(r"[0-9a-f]{32}")


def test_a_well_formed_client_id_is_kept_and_anything_else_replaced() -> None:
    assert observe.request_id_from("req-42.a_B") == "req-42.a_B"
    for bad in (None, "", "a b", "x" * 65, 'quo"te', "new\nline"):
        assert NEW_ID.fullmatch(observe.request_id_from(bad))


def test_new_ids_are_all_different() -> None:
    ids = [observe.request_id_from(None) for _ in range(5000)]
    assert len(set(ids)) == len(ids)


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    # Same key and counter in both would give the same next id on both sides.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out without pytest's clean-up
        os.write(write, observe.request_id_from(None).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = observe.request_id_from(None)
    assert NEW_ID.fullmatch(child) and NEW_ID.fullmatch(parent)
    assert child != parent
