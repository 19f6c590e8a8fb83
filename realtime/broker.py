"""Publishing and subscribing: the one object handlers use for realtime."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime.frames import encode, text_frame
from realtime.hub import Hub
from realtime.presence import Presence
from realtime.relay import Relay
from realtime.topics import HistoryLimits, Position, Recovery, TopicLog
from server.settings import Settings

log = logging.getLogger(__name__)

PUBLISH_ATTEMPTS = 4
# How often topics whose events were lost are checked for Redis being back, seconds.
REPAIR_INTERVAL = 1.0


def connect_redis(settings: Settings) -> redis.Redis:
    """Create the Redis client of a process; no connection is made yet."""
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        # A reconnect storm subscribes thousands of sockets at once: callers wait
        # for a free connection instead of failing when all are busy.
        max_connections=64,
        timeout=settings.redis_timeout,
        socket_connect_timeout=2.0,
        # Commands fail instead of hanging on an unresponsive Redis; pub/sub reads
        # wait without this limit.
        socket_timeout=settings.redis_timeout,
        health_check_interval=0,
    )
    return redis.Redis(connection_pool=pool)


class Socket(Protocol):
    """A subscriber socket: takes frames and hears when a topic was reset."""

    def send_frame(self, frame: bytes) -> None: ...

    def topic_reset(self, topic: str, position: Position) -> None: ...


class Broker:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.hub = Hub()
        limits = HistoryLimits(
            live_size=settings.history_live_size,
            live_ttl=settings.history_live_ttl,
            private_size=settings.history_private_size,
            private_ttl=settings.history_private_ttl,
        )
        self.topic_log = TopicLog(client, limits)
        self.relay = Relay(client, self.topic_log, self.hub, self._reset_sockets)
        self.presence = Presence(
            client, self.topic_log, self._live_counts, settings.presence_interval
        )
        self._presence_task: asyncio.Task[None] | None = None
        # Topics with an event that never reached Redis, waiting for a new epoch.
        self.lost_topics: set[str] = set()
        self._repair_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.relay.start()
        self._repair_task = asyncio.create_task(
            self._repair_lost_topics(), name="repair-lost-topics"
        )
        if self.presence.interval > 0:
            self._presence_task = asyncio.create_task(
                self.presence.run(), name="presence"
            )

    async def stop(self) -> None:
        if self._repair_task is not None:
            self._repair_task.cancel()
            await asyncio.gather(self._repair_task, return_exceptions=True)
        if self._presence_task is not None:
            self._presence_task.cancel()
            await asyncio.gather(self._presence_task, return_exceptions=True)
            try:
                await self.presence.withdraw()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("could not withdraw presence report: %s", exc)
        await self.relay.stop()

    def _live_counts(self) -> dict[str, int]:
        return {
            topic: self.hub.subscriber_count(topic)
            for topic in self.hub.topics()
            if topic.startswith("live:")
        }

    async def publish(self, topic: str, event_type: str, data: Any) -> Position | None:
        """Publish an event after its change was committed.

        Retries for a few seconds while Redis is unreachable. Returns None when every
        attempt failed: the change stays committed, and once Redis responds again the
        topic gets a new epoch, so every subscriber is reset and refetches the state.
        """
        delay = 0.2
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                return await self.topic_log.publish(topic, event_type, data)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if attempt == PUBLISH_ATTEMPTS:
                    log.error(
                        "event %s on %s lost after %d attempts: %s",
                        event_type,
                        topic,
                        attempt,
                        exc,
                    )
                    self.lost_topics.add(topic)
                    return None
                log.warning(
                    "publishing %s on %s failed (%s); retry %d",
                    event_type,
                    topic,
                    exc,
                    attempt,
                )
                await asyncio.sleep(delay)
                delay *= 2
        return None

    async def _repair_lost_topics(self) -> None:
        while True:
            await asyncio.sleep(REPAIR_INTERVAL)
            for topic in list(self.lost_topics):
                try:
                    await self.resync(topic)
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    break
                self.lost_topics.discard(topic)

    async def resync(self, topic: str) -> None:
        """Give ``topic`` a new epoch and announce it, so every relay resets its
        subscribers, which then refetch the state over HTTP."""
        current = await self.topic_log.position(topic)
        await self.topic_log.bump_epoch(topic, current.epoch)
        # The first message of the new epoch is what makes each relay notice it.
        await self.topic_log.publish(topic, "topic.resynced", {})
        log.info("topic %s resynced after a lost event", topic)

    async def position(self, topic: str) -> Position:
        return await self.topic_log.position(topic)

    async def subscribe(
        self,
        socket: Socket,
        topic: str,
        epoch: str | None,
        offset: int | None,
    ) -> bool:
        """Subscribe ``socket`` to ``topic``, sending what it missed since ``offset``.

        Sends ``subscribed`` then the missed events, or ``reset`` when they are gone;
        returns False after a reset. Live events queue up while the history is read,
        so none is lost or sent twice.
        """
        self.hub.add_pending(topic, socket)
        try:
            await self.relay.subscribe(topic)
            known = self.relay.known_position(topic)
            if epoch is None or offset is None:
                # The relay's last position is as good as Redis's: anything newer
                # reaches this socket through the pending queue. It saves a round
                # trip per socket in a reconnect storm.
                position = known or await self.topic_log.position(topic)
                self.relay.note_position(topic, position)
                socket.send_frame(_control("subscribed", topic, position))
                self.hub.promote(topic, socket, position.offset)
                return True

            if known == Position(epoch, offset):
                recovery = Recovery(known, [], reset=False)
            else:
                recovery = await self.topic_log.recover(topic, epoch, offset)
        except BaseException:
            self.hub.remove(topic, socket)
            raise

        self.relay.note_position(topic, recovery.position)
        if recovery.reset:
            self.hub.remove(topic, socket)
            socket.send_frame(_control("reset", topic, recovery.position))
            return False

        socket.send_frame(_control("subscribed", topic, Position(epoch, offset)))
        last_offset = offset
        for event_offset, event in recovery.events:
            socket.send_frame(text_frame(event))
            last_offset = event_offset
        self.hub.promote(topic, socket, last_offset)
        return True

    def unsubscribe(self, socket: Socket, topic: str) -> None:
        # The relay drops Redis channels with no local subscribers on its next
        # sweep, so a topic that is left and joined again at once keeps its channel.
        self.hub.remove(topic, socket)

    def _reset_sockets(self, topic: str, position: Position, sockets: set[Any]) -> None:
        for socket in sockets:
            socket.topic_reset(topic, position)


def _control(op: str, topic: str, position: Position) -> bytes:
    return text_frame(
        encode(
            {
                "op": op,
                "topic": topic,
                "epoch": position.epoch,
                "offset": position.offset,
            }
        )
    )
