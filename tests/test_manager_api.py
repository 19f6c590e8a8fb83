"""Manager login, token refresh, and the routes that run a live and its catalog."""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt
import pytest

from handlers.auth import JWT_ALGORITHM, JWT_AUDIENCE
from store.pricing import MAX_PRICE_CENTS
from tests.factories import MANAGER_PASSWORD, create_live, create_product, login_manager

PRODUCTS = "/api/v1/manager/lives/summer-24/products"


@pytest.mark.gen_test
async def test_login_returns_tokens(api, database_url, settings):
    tokens = await login_manager(api, database_url)

    assert tokens["expires_in"] == 8 * 3600
    claims = jwt.decode(
        tokens["access_token"],
        settings.jwt_secret,
        algorithms=[JWT_ALGORITHM],
        audience=JWT_AUDIENCE,
    )
    assert claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == 8 * 3600
    assert len(tokens["refresh_token"]) >= 40


@pytest.mark.gen_test
async def test_login_wrong_password_is_401(api, database_url):
    await login_manager(api, database_url)

    wrong = await api.post(
        "/api/v1/manager/login", {"username": "host1", "password": "wrong password"}
    )
    unknown = await api.post(
        "/api/v1/manager/login", {"username": "nobody", "password": MANAGER_PASSWORD}
    )

    assert wrong.status == 401
    assert unknown.status == 401
    assert wrong.json == unknown.json


@pytest.mark.gen_test
async def test_refresh_rotates_and_detects_reuse(api, database_url):
    tokens = await login_manager(api, database_url)
    first = tokens["refresh_token"]

    rotated = await api.post("/api/v1/manager/refresh", {"refresh_token": first})
    assert rotated.status == 200
    second = rotated.json["refresh_token"]
    assert second != first
    assert rotated.json["access_token"]

    reused = await api.post("/api/v1/manager/refresh", {"refresh_token": first})
    assert reused.status == 401
    assert reused.error["code"] == "invalid_refresh_token"

    # Reuse of the spent token revoked its successor too.
    successor = await api.post("/api/v1/manager/refresh", {"refresh_token": second})
    assert successor.status == 401


@pytest.mark.gen_test
async def test_manager_routes_need_bearer(api, database_url, settings):
    await login_manager(api, database_url)
    await create_live(api)
    good = api.access_token
    expired = jwt.encode(
        {
            "sub": "1",
            "role": "admin",
            "fam": str(uuid.uuid4()),
            "aud": JWT_AUDIENCE,
            "exp": int(time.time()) - 5,
        },
        settings.jwt_secret,
        algorithm=JWT_ALGORITHM,
    )
    forged = jwt.encode(
        {
            "sub": "1",
            "role": "admin",
            "aud": JWT_AUDIENCE,
            "exp": int(time.time()) + 60,
        },
        "another-secret-" + "y" * 32,
        algorithm=JWT_ALGORITHM,
    )
    routes = [
        ("POST", "/api/v1/manager/lives", {"slug": "x", "title": "x"}),
        ("GET", "/api/v1/manager/lives/summer-24", None),
        ("PATCH", "/api/v1/manager/lives/summer-24", {"title": "x"}),
        ("POST", PRODUCTS, {"sku": "x", "name": "x", "price_cents": 1}),
        ("PATCH", f"{PRODUCTS}/1", {"name": "x"}),
        ("DELETE", f"{PRODUCTS}/1", None),
    ]

    for token, code in [
        (None, "unauthorized"),
        (expired, "token_expired"),
        (forged, "unauthorized"),
    ]:
        api.access_token = token
        for method, path, body in routes:
            response = await api.request(method, path, body)
            assert response.status == 401, (token, method, path, response)
            assert response.error["code"] == code
    api.access_token = good


@pytest.mark.gen_test
async def test_live_status_transitions(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)

    to_live = await api.patch("/api/v1/manager/lives/summer-24", {"status": "live"})
    back = await api.patch("/api/v1/manager/lives/summer-24", {"status": "scheduled"})
    to_ended = await api.patch("/api/v1/manager/lives/summer-24", {"status": "ended"})
    reopen = await api.patch("/api/v1/manager/lives/summer-24", {"status": "live"})
    bogus = await api.patch("/api/v1/manager/lives/summer-24", {"status": "paused"})

    assert to_live.status == 200
    assert to_live.json["status"] == "live"
    assert back.status == 409
    assert back.error["code"] == "invalid_transition"
    assert to_ended.status == 200
    assert reopen.status == 409
    assert bogus.status == 400
    assert bogus.error["field"] == "status"


@pytest.mark.gen_test
async def test_pinned_products_are_checked(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    ids = [(await create_product(api, sku=f"P-{index}"))["id"] for index in range(4)]
    hidden = await create_product(api, sku="HID", visible=False)

    ok = await api.patch(
        "/api/v1/manager/lives/summer-24", {"pinned_product_ids": ids[:3]}
    )
    too_many = await api.patch(
        "/api/v1/manager/lives/summer-24", {"pinned_product_ids": ids}
    )
    with_hidden = await api.patch(
        "/api/v1/manager/lives/summer-24", {"pinned_product_ids": [hidden["id"]]}
    )

    assert ok.status == 200
    assert ok.json["pinned_product_ids"] == ids[:3]
    assert too_many.status == 400
    assert with_hidden.status == 400
    assert with_hidden.error["field"] == "pinned_product_ids[0]"

    await api.delete(f"{PRODUCTS}/{ids[0]}")
    live = await api.get("/api/v1/lives/summer-24")
    assert live.json["live"]["pinned_product_ids"] == ids[1:3]


@pytest.mark.gen_test
async def test_live_fields_are_validated(api, database_url):
    await login_manager(api, database_url)

    bad_slug = await api.post(
        "/api/v1/manager/lives", {"slug": "Bad Slug", "title": "x"}
    )
    bad_url = await api.post(
        "/api/v1/manager/lives",
        {"slug": "ok", "title": "x", "video_url": "javascript:1"},
    )
    bad_currency = await api.post(
        "/api/v1/manager/lives", {"slug": "ok", "title": "x", "currency": "R$"}
    )
    await create_live(api, slug="taken")
    duplicate = await api.post("/api/v1/manager/lives", {"slug": "taken", "title": "x"})

    assert bad_slug.status == 400
    assert bad_slug.error["field"] == "slug"
    assert bad_url.error["field"] == "video_url"
    assert bad_currency.error["field"] == "currency"
    assert duplicate.status == 409
    assert duplicate.error["code"] == "duplicate_slug"


@pytest.mark.gen_test
async def test_product_fields_are_validated(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    base = {"sku": "S-1", "name": "Shirt", "price_cents": 1000}

    cases = [
        ({**base, "price_cents": 10.5}, "price_cents"),
        ({**base, "price_cents": -1}, "price_cents"),
        ({**base, "price_cents": MAX_PRICE_CENTS + 1}, "price_cents"),
        ({**base, "stock": -3}, "stock"),
        ({**base, "step": 0}, "step"),
        ({**base, "min_quantity": 12, "max_quantity": 6}, "max_quantity"),
        (
            {**base, "tiers": [{"min_quantity": 1, "price_cents": 900}]},
            "tiers[0].min_quantity",
        ),
        ({**base, "tiers": [{"min_quantity": 10}]}, "tiers[0]"),
        ({**base, "tiers": "cheap"}, "tiers"),
        ({**base, "tiers": [{"min_quantity": 10, "price_cents": 1100}]}, "tiers"),
        (
            {
                **base,
                "tiers": [
                    {"min_quantity": 10, "price_cents": 800},
                    {"min_quantity": 50, "price_cents": 850},
                ],
            },
            "tiers",
        ),
        ({**base, "visible": "yes"}, "visible"),
        ({"name": "No SKU", "price_cents": 1}, "sku"),
        ({**base, "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = await api.post(PRODUCTS, body)
        assert response.status == 400, (body, response)
        assert response.error["field"] == field, (body, response)

    await create_product(api, sku="S-1")
    duplicate = await api.post(PRODUCTS, base)
    assert duplicate.status == 409
    assert duplicate.error["code"] == "duplicate_sku"


@pytest.mark.gen_test
async def test_patch_checks_tiers_against_price(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, sku="S-1", price_cents=1000)
    url = f"{PRODUCTS}/{product['id']}"
    tiers = [{"min_quantity": 10, "price_cents": 900}]

    pricier_tier = await api.patch(
        url, {"tiers": [{"min_quantity": 10, "price_cents": 1200}]}
    )
    with_tiers = await api.patch(url, {"tiers": tiers})
    price_below_tier = await api.patch(url, {"price_cents": 800})
    after_failure = await api.get("/api/v1/manager/lives/summer-24")
    both = await api.patch(url, {"price_cents": 800, "tiers": []})

    assert pricier_tier.status == 400
    assert pricier_tier.error["field"] == "tiers"
    assert "1200 cents" in pricier_tier.error["message"]
    assert with_tiers.status == 200
    assert price_below_tier.status == 400
    assert price_below_tier.error["field"] == "price_cents"
    assert after_failure.json["products"][0]["price_cents"] == 1000
    assert after_failure.json["products"][0]["tiers"] == tiers
    assert both.status == 200
    assert both.json["price_cents"] == 800
    assert both.json["tiers"] == []


@pytest.mark.gen_test
async def test_product_patch_and_delete(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, sku="S-1", stock=10)

    patched = await api.patch(
        f"{PRODUCTS}/{product['id']}", {"stock": 25, "position": 7}
    )
    await api.patch(f"{PRODUCTS}/{product['id']}", {"image_url": "/media/a.jpg"})
    image_cleared = await api.patch(f"{PRODUCTS}/{product['id']}", {"image_url": None})
    missing = await api.patch(f"{PRODUCTS}/999999", {"stock": 1})
    deleted = await api.delete(f"{PRODUCTS}/{product['id']}")
    deleted_again = await api.delete(f"{PRODUCTS}/{product['id']}")

    assert patched.status == 200
    assert patched.json["stock"] == 25
    assert patched.json["position"] == 7
    assert image_cleared.status == 200
    assert image_cleared.json["image_url"] == ""
    assert missing.status == 404
    assert deleted.status == 204
    assert deleted_again.status == 404
    live = await api.get("/api/v1/lives/summer-24")
    assert live.json["products"] == []


@pytest.mark.gen_test
async def test_stock_delta_stays_in_range(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, stock=10)
    url = f"{PRODUCTS}/{product['id']}"

    added = await api.patch(url, {"stock_delta": 5})
    below_zero = await api.patch(url, {"stock_delta": -16})
    to_max = await api.patch(url, {"stock_delta": 10**9 - 15})
    above_max = await api.patch(url, {"stock_delta": 1})

    assert added.status == 200
    assert added.json["stock"] == 15
    assert below_zero.status == 409
    assert below_zero.error["field"] == "stock_delta"
    assert to_max.status == 200
    assert to_max.json["stock"] == 10**9
    assert above_max.status == 400
    assert above_max.error["field"] == "stock_delta"
    assert "maximum" in above_max.error["message"]


@pytest.mark.gen_test
async def test_hidden_products_not_public(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)
    await create_product(api, sku="VIS")
    await create_product(api, sku="HID", visible=False)

    public = await api.get("/api/v1/lives/summer-24")
    manager_view = await api.get("/api/v1/manager/lives/summer-24")

    assert [product["sku"] for product in public.json["products"]] == ["VIS"]
    assert [product["sku"] for product in manager_view.json["products"]] == [
        "VIS",
        "HID",
    ]


@pytest.mark.gen_test
async def test_reused_refresh_revokes_access_token(api, database_url):
    tokens = await login_manager(api, database_url)
    await api.post(
        "/api/v1/manager/refresh", {"refresh_token": tokens["refresh_token"]}
    )

    before = await api.get("/api/v1/manager/accounts")
    await api.post(
        "/api/v1/manager/refresh", {"refresh_token": tokens["refresh_token"]}
    )
    after = await api.get("/api/v1/manager/accounts")

    assert before.status == 200
    assert after.status == 401
    assert after.error["code"] == "token_revoked"


@pytest.mark.gen_test
async def test_logout_revokes_tokens(api, database_url):
    tokens = await login_manager(api, database_url)

    logout = await api.post("/api/v1/manager/logout")
    access = await api.get("/api/v1/manager/accounts")
    refresh = await api.post(
        "/api/v1/manager/refresh", {"refresh_token": tokens["refresh_token"]}
    )

    assert logout.status == 204
    assert access.status == 401
    assert access.error["code"] == "token_revoked"
    assert refresh.status == 401


@pytest.mark.gen_test
async def test_login_throttled_after_five_failures(api, database_url):
    await login_manager(api, database_url)
    wrong = {"username": "host1", "password": "wrong password"}

    statuses = [
        (await api.post("/api/v1/manager/login", wrong)).status for _ in range(5)
    ]
    blocked = await api.post(
        "/api/v1/manager/login", {"username": "host1", "password": MANAGER_PASSWORD}
    )

    assert statuses == [401] * 5
    assert blocked.status == 429
    assert blocked.error["code"] == "too_many_attempts"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60


@pytest.mark.gen_test
async def test_login_throttle_uses_trusted_address(api, database_url, ctx):
    async def fail(username: str, address: str) -> int:
        response = await api.post(
            "/api/v1/manager/login",
            {"username": username, "password": "wrong password"},
            headers={"X-Real-Ip": address},
        )
        return response.status

    # The test client connects from 127.0.0.1, a trusted proxy by default.
    first = [await fail(f"buyer{index}", "203.0.113.1") for index in range(5)]
    same_address = await fail("buyer9", "203.0.113.1")
    other_address = await fail("buyer9", "203.0.113.2")

    # With no trusted proxy, X-Real-Ip is ignored and 127.0.0.1 takes every failure.
    ctx.trusted_proxies = ()
    forged = [await fail(f"other{index}", f"198.51.100.{index}") for index in range(5)]
    forged_over = await fail("other9", "198.51.100.9")

    assert first == [401] * 5
    assert same_address == 429
    assert other_address == 401
    assert forged == [401] * 5
    assert forged_over == 429


@pytest.mark.gen_test
async def test_accounts_are_admin_only(api, database_url):
    await login_manager(api, database_url, username="boss", role="admin")
    created = await api.post(
        "/api/v1/manager/accounts",
        {"username": "host2", "password": MANAGER_PASSWORD, "role": "host"},
    )
    await login_manager(api, database_url, username="host3", role="host")

    listed = await api.get("/api/v1/manager/accounts")
    create = await api.post(
        "/api/v1/manager/accounts",
        {"username": "x", "password": MANAGER_PASSWORD, "role": "admin"},
    )
    lives = await api.post("/api/v1/manager/lives", {"slug": "by-host", "title": "x"})

    assert created.status == 201
    assert created.json["role"] == "host"
    assert listed.status == 403
    assert create.status == 403
    assert lives.status == 201


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_failures_still_throttled(api, database_url):
    await login_manager(api, database_url)
    wrong = {"username": "host1", "password": "wrong password"}

    responses = await asyncio.gather(
        *(api.post("/api/v1/manager/login", wrong) for _ in range(20))
    )

    statuses = sorted(response.status for response in responses)
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 15, statuses


@pytest.mark.gen_test
async def test_usernames_ignore_case(api, database_url):
    await login_manager(api, database_url, username="boss", role="admin")

    twin = await api.post(
        "/api/v1/manager/accounts",
        {"username": "BOSS", "password": MANAGER_PASSWORD, "role": "host"},
    )
    login = await api.post(
        "/api/v1/manager/login", {"username": "Boss", "password": MANAGER_PASSWORD}
    )

    assert twin.status == 409
    assert login.status == 200
    assert login.json["manager"]["username"] == "boss"
