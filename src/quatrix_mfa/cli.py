"""quatrix-mfa: set up, serve and operate the service.

Every command checks its configuration, key file and database first and, when
one is wrong, prints one line saying what and exits 2 without writing
anything. Commands live here and in cli_*.py modules, each with a
``register(commands)`` function listed in COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from quatrix_mfa.settings import ConfigError, Settings, unknown_variables

DESCRIPTION = (
    "Self-hosted login, sessions and multi-factor authentication (Quatrix API 1.0). "
    "Configuration comes from QUATRIX_MFA_* environment variables (see the README)."
)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the line and where to read more, no usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def text(raw: str) -> str:
    """An argparse type: text. A command line's bytes that are not UTF-8
    reach Python as lone surrogates, which no email, name or id can hold and
    nothing downstream can encode: refused here, in one line, before anything
    is read or written. (File names stay as they are: any bytes may name a file.)"""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{os.fsencode(raw)!r} is not UTF-8 text") from None
    return raw


def int_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.cli_setup import initialise

    password = None
    if args.password_stdin:
        # As bytes, decoded as UTF-8 whatever the locale: the browser and Basic
        # auth send the password in UTF-8, so any other reading of the bytes
        # would store a password nobody can sign in with.
        try:
            password = sys.stdin.buffer.readline().decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            print("error: the password on stdin is not UTF-8 text", file=sys.stderr)
            return 2
    return initialise(settings, args.email, args.account_name, password)


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.core.crypto import SecretBox
    from quatrix_mfa.core.mail import UnreadableMail, readable_body
    from quatrix_mfa.keys import FileKeyRing
    from quatrix_mfa.startup import open_checked
    from quatrix_mfa.storage.store import SqlStore

    open_checked(settings).dispose()
    store = SqlStore.from_url(settings.effective_database_url, 1)
    with store.transaction(write=False) as tx:
        mails = tx.outbox.list(args.limit)
    # Links are sealed in the database; the operator sees them opened, as mailed.
    box = SecretBox(FileKeyRing(settings.key_file))
    for mail in mails:
        if mail.sent_at:
            state = f"sent {when(mail.sent_at)} ({mail.attempts} attempts)"
        elif mail.given_up:
            state = f"NOT SENT after {mail.attempts} attempts: {mail.last_error}"
        else:
            state = f"queued ({mail.attempts} attempts)"
            if mail.last_error:
                state += f", next {when(mail.next_attempt_at)}, last error: {mail.last_error}"
        print(f"#{mail.id} {when(mail.created)} to {mail.to} | {mail.subject} | {state}")
        try:
            body = readable_body(box, mail)
        except UnreadableMail as error:
            body = f"({error})"
        print("   " + body.strip().replace("\n", "\n   "))
    if not mails:
        print("The outbox is empty.")
    store.dispose()
    return 0


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.startup import open_checked
    from quatrix_mfa.storage.store import SqlStore

    open_checked(settings).dispose()
    store = SqlStore.from_url(settings.effective_database_url, 1)
    with store.transaction(write=False) as tx:
        target = None
        if args.user:
            user = tx.users.by_email(args.user.lower())
            if user is None:
                print(f"error: no user {args.user}", file=sys.stderr)
                return 2
            target = user.id
        events = tx.audit.list(target, args.limit)
    store.dispose()
    for event in events:
        detail = " ".join(f"{k}={v}" for k, v in sorted(event.detail.items()))
        print(
            f"{when(event.at)} {event.event} {event.outcome} actor={event.actor_id or '-'} "
            f"target={event.target_id or '-'} addr={event.client_addr or '-'} {detail}".rstrip()
        )
    return 0


def register(commands: Any) -> None:
    """init, outbox, audit."""
    init = commands.add_parser(
        "init",
        help="for a new deployment: create the data folder, database, key file and first admin",
    )
    init.add_argument("--email", required=True, type=text)
    init.add_argument(
        "--password-stdin", action="store_true", help="read the admin password from stdin"
    )
    init.add_argument("--account-name", default="Quatrix", type=text)
    init.set_defaults(func=cmd_init)
    outbox = commands.add_parser("outbox", help="list mail in the outbox")
    outbox.add_argument("--limit", type=int_between(1, 100_000), default=100)
    outbox.set_defaults(func=cmd_outbox)
    audit = commands.add_parser("audit", help="list audit events")
    audit.add_argument("--user", type=text, help="only events about this email")
    audit.add_argument("--limit", type=int_between(1, 100_000), default=200)
    audit.set_defaults(func=cmd_audit)


# Each module adds its commands (after this one's); a new module joins this list.
COMMAND_MODULES = (
    "quatrix_mfa.cli_serve",
    "quatrix_mfa.cli_keys",
    "quatrix_mfa.cli_users",
    "quatrix_mfa.cli_backup",
)


def parser() -> argparse.ArgumentParser:
    import importlib

    root = Parser(prog="quatrix-mfa", description=DESCRIPTION)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(commands)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    for name in unknown_variables(os.environ):
        print(f"warning: {name} is not a quatrix-mfa variable (a typo?); ignored", file=sys.stderr)
    return run(args.func, settings, args)


def run(func: Callable[[Settings, argparse.Namespace], int], settings: Settings, args: Any) -> int:
    """Run a command; every failure it does not handle itself is one line on
    stderr (passwords masked), never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from quatrix_mfa.keys import KeyFileError
    from quatrix_mfa.startup import StartupError, describe_db_error, one_line

    started = time.monotonic()
    try:
        return func(settings, args)
    except (StartupError, KeyFileError, ConfigError) as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
    except SQLAlchemyError as error:
        print(
            f"error: {describe_db_error(settings.effective_database_url, error)}",
            file=sys.stderr,
        )
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
    except Exception as error:  # one line, even for what we did not foresee
        print(
            f"error: unexpected {type(error).__name__} after "
            f"{time.monotonic() - started:.1f} s: {one_line(error)[:300]}",
            file=sys.stderr,
        )
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
