"""One Vitrine process: HTTP and WebSocket on one port, until SIGTERM."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import resource
import signal

import asyncpg
import redis.asyncio as redis
import tornado.web
from tornado.httpserver import HTTPServer

from handlers.context import AppContext
from handlers.ws_upgrade import accept_upgrade
from realtime.broker import Broker, connect_redis
from realtime.heartbeat import Heartbeat
from realtime.limits import AddressLimiter
from server.app import make_app
from server.listener import Listener
from server.scheduler import Scheduler
from server.settings import Settings
from store.pool import create_pool

log = logging.getLogger(__name__)

# File descriptors kept for PostgreSQL, Redis, HTTP requests and HAProxy checks when
# sizing the socket cap from the open-file limit.
RESERVED_FDS = 500


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
    client = connect_redis(settings)
    while True:
        broker = Broker(client, settings)
        try:
            await broker.start()
            return broker
        except (OSError, redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("Redis unreachable (%r); retry in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def socket_cap(settings: Settings) -> int:
    """Raise the open-file limit to its hard maximum and fit the socket cap under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    cap = min(settings.max_sockets, max(soft - RESERVED_FDS, 1))
    if cap < settings.max_sockets:
        log.warning(
            "socket cap lowered from %d to %d to stay under the open-file limit %d",
            settings.max_sockets,
            cap,
            soft,
        )
    return cap


# Seconds between checks that manager sockets' logins were not revoked or expired.
MANAGER_RECHECK_INTERVAL = 15.0


async def check_manager_sockets(ctx: AppContext) -> None:
    """Close manager sockets whose tokens were revoked or expired since sign-in."""
    while True:
        await asyncio.sleep(MANAGER_RECHECK_INTERVAL)
        for socket in [s for s in ctx.sockets if s.manager is not None]:
            try:
                await socket.check_still_authorized()
            except (OSError, redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("could not recheck manager sockets: %r", exc)
                break


def make_server(
    ctx: AppContext, app: tornado.web.Application | None = None
) -> tuple[HTTPServer, Listener]:
    """Create the HTTP server for ``app`` (the Vitrine application by default) and
    the listener that hands it every connection but new sockets."""
    settings = ctx.settings
    server = HTTPServer(
        app or make_app(ctx),
        # The handlers read X-Real-Ip and X-Forwarded-For themselves, and only from
        # VITRINE_TRUSTED_PROXIES. Tornado's xheaders would believe any peer.
        xheaders=False,
        # Over-limit bodies get the JSON 413 from the handler, which reads the
        # Content-Length first; this cap only stops a body with no length.
        max_body_size=max(settings.max_body_bytes, settings.max_image_bytes) * 2,
        idle_connection_timeout=75,
    )
    listener = Listener(server, functools.partial(accept_upgrade, ctx))
    return server, listener


async def serve(settings: Settings) -> None:
    settings = settings.with_max_sockets(socket_cap(settings))
    pool = await _connect_pool(settings)
    broker = await _start_broker(settings)
    ctx = AppContext(
        settings=settings,
        pool=pool,
        broker=broker,
        connect_limiter=AddressLimiter(
            settings.ws_connect_rate, settings.ws_connect_burst
        ),
    )
    heartbeat = Heartbeat(
        ctx.sockets, settings.ws_ping_interval, settings.ws_ping_timeout
    )
    heartbeat_task = asyncio.create_task(heartbeat.run(), name="heartbeat")
    scheduler_task = asyncio.create_task(
        Scheduler(pool, broker).run(), name="scheduler"
    )
    revocation_task = asyncio.create_task(
        check_manager_sockets(ctx), name="manager-socket-revocation"
    )
    outbox_task = asyncio.create_task(ctx.outbox.run(), name="outbox")

    server, listener = make_server(ctx)
    listener.listen(settings.port, settings.host, backlog=4096)

    # Everything made so far lives as long as the process: move it out of the cyclic
    # garbage collector's reach so a collection does not walk it again and again.
    gc.collect()
    gc.freeze()

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    log.info(
        "serving on %s:%d (at most %d sockets)",
        settings.host,
        settings.port,
        settings.max_sockets,
    )

    await stopping.wait()
    heartbeat_task.cancel()
    scheduler_task.cancel()
    revocation_task.cancel()
    outbox_task.cancel()
    await shutdown(ctx, server, listener)


async def shutdown(ctx: AppContext, server: HTTPServer, listener: Listener) -> None:
    """Leave the rotation, send sockets elsewhere, finish requests, then stop."""
    settings = ctx.settings
    log.info(
        "shutting down: %d sockets, %d requests in flight",
        len(ctx.sockets),
        ctx.requests_in_flight,
    )
    # /readyz fails from now on and the listener closes, so HAProxy sends new
    # connections to the other processes.
    ctx.draining = True
    listener.stop()

    for socket in list(ctx.sockets):
        socket.advise_reconnect(settings.reconnect_window)

    if ctx.requests_in_flight > 0:
        ctx.idle.clear()
        try:
            await asyncio.wait_for(ctx.idle.wait(), settings.shutdown_timeout)
        except TimeoutError:
            log.error(
                "%d requests still in flight after %.0fs; stopping anyway",
                ctx.requests_in_flight,
                settings.shutdown_timeout,
            )

    await server.close_all_connections()
    # Rows left here would reset their topics on another process for nothing.
    await ctx.outbox.flush()
    await ctx.broker.stop()
    await ctx.broker.client.aclose()
    await ctx.pool.close()
    log.info("stopped")
