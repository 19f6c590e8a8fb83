"""Two processes under supervisord behind HAProxy: events reach every process."""

from __future__ import annotations

import asyncio
import os
import signal

import asyncpg
import orjson
import pytest
import tornado.httpclient
import tornado.websocket

from tests.conftest import Api
from tests.e2e.topology import Topology, http_get
from tests.factories import (
    checkout,
    create_live,
    create_product,
    login_manager,
    open_cart,
    set_line,
)

pytestmark = pytest.mark.e2e

PRODUCTS = "/api/v1/manager/lives/summer-24/products"


class PinnedApi(Api):
    """An Api client whose requests carry the cookie pinning them to one process."""

    def __init__(self, topology: Topology, index: int):
        super().__init__(tornado.httpclient.AsyncHTTPClient(), topology.base_url)
        self.cookie = topology.cookie(index)

    async def request(self, method, path, body=None, headers=None, raw_body=None):
        headers = {"Cookie": self.cookie, **(headers or {})}
        return await super().request(method, path, body, headers, raw_body)


async def open_socket(topology: Topology, index: int):
    request = tornado.httpclient.HTTPRequest(
        topology.base_url.replace("http://", "ws://") + "/ws",
        headers={"Cookie": topology.cookie(index)},
    )
    return await tornado.websocket.websocket_connect(request)


async def receive(connection, wait: float = 5.0) -> dict:
    raw = await asyncio.wait_for(connection.read_message(), wait)
    assert raw is not None, f"socket closed with code {connection.close_code}"
    return orjson.loads(raw)


@pytest.mark.gen_test(timeout=90)
async def test_cookie_pins_each_process(topology, database_url):
    pids = set()
    for index in (1, 2):
        for _ in range(3):
            status, body = http_get(
                topology.base_url + "/healthz", topology.cookie(index)
            )
            assert status == 200
            pids.add((index, orjson.loads(body)["pid"]))

    assert pids == {(1, topology.pid(1)), (2, topology.pid(2))}


@pytest.mark.gen_test(timeout=90)
async def test_events_reach_both_processes_in_order_once(topology, database_url):
    first = PinnedApi(topology, 1)
    second = PinnedApi(topology, 2)
    await login_manager(first, database_url)
    second.access_token = first.access_token
    await create_live(first)
    product = await create_product(first, stock=500)

    sockets = [await open_socket(topology, 1), await open_socket(topology, 2)]
    positions = []
    for connection in sockets:
        await connection.write_message(
            orjson.dumps({"op": "subscribe", "topic": "live:summer-24"}).decode()
        )
        reply = await receive(connection)
        assert reply["op"] == "subscribed"
        positions.append(reply["offset"])
    assert positions[0] == positions[1]

    # Alternate the process that makes each change.
    for stock in range(20):
        client = first if stock % 2 == 0 else second
        response = await client.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})
        assert response.status == 200, response

    for connection in sockets:
        # Viewer counts share the topic, so stock events need not be contiguous.
        events = []
        while sum(event["type"] == "stock.changed" for event in events) < 20:
            events.append(await receive(connection))
        stock_events = [event for event in events if event["type"] == "stock.changed"]
        assert [event["data"]["stock"] for event in stock_events] == list(range(20))
        assert [event["offset"] for event in events] == list(
            range(positions[0] + 1, positions[0] + 1 + len(events))
        )
        try:
            extra = await receive(connection, wait=0.5)
        except TimeoutError:
            extra = None
        assert extra is None or extra["type"] == "viewers.changed", extra
        connection.close()


@pytest.mark.gen_test(timeout=90)
async def test_checkout_on_one_process_reaches_other(topology, database_url):
    first = PinnedApi(topology, 1)
    second = PinnedApi(topology, 2)
    await login_manager(first, database_url)
    await create_live(first)
    product = await create_product(first, stock=50)
    watcher = await open_socket(topology, 2)
    await watcher.write_message(
        orjson.dumps({"op": "subscribe", "topic": "live:summer-24"}).decode()
    )
    await receive(watcher)

    cart_id, headers = await open_cart(first)
    await set_line(first, cart_id, headers, product["id"], 8)
    response = await checkout(first, cart_id, headers)
    event = await receive(watcher)
    # Viewer counts share the topic and may come first.
    while event["type"] == "viewers.changed":
        event = await receive(watcher)

    assert response.status == 201
    assert event["type"] == "stock.changed"
    assert event["data"] == {
        "product_id": product["id"],
        "stock": 42,
        "version": product["version"] + 1,
    }
    state = await second.get("/api/v1/lives/summer-24")
    assert state.json["products"][0]["stock"] == 42
    watcher.close()


@pytest.mark.gen_test(timeout=90)
async def test_sigterm_sends_sockets_away_and_finishes_requests(topology, database_url):
    first = PinnedApi(topology, 1)
    await login_manager(first, database_url)
    await create_live(first)
    product = await create_product(first, stock=50)
    cart_id, headers = await open_cart(first)
    await set_line(first, cart_id, headers, product["id"], 2)
    connection = await open_socket(topology, 1)

    # A lock on the cart row keeps the checkout in flight while SIGTERM arrives.
    blocker = await asyncpg.connect(database_url)
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("SELECT 1 FROM carts WHERE id = $1 FOR UPDATE", cart_id)
    in_flight = asyncio.ensure_future(checkout(first, cart_id, headers))
    await asyncio.sleep(0.5)
    assert not in_flight.done()

    os.kill(topology.pid(1), signal.SIGTERM)
    advice = await asyncio.wait_for(connection.read_message(), 5)
    closed = await asyncio.wait_for(connection.read_message(), 5)
    await asyncio.sleep(0.5)
    await transaction.rollback()
    await blocker.close()
    response = await asyncio.wait_for(in_flight, 15)

    assert orjson.loads(advice)["op"] == "reconnect"
    assert 0 <= orjson.loads(advice)["delay_ms"] <= 10_000
    assert closed is None
    assert connection.close_code == 1012
    assert response.status == 201, response
    assert response.json["order"]["item_count"] == 2
