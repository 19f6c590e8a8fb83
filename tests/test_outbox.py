"""The outbox: a change committed but never published resets its topic."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.factories import (
    checkout,
    create_live,
    create_product,
    login_manager,
    open_cart,
    set_line,
)
from tests.wsclient import Socket

PRODUCTS = "/api/v1/manager/lives/summer-24/products"


async def _rows(ctx: Any) -> list[str]:
    async with ctx.pool.acquire() as connection:
        rows = await connection.fetch("SELECT topic FROM outbox ORDER BY id")
    return [row["topic"] for row in rows]


async def _product(api: Any, database_url: str, ctx: Any) -> dict[str, Any]:
    """Create the live summer-24 with one product, leaving the outbox empty."""
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, stock=10)
    await ctx.outbox.flush()
    return product


async def _leave_row(ctx: Any, topic: str) -> None:
    """Insert the row a process leaves when it dies between commit and publish."""
    async with ctx.pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO outbox (topic, created_at)"
            " VALUES ($1, now() - interval '1 minute')",
            topic,
        )


@pytest.mark.gen_test
async def test_published_change_deletes_rows(api, database_url, ctx):
    product = await _product(api, database_url, ctx)

    await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 4})
    before_flush = await _rows(ctx)
    await ctx.outbox.flush()

    assert before_flush == ["live:summer-24"]
    assert await _rows(ctx) == []


@pytest.mark.gen_test
async def test_checkout_rows_deleted_after_publish(api, database_url, ctx):
    product = await _product(api, database_url, ctx)
    cart_id, headers = await open_cart(api)
    await set_line(api, cart_id, headers, product["id"], 2)
    await ctx.outbox.flush()

    placed = await checkout(api, cart_id, headers)
    before_flush = await _rows(ctx)
    await ctx.outbox.flush()

    assert placed.status == 201
    assert before_flush == ["live:summer-24", "managers:summer-24"]
    assert await _rows(ctx) == []


@pytest.mark.gen_test
async def test_rolled_back_change_leaves_no_row(api, database_url, ctx):
    product = await _product(api, database_url, ctx)

    stale = await api.patch(
        f"{PRODUCTS}/{product['id']}", {"stock": 4, "version": product["version"] + 5}
    )

    assert stale.status == 409
    assert await _rows(ctx) == []


@pytest.mark.gen_test
async def test_sweep_resets_left_topic(api, database_url, base_url, ctx):
    await _product(api, database_url, ctx)
    socket = await Socket.open(base_url)
    subscribed = await socket.subscribe("live:summer-24")
    await _leave_row(ctx, "live:summer-24")

    # A row younger than the stale age may still belong to a change in flight.
    await api.patch("/api/v1/manager/lives/summer-24", {"title": "Summer"})
    swept = await ctx.outbox.sweep()
    reset = await socket.receive(wait=10)
    while reset.get("op") != "reset":
        reset = await socket.receive(wait=10)

    assert swept == ["live:summer-24"]
    assert reset["epoch"] != subscribed["epoch"]
    assert await _rows(ctx) == ["live:summer-24"]
    await ctx.outbox.flush()
    assert await _rows(ctx) == []
    socket.close()


@pytest.mark.gen_test
async def test_failed_sweep_keeps_rows(api, database_url, ctx, monkeypatch):
    await _leave_row(ctx, "live:summer-24")

    async def redis_down(topic: str) -> None:
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(ctx.broker, "resync", redis_down)
    with pytest.raises(RedisConnectionError):
        await ctx.outbox.sweep()

    assert await _rows(ctx) == ["live:summer-24"]


@pytest.mark.gen_test
async def test_sweep_takes_topic_once(api, database_url, ctx):
    async with ctx.pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO outbox (topic, created_at)"
            " SELECT 'live:summer-24', now() - interval '1 minute'"
            " FROM generate_series(1, 250)"
        )
    await _leave_row(ctx, "managers:summer-24")

    swept = await ctx.outbox.sweep()

    assert swept == ["live:summer-24", "managers:summer-24"]
    assert await _rows(ctx) == []
