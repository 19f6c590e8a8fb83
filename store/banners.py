"""Banners of a live: shown by hand, or between show_at and hide_at."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from store.errors import Conflict, NotFound
from store.pool import Connection, required

BANNER_COLUMNS = (
    "id, live_id, text, image_url, link_url, visible, show_at, hide_at, "
    "created_at, updated_at"
)
EDITABLE_FIELDS = ("text", "image_url", "link_url", "visible", "show_at", "hide_at")


def banner_to_wire(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "text": row["text"],
        "image_url": row["image_url"],
        "link_url": row["link_url"],
        "visible": row["visible"],
        "show_at": row["show_at"],
        "hide_at": row["hide_at"],
    }


def is_shown(row: Any, now: dt.datetime) -> bool:
    """Tell whether a banner shows: while visible and inside its schedule, if any."""
    if not row["visible"]:
        return False
    if row["show_at"] is not None and now < row["show_at"]:
        return False
    return not (row["hide_at"] is not None and now >= row["hide_at"])


async def list_banners(connection: Connection, live_id: int) -> list[asyncpg.Record]:
    return await connection.fetch(
        f"SELECT {BANNER_COLUMNS} FROM banners WHERE live_id = $1 ORDER BY id",
        live_id,
    )


async def shown_banners(
    connection: Connection, live_id: int, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    now = now or dt.datetime.now(dt.UTC)
    rows = await list_banners(connection, live_id)
    return [banner_to_wire(row) for row in rows if is_shown(row, now)]


async def create(
    connection: Connection, live_id: int, fields: dict[str, Any]
) -> asyncpg.Record:
    names = list(fields)
    placeholders = ", ".join(f"${index + 2}" for index in range(len(names)))
    try:
        row = await connection.fetchrow(
            f"INSERT INTO banners (live_id, {', '.join(names)})"
            f" VALUES ($1, {placeholders}) RETURNING {BANNER_COLUMNS}",
            live_id,
            *fields.values(),
        )
    except asyncpg.CheckViolationError:
        raise Conflict(
            "hide_at must be after show_at", field="hide_at", code="invalid_schedule"
        ) from None
    return required(row)


async def update(
    connection: Connection, live_id: int, banner_id: int, fields: dict[str, Any]
) -> asyncpg.Record:
    if not fields:
        row = await connection.fetchrow(
            f"SELECT {BANNER_COLUMNS} FROM banners WHERE live_id = $1 AND id = $2",
            live_id,
            banner_id,
        )
    else:
        assignments = ", ".join(
            f"{name} = ${index + 3}" for index, name in enumerate(fields)
        )
        try:
            row = await connection.fetchrow(
                f"UPDATE banners SET {assignments}, updated_at = now()"
                f" WHERE live_id = $1 AND id = $2 RETURNING {BANNER_COLUMNS}",
                live_id,
                banner_id,
                *fields.values(),
            )
        except asyncpg.CheckViolationError:
            raise Conflict(
                "hide_at must be after show_at",
                field="hide_at",
                code="invalid_schedule",
            ) from None
    if row is None:
        raise NotFound(f"banner {banner_id} not found in this live")
    return row


async def delete(connection: Connection, live_id: int, banner_id: int) -> None:
    deleted = await connection.fetchval(
        "DELETE FROM banners WHERE live_id = $1 AND id = $2 RETURNING id",
        live_id,
        banner_id,
    )
    if deleted is None:
        raise NotFound(f"banner {banner_id} not found in this live")


async def lives_with_schedule_between(
    connection: Connection, start: dt.datetime, end: dt.datetime
) -> list[str]:
    """Return the slugs of lives with a banner that shows or hides in (start, end]."""
    rows = await connection.fetch(
        "SELECT DISTINCT l.slug FROM banners b JOIN lives l ON l.id = b.live_id"
        " WHERE (b.show_at > $1 AND b.show_at <= $2)"
        " OR (b.hide_at > $1 AND b.hide_at <= $2)",
        start,
        end,
    )
    return [row["slug"] for row in rows]
