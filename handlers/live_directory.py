"""A cache of the live slugs that exist, so a reconnecting crowd spares PostgreSQL."""

from __future__ import annotations

import time

import asyncpg

# A live that exists stays known for this long; a missing slug is asked again sooner,
# so a live created meanwhile is found within seconds.
KNOWN_TTL = 300.0
UNKNOWN_TTL = 5.0
MAX_ENTRIES = 10_000


class LiveDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._entries: dict[str, tuple[bool, float]] = {}

    async def exists(self, slug: str) -> bool:
        now = time.monotonic()
        entry = self._entries.get(slug)
        if entry is not None and entry[1] > now:
            return entry[0]

        found = await self._pool.fetchval("SELECT 1 FROM lives WHERE slug = $1", slug)
        if len(self._entries) >= MAX_ENTRIES:
            # Dicts keep insertion order: drop the oldest tenth.
            for stale in list(self._entries)[: MAX_ENTRIES // 10]:
                del self._entries[stale]
        ttl = KNOWN_TTL if found else UNKNOWN_TTL
        self._entries[slug] = (found is not None, now + ttl)
        return found is not None
