"""Topic offsets, epochs and bounded history in Redis.

Each topic has four keys: an epoch (a random id made when the topic first appears,
so a flushed Redis is noticed), an offset that grows by one per event, a stream
holding the latest events with stream id ``{offset}-1``, and the ``run_id`` of the
Redis server that wrote them. One Lua script assigns the offset, appends to the
stream and publishes, so the keys never disagree. Each event carries
``published_ms``, the Redis server's clock at the publish, in milliseconds since the
Unix epoch.

A restarted Redis (or a failover to a replica) may have lost the latest writes, and
one restored from an older snapshot would hand out offsets that subscribers already
have for other events. Its ``run_id`` differs, so the first script to touch a topic
after the restart starts a new epoch and every subscriber is reset.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as redis

KEY_PREFIX = "vitrine:topic:"

# live:{slug}, order:{code}, chat:{uuid}, managers:{slug}, manager:{id}
TOPIC_PATTERN = re.compile(r"^(live|order|chat|managers|manager):[A-Za-z0-9_-]{1,64}\Z")

# The id of the running Redis server, new at each start. Redis 7.0 allows INFO in
# scripts.
_SERVER_RUN_ID = """
local server = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
"""

_PUBLISH_SCRIPT = (
    _SERVER_RUN_ID
    + """
local epoch = redis.call('GET', KEYS[1])
local function new_epoch()
    epoch = ARGV[1]
    redis.call('SET', KEYS[1], epoch)
    redis.call('DEL', KEYS[2], KEYS[3])
    redis.call('SET', KEYS[4], server)
end
-- Every epoch has an offset key from its start, so an epoch without one lost it (all
-- four keys have a TTL and may be evicted one by one). Counting again from 1 would
-- repeat offsets the subscribers already have, so a new epoch starts. So does a topic
-- last written by another Redis run.
if not epoch or redis.call('EXISTS', KEYS[2]) == 0
        or redis.call('GET', KEYS[4]) ~= server then
    new_epoch()
end
local now = redis.call('TIME')
local published_ms = now[1] .. string.format('%03d', math.floor(now[2] / 1000))
local function append()
    local offset = redis.pcall('INCR', KEYS[2])
    if type(offset) == 'table' then
        return nil, nil, offset.err
    end
    local event = '{"topic":' .. ARGV[2] .. ',"offset":' .. offset .. ',"type":'
        .. ARGV[3] .. ',"published_ms":' .. published_ms .. ',"data":' .. ARGV[4] .. '}'
    local added = redis.pcall(
        'XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], offset .. '-1', 'e', event)
    if type(added) == 'table' then
        return nil, nil, added.err
    end
    return offset, event, nil
end
local offset, event, failure = append()
if failure then
    -- The offset is not a number, or the history is already past it because the
    -- offset was set back. Neither can be repaired under this epoch.
    new_epoch()
    offset, event, failure = append()
    if failure then
        return redis.error_reply(failure)
    end
end
for i = 1, 4 do
    redis.call('EXPIRE', KEYS[i], ARGV[6])
end
local header = epoch .. ' ' .. offset .. ' ' .. published_ms
redis.call('PUBLISH', ARGV[7], header .. '\\n' .. event)
return {epoch, offset}
"""
)

# A topic that is new, whose offset key was lost or is not a count, or that another
# Redis run wrote, gets a new epoch here, as the next publish would give it.
_POSITION_SCRIPT = (
    _SERVER_RUN_ID
    + """
local epoch = redis.call('GET', KEYS[1])
local offset = redis.call('GET', KEYS[2])
if not epoch or not offset or not string.match(offset, '^%d+$')
        or redis.call('GET', KEYS[4]) ~= server then
    epoch = ARGV[1]
    offset = '0'
    redis.call('SET', KEYS[1], epoch, 'EX', ARGV[2])
    redis.call('DEL', KEYS[3])
    redis.call('SET', KEYS[2], offset, 'EX', ARGV[2])
    redis.call('SET', KEYS[4], server, 'EX', ARGV[2])
end
return {epoch, offset}
"""
)


# Replaces the epoch unless another process already did, so every offset a client
# has from the old epoch leads to a reset. The old epoch's history is deleted too,
# because it may contain offsets past the current one.
_BUMP_EPOCH_SCRIPT = (
    _SERVER_RUN_ID
    + """
local epoch = redis.call('GET', KEYS[1])
if epoch == ARGV[1] or not epoch then
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    redis.call('DEL', KEYS[3])
    redis.call('SET', KEYS[4], server, 'EX', ARGV[3])
    local offset = redis.call('GET', KEYS[2])
    if not offset or not string.match(offset, '^%d+$') then
        redis.call('SET', KEYS[2], 0, 'EX', ARGV[3])
    end
    epoch = ARGV[2]
end
local offset = redis.call('GET', KEYS[2]) or '0'
return {epoch, offset}
"""
)


@dataclass(frozen=True)
class HistoryLimits:
    """How many events a topic's history keeps, and how long it outlives its last
    event (seconds), for live topics and for the private ones."""

    live_size: int
    live_ttl: int
    private_size: int
    private_ttl: int

    def for_topic(self, topic: str) -> tuple[int, int]:
        if topic.startswith("live:"):
            return self.live_size, self.live_ttl
        return self.private_size, self.private_ttl


@dataclass(frozen=True)
class Position:
    epoch: str
    offset: int


@dataclass(frozen=True)
class Recovery:
    """Events a subscriber missed, or ``reset`` when they can no longer be given."""

    position: Position
    events: list[tuple[int, bytes]]
    reset: bool


def channel(topic: str) -> str:
    return KEY_PREFIX + topic


def _keys(topic: str) -> list[str]:
    base = KEY_PREFIX + topic
    return [base + ":epoch", base + ":offset", base + ":history", base + ":server"]


def new_epoch() -> str:
    return secrets.token_hex(6)


def parse_message(raw: bytes) -> tuple[str, int, int | None, bytes]:
    """Split a published message into epoch, offset, publish time (ms since the Unix
    epoch) and the event's JSON.

    Messages from processes older than the publish time carry None for it.
    """
    header, _, event = raw.partition(b"\n")
    fields = header.split(b" ")
    published_ms = int(fields[2]) if len(fields) > 2 else None
    return fields[0].decode(), int(fields[1]), published_ms, event


class TopicLog:
    """Publishes events and reads positions and history of topics in Redis."""

    def __init__(self, client: redis.Redis, limits: HistoryLimits):
        self._client = client
        self._limits = limits
        self._publish = client.register_script(_PUBLISH_SCRIPT)
        self._position = client.register_script(_POSITION_SCRIPT)
        self._bump_epoch = client.register_script(_BUMP_EPOCH_SCRIPT)

    async def publish(self, topic: str, event_type: str, data: Any) -> Position:
        """Append an event to the topic and publish it to every relay."""
        size, ttl = self._limits.for_topic(topic)
        epoch, offset = await self._publish(
            keys=_keys(topic),
            args=[
                new_epoch(),
                orjson.dumps(topic),
                orjson.dumps(event_type),
                orjson.dumps(data),
                size,
                ttl,
                channel(topic),
            ],
        )
        return Position(_text(epoch), int(offset))

    async def position(self, topic: str) -> Position:
        epoch, offset = await self._position(
            keys=_keys(topic), args=[new_epoch(), self._limits.for_topic(topic)[1]]
        )
        return Position(_text(epoch), int(offset))

    async def bump_epoch(self, topic: str, stale_epoch: str) -> Position:
        """Start a new epoch for ``topic`` if it is still at ``stale_epoch``.

        Needed when the offsets went backwards under the same epoch, as after Redis
        restarts from an older snapshot: an offset would then name two events.
        """
        epoch, offset = await self._bump_epoch(
            keys=_keys(topic),
            args=[stale_epoch, new_epoch(), self._limits.for_topic(topic)[1]],
        )
        return Position(_text(epoch), int(offset))

    async def recover(self, topic: str, epoch: str, offset: int) -> Recovery:
        """Return the events after ``offset`` of ``epoch``, or a reset."""
        current = await self.position(topic)
        if epoch != current.epoch or offset > current.offset or offset < 0:
            return Recovery(current, [], reset=True)
        if offset == current.offset:
            return Recovery(current, [], reset=False)

        events = await self.history_range(topic, offset + 1, current.offset)
        if not events or events[0][0] != offset + 1:
            # The stream was trimmed past the first missed event.
            return Recovery(current, [], reset=True)
        return Recovery(current, events, reset=False)

    async def history_range(
        self, topic: str, first: int, last: int
    ) -> list[tuple[int, bytes]]:
        """Return the events with offsets ``first`` to ``last`` still in history."""
        entries: Any = await self._client.xrange(
            _keys(topic)[2], min=f"{first}-1", max=f"{last}-1"
        )
        return [
            (int(entry_id.split(b"-")[0]), fields[b"e"]) for entry_id, fields in entries
        ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
