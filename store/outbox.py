"""The outbox: topics whose committed changes may not have been published yet.

It contains topics, not events. A change that never reached Redis is repaired by
resetting its topic's subscribers, who refetch the state, because replaying the old
event could deliver it after newer ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from store.pool import Connection


def live_topics(slug: str) -> list[str]:
    """Return the topics that a sale on live ``slug`` publishes on."""
    return [f"live:{slug}", f"managers:{slug}"]


async def add(connection: Connection, topics: Sequence[str]) -> list[int]:
    """Record ``topics`` in the caller's transaction; return the rows' ids."""
    rows = await connection.fetch(
        "INSERT INTO outbox (topic) SELECT unnest($1::text[]) RETURNING id",
        list(topics),
    )
    return [row["id"] for row in rows]


async def delete(connection: Connection, ids: Sequence[int]) -> None:
    await connection.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)


async def take_stale(connection: Connection, age: float, limit: int) -> list[str]:
    """Delete up to ``limit`` rows older than ``age`` seconds; return their topics.

    Rows another transaction is taking are skipped, so processes can sweep at once.
    Run it in a transaction that rolls back if the topics cannot be repaired.
    """
    rows = await connection.fetch(
        """
        DELETE FROM outbox
        WHERE id IN (
            SELECT id FROM outbox
            WHERE created_at < now() - make_interval(secs => $1)
            ORDER BY id
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        RETURNING topic
        """,
        age,
        limit,
    )
    return sorted({row["topic"] for row in rows})
