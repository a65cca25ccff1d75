"""Issue 16 attack F1: ``keys add`` on a second node must not mint a second,
different key under an id the database already knows, and ``keys activate``
must not switch to a key id whose key in this file is not the database's.
The ``keys`` commands run as real processes on one shared database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from quatrix_mfa.keys import _encoded, _write, add_key, read_key_file
from quatrix_mfa.settings import Settings
from quatrix_mfa.storage.keystate import KeyState
from tests.conftest import Api
from tests.support.keys import copy_key_file, run_keys


def two_nodes(make_api: Any, settings: Settings, tmp_path: Path) -> tuple[Api, Path]:
    """Node a (an app, its key file) and node b's copy of that file."""
    api: Api = make_api(node_id="node-a")
    other = tmp_path / "node-b" / "keys.json"
    copy_key_file(settings.key_file, other)
    return api, other


def test_keys_add_on_a_second_node_picks_an_id_the_database_does_not_know(
    make_api: Any, settings: Settings, tmp_path: Path
) -> None:
    api, other = two_nodes(make_api, settings, tmp_path)
    first = run_keys(settings, settings.key_file, "add")
    assert first.returncode == 0, first.stderr
    second = run_keys(settings, other, "add")
    assert second.returncode == 0, second.stderr
    # Node b's file never had k2, but the database knows it: node b's key is k3.
    assert "Added key k3" in second.stdout, second.stdout
    assert set(read_key_file(other)["keys"]) == {"k1", "k3"}
    state = KeyState(api.core.store.engine)  # type: ignore[attr-defined]
    assert {"k1", "k2", "k3"} <= set(state.checks())


def test_keys_activate_refuses_a_key_id_whose_key_is_not_the_databases(
    make_api: Any, settings: Settings, tmp_path: Path
) -> None:
    api, other = two_nodes(make_api, settings, tmp_path)
    assert run_keys(settings, settings.key_file, "add").returncode == 0  # k2, registered
    # Node b's file gets a k2 of its own (an older release's 'keys add', a hand edit).
    assert add_key(other) == "k2"
    before = other.read_bytes()
    result = run_keys(settings, other, "activate", "k2")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "its key k2 differs" in lines[0], result.stderr
    assert other.read_bytes() == before
    state = KeyState(api.core.store.engine)  # type: ignore[attr-defined]
    assert state.active_key_id() == "k1"


def test_a_node_whose_file_has_a_foreign_key_does_not_report_holding_it(
    make_api: Any, settings: Settings, tmp_path: Path
) -> None:
    api, other = two_nodes(make_api, settings, tmp_path)
    assert run_keys(settings, other, "add").returncode == 0  # the database's k2
    assert add_key(settings.key_file) == "k2"  # node a's file: another key as k2
    node = api.http.app.state.node  # type: ignore[attr-defined]
    node.beat()
    state = KeyState(api.core.store.engine)  # type: ignore[attr-defined]
    (mine,) = [n for n in state.live_nodes(time.time(), 60) if n.node_id == "node-a"]
    assert mine.key_ids == frozenset({"k1"})
    # So 'keys activate k2' waits for node a rather than trusting its id.
    refused = run_keys(settings, other, "activate", "k2")
    assert refused.returncode == 2 and "node-a" in refused.stderr, refused.stderr
    assert state.active_key_id() == "k1"


def test_a_replaced_key_file_that_is_not_this_databases_is_not_adopted(
    make_api: Any, settings: Settings, tmp_path: Path
) -> None:
    # Attack F2: another deployment's file copied over ours while the node runs.
    api: Api = make_api(node_id="node-a")
    ring = api.core.keys
    hmac_before = ring.hmac_key
    foreign = tmp_path / "foreign" / "keys.json"
    copy_key_file(settings.key_file, foreign)
    content = read_key_file(foreign)
    content["hmac"] = b"\x01" * 32
    content["keys"] = {"k1": b"\x02" * 32}
    _write(settings.key_file, _encoded(content))
    node = api.http.app.state.node  # type: ignore[attr-defined]
    node.beat()
    assert ring.hmac_key == hmac_before
    assert ring.key("k1") != b"\x02" * 32
    # What /readyz answers with (503): the file on disk is not this database's.
    assert node.status.problem is not None and "differs" in node.status.problem
