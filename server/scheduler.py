"""Events that fall due at a time, not on a request: flash offers ending, banners
showing or hiding on their schedule.

Every process runs the loop, but only the holder of a short Redis lease acts, so each
event is published once. The end of the last window handled is kept in Redis, so a new
lease holder carries on where the previous one stopped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
from typing import Any

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime.broker import Broker
from store import banners, lives, products

log = logging.getLogger(__name__)

LEASE_KEY = "vitrine:scheduler:lease"
LAST_TICK_KEY = "vitrine:scheduler:last-tick"
INTERVAL = 1.0
# A window never reaches further back than this, after a long outage.
MAX_CATCH_UP = dt.timedelta(minutes=10)

_RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


class Scheduler:
    def __init__(self, pool: asyncpg.Pool, broker: Broker) -> None:
        self._pool = pool
        self._broker = broker
        self._id = f"{os.getpid()}:{secrets.token_hex(4)}"
        self._renew = broker.client.register_script(_RENEW_LEASE)

    async def run(self) -> None:
        while True:
            try:
                if await self._renew(
                    keys=[LEASE_KEY], args=[self._id, int(INTERVAL * 3000)]
                ):
                    await self.tick(dt.datetime.now(dt.UTC))
            except (
                RedisConnectionError,
                RedisTimeoutError,
                OSError,
                asyncpg.PostgresConnectionError,
                asyncpg.InterfaceError,
            ) as exc:
                log.warning("scheduler tick skipped: %r", exc)
            await asyncio.sleep(INTERVAL)

    async def tick(self, now: dt.datetime) -> None:
        """Publish what fell due between the last tick and ``now``."""
        client = self._broker.client
        raw: Any = await client.get(LAST_TICK_KEY)
        start = now - dt.timedelta(seconds=INTERVAL)
        if raw is not None:
            start = max(dt.datetime.fromisoformat(raw.decode()), now - MAX_CATCH_UP)
        if start >= now:
            return

        async with self._pool.acquire() as connection:
            ended = await connection.fetch(
                f"SELECT l.slug, {_product_columns()} FROM products p"
                " JOIN lives l ON l.id = p.live_id"
                " WHERE p.visible AND p.flash_ends_at > $1 AND p.flash_ends_at <= $2",
                start,
                now,
            )
            slugs = await banners.lives_with_schedule_between(connection, start, now)
            shown = {}
            for slug in slugs:
                live = await lives.get_by_slug(connection, slug)
                shown[slug] = await banners.shown_banners(connection, live["id"], now)

        for row in ended:
            log.info("flash offer on product %s of %s ended", row["id"], row["slug"])
            await self._broker.publish(
                f"live:{row['slug']}", "product.updated", products.product_to_wire(row)
            )
        for slug, current in shown.items():
            await self._broker.publish(
                f"live:{slug}", "banners.changed", {"banners": current}
            )
        await client.set(
            LAST_TICK_KEY, now.isoformat(), ex=int(MAX_CATCH_UP.total_seconds())
        )


def _product_columns() -> str:
    return ", ".join(
        f"p.{name.strip()}" for name in products.PRODUCT_COLUMNS.split(",")
    )
