"""The live topic over /ws: events after every change, recovery by offset."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from realtime import topics
from tests.conftest import REDIS_URL
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


async def _live(api, database_url) -> dict[str, Any]:
    await login_manager(api, database_url)
    await create_live(api)
    return await create_product(api, sku="TSH-1", stock=100)


@pytest.mark.gen_test
async def test_subscribe_gets_current_position(api, database_url, base_url):
    await _live(api, database_url)
    state = (await api.get("/api/v1/lives/summer-24")).json
    socket = await Socket.open(base_url)

    reply = await socket.subscribe("live:summer-24")

    assert reply["op"] == "subscribed"
    assert reply["topic"] == "live:summer-24"
    assert reply["epoch"] == state["topic"]["epoch"]
    assert reply["offset"] == state["topic"]["offset"]
    socket.close()


@pytest.mark.gen_test
async def test_event_carries_publish_time(api, database_url, base_url):
    product = await _live(api, database_url)
    socket = await Socket.open(base_url)
    await socket.subscribe("live:summer-24")

    before_ms = time.time() * 1000
    await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 42})
    after_ms = time.time() * 1000
    event = await socket.receive()

    assert event["type"] == "stock.changed"
    assert isinstance(event["published_ms"], int)
    # Redis and the test share the machine's clock; 5 ms covers its rounding.
    assert before_ms - 5 <= event["published_ms"] <= after_ms + 5
    health = (await api.get("/healthz")).json
    fanout = health["recent_fanouts"][-1]
    assert fanout[:3] == ["live:summer-24", event["published_ms"], 1]
    assert 0 <= fanout[3] < 1000
    socket.close()


@pytest.mark.gen_test
async def test_manager_changes_reach_socket(api, database_url, base_url):
    product = await _live(api, database_url)
    socket = await Socket.open(base_url)
    subscribed = await socket.subscribe("live:summer-24")

    await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 42})
    await api.patch(f"{PRODUCTS}/{product['id']}", {"price_cents": 1990})
    created = await create_product(api, sku="NEW-1")
    await api.patch(f"{PRODUCTS}/{created['id']}", {"visible": False})
    await api.patch(
        "/api/v1/manager/lives/summer-24", {"title": "Now live", "status": "live"}
    )
    await api.delete(f"{PRODUCTS}/{product['id']}")

    events = [await socket.receive() for _ in range(6)]
    types = [event["type"] for event in events]
    assert types == [
        "stock.changed",
        "product.updated",
        "product.created",
        "product.removed",
        "live.updated",
        "product.removed",
    ]
    offsets = [event["offset"] for event in events]
    assert offsets == list(range(subscribed["offset"] + 1, subscribed["offset"] + 7))
    assert events[0]["data"] == {
        "product_id": product["id"],
        "stock": 42,
        "version": product["version"] + 1,
    }
    assert events[1]["data"]["price_cents"] == 1990
    assert events[2]["data"]["sku"] == "NEW-1"
    assert events[3]["data"] == {"id": created["id"]}
    assert events[4]["data"]["title"] == "Now live"
    assert all(event["topic"] == "live:summer-24" for event in events)
    await socket.receive_none()
    socket.close()


@pytest.mark.gen_test
async def test_hidden_product_edit_not_broadcast(api, database_url, base_url):
    await _live(api, database_url)
    hidden = await create_product(api, sku="HID", visible=False)
    socket = await Socket.open(base_url)
    await socket.subscribe("live:summer-24")

    await api.patch(f"{PRODUCTS}/{hidden['id']}", {"price_cents": 1})

    await socket.receive_none()
    socket.close()


@pytest.mark.gen_test
async def test_checkout_broadcasts_stock(api, database_url, base_url):
    product = await _live(api, database_url)
    socket = await Socket.open(base_url)
    await socket.subscribe("live:summer-24")
    cart_id, headers = await open_cart(api)
    await set_line(api, cart_id, headers, product["id"], 7)

    response = await checkout(api, cart_id, headers)
    event = await socket.receive()

    assert response.status == 201
    assert event["type"] == "stock.changed"
    assert event["data"] == {
        "product_id": product["id"],
        "stock": 93,
        "version": product["version"] + 1,
    }
    socket.close()


@pytest.mark.gen_test
async def test_resubscribe_recovers_missed_events(api, database_url, base_url):
    product = await _live(api, database_url)
    socket = await Socket.open(base_url)
    subscribed = await socket.subscribe("live:summer-24")
    socket.close()

    for stock in range(20):
        await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})

    again = await Socket.open(base_url)
    reply = await again.subscribe(
        "live:summer-24", epoch=subscribed["epoch"], offset=subscribed["offset"]
    )
    missed = [await again.receive() for _ in range(20)]

    assert reply["op"] == "subscribed"
    assert [event["data"]["stock"] for event in missed] == list(range(20))
    assert [event["offset"] for event in missed] == list(
        range(subscribed["offset"] + 1, subscribed["offset"] + 21)
    )
    await again.receive_none()

    await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 77})
    live_event = await again.receive()
    assert live_event["offset"] == subscribed["offset"] + 21
    assert live_event["data"]["stock"] == 77
    again.close()


@pytest.mark.gen_test
async def test_unknown_epoch_gets_reset(api, database_url, base_url):
    await _live(api, database_url)
    socket = await Socket.open(base_url)

    reply = await socket.subscribe("live:summer-24", epoch="stale", offset=3)

    assert reply["op"] == "reset"
    assert reply["topic"] == "live:summer-24"
    assert reply["epoch"] != "stale"
    socket.close()


@pytest.mark.gen_test
async def test_trimmed_history_gets_reset(api, database_url, base_url, ctx):
    product = await _live(api, database_url)
    socket = await Socket.open(base_url)
    subscribed = await socket.subscribe("live:summer-24")
    socket.close()
    for stock in range(5):
        await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})

    client = aioredis.from_url(REDIS_URL)
    await client.xtrim(
        "vitrine:topic:live:summer-24:history", maxlen=2, approximate=False
    )
    await client.aclose()
    again = await Socket.open(base_url)
    reply = await again.subscribe(
        "live:summer-24", epoch=subscribed["epoch"], offset=subscribed["offset"]
    )

    assert reply["op"] == "reset"
    assert reply["offset"] == subscribed["offset"] + 5
    again.close()


@pytest.mark.gen_test
async def test_flushed_redis_gets_reset(api, database_url, base_url):
    product = await _live(api, database_url)
    socket = await Socket.open(base_url)
    subscribed = await socket.subscribe("live:summer-24")
    socket.close()

    client = aioredis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()
    # The relay learns of the flush from the first event of the new epoch. A socket
    # that resubscribes meanwhile is reset then, and it missed no event before.
    again = await Socket.open(base_url)
    reply = await again.subscribe(
        "live:summer-24", epoch=subscribed["epoch"], offset=subscribed["offset"]
    )
    await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 5})
    reset = await again.receive()

    assert reply["op"] == "subscribed"
    assert reset["op"] == "reset"
    assert reset["epoch"] != subscribed["epoch"]
    state = await api.get("/api/v1/lives/summer-24")
    assert state.json["topic"]["epoch"] == reset["epoch"]
    again.close()


@pytest.mark.gen_test
async def test_bad_messages_get_errors(api, database_url, base_url):
    await _live(api, database_url)
    socket = await Socket.open(base_url)

    await socket.connection.write_message("not json")
    not_json = await socket.receive()
    bad_topic = await socket.subscribe("nope")
    await socket.send({"op": "dance", "topic": "live:summer-24"})
    bad_op = await socket.receive()
    private = await socket.subscribe("order:ABC")
    half_position = await socket.subscribe("live:other", offset=3)
    bool_offset = await socket.subscribe("live:summer-24", epoch="e", offset=True)
    newline_topic = await socket.subscribe("live:summer-24\n")

    assert not_json["code"] == "invalid_json"
    assert bad_topic["code"] == "invalid_topic"
    assert bad_op["code"] == "invalid_op"
    assert private["code"] == "forbidden"
    assert half_position["code"] == "invalid_position"
    assert bool_offset["code"] == "invalid_position"
    assert newline_topic["code"] == "invalid_topic"
    socket.close()


@pytest.mark.gen_test
async def test_one_frame_per_event_per_socket(api, database_url, base_url):
    product = await _live(api, database_url)
    sockets = [await Socket.open(base_url) for _ in range(5)]
    for socket in sockets:
        await socket.subscribe("live:summer-24")

    await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 5})

    for socket in sockets:
        event = await socket.receive()
        assert event["data"]["stock"] == 5
        await socket.receive_none(0.1)
        socket.close()


@pytest.mark.gen_test
async def test_relay_fills_gap_from_history(api, database_url, base_url, ctx):
    await _live(api, database_url)
    socket = await Socket.open(base_url)
    subscribed = await socket.subscribe("live:summer-24")

    # An event that reaches the history but whose pub/sub message is lost, as when
    # Redis drops messages for a slow subscriber.
    topic_log = ctx.broker.topic_log
    await topic_log._publish(
        keys=topics._keys("live:summer-24"),
        args=[
            "unused",
            orjson.dumps("live:summer-24"),
            orjson.dumps("stock.changed"),
            orjson.dumps({"product_id": 1, "stock": 11}),
            100,
            3600,
            "vitrine:nobody-listens",
        ],
    )
    await ctx.broker.publish(
        "live:summer-24", "stock.changed", {"product_id": 1, "stock": 12}
    )

    first = await socket.receive()
    second = await socket.receive()
    assert first["offset"] == subscribed["offset"] + 1
    assert first["data"]["stock"] == 11
    assert second["offset"] == subscribed["offset"] + 2
    assert second["data"]["stock"] == 12
    await socket.receive_none()
    socket.close()


@pytest.mark.gen_test
async def test_unsubscribe_stops_events(api, database_url, base_url, ctx):
    product = await _live(api, database_url)
    socket = await Socket.open(base_url)
    await socket.subscribe("live:summer-24")

    await socket.send({"op": "unsubscribe", "topic": "live:summer-24"})
    await asyncio.sleep(0.1)
    await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 3})

    await socket.receive_none()
    assert not ctx.broker.hub.has_subscribers("live:summer-24")
    socket.close()


@pytest.mark.gen_test
async def test_unknown_live_topic_is_refused(api, database_url, base_url, ctx):
    socket = await Socket.open(base_url)

    reply = await socket.subscribe("live:no-such-live")
    state = await api.get("/api/v1/lives/no-such-live")

    assert reply["op"] == "error"
    assert reply["code"] == "unknown_topic"
    assert state.status == 404
    client = aioredis.from_url(REDIS_URL)
    keys = await client.keys("vitrine:topic:live:no-such-live*")
    await client.aclose()
    assert keys == []
    socket.close()


@pytest.mark.gen_test
async def test_offset_not_a_number_starts_new_epoch(api, database_url):
    product = await _live(api, database_url)
    await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 1})
    before = (await api.get("/api/v1/lives/summer-24")).json["topic"]

    client = aioredis.from_url(REDIS_URL)
    await client.set("vitrine:topic:live:summer-24:offset", "abc")
    read = await api.get("/api/v1/lives/summer-24")
    await client.set("vitrine:topic:live:summer-24:offset", "2.5")
    patched = await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 2})
    await client.aclose()
    after = (await api.get("/api/v1/lives/summer-24")).json["topic"]

    assert read.status == 200
    assert read.json["topic"]["epoch"] != before["epoch"]
    assert read.json["topic"]["offset"] == 0
    assert patched.status == 200
    assert after["epoch"] not in (before["epoch"], read.json["topic"]["epoch"])
    assert after["offset"] == 1


@pytest.mark.gen_test
async def test_offsets_going_back_start_new_epoch(api, database_url, base_url, ctx):
    product = await _live(api, database_url)
    socket = await Socket.open(base_url)
    for stock in range(5):
        await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})
    subscribed = await socket.subscribe("live:summer-24")

    # As after Redis restarts from an older snapshot: same epoch, smaller offset.
    client = aioredis.from_url(REDIS_URL)
    await client.set("vitrine:topic:live:summer-24:offset", 2)
    await client.aclose()
    await ctx.broker.relay._pubsub.connection.disconnect()
    reset = await socket.receive(wait=10)

    # The history still contains offsets 3 to 5, and the next events must not fail
    # on them.
    await socket.subscribe(
        "live:summer-24", epoch=reset["epoch"], offset=reset["offset"]
    )
    patched = await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 7})
    event = await socket.receive(wait=10)

    assert reset["op"] == "reset"
    assert reset["epoch"] != subscribed["epoch"]
    state = await api.get("/api/v1/lives/summer-24")
    assert state.json["topic"]["epoch"] == reset["epoch"]
    assert patched.status == 200
    assert event["type"] == "stock.changed"
    assert event["data"]["stock"] == 7
    socket.close()


@pytest.mark.gen_test
async def test_other_redis_run_starts_new_epoch(api, database_url, base_url):
    product = await _live(api, database_url)
    socket = await Socket.open(base_url)
    for stock in range(5):
        await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})
    subscribed = await socket.subscribe("live:summer-24")

    # As after Redis restarts from a snapshot taken at offset 2, with the keys that an
    # earlier run of the server wrote. The relay stays connected, as when it
    # reconnects only after the offsets have passed the ones it forwarded.
    client = aioredis.from_url(REDIS_URL)
    await client.set("vitrine:topic:live:summer-24:offset", 2)
    await client.delete("vitrine:topic:live:summer-24:history")
    await client.set("vitrine:topic:live:summer-24:server", "0" * 40)
    await client.aclose()
    patched = await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 8})
    reset = await socket.receive(wait=10)
    await socket.subscribe(
        "live:summer-24", epoch=reset["epoch"], offset=reset["offset"]
    )
    await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 9})
    event = await socket.receive(wait=10)

    assert patched.status == 200
    assert reset["op"] == "reset"
    assert reset["epoch"] != subscribed["epoch"]
    assert event["type"] == "stock.changed"
    assert event["data"]["stock"] == 9
    assert event["offset"] == reset["offset"] + 1
    socket.close()


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "lost_keys",
    [["offset"], ["offset", "history"]],
    ids=["offset", "offset-and-history"],
)
async def test_lost_offset_key_starts_new_epoch(api, database_url, base_url, lost_keys):
    product = await _live(api, database_url)
    for stock in range(3):
        await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})
    socket = await Socket.open(base_url)
    subscribed = await socket.subscribe("live:summer-24")

    # As when Redis evicts keys with a TTL one by one and keeps the epoch.
    client = aioredis.from_url(REDIS_URL)
    await client.delete(*(f"vitrine:topic:live:summer-24:{key}" for key in lost_keys))
    await client.aclose()
    patched = await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 9})
    reset = await socket.receive(wait=10)
    resubscribed = await socket.subscribe(
        "live:summer-24", epoch=reset["epoch"], offset=reset["offset"]
    )
    state = await api.get("/api/v1/lives/summer-24")

    assert patched.status == 200
    assert reset["op"] == "reset"
    assert reset["epoch"] != subscribed["epoch"]
    assert resubscribed["op"] == "subscribed"
    assert state.json["topic"]["epoch"] == reset["epoch"]
    assert state.json["topic"]["offset"] == 1
    socket.close()
