"""Manager accounts and their refresh tokens."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import asyncpg

from store import tokens
from store.errors import Conflict
from store.passwords import hash_password, verify_password_async
from store.pool import Connection

ROLES = ("admin", "host")


async def create(
    connection: Connection, username: str, password: str, role: str
) -> int:
    try:
        manager_id: int = await connection.fetchval(
            "INSERT INTO managers (username, password_hash, role)"
            " VALUES ($1, $2, $3) RETURNING id",
            username,
            hash_password(password),
            role,
        )
        return manager_id
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"manager {username!r} already exists", field="username"
        ) from None


async def set_password(connection: Connection, username: str, password: str) -> bool:
    updated = await connection.fetchval(
        "UPDATE managers SET password_hash = $2 WHERE lower(username) = lower($1)"
        " RETURNING id",
        username,
        hash_password(password),
    )
    return updated is not None


async def authenticate(
    connection: Connection, username: str, password: str
) -> asyncpg.Record | None:
    """Return the manager row when the password matches, else None."""
    row = await connection.fetchrow(
        "SELECT id, username, role, password_hash FROM managers"
        " WHERE lower(username) = lower($1)",
        username,
    )
    stored = None if row is None else row["password_hash"]
    if await verify_password_async(stored, password):
        return row
    return None


async def issue_refresh_token(
    connection: Connection,
    manager_id: int,
    ttl_seconds: int,
    family: uuid.UUID | None = None,
) -> str:
    token, token_digest = tokens.new_token()
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl_seconds)
    await connection.execute(
        "INSERT INTO refresh_tokens (manager_id, family, token_digest, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        manager_id,
        family or uuid.uuid4(),
        token_digest,
        expires_at,
    )
    return token


@dataclass
class Rotation:
    """The outcome of presenting a refresh token."""

    manager: asyncpg.Record | None = None
    token: str | None = None
    # Set when a spent token came back: its whole family was revoked.
    reused_family: uuid.UUID | None = None


async def rotate_refresh_token(
    connection: Connection, token: str, ttl_seconds: int
) -> Rotation:
    """Spend a refresh token and issue its successor in the same family.

    An unknown, expired or revoked token gives an empty Rotation. Presenting a token
    that was already spent means it leaked, so the whole family is revoked.
    """
    async with connection.transaction():
        row = await connection.fetchrow(
            "SELECT t.id, t.family, t.expires_at, t.used_at, t.revoked_at,"
            " m.id AS manager_id, m.username, m.role"
            " FROM refresh_tokens t JOIN managers m ON m.id = t.manager_id"
            " WHERE t.token_digest = $1 FOR UPDATE OF t",
            tokens.digest(token),
        )
        if row is None or row["revoked_at"] is not None:
            return Rotation()
        if row["used_at"] is not None:
            await revoke_family(connection, row["family"])
            return Rotation(reused_family=row["family"])
        if row["expires_at"] <= dt.datetime.now(dt.UTC):
            return Rotation()

        await connection.execute(
            "UPDATE refresh_tokens SET used_at = now() WHERE id = $1", row["id"]
        )
        successor = await issue_refresh_token(
            connection, row["manager_id"], ttl_seconds, row["family"]
        )
    return Rotation(manager=row, token=successor)


async def revoke_family(connection: Connection, family: uuid.UUID) -> None:
    await connection.execute(
        "UPDATE refresh_tokens SET revoked_at = now()"
        " WHERE family = $1 AND revoked_at IS NULL",
        family,
    )


async def list_managers(connection: Connection) -> list[asyncpg.Record]:
    return await connection.fetch(
        "SELECT id, username, role, created_at FROM managers ORDER BY id"
    )
