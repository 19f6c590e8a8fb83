"""Concurrent checkouts never oversell and never deadlock."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.factories import (
    checkout,
    create_live,
    create_product,
    login_manager,
    open_cart,
    set_line,
)


@pytest.mark.gen_test(timeout=60)
async def test_forty_checkouts_for_ten_units(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, sku="HOT-1", stock=40)
    carts = []
    for _ in range(40):
        cart_id, headers = await open_cart(api)
        response = await set_line(api, cart_id, headers, product["id"], 1)
        assert response.status == 200
        carts.append((cart_id, headers))
    # Every cart was filled while 40 were in stock; now only 10 are left.
    await api.patch(
        f"/api/v1/manager/lives/summer-24/products/{product['id']}", {"stock": 10}
    )

    responses = await asyncio.gather(
        *(checkout(api, cart_id, headers) for cart_id, headers in carts)
    )

    statuses = sorted(response.status for response in responses)
    assert statuses.count(201) == 10, statuses
    assert statuses.count(409) == 30, statuses
    for response in responses:
        if response.status == 409:
            assert response.error["code"] == "stock_short"
            assert response.error["lines"][0]["available"] == 0

    connection = await asyncpg.connect(database_url)
    try:
        stock = await connection.fetchval(
            "SELECT stock FROM products WHERE id = $1", product["id"]
        )
        sold = await connection.fetchval(
            "SELECT sum(quantity) FROM order_items WHERE product_id = $1", product["id"]
        )
        orders = await connection.fetchval("SELECT count(*) FROM orders")
    finally:
        await connection.close()
    assert stock == 0
    assert sold == 10
    assert orders == 10


@pytest.mark.gen_test(timeout=60)
async def test_opposite_order_carts_never_deadlock(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    first = await create_product(api, sku="A-1", stock=1000)
    second = await create_product(api, sku="B-1", stock=1000)

    carts = []
    for index in range(30):
        cart_id, headers = await open_cart(api)
        order = [first, second] if index % 2 == 0 else [second, first]
        for product in order:
            await set_line(api, cart_id, headers, product["id"], 1)
        carts.append((cart_id, headers))

    responses = await asyncio.gather(
        *(checkout(api, cart_id, headers) for cart_id, headers in carts)
    )

    assert [response.status for response in responses] == [201] * 30

    connection = await asyncpg.connect(database_url)
    try:
        stocks = await connection.fetch(
            "SELECT stock FROM products WHERE id = ANY($1)", [first["id"], second["id"]]
        )
    finally:
        await connection.close()
    assert sorted(row["stock"] for row in stocks) == [970, 970]


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_retries_make_one_order(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, sku="R-1", stock=100)
    cart_id, headers = await open_cart(api)
    await set_line(api, cart_id, headers, product["id"], 5)

    responses = await asyncio.gather(
        *(checkout(api, cart_id, headers, key="retried") for _ in range(8))
    )

    assert sorted(response.status for response in responses) == [200] * 7 + [201]
    codes = {response.json["order"]["code"] for response in responses}
    assert len(codes) == 1
    connection = await asyncpg.connect(database_url)
    try:
        stock = await connection.fetchval(
            "SELECT stock FROM products WHERE id = $1", product["id"]
        )
    finally:
        await connection.close()
    assert stock == 95
