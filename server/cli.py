"""The ``vitrine`` command: serve, migrate, seed-demo, create-manager."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from server.logs import setup_logging
from server.settings import Settings, SettingsError
from store import managers
from store.errors import Conflict
from store.migrate import migrate

log = logging.getLogger(__name__)


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from server.serve import serve

    if args.port is not None:
        settings = _replace(settings, port=args.port)
    if args.host is not None:
        settings = _replace(settings, host=args.host)
    _run(serve(settings))
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> list[str]:
        connection = await asyncpg.connect(settings.database_url)
        try:
            return await migrate(connection)
        finally:
            await connection.close()

    applied = _run(run())
    print(
        f"applied {len(applied)} migrations"
        + (": " + ", ".join(applied) if applied else "")
    )
    return 0


def cmd_create_manager(settings: Settings, args: argparse.Namespace) -> int:
    password = _read_password(args)
    if len(password) < 10:
        print("error: the password must be at least 10 characters", file=sys.stderr)
        return 2

    async def run() -> None:
        connection = await asyncpg.connect(settings.database_url)
        try:
            await managers.create(connection, args.username, password, args.role)
        finally:
            await connection.close()

    try:
        _run(run())
    except Conflict as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"manager {args.username} created with role {args.role}")
    return 0


def cmd_seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    from server.demo import seed_demo

    password = (
        _read_password(args) if (args.password_file or args.password_stdin) else None
    )
    _run(seed_demo(settings, args.slug, args.manager_username, password))
    print(f"demo live {args.slug} ready")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        return Path(args.password_file).read_text().strip()
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass("password: ")


def _replace(settings: Settings, **changes: Any) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitrine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run one HTTP and WebSocket process")
    serve.add_argument("--port", type=int, help="TCP port (default VITRINE_PORT)")
    serve.add_argument("--host", help="address to bind (default VITRINE_HOST)")
    serve.set_defaults(handler=cmd_serve)

    migrate_parser = commands.add_parser("migrate", help="apply pending SQL migrations")
    migrate_parser.set_defaults(handler=cmd_migrate)

    create = commands.add_parser("create-manager", help="create a manager account")
    create.add_argument("--username", required=True)
    create.add_argument("--role", choices=managers.ROLES, default="admin")
    _add_password_options(create)
    create.set_defaults(handler=cmd_create_manager)

    seed = commands.add_parser(
        "seed-demo", help="create or refresh a demo live with a wholesale catalog"
    )
    seed.add_argument("--slug", default="demo")
    seed.add_argument("--manager-username", default="demo")
    _add_password_options(seed, prefix="manager-")
    seed.set_defaults(handler=cmd_seed_demo)
    return parser


def _add_password_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument(
        f"--{prefix}password-file",
        dest="password_file",
        help="read the password from this file instead of prompting",
    )
    parser.add_argument(
        f"--{prefix}password-stdin",
        dest="password_stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    setup_logging(settings.log_level, settings.production, f"pid {os.getpid()}")
    handler = args.handler
    result: int = handler(settings, args)
    return result


if __name__ == "__main__":
    sys.exit(main())
