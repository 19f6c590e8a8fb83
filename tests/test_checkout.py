"""Checkout: all or nothing, idempotent, and the order is a snapshot."""

from __future__ import annotations

import asyncpg
import pytest

from store.pricing import MAX_ORDER_TOTAL_CENTS, MAX_QUANTITY
from tests.conftest import Api
from tests.factories import (
    BUYER,
    checkout,
    create_live,
    create_product,
    login_manager,
    open_cart,
    set_line,
)

PRODUCTS = "/api/v1/manager/lives/summer-24/products"


async def _cart_with(
    api: Api, database_url: str, lines: list[tuple[dict, int]] | None = None
):
    await login_manager(api, database_url)
    await create_live(api)
    shirt = await create_product(api, sku="TSH-1", price_cents=2990, stock=50)
    cap = await create_product(api, sku="CAP-1", name="Cap", price_cents=1500, stock=20)
    cart_id, headers = await open_cart(api)
    await set_line(api, cart_id, headers, shirt["id"], 10)
    await set_line(api, cart_id, headers, cap["id"], 4)
    return shirt, cap, cart_id, headers


async def _stock(database_url: str, product_id: int) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(
            "SELECT stock FROM products WHERE id = $1", product_id
        )
    finally:
        await connection.close()


@pytest.mark.gen_test
async def test_checkout_creates_order_and_takes_stock(api, database_url):
    shirt, cap, cart_id, headers = await _cart_with(api, database_url)

    response = await checkout(api, cart_id, headers)

    assert response.status == 201, response
    order = response.json["order"]
    assert order["status"] == "new"
    assert order["total_cents"] == 10 * 2990 + 4 * 1500
    assert order["item_count"] == 14
    assert [item["sku"] for item in order["items"]] == ["TSH-1", "CAP-1"]
    assert order["buyer"]["tax_id"] == "11222333000181"
    assert order["buyer"]["email"] == BUYER["email"]
    assert len(order["code"]) == 8
    assert response.json["read_token"]
    assert await _stock(database_url, shirt["id"]) == 40
    assert await _stock(database_url, cap["id"]) == 16

    cart = await api.get(f"/api/v1/carts/{cart_id}", headers=headers)
    assert cart.json["status"] == "checked_out"
    assert cart.json["order_code"] == order["code"]


@pytest.mark.gen_test
async def test_order_readable_with_read_token(api, database_url):
    _, _, cart_id, headers = await _cart_with(api, database_url)
    placed = (await checkout(api, cart_id, headers)).json
    code = placed["order"]["code"]
    token = placed["read_token"]

    by_header = await api.get(f"/api/v1/orders/{code}", headers={"X-Read-Token": token})
    by_query = await api.get(f"/api/v1/orders/{code}?token={token}")
    lowercase_code = await api.get(f"/api/v1/orders/{code.lower()}?token={token}")

    assert by_header.status == 200
    assert by_header.json == placed["order"]
    assert by_query.json == placed["order"]
    assert lowercase_code.status == 200


@pytest.mark.gen_test
async def test_order_needs_right_token(api, database_url):
    _, _, cart_id, headers = await _cart_with(api, database_url)
    code = (await checkout(api, cart_id, headers)).json["order"]["code"]

    missing = await api.get(f"/api/v1/orders/{code}")
    wrong = await api.get(f"/api/v1/orders/{code}", headers={"X-Read-Token": "nope"})
    unknown = await api.get("/api/v1/orders/ZZZZZZZZ", headers={"X-Read-Token": "nope"})
    session_token = await api.get(
        f"/api/v1/orders/{code}", headers={"X-Read-Token": headers["X-Session-Token"]}
    )

    assert missing.status == 401
    assert wrong.status == 403
    assert unknown.status == 403
    assert unknown.json == wrong.json
    assert session_token.status == 403


@pytest.mark.gen_test
async def test_order_is_snapshot_of_checkout(api, database_url):
    shirt, _, cart_id, headers = await _cart_with(api, database_url)
    placed = (await checkout(api, cart_id, headers)).json
    code = placed["order"]["code"]

    await api.patch(
        f"{PRODUCTS}/{shirt['id']}", {"name": "Renamed", "price_cents": 9999}
    )
    await api.delete(f"{PRODUCTS}/{shirt['id']}")
    order = await api.get(
        f"/api/v1/orders/{code}", headers={"X-Read-Token": placed["read_token"]}
    )

    assert order.json["items"][0]["name"] == "Basic T-shirt"
    assert order.json["items"][0]["unit_price_cents"] == 2990
    assert order.json["total_cents"] == placed["order"]["total_cents"]


@pytest.mark.gen_test
async def test_stock_short_changes_nothing(api, database_url):
    shirt, cap, cart_id, headers = await _cart_with(api, database_url)
    await api.patch(f"{PRODUCTS}/{cap['id']}", {"stock": 3})

    response = await checkout(api, cart_id, headers)

    assert response.status == 409
    assert response.error["code"] == "stock_short"
    assert response.error["lines"] == [
        {"product_id": cap["id"], "requested": 4, "available": 3}
    ]
    assert await _stock(database_url, shirt["id"]) == 50
    assert await _stock(database_url, cap["id"]) == 3
    cart = await api.get(f"/api/v1/carts/{cart_id}", headers=headers)
    assert cart.json["status"] == "open"


@pytest.mark.gen_test
async def test_price_changed_then_accepted(api, database_url):
    shirt, _, cart_id, headers = await _cart_with(api, database_url)
    await api.patch(f"{PRODUCTS}/{shirt['id']}", {"price_cents": 3190})

    first = await checkout(api, cart_id, headers, key="attempt-1")
    stock_after_first = await _stock(database_url, shirt["id"])
    second = await checkout(api, cart_id, headers, key="attempt-2")

    assert first.status == 409
    assert first.error["code"] == "price_changed"
    assert first.error["lines"] == [
        {
            "product_id": shirt["id"],
            "previous_unit_price_cents": 2990,
            "unit_price_cents": 3190,
        }
    ]
    assert stock_after_first == 50
    assert second.status == 201, second
    assert second.json["order"]["items"][0]["unit_price_cents"] == 3190


@pytest.mark.gen_test
async def test_total_above_maximum_after_price_rise(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, price_cents=10**9, stock=MAX_QUANTITY)
    cart_id, headers = await open_cart(api)
    added = await set_line(api, cart_id, headers, product["id"], MAX_QUANTITY)
    # The cart was at the maximum total, and the price rise doubles it.
    await api.patch(f"{PRODUCTS}/{product['id']}", {"price_cents": 2 * 10**9})

    first = await checkout(api, cart_id, headers, key="attempt-1")
    second = await checkout(api, cart_id, headers, key="attempt-2")
    stock_after = await _stock(database_url, product["id"])
    cart = await api.get(f"/api/v1/carts/{cart_id}", headers=headers)
    await set_line(api, cart_id, headers, product["id"], MAX_QUANTITY // 2)
    third = await checkout(api, cart_id, headers, key="attempt-3")

    assert added.json["total_cents"] == MAX_ORDER_TOTAL_CENTS
    assert first.status == 409
    assert first.error["code"] == "price_changed"
    assert second.status == 409, second
    assert second.error["code"] == "total_too_large"
    assert second.error["field"] == "items"
    assert str(MAX_ORDER_TOTAL_CENTS) in second.error["message"]
    assert stock_after == MAX_QUANTITY
    assert cart.json["status"] == "open"
    assert third.status == 201, third
    assert third.json["order"]["total_cents"] == MAX_ORDER_TOTAL_CENTS


@pytest.mark.gen_test
async def test_bigint_overflow_cart_rejected(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    products = [
        await create_product(
            api, sku=f"DEAR-{index}", price_cents=10**12, stock=MAX_QUANTITY
        )
        for index in range(10)
    ]
    cart_id, headers = await open_cart(api)
    # No PUT accepts these lines, so they go straight to the database. They total
    # 10**19 cents, above the bigint maximum of 2**63 - 1.
    connection = await asyncpg.connect(database_url)
    try:
        await connection.executemany(
            "INSERT INTO cart_items (cart_id, product_id, quantity,"
            " seen_unit_price_cents) VALUES ($1::uuid, $2, $3, $4)",
            [(cart_id, product["id"], MAX_QUANTITY, 10**12) for product in products],
        )
    finally:
        await connection.close()

    response = await checkout(api, cart_id, headers)

    assert response.status == 409, response
    assert response.error["code"] == "total_too_large"
    assert response.error["field"] == "items"
    assert str(10**19) in response.error["message"]


@pytest.mark.gen_test
async def test_same_key_returns_same_order(api, database_url):
    shirt, _, cart_id, headers = await _cart_with(api, database_url)

    first = await checkout(api, cart_id, headers, key="same")
    retry = await checkout(api, cart_id, headers, key="same")

    assert first.status == 201
    assert retry.status == 200
    assert retry.json["order"]["code"] == first.json["order"]["code"]
    assert retry.json["read_token"] == first.json["read_token"]
    assert await _stock(database_url, shirt["id"]) == 40

    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM orders") == 1
    finally:
        await connection.close()


@pytest.mark.gen_test
async def test_same_key_different_body_is_422(api, database_url):
    _, _, cart_id, headers = await _cart_with(api, database_url)
    await checkout(api, cart_id, headers, key="same")

    response = await checkout(
        api, cart_id, headers, key="same", buyer={**BUYER, "company_name": "Other"}
    )

    assert response.status == 422
    assert response.error["code"] == "idempotency_key_reused"
    assert response.error["field"] == "Idempotency-Key"


@pytest.mark.gen_test
async def test_new_key_after_checkout_is_cart_closed(api, database_url):
    shirt, _, cart_id, headers = await _cart_with(api, database_url)
    await checkout(api, cart_id, headers, key="first")

    again = await checkout(api, cart_id, headers, key="second")
    change = await set_line(api, cart_id, headers, shirt["id"], 1)

    assert again.status == 409
    assert again.error["code"] == "cart_closed"
    assert change.status == 409
    assert change.error["code"] == "cart_closed"


@pytest.mark.gen_test
async def test_checkout_needs_idempotency_key(api, database_url):
    _, _, cart_id, headers = await _cart_with(api, database_url)

    response = await api.post(
        f"/api/v1/carts/{cart_id}/checkout", BUYER, headers=headers
    )

    assert response.status == 400
    assert response.error["field"] == "Idempotency-Key"


@pytest.mark.gen_test
async def test_empty_cart_cannot_check_out(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    cart_id, headers = await open_cart(api)

    response = await checkout(api, cart_id, headers)

    assert response.status == 409
    assert response.error["code"] == "cart_empty"


@pytest.mark.gen_test
async def test_hidden_product_blocks_checkout(api, database_url):
    shirt, _, cart_id, headers = await _cart_with(api, database_url)
    await api.patch(f"{PRODUCTS}/{shirt['id']}", {"visible": False})

    response = await checkout(api, cart_id, headers)

    assert response.status == 409
    assert response.error["code"] == "product_unavailable"
    assert response.error["product_ids"] == [shirt["id"]]


@pytest.mark.gen_test
async def test_buyer_fields_are_validated(api, database_url):
    _, _, cart_id, headers = await _cart_with(api, database_url)

    cases = [
        ({**BUYER, "tax_id": "11.222.333/0001-82"}, "tax_id", "invalid_cnpj"),
        ({**BUYER, "tax_id": "1"}, "tax_id", "invalid_tax_id"),
        ({**BUYER, "email": "not-an-email"}, "email", "invalid"),
        ({**BUYER, "phone": "123"}, "phone", "invalid"),
        ({**BUYER, "company_name": "  "}, "company_name", "too_short"),
        ({**BUYER, "notes": "x" * 2001}, "notes", "too_long"),
        (
            {key: value for key, value in BUYER.items() if key != "contact_name"},
            "contact_name",
            "missing",
        ),
        ({**BUYER, "coupon": "FREE"}, "coupon", "unknown_field"),
    ]
    for index, (buyer, field, code) in enumerate(cases):
        response = await checkout(api, cart_id, headers, key=f"k{index}", buyer=buyer)
        assert response.status == 400, (field, response)
        assert response.error["field"] == field, response
        assert response.error["code"] == code, response

    cart = await api.get(f"/api/v1/carts/{cart_id}", headers=headers)
    assert cart.json["status"] == "open"


@pytest.mark.gen_test
async def test_alphanumeric_cnpj_is_accepted(api, database_url):
    _, _, cart_id, headers = await _cart_with(api, database_url)

    response = await checkout(
        api, cart_id, headers, buyer={**BUYER, "tax_id": "12.ABC.345/01DE-35"}
    )

    assert response.status == 201, response
    assert response.json["order"]["buyer"]["tax_id"] == "12ABC34501DE35"


@pytest.mark.gen_test
async def test_ended_live_rejects_checkout(api, database_url):
    _, _, cart_id, headers = await _cart_with(api, database_url)
    await api.patch("/api/v1/manager/lives/summer-24", {"status": "ended"})

    response = await checkout(api, cart_id, headers)

    assert response.status == 409
    assert response.error["code"] == "live_ended"
