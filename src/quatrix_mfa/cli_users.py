"""``quatrix-mfa user ...``: break-glass from the server's shell (issue 15, item 4).

``user list [--account ID]``, ``user unlock EMAIL``, ``user reset-mfa EMAIL``,
``user make-admin EMAIL`` and ``user reset-link EMAIL`` (each with
``--account ID`` when several accounts hold the email). They work on the
database directly, with the service running or not, through the use cases of
core/breakglass.py, which audit each change as done by the command line.

Exit status 0 on success, 1 when the command is refused (an unknown email or
account, a user without 2FA to reset), 2 when the database or key file is
not usable; a refusal is one line on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from quatrix_mfa.settings import Settings

if TYPE_CHECKING:  # imported when a command runs: ``--help`` stays quick
    from quatrix_mfa.core.context import Context, Core

REFUSED = 1
UNUSABLE = 2


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``user`` and its commands on the root parser's subcommands."""
    from quatrix_mfa.cli import text

    user = sub.add_parser(
        "user", help="break-glass: list users, unlock, reset 2FA, make admin, password link"
    )
    commands = user.add_subparsers(dest="user_command", required=True)
    listing = commands.add_parser("list", help="every user: role, status, 2FA, lock")
    listing.add_argument("--account", metavar="ID", type=text, help="only this account's users")
    listing.set_defaults(func=_run(_list))
    for name, action, summary in (
        ("unlock", _unlock, "clear the user's failed-login and link-request counters"),
        ("reset-mfa", _reset_mfa, "remove the user's 2FA key and recovery codes; end sessions"),
        ("make-admin", _make_admin, "make the user an (active) administrator"),
        ("reset-link", _reset_link, "print a one-time link that sets the user's password"),
    ):
        command = commands.add_parser(name, help=summary)
        command.add_argument("email", type=text)
        command.add_argument(
            "--account",
            metavar="ID",
            type=text,
            help="the account's user, when several hold the email",
        )
        command.set_defaults(func=_run(action))


Action = Callable[["Core", "Context", argparse.Namespace], None]


def _run(action: Action) -> Callable[[Settings, argparse.Namespace], int]:
    """The command: open the database and keys, run ``action``, answer a
    refusal with one line and a non-zero status."""

    def command(settings: Settings, args: argparse.Namespace) -> int:
        from quatrix_mfa.api.app import build_core
        from quatrix_mfa.core.breakglass import shell_context
        from quatrix_mfa.core.errors import QuatrixError
        from quatrix_mfa.startup import open_checked
        from quatrix_mfa.storage.store import SqlStore

        # The key file, database, schema and keys checked as for serve: a
        # refusal is one line (cli.run), and no key is ever made here.
        open_checked(settings).dispose()
        store = SqlStore.from_url(settings.effective_database_url, 1)
        try:
            core = build_core(settings, store=store)
            try:
                action(core, shell_context(core), args)
            except QuatrixError as error:
                print(f"error: {error.msg}", file=sys.stderr)
                return REFUSED
            return 0
        finally:
            store.dispose()

    return command


def _list(core: Core, ctx: Context, args: argparse.Namespace) -> None:
    from quatrix_mfa.core import breakglass

    lines = breakglass.list_users(core, ctx, args.account)
    print("EMAIL\tROLE\tSTATUS\t2FA\tPIN\tLOCKED UNTIL\tUSER ID\tACCOUNT")
    for line in lines:
        user = line.user
        print(
            "\t".join(
                (
                    user.email,
                    "admin" if user.super_admin else "user",
                    "active" if user.is_active else "disabled",
                    line.two_factor,
                    "on" if user.pin_active else "off",
                    _when(line.locked_until),
                    user.id,
                    f"{line.account.id} ({line.account.name})",
                )
            )
        )
    print(f"{len(lines)} user(s)")


def _unlock(core: Core, ctx: Context, args: argparse.Namespace) -> None:
    from quatrix_mfa.core import breakglass

    done = breakglass.unlock(core, ctx, args.email, args.account)
    was = (
        f"was locked until {_when(done.was_locked_until)}"
        if done.was_locked_until
        else ("was not locked")
    )
    print(f"Unlocked {done.user.email} ({was}): failed sign-ins count from zero again.")


def _reset_mfa(core: Core, ctx: Context, args: argparse.Namespace) -> None:
    from quatrix_mfa.core import breakglass

    user = breakglass.reset_mfa(core, ctx, args.email, args.account)
    print(
        f"Reset 2FA of {user.email}: their key and recovery codes are gone and their "
        "sessions ended; they set up 2FA again at their next sign-in."
    )


def _make_admin(core: Core, ctx: Context, args: argparse.Namespace) -> None:
    from quatrix_mfa.core import breakglass

    user = breakglass.make_admin(core, ctx, args.email, args.account)
    print(f"{user.email} is an active administrator of their account ({user.account_id}).")


def _reset_link(core: Core, ctx: Context, args: argparse.Namespace) -> None:
    from quatrix_mfa.core import breakglass

    link = breakglass.reset_link(core, ctx, args.email, args.account)
    print(f"One-time link that sets the password of {args.email} (also mailed to them):")
    print(f"  {link}")
