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
    """Delete the rows older than ``age`` seconds of up to ``limit`` topics; return
    the topics.

    Every stale row of a topic goes at once, so a topic is reset once however many
    changes it lost. Topics whose rows another sweep is taking are skipped. Run it in
    a transaction that rolls back if the topics cannot be reset.
    """
    rows = await connection.fetch(
        """
        WITH taken AS (
            SELECT id, topic FROM outbox
            WHERE created_at < now() - make_interval(secs => $1)
            ORDER BY id
            FOR UPDATE SKIP LOCKED
        ),
        topics AS (
            SELECT DISTINCT topic FROM taken ORDER BY topic LIMIT $2
        )
        DELETE FROM outbox
        WHERE id IN (SELECT id FROM taken WHERE topic IN (SELECT topic FROM topics))
        RETURNING topic
        """,
        age,
        limit,
    )
    return sorted({row["topic"] for row in rows})
