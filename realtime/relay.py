"""The Redis pub/sub relay: brings every published event to this process's sockets.

One pub/sub connection per process, subscribed to exactly the topics that have local
subscribers. The relay remembers the last offset it forwarded per topic. A message
that skips offsets (Redis dropped some, or the connection was lost) is preceded by
the missing events, read from the topic's history. After a reconnect every topic is
caught up the same way, or reset when its epoch changed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime import topics
from realtime.hub import Hub, Subscriber
from realtime.topics import Position, TopicLog

log = logging.getLogger(__name__)

# Keeps the pub/sub connection subscribed even when no socket follows a topic, so the
# reader always has a connection to wait on.
_IDLE_CHANNEL = "vitrine:relay:idle"

SUBSCRIBE_TIMEOUT = 5.0

# Seconds between unsubscribing the channels of topics with no local subscribers.
SWEEP_INTERVAL = 10.0


class Relay:
    def __init__(
        self,
        client: redis.Redis,
        topic_log: TopicLog,
        hub: Hub,
        on_reset: Callable[[str, Position, set[Subscriber]], None],
    ) -> None:
        self._client = client
        self._topic_log = topic_log
        self._hub = hub
        self._on_reset = on_reset
        self._pubsub = client.pubsub()
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._last: dict[str, Position] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = False

    async def start(self) -> None:
        await self._pubsub.subscribe(_IDLE_CHANNEL)
        self.connected = True
        self._tasks = [
            asyncio.create_task(self._run(), name="redis-relay"),
            asyncio.create_task(self._sweep_forever(), name="redis-relay-sweep"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pubsub.aclose()

    async def subscribe(self, topic: str) -> None:
        """Subscribe the process to ``topic`` and wait until Redis confirms it."""
        future = self._confirmed.get(topic)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._confirmed[topic] = future
            try:
                await self._pubsub.subscribe(topics.channel(topic))
            except BaseException:
                self._confirmed.pop(topic, None)
                raise
        await asyncio.wait_for(asyncio.shield(future), SUBSCRIBE_TIMEOUT)

    async def sweep(self) -> None:
        """Unsubscribe from the channels of topics no local socket follows."""
        idle = [
            topic for topic in self._confirmed if not self._hub.has_subscribers(topic)
        ]
        if not idle:
            return
        for topic in idle:
            self._confirmed.pop(topic, None)
            self._last.pop(topic, None)
        try:
            await self._pubsub.unsubscribe(*(topics.channel(topic) for topic in idle))
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # A channel left subscribed costs only messages that reach no socket.
            log.warning("could not unsubscribe from %d idle topics: %s", len(idle), exc)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            await self.sweep()

    def known_position(self, topic: str) -> Position | None:
        """Return the last position forwarded for a confirmed topic, if connected."""
        future = self._confirmed.get(topic)
        if not self.connected or future is None or not future.done():
            return None
        return self._last.get(topic)

    def note_position(self, topic: str, position: Position) -> None:
        """Record a position read outside the relay so older messages are dropped."""
        last = self._last.get(topic)
        if (
            last is None
            or last.epoch != position.epoch
            or last.offset < position.offset
        ):
            self._last[topic] = position

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
                if message is not None:
                    await self._handle(message)
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self.connected = False
                log.warning(
                    "Redis pub/sub connection lost (%s); retry in %.1fs", exc, delay
                )
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 10.0)
                await self._reconnect()
            except Exception:
                log.exception("relay failed to handle a message; continuing")

    async def _reconnect(self) -> None:
        # Resubscribe only to topics that still have local subscribers.
        for topic in [
            topic for topic in self._confirmed if not self._hub.has_subscribers(topic)
        ]:
            self._confirmed.pop(topic, None)
            self._last.pop(topic, None)
            self._pubsub.channels.pop(topics.channel(topic).encode(), None)
        try:
            # Reconnecting runs redis-py's on_connect callback, which subscribes to
            # every channel the PubSub object still lists.
            await self._pubsub.connect()  # type: ignore[no-untyped-call]
            await self._pubsub.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("Redis still unreachable: %s", exc)
            return
        self.connected = True
        log.info("Redis pub/sub reconnected; catching up %d topics", len(self._last))
        for topic in list(self._hub.topics()):
            await self._catch_up(topic, None)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if message["channel"] is None:
            # A pong or another reply that belongs to no channel.
            return
        channel = message["channel"].decode()
        if kind == "subscribe":
            topic = channel.removeprefix(topics.KEY_PREFIX)
            future = self._confirmed.get(topic)
            if future is not None and not future.done():
                future.set_result(None)
            return
        if kind != "message" or not channel.startswith(topics.KEY_PREFIX):
            return

        topic = channel.removeprefix(topics.KEY_PREFIX)
        epoch, offset, published_ms, event = topics.parse_message(message["data"])
        last = self._last.get(topic)
        if last is not None and last.epoch == epoch:
            if offset <= last.offset:
                return
            if offset > last.offset + 1:
                await self._catch_up(topic, Position(epoch, offset - 1))
        elif last is not None:
            await self._catch_up(topic, None)
            return

        self._last[topic] = Position(epoch, offset)
        self._hub.deliver(topic, offset, event, published_ms)

    async def _catch_up(self, topic: str, upto: Position | None) -> None:
        """Forward the events after the last forwarded offset, up to ``upto``.

        With ``upto`` None the topic's current position is read from Redis. A changed
        epoch or a trimmed history resets the topic's local subscribers instead.
        """
        last = self._last.get(topic)
        current = upto or await self._topic_log.position(topic)
        if last is None:
            self._last[topic] = current
            return
        if last.epoch != current.epoch:
            self._reset(topic, current)
            return
        if current.offset < last.offset and upto is None:
            # Redis came back from an older snapshot with the same epoch.
            log.warning(
                "offsets of %s went back from %d to %d; starting a new epoch",
                topic,
                last.offset,
                current.offset,
            )
            self._reset(topic, await self._topic_log.bump_epoch(topic, current.epoch))
            return
        if current.offset <= last.offset:
            return

        events = await self._topic_log.history_range(
            topic, last.offset + 1, current.offset
        )
        if not events or events[0][0] != last.offset + 1:
            self._reset(topic, current)
            return
        log.info(
            "relay caught up %d missed events on %s (offsets %d-%d)",
            len(events),
            topic,
            events[0][0],
            events[-1][0],
        )
        for offset, event in events:
            self._hub.deliver(topic, offset, event)
        self._last[topic] = Position(current.epoch, events[-1][0])

    def _reset(self, topic: str, current: Position) -> None:
        log.warning("topic %s can no longer be recovered; resetting its sockets", topic)
        self._last[topic] = current
        self._on_reset(topic, current, self._hub.drop_topic(topic))
