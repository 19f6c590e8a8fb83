"""Rows of the outbox table: deleted once their topics' events were published, and
turned into topic resets when a process died before it could publish."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime.broker import Broker
from store import outbox
from store.pool import Connection

log = logging.getLogger(__name__)

# Seconds between deletions of published rows. Batching them keeps a write at one
# extra INSERT; a crash before the deletion costs only needless resets.
FLUSH_INTERVAL = 1.0
# Seconds after which a row is taken as left behind by a dead process: longer than a
# write's transaction (VITRINE_DB_COMMAND_TIMEOUT, 10 s by default) plus the publish
# retries (about 3 s).
STALE_AGE = 30.0
SWEEP_INTERVAL = 5.0
# Topics reset per sweep.
SWEEP_LIMIT = 100

DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
SERVICE_ERRORS = (*DATABASE_ERRORS, RedisConnectionError, RedisTimeoutError)


@dataclass(frozen=True)
class Pending:
    """Outbox rows written for one change, and their topics."""

    ids: list[int]
    topics: tuple[str, ...]


class Outbox:
    def __init__(self, pool: asyncpg.Pool, broker: Broker) -> None:
        self._pool = pool
        self._broker = broker
        self._published: list[int] = []
        # Changes whose topics lost an event, until the broker has reset them.
        self._waiting_for_reset: list[Pending] = []

    async def add(self, connection: Connection, *topics: str) -> Pending:
        """Record ``topics`` in the transaction of the change that will publish."""
        return Pending(await outbox.add(connection, topics), topics)

    def mark_published(self, pending: Pending) -> None:
        """Queue the rows of a published change for deletion.

        Rows of a topic that lost an event stay until the broker has given it a new
        epoch, so they cover a crash of this process meanwhile.
        """
        if any(topic in self._broker.lost_topics for topic in pending.topics):
            self._waiting_for_reset.append(pending)
        else:
            self._published.extend(pending.ids)

    def _release_reset_topics(self) -> None:
        lost = self._broker.lost_topics
        waiting = []
        for entry in self._waiting_for_reset:
            if any(topic in lost for topic in entry.topics):
                waiting.append(entry)
            else:
                self._published.extend(entry.ids)
        self._waiting_for_reset = waiting

    async def run(self) -> None:
        """Flush published rows every second and sweep stale ones every few."""
        since_sweep = 0.0
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            since_sweep += FLUSH_INTERVAL
            try:
                await self.flush()
                if since_sweep >= SWEEP_INTERVAL:
                    since_sweep = 0.0
                    await self.sweep()
            except SERVICE_ERRORS as exc:
                log.warning("outbox sweep failed; retrying later: %r", exc)
            except Exception:
                # The task must outlive a bug, or no row would be swept again.
                log.exception("outbox flush or sweep failed; retrying later")

    async def flush(self) -> None:
        """Delete the rows of published changes."""
        self._release_reset_topics()
        ids, self._published = self._published, []
        if not ids:
            return
        try:
            async with self._pool.acquire() as connection:
                await outbox.delete(connection, ids)
        except DATABASE_ERRORS as exc:
            self._published.extend(ids)
            log.warning("could not delete %d outbox rows: %r", len(ids), exc)

    async def sweep(self) -> list[str]:
        """Reset the topics of rows a dead process left; return those topics.

        The rows are deleted in the transaction that resets their topics, so a Redis
        error leaves them for the next sweep.
        """
        async with self._pool.acquire() as connection, connection.transaction():
            topics = await outbox.take_stale(connection, STALE_AGE, SWEEP_LIMIT)
            for topic in topics:
                await self._broker.resync(topic)
        if topics:
            log.warning(
                "reset %d topics whose changes were never confirmed as published: %s",
                len(topics),
                ", ".join(topics),
            )
        return topics
