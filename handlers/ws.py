"""The one WebSocket endpoint: a socket per tab, carrying all of its topics."""

from __future__ import annotations

import enum
import logging
import random
from typing import Any

import orjson
import tornado.web
import tornado.websocket
from tornado.httputil import HTTPHeaders
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamBufferFullError, StreamClosedError

from handlers.auth import AuthError, verify_access_token
from handlers.base import OUTAGE_ERRORS
from handlers.context import AppContext
from realtime.frames import encode, ping_frame, text_frame
from realtime.limits import TokenBucket
from realtime.topics import TOPIC_PATTERN, Position
from store import orders

log = logging.getLogger(__name__)

MAX_TOPICS_PER_SOCKET = 128
# A socket whose unsent data passes this is too slow to keep up and is closed.
MAX_OUTGOING_BUFFER = 1024 * 1024

PING_FRAME = ping_frame()
# Stands in for the headers of every upgraded socket; nothing writes to it.
_EMPTY_HEADERS = HTTPHeaders()


class CloseCode(enum.IntEnum):
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    # Application codes (4000-4999): a manager socket without valid credentials,
    # and one whose manager may not follow the topic.
    UNAUTHORIZED = 4001
    FORBIDDEN = 4003


class SocketHandler(tornado.websocket.WebSocketHandler):
    ctx: AppContext
    ping_sent_at: float
    pong_received_at: float

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.topics: set[str] = set()
        self._stream: IOStream | None = None
        self.ping_sent_at = 0.0
        self.pong_received_at = 0.0
        self._retry_after = 1
        self.manager: dict[str, Any] | None = None

    def prepare(self) -> None:
        limiter = self.ctx.connect_limiter
        if limiter is None:
            return
        address = self.request.remote_ip or "unknown"
        allowed, wait = limiter.allow(address)
        if not allowed:
            self.ctx.counters["rejected_rate"] += 1
            self._retry_after = max(1, round(wait))
            raise tornado.web.HTTPError(
                429, "too many new sockets from %s", address, reason="Too Many Requests"
            )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # send_error clears headers set before the error, so Retry-After goes here.
        if status_code == 429:
            self.set_header("Retry-After", str(self._retry_after))
        self.set_header("Content-Type", "application/json")
        self.finish(
            orjson.dumps(
                {
                    "error": {
                        "code": "too_many_requests" if status_code == 429 else "error",
                        "message": self._reason,
                        "field": None,
                    }
                }
            )
        )

    def check_origin(self, origin: str) -> bool:
        # The socket carries only public topics or topics opened by a secret token
        # sent in a message, never by cookies, so any origin may connect.
        return True

    def open(self, *args: str, **kwargs: str) -> None:
        settings = self.ctx.settings
        if self.ctx.draining:
            self.close(CloseCode.SERVICE_RESTART, "server restarting; reconnect")
            return
        if len(self.ctx.sockets) >= settings.max_sockets:
            self.ctx.counters["rejected_cap"] += 1
            self.close(CloseCode.TRY_AGAIN_LATER, "server full; try again later")
            return

        assert self.ws_connection is not None
        self._stream = self.ws_connection.stream
        assert self._stream is not None
        self._stream.max_write_buffer_size = MAX_OUTGOING_BUFFER
        self._messages = TokenBucket(
            settings.ws_message_rate, settings.ws_message_burst
        )
        self._drop_upgrade_state()
        self.ctx.sockets.add(self)
        self.ctx.counters["opened"] += 1

    def _drop_upgrade_state(self) -> None:
        """Release what only the HTTP upgrade needed.

        A socket lives for hours and a process keeps tens of thousands, so the
        request's headers and arguments and the handler's template namespace would
        cost kilobytes each for nothing.
        """
        self.remote_ip = self.request.remote_ip or "unknown"
        request = self.request
        request.headers = _EMPTY_HEADERS
        request.query_arguments = {}
        request.body_arguments = {}
        request.arguments = {}
        request.files = {}
        self._headers = _EMPTY_HEADERS
        self.ui = None  # type: ignore[assignment]
        self.path_args = []
        self.path_kwargs = {}

    async def on_message(self, message: str | bytes) -> None:
        if self._stream is None:
            # Closed already; Tornado still hands over messages it had read.
            return
        if not self._messages.take():
            self.ctx.counters["closed_flooding"] += 1
            self.close(CloseCode.POLICY_VIOLATION, "too many messages; slow down")
            self._stream = None
            return
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            self._send_error(None, "invalid_json", "messages must be JSON objects")
            return
        if not isinstance(request, dict):
            self._send_error(None, "invalid_json", "messages must be JSON objects")
            return

        op = request.get("op")
        if op == "auth":
            await self._authenticate(request)
            return
        topic = request.get("topic")
        if not isinstance(topic, str) or not TOPIC_PATTERN.match(topic):
            self._send_error(
                topic if isinstance(topic, str) else None,
                "invalid_topic",
                "topic must look like live:{slug}",
            )
            return

        if op == "subscribe":
            await self._subscribe(topic, request)
        elif op == "unsubscribe":
            self.topics.discard(topic)
            self.ctx.broker.unsubscribe(self, topic)
        else:
            self._send_error(
                topic, "invalid_op", f"op must be subscribe or unsubscribe, got {op!r}"
            )

    async def _authenticate(self, request: dict[str, Any]) -> None:
        """Check a manager's access token, sent as the socket's first message."""
        if self.manager is not None:
            # One identity per socket: switching would keep the old one's topics.
            self._send_error(None, "already_authenticated", "this socket is signed in")
            return
        token = request.get("token")
        if not isinstance(token, str) or not token:
            self.close(CloseCode.UNAUTHORIZED, "send the access token in token")
            return
        try:
            self.manager = await verify_access_token(
                token, self.ctx.settings.jwt_secret, self.ctx.broker.client
            )
            self.manager["token"] = token
        except AuthError as exc:
            self.close(CloseCode.UNAUTHORIZED, exc.message)
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
            if self.manager is not None:
                return True
            token = request.get("token")
            if isinstance(token, str) and token:
                async with self.ctx.pool.acquire() as connection:
                    if await orders.read_token_opens(connection, name.upper(), token):
                        return True
            self._send_error(topic, "forbidden", "send the order's read token in token")
            return False

        if kind in ("managers", "manager"):
            if self.manager is None:
                self.close(
                    CloseCode.UNAUTHORIZED,
                    "manager topics need {op: auth, token} first",
                )
                return False
            if kind == "manager" and not (name.isascii() and name.isdigit()):
                self._send_error(
                    topic, "unknown_topic", "manager topics are manager:{id}"
                )
                return False
            if (
                kind == "manager"
                and name != self.manager["sub"]
                and self.manager["role"] != "admin"
            ):
                self.close(CloseCode.FORBIDDEN, "only admins follow other managers")
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
            and (not isinstance(epoch, str) or not isinstance(offset, int))
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
            if not await self._authorize(topic, request):
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

    def send_frame(self, frame: bytes) -> None:
        """Send a frame built once for every socket; close this one if it lags.

        While nothing is queued the frame goes straight to the socket, which skips
        the IOStream's bookkeeping on the fan-out path. Only what the kernel does not
        take at once is queued on the stream.
        """
        stream = self._stream
        if stream is None:
            return
        if not stream._write_buffer and not stream.closed():
            try:
                sent = stream.socket.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                # The read side notices the broken connection and closes it.
                return
            if sent == len(frame):
                return
            frame = frame[sent:]
        try:
            stream.write(frame)
        except StreamClosedError:
            return
        except StreamBufferFullError:
            self.ctx.counters["closed_slow"] += 1
            log.warning(
                "closing a socket from %s that is %d bytes behind",
                self.remote_ip,
                MAX_OUTGOING_BUFFER,
            )
            # Let the close frame past the cap: the client may still read it.
            stream.max_write_buffer_size = None
            self.close(CloseCode.TRY_AGAIN_LATER, "too slow to keep up")

    def send_ping(self) -> None:
        self.send_frame(PING_FRAME)

    def on_pong(self, data: bytes) -> None:
        self.pong_received_at = IOLoop.current().time()

    def abort(self) -> None:
        """Drop the connection without a close handshake: the peer is not responding."""
        self.ctx.counters["ping_timeouts"] += 1
        if self._stream is not None:
            self._stream.close()

    async def check_still_authorized(self) -> None:
        """Close a manager socket whose login was revoked since it signed in."""
        if self.manager is None:
            return
        try:
            await verify_access_token(
                self.manager["token"],
                self.ctx.settings.jwt_secret,
                self.ctx.broker.client,
            )
        except AuthError as exc:
            self.close(CloseCode.UNAUTHORIZED, exc.message)

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
        self._stream = None

    def _send_error(self, topic: str | None, code: str, message: str) -> None:
        self.send_frame(
            text_frame(
                encode(
                    {"op": "error", "topic": topic, "code": code, "message": message}
                )
            )
        )
