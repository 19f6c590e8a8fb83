"""The manager panel in Chromium against the real server, next to a buyer's page.

One panel page signs in, builds a live and a product with an uploaded image, starts
the live, edits stock and works an order through the desk. A storefront page in the
same browser shows the stock change and places the order.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.browser.test_storefront import card, chromium
from tests.factories import BUYER, MANAGER_PASSWORD, login_manager

pytestmark = pytest.mark.browser

SLUG = "summer-24"
USERNAME = "host1"

# A valid 1x1 grayscale PNG with alpha, so the browser can decode it.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8"
    "AAAAASUVORK5CYII="
)


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    """Store uploads in a temporary folder, because the test app has no S3 bucket."""
    return {"media_dir": str(tmp_path / "media")}


def record_errors(page: Page, errors: list[str]) -> None:
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))


def status_count(page: Page, label: str):
    return page.locator(".status-tab", has_text=label).locator(".count")


async def fetch_row(database_url: str, query: str, *args: Any) -> asyncpg.Record:
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(query, *args)
    finally:
        await connection.close()
    assert row is not None, f"no row for {query} {args}"
    return row


@pytest.mark.gen_test(timeout=120)
async def test_panel_runs_live_and_order_desk(api, database_url, base_url, tmp_path):
    # login_manager creates the account that the browser signs in with below.
    await login_manager(api, database_url, username=USERNAME)
    image_file = tmp_path / "shirt.png"
    image_file.write_bytes(PNG)
    errors: list[str] = []

    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        panel = await context.new_page()
        record_errors(panel, errors)

        # Sign in through the login form.
        await panel.goto(f"{base_url}/panel/", wait_until="domcontentloaded")
        await panel.wait_for_url("**/panel/#/login")
        await panel.locator("form.login [name=username]").fill(USERNAME)
        await panel.locator("form.login [name=password]").fill(MANAGER_PASSWORD)
        await panel.locator("form.login button[type=submit]").click()
        await panel.wait_for_url("**/panel/#/lives")
        await expect(panel.locator("#account")).to_contain_text(f"{USERNAME} (admin)")
        await expect(panel.get_by_text("No lives yet.")).to_be_visible()

        # Create a live, and the panel opens its control screen.
        new_live = panel.locator("form", has_text="New live")
        await new_live.locator("[name=title]").fill("Summer wholesale")
        await new_live.locator("[name=slug]").fill(SLUG)
        await new_live.get_by_role("button", name="Create live").click()
        await panel.wait_for_url(f"**/panel/#/lives/{SLUG}")
        status_card = panel.locator("section.card", has_text="Status")
        await expect(status_card.locator(".badge")).to_have_text("scheduled")

        # Create a product with an uploaded image in the catalog.
        await panel.locator("a.tab", has_text="Catalog").click()
        await expect(panel.get_by_text("No products yet.")).to_be_visible()
        await panel.get_by_role("button", name="Add product").click()
        drawer = panel.locator(".drawer")
        await expect(drawer.locator(".drawer__title")).to_have_text("New product")
        await drawer.locator("[name=sku]").fill("TSH-1")
        await drawer.locator("[name=name]").fill("Basic T-shirt")
        await drawer.locator("[name=price_cents]").fill("29.90")
        await drawer.locator("[name=stock]").fill("100")
        await drawer.locator("[name=image_file]").set_input_files(str(image_file))
        await expect(drawer.get_by_role("status")).to_have_text(
            "Image uploaded; it is saved with the new product."
        )
        await expect(drawer.locator("[name=image_url]")).to_have_value(
            re.compile(r"^/media/products/[0-9a-f]{32}\.png$")
        )
        uploaded_url = await drawer.locator("[name=image_url]").input_value()
        await drawer.get_by_role("button", name="Create product").click()
        await expect(drawer).to_have_count(0)

        row = panel.locator("table.catalog tbody tr", has_text="Basic T-shirt")
        await expect(row).to_have_count(1)
        await expect(row.locator("[name=stock]")).to_have_value("100")
        thumbnail = row.locator("img.thumb")
        await expect(thumbnail).to_have_attribute("src", f"{base_url}{uploaded_url}")
        await panel.wait_for_function(
            "(image) => image.complete && image.naturalWidth === 1",
            arg=await thumbnail.element_handle(),
        )

        product = await fetch_row(
            database_url,
            "SELECT id, image_url, price_cents, stock FROM products WHERE sku = $1",
            "TSH-1",
        )
        assert product["image_url"] == uploaded_url
        assert product["image_url"].startswith("/media/products/")
        assert product["price_cents"] == 2990
        assert product["stock"] == 100
        served = await api.get(product["image_url"])
        assert served.status == 200, served
        assert served.raw == PNG

        # Start the live from the control screen.
        await panel.locator("a.tab", has_text="Control").click()
        await status_card.get_by_role("button", name="Start live").click()
        await expect(status_card.locator(".badge")).to_have_text("live")
        live = await fetch_row(
            database_url, "SELECT status FROM lives WHERE slug = $1", SLUG
        )
        assert live["status"] == "live"

        # A buyer's page shows a stock change made in the catalog without a reload.
        storefront = await context.new_page()
        record_errors(storefront, errors)
        await storefront.goto(f"{base_url}/live/{SLUG}", wait_until="domcontentloaded")
        await expect(storefront.locator("#live-title")).to_have_text("Summer wholesale")
        await expect(card(storefront, "Basic T-shirt")).to_contain_text("100 in stock")

        await panel.locator("a.tab", has_text="Catalog").click()
        stock_input = row.locator("[name=stock]")
        await stock_input.fill("64")
        await stock_input.press("Enter")
        await expect(card(storefront, "Basic T-shirt")).to_contain_text("64 in stock")
        await expect(stock_input).to_be_enabled()
        await expect(stock_input).to_have_value("64")

        # An inline price edit saves once, with no version conflict from a second send.
        price_input = row.locator("[name=price_cents]")
        await price_input.fill("27,50")
        await price_input.press("Enter")
        await expect(price_input).to_be_enabled()
        await expect(price_input).to_have_value("27.50")
        await expect(row.locator(".form-error")).to_be_hidden()
        await expect(card(storefront, "Basic T-shirt")).to_contain_text("27,50 / unit")
        edited = await fetch_row(
            database_url,
            "SELECT price_cents, stock FROM products WHERE id = $1",
            product["id"],
        )
        assert edited["price_cents"] == 2750
        assert edited["stock"] == 64

        # The order desk has loaded, and subscribed, once the counts show.
        await panel.locator("a.tab", has_text="Orders").click()
        await expect(status_count(panel, "New")).to_have_text("0")
        await expect(panel.get_by_text("No orders yet.")).to_be_visible()

        # The buyer checks out on the storefront.
        await (
            card(storefront, "Basic T-shirt")
            .get_by_role("button", name="Add to cart")
            .click()
        )
        await expect(storefront.locator("#cart-count")).to_have_text("1")
        await storefront.locator("#cart-button").click()
        await expect(storefront.locator("#checkout-section")).to_be_visible()
        for field in ("company_name", "tax_id", "contact_name", "phone", "email"):
            await storefront.locator(f"#{field}").fill(BUYER[field])
        await storefront.locator("#checkout-form button[type=submit]").click()
        await storefront.wait_for_url("**/orders/*#token=*")
        code = storefront.url.split("/orders/")[1].split("#")[0]

        # The order reaches the desk without a reload.
        order_row = panel.locator(f".order-row[data-code='{code}']")
        await expect(order_row).to_be_visible()
        await expect(order_row).to_contain_text(BUYER["company_name"])
        await expect(order_row.locator(".badge")).to_have_text("New")
        await expect(status_count(panel, "New")).to_have_text("1")
        await expect(status_count(panel, "All")).to_have_text("1")

        # Work the order through the detail drawer: in service, then done.
        await order_row.click()
        await panel.wait_for_url(f"**/panel/#/lives/{SLUG}/orders/{code}")
        detail = panel.locator(".drawer")
        await expect(detail.locator(".drawer__title")).to_have_text(f"Order {code}")
        await detail.get_by_role("button", name="Start service").click()
        await expect(detail.locator(".detail-head .badge")).to_have_text("In service")
        await expect(status_count(panel, "In service")).to_have_text("1")
        await detail.get_by_role("button", name="Mark done").click()
        await expect(detail.locator(".detail-head .badge")).to_have_text("Done")
        await expect(detail.locator(".history")).to_contain_text("In service → Done")
        await expect(order_row.locator(".badge")).to_have_text("Done")
        await expect(status_count(panel, "Done")).to_have_text("1")
        await expect(status_count(panel, "New")).to_have_text("0")
        await expect(status_count(panel, "In service")).to_have_text("0")

        await context.close()

    order = await fetch_row(
        database_url, "SELECT status, total_cents FROM orders WHERE code = $1", code
    )
    stock = await fetch_row(
        database_url, "SELECT stock FROM products WHERE id = $1", product["id"]
    )
    assert order["status"] == "done"
    assert order["total_cents"] == 2750
    assert stock["stock"] == 63
    assert errors == []
