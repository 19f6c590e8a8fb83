"""One Vitrine process: HTTP and WebSocket on one port, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

import asyncpg
import redis.asyncio as redis
from tornado.httpserver import HTTPServer

from handlers.context import AppContext
from handlers.ws import CloseCode
from realtime.broker import Broker
from server.app import make_app
from server.settings import Settings
from store.pool import create_pool

log = logging.getLogger(__name__)


async def _connect_pool(settings: Settings) -> asyncpg.Pool:
    """Open the pool, retrying while PostgreSQL is not up yet."""
    delay = 0.5
    while True:
        try:
            return await create_pool(settings)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("PostgreSQL unreachable (%r); retry in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def _start_broker(settings: Settings) -> Broker:
    delay = 0.5
    client = redis.from_url(
        settings.redis_url, socket_connect_timeout=2.0, health_check_interval=0
    )
    while True:
        broker = Broker(client, settings.history_size, settings.history_ttl)
        try:
            await broker.start()
            return broker
        except (OSError, redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("Redis unreachable (%r); retry in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def serve(settings: Settings) -> None:
    pool = await _connect_pool(settings)
    broker = await _start_broker(settings)
    ctx = AppContext(settings=settings, pool=pool, broker=broker)
    app = make_app(ctx)
    server = HTTPServer(
        app,
        xheaders=True,
        # Over-limit bodies get the JSON 413 from the handler, which sees the
        # Content-Length first; this cap only stops a body with no length.
        max_body_size=settings.max_body_bytes * 2,
        idle_connection_timeout=75,
    )
    server.listen(settings.port, settings.host)

    # Everything made so far lives as long as the process: move it out of the cyclic
    # garbage collector's reach so a collection does not walk it again and again.
    gc.collect()
    gc.freeze()

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    log.info("serving on %s:%d", settings.host, settings.port)

    await stopping.wait()
    await shutdown(ctx, server)


async def shutdown(ctx: AppContext, server: HTTPServer) -> None:
    """Leave the rotation, close sockets, finish requests in flight, then stop."""
    settings = ctx.settings
    log.info(
        "shutting down: %d sockets, %d requests in flight",
        len(ctx.sockets),
        ctx.requests_in_flight,
    )
    ctx.draining = True
    server.stop()

    for socket in list(ctx.sockets):
        socket.close(CloseCode.GOING_AWAY, "server shutting down")  # type: ignore[attr-defined]

    if ctx.requests_in_flight > 0:
        ctx.idle.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.idle.wait(), settings.shutdown_timeout)
    if ctx.requests_in_flight > 0:
        log.error(
            "%d requests still in flight after %.0fs; stopping anyway",
            ctx.requests_in_flight,
            settings.shutdown_timeout,
        )

    await server.close_all_connections()
    await ctx.broker.stop()
    await ctx.broker.client.aclose()
    await ctx.pool.close()
    log.info("stopped")
