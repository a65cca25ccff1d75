"""``quatrix-mfa``: init, serve, outbox, audit, rotate-key."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Sequence

from quatrix_mfa import cli_users
from quatrix_mfa.settings import ConfigError, Settings


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.storage import migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.effective_database_url)
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    return _first_admin(settings, args.email, args.account_name, password)


def _first_admin(settings: Settings, email: str, account_name: str, password: str | None) -> int:
    """Create the account and its administrator unless there is one; without
    a password, print the one-time link that sets it."""
    from quatrix_mfa.api.app import build_core
    from quatrix_mfa.core.bootstrap import bootstrap
    from quatrix_mfa.core.errors import QuatrixError

    core = build_core(settings)
    try:
        result = bootstrap(core, email, account_name, password)
    except QuatrixError as error:
        print(f"error: {error.msg}", file=sys.stderr)
        return 2
    finally:
        core.store.dispose()  # type: ignore[attr-defined]
    if not result.created:
        print(
            f"Already initialised: account {result.account.name!r}, "
            f"admin {result.admin_email}. Nothing changed."
        )
        return 0
    print(f"Created account {result.account.name!r} with administrator {result.admin_email}.")
    if result.link:
        print("Set the administrator's password with this one-time link (valid 7 days):")
        print(f"  {result.link}")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from quatrix_mfa.keys import create_key_file
    from quatrix_mfa.settings import PREFIX, ConfigError
    from quatrix_mfa.storage import migrate

    settings = settings.listening_on(args.host, args.port)
    try:
        settings.check_plain_http(listening_host=args.host)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    # The workers build the app from the environment: links follow this address.
    os.environ[PREFIX + "PUBLIC_URL"] = settings.public_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    create_key_file(settings.key_file)
    migrate.upgrade(settings.effective_database_url)
    if args.init_admin:
        status = _first_admin(settings, args.init_admin, args.account_name, None)
        if status:
            return status
    print(
        f"quatrix-mfa on {settings.public_url}/ (pages) and {settings.public_url}/api/1.0 "
        f"({args.workers} worker(s))",
        flush=True,
    )
    uvicorn.run(
        "quatrix_mfa.api.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        http=_http_protocol(),
    )
    return 0


def _http_protocol() -> str:
    """httptools with a bound on request heads; h11 (16 KiB bound) without httptools."""
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it on CPython
        return "h11"
    return "quatrix_mfa.api.http_protocol:LimitedHttpToolsProtocol"


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.core.crypto import SecretBox
    from quatrix_mfa.core.mail import UnreadableMail, readable_body
    from quatrix_mfa.keys import FileKeyRing
    from quatrix_mfa.storage.store import SqlStore

    store = SqlStore.from_url(settings.effective_database_url, 1)
    with store.transaction(write=False) as tx:
        mails = tx.outbox.list(args.limit)
    # Links are sealed in the database; the operator sees them opened, as mailed.
    box = SecretBox(FileKeyRing(settings.key_file)) if settings.key_file.exists() else None
    for mail in mails:
        if mail.sent_at:
            state = f"sent {_when(mail.sent_at)} ({mail.attempts} attempts)"
        elif mail.given_up:
            state = f"NOT SENT after {mail.attempts} attempts: {mail.last_error}"
        else:
            state = f"queued ({mail.attempts} attempts)"
            if mail.last_error:
                state += f", next {_when(mail.next_attempt_at)}, last error: {mail.last_error}"
        print(f"#{mail.id} {_when(mail.created)} to {mail.to} | {mail.subject} | {state}")
        try:
            body = readable_body(box, mail) if box is not None else mail.body
        except UnreadableMail as error:
            body = f"({error})"
        print("   " + body.strip().replace("\n", "\n   "))
    if not mails:
        print("The outbox is empty.")
    return 0


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.storage.store import SqlStore

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
    for event in events:
        detail = " ".join(f"{k}={v}" for k, v in sorted(event.detail.items()))
        print(
            f"{_when(event.at)} {event.event} {event.outcome} actor={event.actor_id or '-'} "
            f"target={event.target_id or '-'} addr={event.client_addr or '-'} {detail}".rstrip()
        )
    return 0


def cmd_rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    from quatrix_mfa.api.app import build_core
    from quatrix_mfa.core.keyrotation import reencrypt_all
    from quatrix_mfa.keys import add_active_key

    if not settings.key_file.exists():
        print(f"error: no key file at {settings.key_file}; run init first", file=sys.stderr)
        return 2
    key_id = add_active_key(settings.key_file)
    core = build_core(settings)
    count = reencrypt_all(core, key_id)
    print(f"New key {key_id} is active; re-encrypted {count} secret(s).")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="quatrix-mfa", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create the data folder, database, key and first admin")
    init.add_argument("--email", required=True)
    init.add_argument(
        "--password-stdin", action="store_true", help="read the admin password from stdin"
    )
    init.add_argument("--account-name", default="Quatrix")
    init.set_defaults(func=cmd_init)
    serve = sub.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--init-admin",
        metavar="EMAIL",
        help="on the first start, create the account with this administrator and print "
        "the link that sets their password",
    )
    serve.add_argument("--account-name", default="Quatrix")
    serve.set_defaults(func=cmd_serve)
    outbox = sub.add_parser("outbox", help="list mail in the outbox")
    outbox.add_argument("--limit", type=int, default=100)
    outbox.set_defaults(func=cmd_outbox)
    audit = sub.add_parser("audit", help="list audit events")
    audit.add_argument("--user", help="only events about this email")
    audit.add_argument("--limit", type=int, default=200)
    audit.set_defaults(func=cmd_audit)
    rotate = sub.add_parser("rotate-key", help="re-encrypt every secret under a new key")
    rotate.set_defaults(func=cmd_rotate_key)
    cli_users.add_commands(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    result: int = args.func(settings, args)
    return result


if __name__ == "__main__":
    sys.exit(main())
