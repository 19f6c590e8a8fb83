"""The one WebSocket endpoint: a socket per tab, carrying all of its topics."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable
from socket import socket as Connection
from typing import Any

import orjson
from tornado.ioloop import IOLoop

from handlers.auth import AuthError, verify_access_token
from handlers.base import OUTAGE_ERRORS
from handlers.context import AppContext
from realtime.frames import encode, ping_frame, text_frame
from realtime.limits import TokenBucket
from realtime.topics import TOPIC_PATTERN, Position
from realtime.websocket import CloseCode, WebSocket
from store import orders

log = logging.getLogger(__name__)

MAX_TOPICS_PER_SOCKET = 128
# Inbound messages are small JSON commands.
MAX_MESSAGE_SIZE = 64 * 1024
# A socket whose unsent data passes this is too slow to keep up and is closed.
MAX_OUTGOING_BUFFER = 1024 * 1024

PING_FRAME = ping_frame()

# Application close codes (4000-4999): a manager socket without valid credentials,
# and one whose manager may not follow the topic.
UNAUTHORIZED = 4001
FORBIDDEN = 4003


class Socket(WebSocket):
    """A client's socket: subscribe and unsubscribe commands, and its topics."""

    __slots__ = (
        "ctx",
        "manager",
        "message_rate",
        "ping_sent_at",
        "pong_received_at",
        "topics",
    )

    def __init__(self, ctx: AppContext, connection: Connection, remote_ip: str) -> None:
        super().__init__(connection, remote_ip, MAX_MESSAGE_SIZE, MAX_OUTGOING_BUFFER)
        settings = ctx.settings
        self.ctx = ctx
        self.topics: set[str] = set()
        self.manager: dict[str, Any] | None = None
        self.message_rate = TokenBucket(
            settings.ws_message_rate, settings.ws_message_burst
        )
        self.ping_sent_at = 0.0
        self.pong_received_at = 0.0

    def allow_frame(self) -> bool:
        if self.message_rate.take():
            return True
        self.ctx.counters["closed_flooding"] += 1
        log.warning(
            "closing a socket from %s that sends too many frames", self.remote_ip
        )
        return False

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            self._send_error(None, "invalid_json", "messages must be JSON objects")
            return None
        if not isinstance(request, dict):
            self._send_error(None, "invalid_json", "messages must be JSON objects")
            return None

        op = request.get("op")
        if op == "auth":
            return self._authenticate(request)
        topic = request.get("topic")
        if not isinstance(topic, str) or not TOPIC_PATTERN.match(topic):
            self._send_error(
                topic if isinstance(topic, str) else None,
                "invalid_topic",
                "topic must look like live:{slug}",
            )
            return None

        if op == "subscribe":
            return self._subscribe(topic, request)
        if op == "unsubscribe":
            self.topics.discard(topic)
            self.ctx.broker.unsubscribe(self, topic)
            return None
        self._send_error(
            topic, "invalid_op", f"op must be subscribe or unsubscribe, got {op!r}"
        )
        return None

    async def _authenticate(self, request: dict[str, Any]) -> None:
        """Check a manager's access token, sent as the socket's first message."""
        if self.manager is not None:
            # One identity per socket: switching would keep the old one's topics.
            self._send_error(None, "already_authenticated", "this socket is signed in")
            return
        token = request.get("token")
        if not isinstance(token, str) or not token:
            self.close(UNAUTHORIZED, "send the access token in token")
            return
        try:
            self.manager = await verify_access_token(
                token, self.ctx.settings.jwt_secret, self.ctx.broker.client
            )
            self.manager["token"] = token
        except AuthError as exc:
            self.close(UNAUTHORIZED, exc.message)
            return
        self.send_frame(
            text_frame(
                encode(
                    {
                        "op": "authenticated",
                        "manager_id": int(self.manager["sub"]),
                        "role": self.manager["role"],
                    }
                )
            )
        )

    async def _authorize(self, topic: str, request: dict[str, Any]) -> bool:
        """Tell whether this socket may follow ``topic``; report or close if not."""
        kind, _, name = topic.partition(":")
        if kind == "live":
            if await self.ctx.lives.exists(name):
                return True
            self._send_error(topic, "unknown_topic", f"there is no live {topic}")
            return False

        if kind == "order":
            # Events go out on the stored code, which is upper case, so a topic in
            # another case would never receive one.
            if name != name.upper():
                self._send_error(
                    topic,
                    "unknown_topic",
                    f"order codes are upper case: subscribe to order:{name.upper()}",
                )
                return False
            if self.manager is not None:
                if not await self.check_still_authorized():
                    return False
                async with self.ctx.pool.acquire() as connection:
                    if await orders.exists(connection, name):
                        return True
                self._send_error(topic, "unknown_topic", f"there is no order {name}")
                return False

            token = request.get("token")
            if isinstance(token, str) and token:
                async with self.ctx.pool.acquire() as connection:
                    if await orders.read_token_opens(connection, name, token):
                        return True
            self._send_error(topic, "forbidden", "send the order's read token in token")
            return False

        if kind in ("managers", "manager"):
            if self.manager is None:
                self.close(
                    UNAUTHORIZED,
                    "manager topics need {op: auth, token} first",
                )
                return False
            if not await self.check_still_authorized():
                return False
            if kind == "manager" and not (
                name.isascii() and name.isdigit() and not name.startswith("0")
            ):
                self._send_error(
                    topic, "unknown_topic", "manager topics are manager:{id}"
                )
                return False
            if (
                kind == "manager"
                and name != self.manager["sub"]
                and self.manager["role"] != "admin"
            ):
                self.close(FORBIDDEN, "only admins follow other managers")
                return False
            if kind == "managers" and not await self.ctx.lives.exists(name):
                self._send_error(topic, "unknown_topic", f"there is no live {name}")
                return False
            return True

        # TODO: chat topics, opened by the cart's session token or a manager.
        self._send_error(topic, "forbidden", f"{kind} topics are not open")
        return False

    async def _subscribe(self, topic: str, request: dict[str, Any]) -> None:
        if topic in self.topics:
            self._send_error(topic, "already_subscribed", "already subscribed")
            return
        if len(self.topics) >= MAX_TOPICS_PER_SOCKET:
            self._send_error(
                topic,
                "too_many_topics",
                f"a socket may follow at most {MAX_TOPICS_PER_SOCKET} topics",
            )
            return

        epoch = request.get("epoch")
        offset = request.get("offset")
        if (epoch is None) != (offset is None) or (
            epoch is not None
            and (
                not isinstance(epoch, str)
                or not isinstance(offset, int)
                or isinstance(offset, bool)
            )
        ):
            self._send_error(
                topic,
                "invalid_position",
                "send epoch (string) and offset (integer) together, or neither",
            )
            return

        # Taken before the first await, so a second subscribe to the same topic in
        # the meantime is refused.
        self.topics.add(topic)
        try:
            if not await self._authorize(topic, request) or not self.is_open:
                # Closed while authorizing: a subscription now would outlive it.
                self.topics.discard(topic)
                return
            subscribed = await self.ctx.broker.subscribe(self, topic, epoch, offset)
        except OUTAGE_ERRORS as exc:
            self.topics.discard(topic)
            log.warning("subscribe to %s failed: %r", topic, exc)
            self._send_error(
                topic, "unavailable", "subscription failed; retry in a few seconds"
            )
            return
        if not subscribed:
            self.topics.discard(topic)

    def on_overflow(self) -> None:
        self.ctx.counters["closed_slow"] += 1
        log.warning(
            "closing a socket from %s that is %d bytes behind",
            self.remote_ip,
            MAX_OUTGOING_BUFFER,
        )

    def send_ping(self) -> None:
        self.send_frame(PING_FRAME)

    def on_pong(self) -> None:
        self.pong_received_at = IOLoop.current().time()

    def ping_timed_out(self) -> None:
        """Drop the connection without a close handshake: the peer is not responding."""
        self.ctx.counters["ping_timeouts"] += 1
        self.abort()

    async def check_still_authorized(self) -> bool:
        """Close a manager socket whose login was revoked or expired since it signed
        in, and return False if it did."""
        if self.manager is None:
            return True
        try:
            await verify_access_token(
                self.manager["token"],
                self.ctx.settings.jwt_secret,
                self.ctx.broker.client,
            )
        except AuthError as exc:
            self.close(UNAUTHORIZED, exc.message)
            return False
        return True

    def advise_reconnect(self, window: float) -> None:
        """Tell the client when to reconnect, then close with 1012.

        Each socket gets its own random delay within ``window`` seconds, so the
        clients of a restarting process come back spread out instead of at once.
        """
        delay_ms = int(random.uniform(0, window) * 1000)
        self.send_frame(text_frame(encode({"op": "reconnect", "delay_ms": delay_ms})))
        self.close(CloseCode.SERVICE_RESTART, "server restarting; reconnect")

    def topic_reset(self, topic: str, position: Position) -> None:
        self.topics.discard(topic)
        self.send_frame(
            text_frame(
                encode(
                    {
                        "op": "reset",
                        "topic": topic,
                        "epoch": position.epoch,
                        "offset": position.offset,
                    }
                )
            )
        )

    def on_close(self) -> None:
        self.ctx.sockets.discard(self)
        for topic in self.topics:
            self.ctx.broker.unsubscribe(self, topic)
        self.topics.clear()

    def _send_error(self, topic: str | None, code: str, message: str) -> None:
        self.send_frame(
            text_frame(
                encode(
                    {"op": "error", "topic": topic, "code": code, "message": message}
                )
            )
        )
