"""Live control: schedule, flash offers, banners, dashboard."""

from __future__ import annotations

import datetime as dt

import pytest

from server.scheduler import Scheduler
from tests.factories import (
    checkout,
    create_live,
    create_product,
    login_manager,
    open_cart,
    set_line,
)
from tests.wsclient import Socket

LIVE = "/api/v1/manager/lives/summer-24"
PRODUCTS = f"{LIVE}/products"


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _live(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    return await create_product(
        api, stock=100, tiers=[{"min_quantity": 10, "price_cents": 2500}]
    )


@pytest.mark.gen_test
async def test_schedule_and_lives_list(api, database_url):
    await _live(api, database_url)
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)

    scheduled = await api.patch(LIVE, {"starts_at": _iso(starts)})
    bad = await api.patch(LIVE, {"starts_at": "tomorrow"})
    naive = await api.patch(LIVE, {"starts_at": "2026-12-05T10:00:00"})
    started = await api.patch(LIVE, {"status": "live"})
    listed = await api.get("/api/v1/manager/lives")

    assert scheduled.json["starts_at"].startswith(starts.date().isoformat())
    assert bad.status == 400
    assert bad.error["field"] == "starts_at"
    assert naive.status == 400
    assert started.json["started_at"] is not None
    assert [live["slug"] for live in listed.json["lives"]] == ["summer-24"]


@pytest.mark.gen_test
async def test_flash_offer_prices_and_validation(api, database_url):
    product = await _live(api, database_url)
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)

    half = await api.patch(f"{PRODUCTS}/{product['id']}", {"flash_price_cents": 1990})
    past = await api.patch(
        f"{PRODUCTS}/{product['id']}",
        {"flash_price_cents": 1990, "flash_ends_at": _iso(dt.datetime.now(dt.UTC))},
    )
    offer = await api.patch(
        f"{PRODUCTS}/{product['id']}",
        {"flash_price_cents": 1990, "flash_ends_at": _iso(ends)},
    )
    public = (await api.get("/api/v1/lives/summer-24")).json["products"][0]
    cart_id, headers = await open_cart(api)
    small = await set_line(api, cart_id, headers, product["id"], 2)
    large = await set_line(api, cart_id, headers, product["id"], 20)

    assert half.status == 400
    assert past.status == 400
    assert past.error["field"] == "flash_ends_at"
    assert offer.status == 200
    assert public["flash_price_cents"] == 1990
    assert public["flash_ends_at"] is not None
    assert small.json["lines"][0]["unit_price_cents"] == 1990
    assert large.json["lines"][0]["unit_price_cents"] == 1990

    ended = await api.patch(
        f"{PRODUCTS}/{product['id']}",
        {"flash_price_cents": None, "flash_ends_at": None},
    )
    assert ended.json["flash_price_cents"] is None
    again = await set_line(api, cart_id, headers, product["id"], 20)
    assert again.json["lines"][0]["unit_price_cents"] == 2500


@pytest.mark.gen_test
async def test_flash_end_published_by_scheduler(api, database_url, base_url, ctx):
    product = await _live(api, database_url)
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    await api.patch(
        f"{PRODUCTS}/{product['id']}",
        {"flash_price_cents": 1990, "flash_ends_at": _iso(ends)},
    )
    socket = await Socket.open(base_url)
    await socket.subscribe("live:summer-24")

    scheduler = Scheduler(ctx.pool, ctx.broker)
    await scheduler.tick(ends - dt.timedelta(seconds=5))
    await socket.receive_none()
    await scheduler.tick(ends + dt.timedelta(seconds=1))
    event = await socket.receive()

    assert event["type"] == "product.updated"
    assert event["data"]["id"] == product["id"]
    socket.close()


@pytest.mark.gen_test
async def test_banners_by_hand_and_schedule(api, database_url, base_url, ctx):
    await _live(api, database_url)
    socket = await Socket.open(base_url)
    await socket.subscribe("live:summer-24")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)

    shown = await api.post(
        f"{LIVE}/banners", {"text": "Free shipping", "visible": True}
    )
    first = await socket.receive()
    scheduled = await api.post(
        f"{LIVE}/banners",
        {"text": "Flash at 5", "visible": True, "show_at": _iso(later)},
    )
    second = await socket.receive()
    backwards = await api.post(
        f"{LIVE}/banners",
        {"text": "x", "show_at": _iso(later), "hide_at": _iso(later)},
    )
    hidden = await api.patch(f"{LIVE}/banners/{shown.json['id']}", {"visible": False})
    third = await socket.receive()
    public = await api.get("/api/v1/lives/summer-24")

    assert shown.status == 201
    assert [b["text"] for b in first["data"]["banners"]] == ["Free shipping"]
    assert scheduled.status == 201
    assert [b["text"] for b in second["data"]["banners"]] == ["Free shipping"]
    assert backwards.status == 409
    assert hidden.json["visible"] is False
    assert third["data"]["banners"] == []
    assert public.json["banners"] == []

    scheduler = Scheduler(ctx.pool, ctx.broker)
    await scheduler.tick(later - dt.timedelta(seconds=0.5))
    await scheduler.tick(later + dt.timedelta(seconds=0.5))
    fourth = await socket.receive()
    assert [b["text"] for b in fourth["data"]["banners"]] == ["Flash at 5"]
    socket.close()


@pytest.mark.gen_test(timeout=30)
async def test_dashboard_figures(api, database_url):
    product = await _live(api, database_url)
    other = await create_product(api, sku="CAP-1", name="Cap", price_cents=1000)
    for quantity, extra in [(2, 0), (12, 3), (1, 1)]:
        cart_id, headers = await open_cart(api)
        await set_line(api, cart_id, headers, product["id"], quantity)
        if extra:
            await set_line(api, cart_id, headers, other["id"], extra)
        placed = await checkout(api, cart_id, headers)
        assert placed.status == 201
    code = placed.json["order"]["code"]
    await api.patch(f"{LIVE}/orders/{code}", {"status": "cancelled"})

    figures = (await api.get(f"{LIVE}/dashboard")).json

    expected = 2 * 2990 + 12 * 2500 + 3 * 1000
    assert figures["revenue_cents"] == expected
    assert figures["orders"] == 2
    assert figures["units"] == 17
    assert figures["orders_per_minute"] == 0.4
    assert figures["top_products"][0]["sku"] == "TSH-001"
    assert figures["top_products"][0]["units"] == 14
    assert (
        sum(point["revenue_cents"] for point in figures["revenue_series"]) == expected
    )
    assert figures["viewers"] == {"now": 0, "peak": 0}


@pytest.mark.gen_test
async def test_flash_price_must_lower_price(api, database_url):
    product = await _live(api, database_url)
    ends = _iso(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))

    free = await api.patch(
        f"{PRODUCTS}/{product['id']}", {"flash_price_cents": 0, "flash_ends_at": ends}
    )
    higher = await api.patch(
        f"{PRODUCTS}/{product['id']}",
        {"flash_price_cents": 99_999, "flash_ends_at": ends},
    )

    assert free.status == 400
    assert free.error["field"] == "flash_price_cents"
    assert higher.status == 409
    assert higher.error["field"] == "flash_price_cents"


@pytest.mark.gen_test
async def test_out_of_range_times_rejected(api, database_url):
    product = await _live(api, database_url)
    banner = await api.post(f"{LIVE}/banners", {"text": "Free shipping"})
    flash_url = f"{PRODUCTS}/{product['id']}"
    # Each target: method, path, the other fields of the body, the time field.
    targets = [
        ("PATCH", LIVE, {}, "starts_at"),
        ("POST", f"{LIVE}/banners", {"text": "x"}, "show_at"),
        ("POST", f"{LIVE}/banners", {"text": "x"}, "hide_at"),
        ("PATCH", f"{LIVE}/banners/{banner.json['id']}", {}, "show_at"),
        ("PATCH", f"{LIVE}/banners/{banner.json['id']}", {}, "hide_at"),
        ("PATCH", flash_url, {"flash_price_cents": 1990}, "flash_ends_at"),
    ]
    # The last two have an in-range date, but their UTC time is out of range.
    values = [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1999-12-31T23:59:59Z",
        "9999-01-01T00:00:00Z",
        "2000-01-01T00:30:00+01:00",
        "9998-12-31T23:00:00-02:00",
    ]

    for method, path, fields, name in targets:
        for value in values:
            body = {**fields, name: value}
            response = await api.request(method, path, body)
            case = (method, path, name, value, response)
            assert response.status == 400, case
            assert response.error["code"] == "out_of_range", case
            assert response.error["field"] == name, case
            assert "2000 to 9998" in response.error["message"], case


@pytest.mark.gen_test
async def test_times_at_range_ends_accepted(api, database_url):
    product = await _live(api, database_url)

    earliest = await api.patch(LIVE, {"starts_at": "2000-01-01T00:00:00Z"})
    latest = await api.patch(LIVE, {"starts_at": "9998-12-31T23:59:59-00:00"})
    offer = await api.patch(
        f"{PRODUCTS}/{product['id']}",
        {"flash_price_cents": 1990, "flash_ends_at": "9998-12-31T23:59:59Z"},
    )
    banner = await api.post(
        f"{LIVE}/banners",
        {
            "text": "Always",
            "show_at": "2000-01-01T09:00:00+09:00",
            "hide_at": "9998-12-31T09:59:59-14:00",
        },
    )

    assert earliest.status == 200, earliest
    assert earliest.json["starts_at"].startswith("2000-01-01T00:00:00")
    assert latest.status == 200, latest
    assert latest.json["starts_at"].startswith("9998-12-31T23:59:59")
    assert offer.status == 200, offer
    assert offer.json["flash_price_cents"] == 1990
    assert banner.status == 201, banner
