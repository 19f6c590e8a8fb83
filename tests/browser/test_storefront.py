"""The storefront in Chromium against the real server: live updates and checkout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.factories import BUYER, create_live, create_product, login_manager

CHROMIUM = "/usr/bin/chromium"
PRODUCTS = "/api/v1/manager/lives/summer-24/products"

pytestmark = pytest.mark.browser


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            await browser.close()


def card(page: Page, name: str):
    return page.locator("#product-grid article.card", has_text=name)


@pytest.fixture(autouse=True)
def require_chromium() -> None:
    assert Path(CHROMIUM).exists(), (
        "Debian's chromium is missing: apt-get install chromium"
    )


@pytest.mark.gen_test(timeout=90)
async def test_storefront_updates_live_and_checks_out(api, database_url, base_url):
    await login_manager(api, database_url)
    await create_live(api, video_url="")
    await api.patch("/api/v1/manager/lives/summer-24", {"status": "live"})
    shirt = await create_product(api, sku="TSH-1", name="Basic T-shirt", stock=100)
    cap = await create_product(
        api, sku="CAP-1", name="Trucker cap", stock=30, price_cents=1500
    )

    async with chromium() as browser:
        page = await browser.new_page()
        console_errors: list[str] = []
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        await page.goto(f"{base_url}/live/summer-24", wait_until="domcontentloaded")

        await expect(page.locator("#live-title")).to_have_text("Summer wholesale")
        await expect(card(page, "Basic T-shirt")).to_contain_text("100 in stock")

        # Changes made by a manager appear without a reload.
        await api.patch(f"{PRODUCTS}/{shirt['id']}", {"stock": 64})
        await expect(card(page, "Basic T-shirt")).to_contain_text("64 in stock")
        await api.patch(f"{PRODUCTS}/{cap['id']}", {"stock": 0})
        await expect(card(page, "Trucker cap")).to_contain_text("Sold out")
        await create_product(api, sku="NEW-1", name="Linen shirt", stock=9)
        await expect(card(page, "Linen shirt")).to_be_visible()

        # Add to the cart and check out in one step.
        await (
            card(page, "Basic T-shirt")
            .get_by_role("button", name="Add to cart")
            .click()
        )
        await expect(page.locator("#cart-count")).to_have_text("1")
        await page.locator("#cart-button").click()
        await expect(page.locator("#checkout-section")).to_be_visible()
        for field in ("company_name", "tax_id", "contact_name", "phone", "email"):
            await page.locator(f"#{field}").fill(BUYER[field])
        await page.locator("#checkout-form button[type=submit]").click()

        await page.wait_for_url("**/orders/*#token=*")
        await expect(page.locator("#order-title")).to_contain_text("Order ")
        await expect(page.locator("#order-items")).to_contain_text("Basic T-shirt")
        assert console_errors == []

    connection = await asyncpg.connect(database_url)
    try:
        orders = await connection.fetch("SELECT code, total_cents FROM orders")
        stock = await connection.fetchval(
            "SELECT stock FROM products WHERE id = $1", shirt["id"]
        )
    finally:
        await connection.close()
    assert len(orders) == 1
    assert orders[0]["total_cents"] == 2990
    assert stock == 63
    assert page.url.split("/orders/")[1].startswith(orders[0]["code"])
