"""Fixtures: a real PostgreSQL database and a real Redis, cleaned before each test.

VITRINE_TEST_DATABASE_URL points at a maintenance database of a server where the
tests may create ``vitrine_test``; VITRINE_TEST_REDIS_URL at a Redis whose database
the tests may flush. scripts/test sets both.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
import pytest
import redis
import tornado.httpclient
import tornado.ioloop
import tornado.web
from tornado.httpserver import HTTPServer

from handlers.context import AppContext
from realtime.broker import Broker, connect_redis
from realtime.heartbeat import Heartbeat
from realtime.limits import AddressLimiter
from server.app import make_app
from server.serve import make_server
from server.settings import Settings
from store.migrate import migrate
from store.pool import create_pool

MAINTENANCE_URL = os.environ.get(
    "VITRINE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("VITRINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_DATABASE = "vitrine_test"

TABLES = (
    "order_items, orders, cart_items, carts, products, lives, refresh_tokens, "
    "managers, outbox"
)


def run_isolated(coroutine: Any) -> Any:
    """Run a coroutine on a private loop, leaving the thread's current loop alone.

    asyncio.run would unset the current loop, which the IOLoop fixture relies on.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def _database_url(name: str) -> str:
    parts = urlsplit(MAINTENANCE_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def database_url() -> str:
    """Create the test database afresh and migrate it, once per run."""

    async def setup() -> None:
        admin = await asyncpg.connect(MAINTENANCE_URL)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {TEST_DATABASE} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {TEST_DATABASE}")
        finally:
            await admin.close()
        connection = await asyncpg.connect(_database_url(TEST_DATABASE))
        try:
            await migrate(connection)
        finally:
            await connection.close()

    run_isolated(setup())
    return _database_url(TEST_DATABASE)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings a test module changes; override this fixture in the module."""
    return {}


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    base = Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        jwt_secret="test-secret-" + "x" * 32,
        db_pool_min=1,
        db_pool_max=20,
        # Viewer counts would add events to every live topic; tests that need them
        # turn them on.
        presence_interval=0,
        # Test clients all connect from 127.0.0.1.
        ws_connect_rate=1000,
        ws_connect_burst=1000,
    )
    return replace(base, **settings_overrides)


@pytest.fixture
def clean_data(database_url: str) -> None:
    async def truncate() -> None:
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        finally:
            await connection.close()

    run_isolated(truncate())
    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture
def io_loop() -> Iterator[tornado.ioloop.IOLoop]:
    """An IOLoop whose asyncio loop is also the thread's current event loop.

    pytest-tornado starts each test coroutine with asyncio.ensure_future, which picks
    the thread's event loop; IOLoop.make_current no longer sets it on Tornado 6.3+.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    io_loop = tornado.ioloop.IOLoop.current()
    yield io_loop
    io_loop.close(all_fds=True)
    asyncio.set_event_loop(None)


@pytest.fixture
def ctx(
    io_loop: tornado.ioloop.IOLoop, settings: Settings, clean_data: None
) -> Iterator[AppContext]:
    async def start() -> AppContext:
        pool = await create_pool(settings)
        broker = Broker(connect_redis(settings), settings)
        await broker.start()
        return AppContext(
            settings=settings,
            pool=pool,
            broker=broker,
            connect_limiter=AddressLimiter(
                settings.ws_connect_rate, settings.ws_connect_burst
            ),
        )

    context: AppContext = io_loop.run_sync(start)
    heartbeat = Heartbeat(
        context.sockets, settings.ws_ping_interval, settings.ws_ping_timeout
    )
    heartbeat_task = io_loop.asyncio_loop.create_task(heartbeat.run())  # type: ignore[attr-defined]
    yield context

    async def stop() -> None:
        heartbeat_task.cancel()
        await context.broker.stop()
        await context.broker.client.aclose()
        await context.pool.close()

    io_loop.run_sync(stop)


@pytest.fixture
def app(ctx: AppContext) -> tornado.web.Application:
    return make_app(ctx)


@pytest.fixture
def http_server(
    io_loop: tornado.ioloop.IOLoop,
    _unused_port: tuple[socket.socket, int],
    app: tornado.web.Application,
    ctx: AppContext,
) -> Iterator[HTTPServer]:
    """Serve ``app`` behind the same listener as a process, so sockets take the
    same path as in production."""
    server, listener = make_server(ctx, app)

    async def start() -> None:
        listener.add_sockets([_unused_port[0]])

    async def stop() -> None:
        listener.stop()
        await server.close_all_connections()

    io_loop.run_sync(start)
    yield server
    io_loop.run_sync(stop)


class Response:
    def __init__(self, status: int, body: bytes, headers: Any) -> None:
        self.status = status
        self.raw = body
        self.headers = headers
        self.json: Any = None
        if body and "json" in headers.get("Content-Type", ""):
            self.json = orjson.loads(body)

    @property
    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = self.json["error"]
        return error

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.raw[:300]!r}>"


class Api:
    """A small JSON client over Tornado's HTTP client for handler tests."""

    def __init__(self, client: tornado.httpclient.AsyncHTTPClient, base_url: str):
        self.client = client
        self.base_url = base_url
        self.access_token: str | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw_body: bytes | None = None,
    ) -> Response:
        all_headers = {"Content-Type": "application/json"}
        if self.access_token and path.startswith("/api/v1/manager/"):
            all_headers["Authorization"] = f"Bearer {self.access_token}"
        all_headers.update(headers or {})
        payload = raw_body
        if payload is None and body is not None:
            payload = orjson.dumps(body)
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = b""
        response = await self.client.fetch(
            self.base_url + path,
            method=method,
            body=payload,
            headers=all_headers,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        return Response(response.code, response.body or b"", response.headers)

    async def get(self, path: str, **kwargs: Any) -> Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return await self.request("POST", path, body, **kwargs)

    async def put(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return await self.request("PUT", path, body, **kwargs)

    async def patch(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return await self.request("PATCH", path, body, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Response:
        return await self.request("DELETE", path, **kwargs)


@pytest.fixture
def api(http_client: tornado.httpclient.AsyncHTTPClient, base_url: str) -> Api:
    return Api(http_client, base_url)
