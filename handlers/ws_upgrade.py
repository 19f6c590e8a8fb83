"""Opening a socket: the upgrade checks, the rate limit and the per-process cap."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time

import tornado.web

from handlers.context import AppContext
from handlers.ws import Socket
from realtime.handshake import (
    HandshakeError,
    UpgradeRequest,
    check_upgrade,
    client_address,
    parse_head,
    switching_protocols,
)
from realtime.websocket import CloseCode
from server.logs import log_access

log = logging.getLogger(__name__)

ROUTE = "ws"


def accept_upgrade(
    ctx: AppContext, connection: socket.socket, peer: str, head: bytes, rest: bytes
) -> None:
    """Respond to the upgrade request ``head`` read from a new connection.

    ``rest`` contains bytes received after the head, read as the first frames.
    """
    started = time.perf_counter()
    try:
        request = parse_head(head)
    except HandshakeError as exc:
        _reject(connection, exc, "GET", "/ws", started, None)
        return
    remote_ip = client_address(request.headers, peer, ctx.trusted_proxies)
    open_socket(ctx, connection, remote_ip, request, started, rest)


def open_socket(
    ctx: AppContext,
    connection: socket.socket,
    remote_ip: str,
    request: UpgradeRequest,
    started: float,
    early_data: bytes = b"",
) -> None:
    """Check the upgrade and the limits, then send 101 and start the socket.

    A process that is draining or full still completes the handshake and then
    closes with 1012 or 1013, which clients read as advice to reconnect later. The
    Origin header is not checked: a socket carries only public topics and topics
    opened by a token sent in a message, never by cookies.
    """
    request_id = request.headers.get("x-request-id")
    try:
        accept = check_upgrade(request)
    except HandshakeError as exc:
        _reject(connection, exc, request.method, request.target, started, request_id)
        return

    limiter = ctx.connect_limiter
    if limiter is not None:
        allowed, wait = limiter.allow(remote_ip)
        if not allowed:
            ctx.counters["rejected_rate"] += 1
            retry_after = max(1, round(wait))
            error = HandshakeError(
                429,
                "too_many_requests",
                f"too many new sockets from {remote_ip}; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
            _reject(
                connection, error, request.method, request.target, started, request_id
            )
            return

    # Each frame is a whole message: waiting to coalesce it with the next one
    # (Nagle's algorithm) would only delay it.
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ws = Socket(ctx, connection, remote_ip)
    ws.start(switching_protocols(accept))
    log_access(
        request.method,
        ROUTE,
        request.target,
        101,
        1000.0 * (time.perf_counter() - started),
        request_id,
    )
    if ctx.draining:
        ws.close(CloseCode.SERVICE_RESTART, "server restarting; reconnect")
    elif len(ctx.sockets) >= ctx.settings.max_sockets:
        ctx.counters["rejected_cap"] += 1
        ws.close(CloseCode.TRY_AGAIN_LATER, "server full; try again later")
    elif ws.is_open:
        ctx.sockets.add(ws)
        ctx.counters["opened"] += 1
        ws.feed(early_data)


def _reject(
    connection: socket.socket,
    error: HandshakeError,
    method: str,
    target: str,
    started: float,
    request_id: str | None,
) -> None:
    # The response is a few hundred bytes, which an empty send buffer takes whole.
    with contextlib.suppress(OSError):
        connection.send(error.response())
    connection.close()
    log_access(
        method,
        ROUTE,
        target,
        error.status,
        1000.0 * (time.perf_counter() - started),
        request_id,
    )


class UpgradeHandler(tornado.web.RequestHandler):
    """A WebSocket upgrade on a connection that already carried HTTP requests.

    New connections for /ws never reach Tornado (see server/listener.py). A client
    or proxy may still send the upgrade on a kept-alive connection. This handler
    takes the connection over from Tornado and opens the socket in the same way.
    """

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def get(self) -> None:
        started = time.perf_counter()
        request = UpgradeRequest(
            method=self.request.method or "GET",
            target=self.request.uri or "/ws",
            version=self.request.version,
            headers={
                name.lower(): ", ".join(self.request.headers.get_list(name))
                for name in self.request.headers
            },
        )
        remote_ip = client_address(
            request.headers,
            self.request.remote_ip or "unknown",
            self.ctx.trusted_proxies,
        )
        stream = self.detach()
        # Frames the client sent right after the request head may already sit in the
        # stream's read buffer, which Tornado (6.x) exposes through no public API.
        rest = bytes(stream._read_buffer[: stream._read_buffer_size])
        # The duplicate keeps the connection open once the IOStream closes its own
        # descriptor, and no event loop watches it yet.
        connection = socket.socket(fileno=os.dup(stream.socket.fileno()))
        stream.close()
        connection.setblocking(False)
        open_socket(self.ctx, connection, remote_ip, request, started, rest)

    def write_error(self, status_code: int, **kwargs: object) -> None:
        self.set_header("Content-Type", "application/json")
        if status_code == 405:
            self.set_header("Allow", "GET")
            self.finish(
                b'{"error": {"code": "method_not_allowed", '
                b'"message": "a WebSocket opens with GET", "field": null}}'
            )
            return
        self.finish(
            b'{"error": {"code": "internal_error", '
            b'"message": "the upgrade failed; reconnect", "field": null}}'
        )
