"""Cart lines follow the product's wholesale rules, and only the token opens a cart."""

from __future__ import annotations

import uuid

import pytest

from store.pricing import MAX_ORDER_TOTAL_CENTS, MAX_QUANTITY
from tests.conftest import Api
from tests.factories import (
    create_live,
    create_product,
    login_manager,
    open_cart,
    set_line,
)

TIERED = {
    "sku": "TSH-TIER",
    "price_cents": 3000,
    "tiers": [
        {"min_quantity": 48, "price_cents": 2400},
        {"min_quantity": 12, "price_cents": 2700},
    ],
    "min_quantity": 6,
    "step": 6,
    "max_quantity": 120,
    "stock": 500,
}


async def _setup(api: Api, database_url: str) -> dict:
    await login_manager(api, database_url)
    await create_live(api)
    return await create_product(api, **TIERED)


@pytest.mark.gen_test
async def test_tier_prices_apply_by_quantity(api, database_url):
    product = await _setup(api, database_url)
    cart_id, headers = await open_cart(api)

    expectations = [(6, 3000), (12, 2700), (42, 2700), (48, 2400), (120, 2400)]
    for quantity, unit_price in expectations:
        response = await set_line(api, cart_id, headers, product["id"], quantity)
        assert response.status == 200, response
        line = response.json["lines"][0]
        assert line["quantity"] == quantity
        assert line["unit_price_cents"] == unit_price
        assert line["line_total_cents"] == quantity * unit_price
        assert response.json["total_cents"] == quantity * unit_price
        assert response.json["item_count"] == quantity


@pytest.mark.gen_test
async def test_tiers_are_returned_sorted(api, database_url):
    product = await _setup(api, database_url)
    assert [tier["min_quantity"] for tier in product["tiers"]] == [12, 48]


@pytest.mark.gen_test
async def test_quantity_rules_reject_with_field(api, database_url):
    product = await _setup(api, database_url)
    cart_id, headers = await open_cart(api)

    cases = [
        (3, "below_minimum"),
        (7, "invalid_step"),
        (126, "above_maximum"),
        (-6, "out_of_range"),
        (1.5, "invalid_type"),
        ("12", "invalid_type"),
        (True, "invalid_type"),
        (None, "invalid_type"),
    ]
    for quantity, code in cases:
        response = await set_line(api, cart_id, headers, product["id"], quantity)
        assert response.status == 400, (quantity, response)
        assert response.error["code"] == code, (quantity, response)
        assert response.error["field"] == "quantity", (quantity, response)
        assert response.error["message"]

    cart = await api.get(f"/api/v1/carts/{cart_id}", headers=headers)
    assert cart.json["lines"] == []


@pytest.mark.gen_test
async def test_step_error_suggests_valid_quantities(api, database_url):
    product = await _setup(api, database_url)
    cart_id, headers = await open_cart(api)

    response = await set_line(api, cart_id, headers, product["id"], 20)

    assert "18" in response.error["message"]
    assert "24" in response.error["message"]


@pytest.mark.gen_test
async def test_zero_quantity_removes_line(api, database_url):
    product = await _setup(api, database_url)
    cart_id, headers = await open_cart(api)
    await set_line(api, cart_id, headers, product["id"], 12)

    response = await set_line(api, cart_id, headers, product["id"], 0)

    assert response.status == 200
    assert response.json["lines"] == []
    assert response.json["total_cents"] == 0


@pytest.mark.gen_test
async def test_delete_removes_line(api, database_url):
    product = await _setup(api, database_url)
    other = await create_product(api, sku="CAP-1", name="Cap", price_cents=1000)
    cart_id, headers = await open_cart(api)
    await set_line(api, cart_id, headers, product["id"], 12)
    await set_line(api, cart_id, headers, other["id"], 1)

    response = await api.delete(
        f"/api/v1/carts/{cart_id}/items/{product['id']}", headers=headers
    )

    assert response.status == 200
    assert [line["product_id"] for line in response.json["lines"]] == [other["id"]]
    assert response.json["total_cents"] == 1000


@pytest.mark.gen_test
async def test_unknown_product_is_404(api, database_url):
    await _setup(api, database_url)
    cart_id, headers = await open_cart(api)

    response = await set_line(api, cart_id, headers, 999999, 6)

    assert response.status == 404
    assert response.error["field"] == "product_id"


@pytest.mark.gen_test
async def test_hidden_product_cannot_be_added(api, database_url):
    await _setup(api, database_url)
    hidden = await create_product(api, sku="HID-1", visible=False)
    cart_id, headers = await open_cart(api)

    response = await set_line(api, cart_id, headers, hidden["id"], 1)

    assert response.status == 404


@pytest.mark.gen_test
async def test_product_of_other_live_is_404(api, database_url):
    await _setup(api, database_url)
    await create_live(api, slug="other-live")
    foreign = await create_product(api, slug="other-live", sku="FOR-1")
    cart_id, headers = await open_cart(api)

    response = await set_line(api, cart_id, headers, foreign["id"], 1)

    assert response.status == 404


@pytest.mark.gen_test
async def test_quantity_over_stock_is_stock_short(api, database_url):
    product = await _setup(api, database_url)
    await api.patch(
        f"/api/v1/manager/lives/summer-24/products/{product['id']}", {"stock": 30}
    )
    cart_id, headers = await open_cart(api)

    response = await set_line(api, cart_id, headers, product["id"], 36)

    assert response.status == 409
    assert response.error["code"] == "stock_short"
    assert response.error["lines"] == [
        {"product_id": product["id"], "requested": 36, "available": 30}
    ]


@pytest.mark.gen_test
async def test_missing_token_is_401(api, database_url):
    product = await _setup(api, database_url)
    cart_id, _ = await open_cart(api)

    for method, path, body in [
        ("GET", f"/api/v1/carts/{cart_id}", None),
        ("PUT", f"/api/v1/carts/{cart_id}/items/{product['id']}", {"quantity": 6}),
        ("DELETE", f"/api/v1/carts/{cart_id}/items/{product['id']}", None),
        ("POST", f"/api/v1/carts/{cart_id}/checkout", {}),
    ]:
        response = await api.request(method, path, body)
        assert response.status == 401, (method, path, response)
        assert response.error["field"] == "X-Session-Token"


@pytest.mark.gen_test
async def test_wrong_token_is_403(api, database_url):
    product = await _setup(api, database_url)
    cart_id, _ = await open_cart(api)
    wrong = {"X-Session-Token": "not-the-token"}

    response = await api.get(f"/api/v1/carts/{cart_id}", headers=wrong)
    assert response.status == 403

    response = await set_line(api, cart_id, wrong, product["id"], 6)
    assert response.status == 403


@pytest.mark.gen_test
async def test_unknown_cart_looks_like_wrong_token(api, database_url):
    await _setup(api, database_url)
    headers = {"X-Session-Token": "whatever"}

    unknown = await api.get(f"/api/v1/carts/{uuid.uuid4()}", headers=headers)
    malformed = await api.get("/api/v1/carts/not-a-uuid", headers=headers)

    assert unknown.status == 403
    assert malformed.status == 403
    assert unknown.json == malformed.json


@pytest.mark.gen_test
async def test_other_buyers_token_does_not_open_cart(api, database_url):
    product = await _setup(api, database_url)
    first_id, first_headers = await open_cart(api)
    _, second_headers = await open_cart(api)
    await set_line(api, first_id, first_headers, product["id"], 12)

    read = await api.get(f"/api/v1/carts/{first_id}", headers=second_headers)
    write = await set_line(api, first_id, second_headers, product["id"], 6)

    assert read.status == 403
    assert write.status == 403
    cart = await api.get(f"/api/v1/carts/{first_id}", headers=first_headers)
    assert cart.json["lines"][0]["quantity"] == 12


@pytest.mark.gen_test
async def test_price_change_shows_previous_price_once(api, database_url):
    product = await _setup(api, database_url)
    cart_id, headers = await open_cart(api)
    await set_line(api, cart_id, headers, product["id"], 6)
    await api.patch(
        f"/api/v1/manager/lives/summer-24/products/{product['id']}",
        {"price_cents": 3300},
    )

    first = await api.get(f"/api/v1/carts/{cart_id}", headers=headers)
    second = await api.get(f"/api/v1/carts/{cart_id}", headers=headers)

    assert first.json["lines"][0]["previous_unit_price_cents"] == 3000
    assert first.json["lines"][0]["unit_price_cents"] == 3300
    assert "previous_unit_price_cents" not in second.json["lines"][0]


@pytest.mark.gen_test
async def test_cart_total_above_maximum_rejected(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    dear = await create_product(
        api, sku="DEAR-1", price_cents=10**12, stock=MAX_QUANTITY
    )
    cheap = await create_product(api, sku="CHEAP-1", price_cents=1)
    cart_id, headers = await open_cart(api)

    huge = await set_line(api, cart_id, headers, dear["id"], MAX_QUANTITY)
    at_maximum = await set_line(api, cart_id, headers, dear["id"], 1000)
    one_cent_more = await set_line(api, cart_id, headers, cheap["id"], 1)
    cart = await api.get(f"/api/v1/carts/{cart_id}", headers=headers)

    assert huge.status == 400, huge
    assert huge.error["code"] == "total_too_large"
    assert huge.error["field"] == "quantity"
    assert str(MAX_ORDER_TOTAL_CENTS) in huge.error["message"]
    assert at_maximum.status == 200, at_maximum
    assert at_maximum.json["total_cents"] == MAX_ORDER_TOTAL_CENTS
    assert one_cent_more.status == 400, one_cent_more
    assert one_cent_more.error["code"] == "total_too_large"
    assert one_cent_more.error["field"] == "quantity"
    assert [line["product_id"] for line in cart.json["lines"]] == [dear["id"]]
    assert cart.json["total_cents"] == MAX_ORDER_TOTAL_CENTS


@pytest.mark.gen_test
async def test_cart_above_maximum_may_shrink(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, price_cents=10**9, stock=MAX_QUANTITY)
    cart_id, headers = await open_cart(api)
    await set_line(api, cart_id, headers, product["id"], MAX_QUANTITY)
    # The price rise takes the cart to twice the maximum total.
    await api.patch(
        f"/api/v1/manager/lives/summer-24/products/{product['id']}",
        {"price_cents": 2 * 10**9},
    )

    same = await set_line(api, cart_id, headers, product["id"], MAX_QUANTITY)
    lower = await set_line(api, cart_id, headers, product["id"], 600_000)
    higher = await set_line(api, cart_id, headers, product["id"], 700_000)

    assert same.status == 200, same
    assert same.json["total_cents"] == 2 * MAX_ORDER_TOTAL_CENTS
    assert lower.status == 200, lower
    assert lower.json["total_cents"] == 600_000 * 2 * 10**9
    assert higher.status == 400, higher
    assert higher.error["code"] == "total_too_large"
    assert higher.error["field"] == "quantity"


@pytest.mark.gen_test
async def test_body_must_be_json_object(api, database_url):
    product = await _setup(api, database_url)
    cart_id, headers = await open_cart(api)
    path = f"/api/v1/carts/{cart_id}/items/{product['id']}"

    not_json = await api.put(path, raw_body=b"{quantity: 6", headers=headers)
    a_list = await api.put(path, raw_body=b"[6]", headers=headers)
    unknown_field = await api.put(path, {"quantity": 6, "qty": 6}, headers=headers)

    assert not_json.status == 400
    assert not_json.error["code"] == "invalid_json"
    assert a_list.status == 400
    assert unknown_field.status == 400
    assert unknown_field.error["field"] == "qty"


@pytest.mark.gen_test
async def test_ended_live_rejects_new_carts(api, database_url):
    await _setup(api, database_url)
    await api.patch("/api/v1/manager/lives/summer-24", {"status": "ended"})

    response = await api.post("/api/v1/lives/summer-24/carts")

    assert response.status == 409
    assert response.error["code"] == "live_ended"


@pytest.mark.gen_test
async def test_unknown_live_is_404(api, database_url):
    response = await api.post("/api/v1/lives/no-such-live/carts")
    assert response.status == 404
    assert response.error["code"] == "not_found"
