"""The one WebSocket endpoint: a socket per tab, carrying all of its topics."""

from __future__ import annotations

import enum
import logging
from typing import Any

import orjson
import tornado.websocket
from tornado.iostream import IOStream, StreamBufferFullError, StreamClosedError

from handlers.base import OUTAGE_ERRORS
from handlers.context import AppContext
from realtime.frames import encode, text_frame
from realtime.topics import TOPIC_PATTERN, Position

log = logging.getLogger(__name__)

MAX_TOPICS_PER_SOCKET = 128
# A socket whose unsent data passes this is too slow to keep up and is closed.
MAX_OUTGOING_BUFFER = 1024 * 1024


class CloseCode(enum.IntEnum):
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013


class SocketHandler(tornado.websocket.WebSocketHandler):
    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.topics: set[str] = set()
        self._stream: IOStream | None = None

    def check_origin(self, origin: str) -> bool:
        # The socket carries only public topics or topics opened by a secret token
        # sent in a message, never by cookies, so any origin may connect.
        return True

    def open(self, *args: str, **kwargs: str) -> None:
        if self.ctx.draining:
            self.close(CloseCode.TRY_AGAIN_LATER, "server restarting; reconnect")
            return
        assert self.ws_connection is not None
        self._stream = self.ws_connection.stream
        assert self._stream is not None
        self._stream.max_write_buffer_size = MAX_OUTGOING_BUFFER
        self.ctx.sockets.add(self)

    async def on_message(self, message: str | bytes) -> None:
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            self._send_error(None, "invalid_json", "messages must be JSON objects")
            return
        if not isinstance(request, dict):
            self._send_error(None, "invalid_json", "messages must be JSON objects")
            return

        op = request.get("op")
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

    async def _subscribe(self, topic: str, request: dict[str, Any]) -> None:
        if not topic.startswith("live:"):
            # TODO: authorise order, chat and manager topics by their tokens.
            self._send_error(topic, "forbidden", "only live topics are open to buyers")
            return
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

        self.topics.add(topic)
        try:
            subscribed = await self.ctx.broker.subscribe(self, topic, epoch, offset)
        except OUTAGE_ERRORS as exc:
            self.topics.discard(topic)
            log.warning("subscribe to %s failed, Redis unreachable: %r", topic, exc)
            self._send_error(
                topic, "unavailable", "subscription failed; retry in a few seconds"
            )
            return
        if not subscribed:
            self.topics.discard(topic)

    def send_frame(self, frame: bytes) -> None:
        """Queue a frame built once for every socket; close this one if it lags."""
        stream = self._stream
        if stream is None or stream.closed():
            return
        try:
            stream.write(frame)
        except StreamClosedError:
            return
        except StreamBufferFullError:
            log.warning("closing a socket that is %d bytes behind", MAX_OUTGOING_BUFFER)
            # Let the close frame past the cap: the client may still read it.
            stream.max_write_buffer_size = None
            self.close(CloseCode.TRY_AGAIN_LATER, "too slow to keep up")

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
