"""An event that never reached Redis resets the topic's subscribers once Redis is
back, so no client keeps a state that silently missed a change."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.conftest import REDIS_URL
from tests.factories import create_live, create_product, login_manager
from tests.wsclient import Socket

PRODUCTS = "/api/v1/manager/lives/summer-24/products"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"redis_timeout": 0.3}


@pytest.mark.gen_test(timeout=30)
async def test_lost_event_resets_subscribers(api, database_url, base_url, ctx):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, stock=10)
    socket = await Socket.open(base_url)
    subscribed = await socket.subscribe("live:summer-24")

    # Redis stops taking writes for longer than publishing retries.
    admin = aioredis.from_url(REDIS_URL)
    await admin.execute_command("CLIENT", "PAUSE", "4000", "WRITE")
    response = await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 3})
    lost = set(ctx.broker.lost_topics)
    await ctx.outbox.flush()
    outbox_while_lost = await _outbox_topics(ctx)
    reset = await socket.receive(wait=10)
    await admin.aclose()

    assert response.status == 200
    assert lost == {"live:summer-24"}
    assert reset["op"] == "reset"
    assert reset["epoch"] != subscribed["epoch"]
    state = await api.get("/api/v1/lives/summer-24")
    assert state.json["products"][0]["stock"] == 3
    assert ctx.broker.lost_topics == set()
    # The outbox row covers a crash until the topic has its new epoch.
    await ctx.outbox.flush()
    assert outbox_while_lost == ["live:summer-24"]
    assert await _outbox_topics(ctx) == []
    socket.close()


async def _outbox_topics(ctx: Any) -> list[str]:
    async with ctx.pool.acquire() as connection:
        rows = await connection.fetch("SELECT topic FROM outbox ORDER BY id")
    return [row["topic"] for row in rows]
