"""The order desk: filters and counts in SQL, transitions, cancel and notifications."""

from __future__ import annotations

import asyncio
import csv
import io

import asyncpg
import pytest

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
from tests.wsclient import Socket

DESK = "/api/v1/manager/lives/summer-24/orders"


async def _place(api: Api, product_id: int, quantity: int, **buyer: str) -> dict:
    cart_id, headers = await open_cart(api)
    response = await set_line(api, cart_id, headers, product_id, quantity)
    assert response.status == 200, response
    placed = await checkout(api, cart_id, headers, buyer={**BUYER, **buyer})
    assert placed.status == 201, placed
    return placed.json


async def _desk(api: Api, database_url: str) -> dict:
    await login_manager(api, database_url)
    await create_live(api)
    return await create_product(api, stock=100, low_stock_threshold=5)


@pytest.mark.gen_test(timeout=30)
async def test_list_filters_and_counts_agree(api, database_url):
    product = await _desk(api, database_url)
    companies = ["Loja Azul", "Bazar Verde", "Loja Rosa", "Casa Sol", "Azul Atacado"]
    codes = []
    for company in companies:
        codes.append(
            (await _place(api, product["id"], 1, company_name=company))["order"]["code"]
        )
    await api.patch(f"{DESK}/{codes[0]}", {"status": "in_service"})
    await api.patch(f"{DESK}/{codes[1]}", {"status": "cancelled"})

    for search in ["", "azul", "loja", codes[3], "11222333", "nothing"]:
        counts = (await api.get(f"{DESK}/counts?q={search}")).json
        total = 0
        for status in ("new", "in_service", "done", "cancelled"):
            listed = await api.get(f"{DESK}?status={status}&q={search}")
            assert listed.status == 200
            assert len(listed.json["orders"]) == counts[status], (search, status)
            assert all(order["status"] == status for order in listed.json["orders"])
            total += counts[status]
        everything = await api.get(f"{DESK}?q={search}")
        assert len(everything.json["orders"]) == counts["total"] == total

    azul = await api.get(f"{DESK}?q=azul")
    assert {order["company_name"] for order in azul.json["orders"]} == {
        "Loja Azul",
        "Azul Atacado",
    }
    by_code = await api.get(f"{DESK}?q={codes[3]}")
    assert [order["code"] for order in by_code.json["orders"]] == [codes[3]]
    counts = (await api.get(f"{DESK}/counts")).json
    assert counts == {"new": 3, "in_service": 1, "done": 0, "cancelled": 1, "total": 5}


@pytest.mark.gen_test(timeout=30)
async def test_keyset_pages_cover_every_order_once(api, database_url):
    product = await _desk(api, database_url)
    placed = [(await _place(api, product["id"], 1))["order"]["code"] for _ in range(7)]

    seen: list[str] = []
    before = ""
    for _ in range(5):
        page = await api.get(f"{DESK}?limit=3{before}")
        seen += [order["code"] for order in page.json["orders"]]
        if page.json["next_before"] is None:
            break
        before = f"&before={page.json['next_before']}"

    assert seen == list(reversed(placed))


@pytest.mark.gen_test
async def test_desk_rejects_bad_filters(api, database_url):
    await _desk(api, database_url)

    bad_status = await api.get(f"{DESK}?status=shipped")
    bad_limit = await api.get(f"{DESK}?limit=0")
    bad_before = await api.get(f"{DESK}?before=abc")
    unknown = await api.get(f"{DESK}/ZZZZZZZZ")

    assert bad_status.status == 400
    assert bad_status.error["field"] == "status"
    assert bad_limit.error["field"] == "limit"
    assert bad_before.error["field"] == "before"
    assert unknown.status == 404


@pytest.mark.gen_test
async def test_transitions_and_their_conflicts(api, database_url):
    product = await _desk(api, database_url)
    code = (await _place(api, product["id"], 2))["order"]["code"]

    to_done = await api.patch(f"{DESK}/{code}", {"status": "done"})
    in_service = await api.patch(f"{DESK}/{code}", {"status": "in_service"})
    back = await api.patch(f"{DESK}/{code}", {"status": "new"})
    done = await api.patch(f"{DESK}/{code}", {"status": "done"})
    cancel_done = await api.patch(f"{DESK}/{code}", {"status": "cancelled"})
    unknown = await api.patch(f"{DESK}/{code}", {"status": "shipped"})
    detail = await api.get(f"{DESK}/{code}")

    assert to_done.status == 409
    assert to_done.error["code"] == "invalid_transition"
    assert in_service.status == 200
    assert in_service.json["status"] == "in_service"
    assert back.status == 409
    assert done.status == 200
    assert cancel_done.status == 409
    assert unknown.status == 400
    history = detail.json["history"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        ("new", "in_service"),
        ("in_service", "done"),
    ]
    assert all(h["manager"] == "host1" for h in history)
    assert all(h["created_at"] for h in history)
    assert detail.json["items"][0]["quantity"] == 2


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_cancels_restock_once(api, database_url):
    product = await _desk(api, database_url)
    code = (await _place(api, product["id"], 7))["order"]["code"]

    responses = await asyncio.gather(
        *(api.patch(f"{DESK}/{code}", {"status": "cancelled"}) for _ in range(6))
    )

    assert sorted(response.status for response in responses) == [200] + [409] * 5
    connection = await asyncpg.connect(database_url)
    try:
        stock = await connection.fetchval(
            "SELECT stock FROM products WHERE id = $1", product["id"]
        )
    finally:
        await connection.close()
    assert stock == 100


@pytest.mark.gen_test
async def test_cancel_restocks_above_max_stock(api, database_url):
    product = await _desk(api, database_url)
    url = f"/api/v1/manager/lives/summer-24/products/{product['id']}"
    code = (await _place(api, product["id"], 7))["order"]["code"]
    await api.patch(url, {"stock": 10**9})

    cancelled = await api.patch(f"{DESK}/{code}", {"status": "cancelled"})
    lowered = await api.patch(url, {"stock_delta": -1})
    raised = await api.patch(url, {"stock_delta": 1})

    assert cancelled.status == 200
    assert lowered.status == 200
    assert lowered.json["stock"] == 10**9 + 6
    assert raised.status == 400
    assert raised.error["field"] == "stock_delta"


@pytest.mark.gen_test
async def test_assign_order_to_manager(api, database_url):
    product = await _desk(api, database_url)
    code = (await _place(api, product["id"], 1))["order"]["code"]
    manager_id = (await api.get("/api/v1/manager/accounts")).json["managers"][0]["id"]

    assigned = await api.patch(f"{DESK}/{code}", {"assigned_manager_id": manager_id})
    missing = await api.patch(f"{DESK}/{code}", {"assigned_manager_id": 99999})
    cleared = await api.patch(f"{DESK}/{code}", {"assigned_manager_id": None})

    assert assigned.json["assigned_manager_id"] == manager_id
    assert missing.status == 404
    assert cleared.json["assigned_manager_id"] is None


@pytest.mark.gen_test
async def test_export_csv_of_filtered_orders(api, database_url):
    product = await _desk(api, database_url)
    await _place(api, product["id"], 2, company_name="=HYPERLINK(1)")
    await _place(api, product["id"], 3, company_name="Loja Azul")

    response = await api.get(f"{DESK}/export.csv?q=azul")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.raw.decode())))
    assert len(rows) == 1
    assert rows[0]["company_name"] == "Loja Azul"
    assert rows[0]["items"] == "3 x TSH-001"
    assert rows[0]["total_cents"] == str(3 * 2990)
    everything = list(
        csv.DictReader(io.StringIO((await api.get(f"{DESK}/export.csv")).raw.decode()))
    )
    assert everything[0]["company_name"] == "'=HYPERLINK(1)"


@pytest.mark.gen_test(timeout=30)
async def test_managers_notified_and_buyer_follows_order(api, database_url, base_url):
    product = await _desk(api, database_url)
    manager = await Socket.open(base_url)
    await manager.send({"op": "auth", "token": api.access_token})
    authenticated = await manager.receive()
    await manager.subscribe("managers:summer-24")

    placed = await _place(api, product["id"], 96)
    created = await manager.receive()
    counts = await manager.receive()
    low = await manager.receive()

    buyer = await Socket.open(base_url)
    code = placed["order"]["code"]
    refused = await buyer.subscribe(f"order:{code}", token="wrong")
    followed = await buyer.subscribe(f"order:{code}", token=placed["read_token"])
    await api.patch(f"{DESK}/{code}", {"status": "in_service"})
    status_event = await buyer.receive()

    assert authenticated["op"] == "authenticated"
    assert created["type"] == "order.created"
    assert created["data"]["code"] == code
    assert counts["type"] == "order.counts"
    assert counts["data"]["new"] == 1
    assert low["type"] == "stock.low"
    assert low["data"]["stock"] == 4
    assert low["data"]["threshold"] == 5
    assert refused["code"] == "forbidden"
    assert followed["op"] == "subscribed"
    assert status_event["type"] == "order.updated"
    assert status_event["data"]["status"] == "in_service"
    manager.close()
    buyer.close()


@pytest.mark.gen_test(timeout=30)
async def test_order_topic_needs_existing_code(api, database_url, base_url):
    product = await _desk(api, database_url)
    placed = await _place(api, product["id"], 1)
    code = placed["order"]["code"]
    manager = await Socket.open(base_url)
    await manager.send({"op": "auth", "token": api.access_token})
    await manager.receive()
    buyer = await Socket.open(base_url)

    missing = await manager.subscribe("order:NOSUCH01")
    lower_case = await manager.subscribe(f"order:{code.lower()}")
    buyer_lower_case = await buyer.subscribe(
        f"order:{code.lower()}", token=placed["read_token"]
    )
    existing = await manager.subscribe(f"order:{code}")

    assert missing["code"] == "unknown_topic"
    assert missing["message"] == "there is no order NOSUCH01"
    assert lower_case["code"] == "unknown_topic"
    assert f"order:{code}" in lower_case["message"]
    assert buyer_lower_case["code"] == "unknown_topic"
    assert existing["op"] == "subscribed"
    manager.close()
    buyer.close()


@pytest.mark.gen_test
async def test_manager_topics_need_auth(api, database_url, base_url):
    await _desk(api, database_url)

    anonymous = await Socket.open(base_url)
    await anonymous.send({"op": "subscribe", "topic": "managers:summer-24"})
    bad_token = await Socket.open(base_url)
    await bad_token.send({"op": "auth", "token": "not-a-jwt"})

    assert await anonymous.wait_closed() == 4001
    assert await bad_token.wait_closed() == 4001

    await login_manager(api, database_url, username="host2", role="host")
    host = await Socket.open(base_url)
    await host.send({"op": "auth", "token": api.access_token})
    await host.receive()
    own = await host.subscribe("manager:2")
    assert own["op"] == "subscribed"
    await host.send({"op": "subscribe", "topic": "manager:1"})
    assert await host.wait_closed() == 4003


@pytest.mark.gen_test
async def test_failed_patch_changes_nothing(api, database_url):
    product = await _desk(api, database_url)
    code = (await _place(api, product["id"], 1))["order"]["code"]
    manager_id = (await api.get("/api/v1/manager/accounts")).json["managers"][0]["id"]

    response = await api.patch(
        f"{DESK}/{code}", {"assigned_manager_id": manager_id, "status": "done"}
    )
    detail = await api.get(f"{DESK}/{code}")

    assert response.status == 409
    assert detail.json["assigned_manager_id"] is None
    assert detail.json["history"] == []


@pytest.mark.gen_test
async def test_search_wildcards_are_literal(api, database_url):
    product = await _desk(api, database_url)
    await _place(api, product["id"], 1, company_name="Acme 100%")
    await _place(api, product["id"], 1, company_name="Plain")

    percent = await api.get(f"{DESK}?q=%25")
    underscore = await api.get(f"{DESK}?q=_")

    assert [order["company_name"] for order in percent.json["orders"]] == ["Acme 100%"]
    assert underscore.json["orders"] == []


@pytest.mark.gen_test(timeout=30)
async def test_logout_closes_manager_sockets(api, database_url, base_url, ctx):
    await _desk(api, database_url)
    manager = await Socket.open(base_url)
    await manager.send({"op": "auth", "token": api.access_token})
    await manager.receive()
    await manager.subscribe("managers:summer-24")

    await api.post("/api/v1/manager/logout")
    for handler in list(ctx.sockets):
        await handler.check_still_authorized()

    assert await manager.wait_closed() == 4001


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("kind", ["managers", "order"])
async def test_revoked_login_cannot_subscribe(api, database_url, base_url, kind):
    product = await _desk(api, database_url)
    code = (await _place(api, product["id"], 1))["order"]["code"]
    topic = "managers:summer-24" if kind == "managers" else f"order:{code}"
    manager = await Socket.open(base_url)
    await manager.send({"op": "auth", "token": api.access_token})
    await manager.receive()

    # The next periodic check is seconds away, so the subscribe checks for itself.
    await api.post("/api/v1/manager/logout")
    await manager.send({"op": "subscribe", "topic": topic})

    assert await manager.wait_closed() == 4001
