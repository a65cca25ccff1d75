"""``keys add | activate | retire | status`` and the one-node ``rotate-key``.

Rotation on many nodes is two steps (README, "Rotating the keys"): ``keys
add`` writes a new, inactive key into the key file and its check value into
the database; the operator copies the file to every node (each re-reads it
and reports the key ids it holds with its heartbeat); ``keys activate KID``
refuses until every live node holds KID, then switches every node to it at
once (the active key id lives in the database) and re-encrypts in batches.
"""

from __future__ import annotations

import argparse
import hmac
import sys
import time
from typing import Any

from sqlalchemy import Engine

from quatrix_mfa.settings import Settings


def _state(settings: Settings) -> tuple[Engine, Any]:
    from quatrix_mfa.startup import open_checked
    from quatrix_mfa.storage.keystate import KeyState

    engine = open_checked(settings)
    return engine, KeyState(engine)


def add_key_everywhere(settings: Settings, state: Any) -> str:
    """A new inactive key in the file, its check value in the database.

    The id is one the database does not know yet, and the check value is
    registered before the command says yes: when another node's ``keys add``
    registered the same id first (a race), the key is taken out of the file
    again and the command refuses, so two keys never share an id."""
    from quatrix_mfa.keys import add_key, read_key_file, remove_key
    from quatrix_mfa.startup import StartupError
    from quatrix_mfa.storage.deployment import check_value

    key_id = add_key(settings.key_file, taken=state.checks())
    key = read_key_file(settings.key_file)["keys"][key_id]
    value = check_value(key, key_id)
    state.register({key_id: value}, None, time.time())
    if not _matches(state, key_id, value):
        remove_key(settings.key_file, key_id)
        raise StartupError(
            f"refused: key id {key_id} was just registered by another 'keys add'; "
            f"{settings.key_file} is unchanged, copy that node's key file here instead"
        )
    return key_id


def _matches(state: Any, key_id: str, value: str) -> bool:
    """Whether the database's check value for ``key_id`` is ``value`` (constant time)."""
    known = state.checks().get(key_id)
    return known is not None and hmac.compare_digest(known.check_value, value)


def activate(settings: Settings, state: Any, key_id: str, say: Any = print) -> int:
    """Make ``key_id`` active everywhere and re-encrypt every secret under it.

    Safe to run again (after a crash, or to finish rows sealed under the old
    key by a node that had not yet seen the switch)."""
    from quatrix_mfa.api.app import build_core
    from quatrix_mfa.core.keyrotation import reencrypt_all
    from quatrix_mfa.keys import read_key_file, set_file_active
    from quatrix_mfa.startup import StartupError
    from quatrix_mfa.storage.deployment import ACTIVE_CACHE_SECONDS, check_value

    key = read_key_file(settings.key_file)["keys"][key_id]
    value = check_value(key, key_id)
    state.register({key_id: value}, None, time.time())
    if not _matches(state, key_id, value):
        # Same id, another key (another node's 'keys add'): sealing under it
        # would make secrets readable only where this file is.
        raise StartupError(
            f"refused: key {key_id} in {settings.key_file} is not the key {key_id} the "
            f"database knows (another 'keys add' made it); copy the right key file here"
        )
    state.activate(key_id)
    set_file_active(settings.key_file, key_id)
    core = build_core(settings)
    try:
        result = reencrypt_all(core, key_id)
        # A node reads the active key id at most ACTIVE_CACHE_SECONDS late: a
        # secret it sealed meanwhile is under the old key. One more pass.
        time.sleep(ACTIVE_CACHE_SECONDS + 0.5)
        late = reencrypt_all(core, key_id)
    finally:
        core.store.dispose()  # type: ignore[attr-defined]
    done = result.done + late.done
    for table, user_id, old in {*result.unreadable, *late.unreadable}:
        print(
            f"warning: cannot open a secret in {table} of user {user_id} under key {old}; "
            f"left as it is",
            file=sys.stderr,
        )
    say(f"Key {key_id} is active; re-encrypted {done} secret(s).")
    return 0


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    engine, state = _state(settings)
    try:
        key_id = add_key_everywhere(settings, state)
    finally:
        engine.dispose()
    print(
        f"Added key {key_id} (inactive) to {settings.key_file}. Copy this file to every "
        f"node (mode 0600), then run 'quatrix-mfa keys activate {key_id}'."
    )
    return 0


def cmd_activate(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.keys import read_key_file
    from quatrix_mfa.startup import StartupError
    from quatrix_mfa.storage.deployment import LIVE_SECONDS

    key_id = args.key_id
    if key_id not in read_key_file(settings.key_file)["keys"]:
        raise StartupError(
            f"key {key_id} is not in {settings.key_file}: run 'quatrix-mfa keys add' here, "
            f"or copy the key file that has it"
        )
    engine, state = _state(settings)
    try:
        lacking = [
            n.node_id
            for n in state.live_nodes(time.time(), LIVE_SECONDS)
            if key_id not in n.key_ids
        ]
        if lacking:
            raise StartupError(
                f"refused: {len(lacking)} live node(s) do not hold key {key_id} yet "
                f"({', '.join(lacking)}); copy {settings.key_file} to them and try again "
                f"(nodes re-read it within seconds)"
            )
        return activate(settings, state, key_id)
    finally:
        engine.dispose()


def cmd_retire(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.keys import read_key_file, remove_key
    from quatrix_mfa.startup import StartupError

    key_id = args.key_id
    engine, state = _state(settings)
    try:
        in_file = key_id in read_key_file(settings.key_file)["keys"]
        if not in_file and key_id not in state.checks():  # a typo: say so, change nothing
            raise StartupError(f"refused: there is no key {key_id} in {settings.key_file}")
        if state.active_key_id() == key_id:
            raise StartupError(f"refused: key {key_id} is the active key; activate another first")
        left = state.count_under(key_id)
        mail = state.count_under(key_id, mail_only=True)
        if left:
            # Mail is not re-encrypted: a link lives 7 days at most, and a
            # delivered mail's sealed link is dropped (core/mail.py).
            raise StartupError(
                f"refused: {left} secret(s) are still sealed under key {key_id} "
                f"({mail} in undelivered mail, gone once sent or expired); run "
                f"'quatrix-mfa keys activate {state.active_key_id()}' again to finish "
                f"re-encrypting the others"
            )
        remove_key(settings.key_file, key_id)
        state.forget(key_id)
    finally:
        engine.dispose()
    print(f"Key {key_id} retired from {settings.key_file}; copy this file to every node.")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.keys import read_key_file
    from quatrix_mfa.storage.deployment import LIVE_SECONDS

    held = read_key_file(settings.key_file)["keys"]
    engine, state = _state(settings)
    try:
        checks = state.checks()
        for key_id in sorted(set(checks) | set(held)):
            if key_id == "hmac":
                continue
            mark = "active" if key_id in checks and checks[key_id].active else "inactive"
            where = "in file" if key_id in held else "NOT in this file"
            print(f"{key_id} {mark}, {where}, {state.count_under(key_id)} secret(s)")
        for node in state.live_nodes(time.time(), LIVE_SECONDS):
            print(f"node {node.node_id} holds {', '.join(sorted(node.key_ids))}")
    finally:
        engine.dispose()
    return 0


def cmd_rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    """The one-node shortcut: add, activate and re-encrypt in one step."""
    from quatrix_mfa.startup import StartupError
    from quatrix_mfa.storage.deployment import LIVE_SECONDS

    engine, state = _state(settings)
    try:
        live = state.live_nodes(time.time(), LIVE_SECONDS)
        if len(live) > 1:
            raise StartupError(
                f"refused: {len(live)} nodes are live ({', '.join(n.node_id for n in live)}); "
                f"rotate with 'quatrix-mfa keys add', copy the key file, then 'keys activate'"
            )
        key_id = add_key_everywhere(settings, state)
        return activate(
            settings, state, key_id, say=lambda line: print(line.replace("Key", "New key", 1))
        )
    finally:
        engine.dispose()


def register(commands: Any) -> None:
    """keys add | activate | retire | status, rotate-key."""
    from quatrix_mfa.cli import text

    keys = commands.add_parser("keys", help="add, activate and retire encryption keys")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="write a new, inactive key into the key file")
    add.set_defaults(func=cmd_add)
    act = sub.add_parser(
        "activate",
        help="once every live node holds the key: make it active, re-encrypt every secret",
    )
    act.add_argument("key_id", metavar="KID", type=text)
    act.set_defaults(func=cmd_activate)
    retire = sub.add_parser("retire", help="remove a key nothing is sealed under any more")
    retire.add_argument("key_id", metavar="KID", type=text)
    retire.set_defaults(func=cmd_retire)
    status = sub.add_parser("status", help="keys, what uses them, and the live nodes")
    status.set_defaults(func=cmd_status)
    rotate = commands.add_parser(
        "rotate-key", help="one node only: add a key, make it active, re-encrypt every secret"
    )
    rotate.set_defaults(func=cmd_rotate_key)
