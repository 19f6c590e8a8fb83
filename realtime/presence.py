"""Viewers of each live, counted across every process and host.

Each process writes its own counts to a Redis hash that expires after a few seconds,
so a process that dies drops out on its own. One process at a time, holding a short
lease, adds the hashes up and publishes a ``viewers.changed`` event on a live topic
when its count changed, at most once a second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime.topics import TopicLog

log = logging.getLogger(__name__)

PREFIX = "vitrine:presence:"
PROCESSES_KEY = PREFIX + "processes"
LEADER_KEY = PREFIX + "leader"
PEAKS_KEY = PREFIX + "peaks"
TOTALS_KEY = PREFIX + "totals"

# A process that has not reported for this long is taken as gone.
PROCESS_TTL = 5
# A count that moved by less than 1% is still published after this many seconds.
STALE_AFTER = 5.0

_RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


def worth_publishing(
    previous: int | None, count: int, published_at: float, now: float
) -> bool:
    """Tell whether a viewer count is worth a broadcast.

    Any change of a small crowd is. For a large one, a change of 1% or more is, and a
    smaller one only after STALE_AFTER seconds: every event reaches every viewer, so
    this spares a broadcast a second during a reconnect storm.
    """
    if previous == count:
        return False
    if previous is None:
        return True
    if abs(count - previous) >= max(1, previous // 100):
        return True
    return now - published_at >= STALE_AFTER


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Presence:
    def __init__(
        self,
        client: redis.Redis,
        topic_log: TopicLog,
        local_counts: Callable[[], dict[str, int]],
        interval: float,
    ) -> None:
        self.interval = interval
        self._client = client
        self._topic_log = topic_log
        self._local_counts = local_counts
        self._id = process_id()
        self._renew_lease = client.register_script(_RENEW_LEASE)
        self._published: dict[str, int] = {}
        self._published_at: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            try:
                await self.report()
                if await self._hold_lease():
                    await self.publish_totals()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("presence report failed, Redis unreachable: %s", exc)
            await asyncio.sleep(self.interval)

    async def report(self) -> None:
        """Write this process's counts, replacing the previous report."""
        key = PREFIX + "process:" + self._id
        counts: dict[Any, Any] = {
            topic: count for topic, count in self._local_counts().items() if count
        }
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if counts:
                pipe.hset(key, mapping=counts)
            pipe.expire(key, PROCESS_TTL)
            pipe.zadd(PROCESSES_KEY, {self._id: time.time()})
            await pipe.execute()

    async def withdraw(self) -> None:
        """Remove this process's report at once, on a clean shutdown."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(PREFIX + "process:" + self._id)
            pipe.zrem(PROCESSES_KEY, self._id)
            await pipe.execute()

    async def _hold_lease(self) -> bool:
        lease_ms = int(self.interval * 3 * 1000)
        held = await self._renew_lease(keys=[LEADER_KEY], args=[self._id, lease_ms])
        return bool(held)

    async def totals(self) -> dict[str, int]:
        """Add up the counts of every process that reported recently."""
        await self._client.zremrangebyscore(
            PROCESSES_KEY, "-inf", time.time() - PROCESS_TTL
        )
        processes: Any = await self._client.zrange(PROCESSES_KEY, 0, -1)
        async with self._client.pipeline(transaction=False) as pipe:
            for process in processes:
                pipe.hgetall(PREFIX + "process:" + process.decode())
            reports = await pipe.execute()

        totals: dict[str, int] = {}
        for report in reports:
            for topic, count in report.items():
                name = topic.decode()
                totals[name] = totals.get(name, 0) + int(count)
        return totals

    async def publish_totals(self) -> None:
        if not self._published:
            # A new lease holder starts from what the previous one published, so a
            # change of holder does not send every count again.
            published: Any = await self._client.hgetall(TOTALS_KEY)
            self._published = {
                topic.decode(): int(count) for topic, count in published.items()
            }
        totals = await self.totals()
        now = time.monotonic()
        changed = {
            topic: count
            for topic, count in totals.items()
            if self._worth_publishing(topic, count, now)
        }
        # Topics whose last viewer left drop to zero once.
        for topic in self._published:
            if topic not in totals and self._published[topic] != 0:
                changed[topic] = 0
        if not changed:
            return

        async with self._client.pipeline(transaction=False) as pipe:
            for topic, count in changed.items():
                pipe.hset(TOTALS_KEY, topic, count)
            await pipe.execute()
        for topic, count in changed.items():
            peak = await self._record_peak(topic, count)
            await self._topic_log.publish(
                topic, "viewers.changed", {"viewers": count, "peak": peak}
            )
            self._published[topic] = count
            self._published_at[topic] = now

    def _worth_publishing(self, topic: str, count: int, now: float) -> bool:
        return worth_publishing(
            self._published.get(topic), count, self._published_at.get(topic, 0.0), now
        )

    async def _record_peak(self, topic: str, count: int) -> int:
        current = await self._client.hget(PEAKS_KEY, topic)
        peak = max(int(current or 0), count)
        if peak != int(current or 0):
            await self._client.hset(PEAKS_KEY, topic, peak)
        return peak

    async def viewers(self, topic: str) -> tuple[int, int]:
        """Return the last published count and the peak of ``topic``."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hget(TOTALS_KEY, topic)
            pipe.hget(PEAKS_KEY, topic)
            count, peak = await pipe.execute()
        return int(count or 0), int(peak or 0)
