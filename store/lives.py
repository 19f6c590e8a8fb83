"""Queries on lives."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from store.errors import Conflict, InvalidInput, NotFound
from store.pool import Connection, required

LIVE_COLUMNS = (
    "id, slug, title, status, video_url, currency, pinned_product_ids, "
    "starts_at, started_at, ended_at, created_at, updated_at"
)

MAX_PINNED = 3

# Allowed status moves; anything else is a conflict.
TRANSITIONS = {
    "scheduled": {"live", "ended"},
    "live": {"ended"},
    "ended": set(),
}


def live_to_wire(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "slug": row["slug"],
        "title": row["title"],
        "status": row["status"],
        "video_url": row["video_url"],
        "currency": row["currency"],
        "pinned_product_ids": list(row["pinned_product_ids"]),
        "starts_at": row["starts_at"],
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def list_lives(connection: Connection) -> list[asyncpg.Record]:
    return await connection.fetch(
        f"SELECT {LIVE_COLUMNS} FROM lives ORDER BY created_at DESC, id DESC"
    )


async def get_by_slug(connection: Connection, slug: str) -> asyncpg.Record:
    row = await connection.fetchrow(
        f"SELECT {LIVE_COLUMNS} FROM lives WHERE slug = $1", slug
    )
    if row is None:
        raise NotFound(f"live {slug!r} not found")
    return row


async def create(
    connection: Connection,
    slug: str,
    title: str,
    video_url: str,
    currency: str,
) -> asyncpg.Record:
    try:
        return required(
            await connection.fetchrow(
                f"INSERT INTO lives (slug, title, video_url, currency)"
                f" VALUES ($1, $2, $3, $4) RETURNING {LIVE_COLUMNS}",
                slug,
                title,
                video_url,
                currency,
            )
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"a live with slug {slug!r} already exists; pick another slug",
            field="slug",
            code="duplicate_slug",
        ) from None


async def update(
    connection: Connection, slug: str, fields: dict[str, Any]
) -> tuple[asyncpg.Record, asyncpg.Record]:
    """Apply a validated partial update; return the rows before and after it.

    Checks the status transition and that pinned products are visible products of
    this live, under a row lock so two managers cannot interleave.
    """
    before = await connection.fetchrow(
        f"SELECT {LIVE_COLUMNS} FROM lives WHERE slug = $1 FOR UPDATE", slug
    )
    if before is None:
        raise NotFound(f"live {slug!r} not found")

    status = fields.get("status")
    moving = status is not None and status != before["status"]
    if moving and status not in TRANSITIONS[before["status"]]:
        raise Conflict(
            f"a live cannot move from {before['status']} to {status}",
            field="status",
            code="invalid_transition",
        )

    pinned = fields.get("pinned_product_ids")
    if pinned is not None:
        await _check_pinned(connection, before["id"], pinned)

    if not fields:
        return before, before

    if moving and status == "live":
        fields = {**fields, "started_at": dt.datetime.now(dt.UTC)}
    if moving and status == "ended":
        fields = {**fields, "ended_at": dt.datetime.now(dt.UTC)}
    assignments = ", ".join(
        f"{name} = ${index + 2}" for index, name in enumerate(fields)
    )
    after = await connection.fetchrow(
        f"UPDATE lives SET {assignments}, updated_at = now()"
        f" WHERE id = $1 RETURNING {LIVE_COLUMNS}",
        before["id"],
        *fields.values(),
    )
    return before, required(after)


async def unpin(
    connection: Connection, live_id: int, product_id: int
) -> asyncpg.Record | None:
    """Remove a product from the pinned list; return the live row if it changed."""
    return await connection.fetchrow(
        "UPDATE lives SET pinned_product_ids = array_remove(pinned_product_ids, $2),"
        f" updated_at = now() WHERE id = $1 AND $2 = ANY(pinned_product_ids)"
        f" RETURNING {LIVE_COLUMNS}",
        live_id,
        product_id,
    )


async def _check_pinned(
    connection: Connection, live_id: int, pinned: list[int]
) -> None:
    if len(pinned) > MAX_PINNED:
        raise InvalidInput(
            f"at most {MAX_PINNED} products can be pinned at once, got {len(pinned)}",
            field="pinned_product_ids",
        )
    if len(set(pinned)) != len(pinned):
        raise InvalidInput(
            "pinned_product_ids lists a product twice", field="pinned_product_ids"
        )

    rows = await connection.fetch(
        "SELECT id FROM products WHERE live_id = $1 AND visible AND id = ANY($2)",
        live_id,
        pinned,
    )
    found = {row["id"] for row in rows}
    for index, product_id in enumerate(pinned):
        if product_id not in found:
            raise InvalidInput(
                f"product {product_id} is not a visible product of this live",
                field=f"pinned_product_ids[{index}]",
            )
