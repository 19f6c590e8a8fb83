"""The asyncpg connection pool of one process."""

from __future__ import annotations

import logging

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from server.settings import Settings

log = logging.getLogger(__name__)

# A plain connection or one borrowed from the pool: queries take either.
Connection = asyncpg.Connection | PoolConnectionProxy


async def init_connection(connection: asyncpg.Connection) -> None:
    # jsonb columns (product tiers) arrive as Python lists instead of text.
    await connection.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        format="text",
    )


def required(row: asyncpg.Record | None) -> asyncpg.Record:
    """Return a row that a statement always produces, such as INSERT ... RETURNING."""
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """Open the pool; raise OSError or an asyncpg error if PostgreSQL is down."""
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        command_timeout=settings.db_command_timeout,
        init=init_connection,
    )
    log.info(
        "PostgreSQL pool open (min %d, max %d)",
        settings.db_pool_min,
        settings.db_pool_max,
    )
    return pool
