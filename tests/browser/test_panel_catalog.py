"""Catalog and live-control features of the manager panel in Chromium.

Each test signs in through the panel and checks the result in the database and on a
buyer's page in the same browser: CSV import and export, reordering products, banners
and a flash offer.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from playwright.async_api import BrowserContext, Page, Route, expect

from tests.browser.test_panel import fetch_row, record_errors
from tests.browser.test_storefront import card, chromium
from tests.factories import MANAGER_PASSWORD, create_live, create_product, login_manager

pytestmark = pytest.mark.browser

SLUG = "summer-24"
USERNAME = "host1"

# Line 3 has a price that is not a whole number of cents.
BAD_CSV = (
    "sku,name,price_cents,stock,tiers\n"
    "TSH-1,Basic T-shirt,2990,100,\n"
    "CAP-1,Trucker cap,fifteen,30,\n"
    "SCK-1,Wool socks,990,250,12:890\n"
)
GOOD_CSV = (
    "sku,name,price_cents,stock,tiers\n"
    "TSH-1,Basic T-shirt,2990,100,\n"
    "CAP-1,Trucker cap,1500,30,\n"
    "SCK-1,Wool socks,990,250,12:890\n"
)


async def fetch_rows(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def open_panel(context: BrowserContext, base_url: str, errors: list[str]) -> Page:
    """Open the panel, sign in and open the control screen of the live."""
    panel = await context.new_page()
    record_errors(panel, errors)
    await panel.goto(f"{base_url}/panel/", wait_until="domcontentloaded")
    await panel.wait_for_url("**/panel/#/login")
    await panel.locator("form.login [name=username]").fill(USERNAME)
    await panel.locator("form.login [name=password]").fill(MANAGER_PASSWORD)
    await panel.locator("form.login button[type=submit]").click()
    await panel.wait_for_url("**/panel/#/lives")
    await panel.goto(f"{base_url}/panel/#/lives/{SLUG}")
    await expect(panel.locator("section.card", has_text="Status")).to_be_visible()
    return panel


async def open_storefront(
    context: BrowserContext, base_url: str, errors: list[str]
) -> Page:
    storefront = await context.new_page()
    record_errors(storefront, errors)
    await storefront.goto(f"{base_url}/live/{SLUG}", wait_until="domcontentloaded")
    await expect(storefront.locator("#live-title")).to_have_text("Summer wholesale")
    return storefront


async def start_live(api, database_url: str) -> None:
    """Create the manager account and a live that buyers can already open."""
    await login_manager(api, database_url, username=USERNAME)
    await create_live(api, video_url="")
    response = await api.patch(f"/api/v1/manager/lives/{SLUG}", {"status": "live"})
    assert response.status == 200, response


@pytest.mark.gen_test(timeout=120)
async def test_csv_import_and_export(api, database_url, base_url, tmp_path):
    await login_manager(api, database_url, username=USERNAME)
    await create_live(api, video_url="")
    bad_file = tmp_path / "bad.csv"
    bad_file.write_text(BAD_CSV)
    good_file = tmp_path / "catalog.csv"
    good_file.write_text(GOOD_CSV)
    errors: list[str] = []

    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        panel = await open_panel(context, base_url, errors)
        await panel.locator("a.tab", has_text="Catalog").click()
        await expect(panel.get_by_text("No products yet.")).to_be_visible()
        file_input = panel.locator("section.card input[type=file][accept*=csv]")

        # A file with one bad row lists that row by line number and imports nothing.
        await file_input.set_input_files(str(bad_file))
        result = panel.locator(".csv-result")
        await expect(result.get_by_role("alert")).to_contain_text(
            "bad.csv was not imported"
        )
        line_errors = result.locator(".csv-errors li")
        await expect(line_errors).to_have_count(1)
        await expect(line_errors.first).to_contain_text("Line 3")
        await expect(line_errors.first).to_contain_text("price_cents")
        await expect(line_errors.first).to_contain_text("fifteen")
        count = await fetch_row(
            database_url,
            "SELECT count(*) AS n FROM products p JOIN lives l ON l.id = p.live_id"
            " WHERE l.slug = $1",
            SLUG,
        )
        assert count["n"] == 0
        await expect(panel.locator("table.catalog tbody tr")).to_have_count(0)

        # The corrected file imports every row, and the table shows them.
        await file_input.set_input_files(str(good_file))
        await expect(result.get_by_role("status")).to_have_text(
            "Imported catalog.csv: 3 created, 0 updated."
        )
        rows = panel.locator("table.catalog tbody tr")
        await expect(rows).to_have_count(3)
        for name, stock in (
            ("Basic T-shirt", "100"),
            ("Trucker cap", "30"),
            ("Wool socks", "250"),
        ):
            row = rows.filter(has_text=name)
            await expect(row).to_have_count(1)
            await expect(row.locator("[name=stock]")).to_have_value(stock)
        await expect(
            rows.filter(has_text="Trucker cap").locator("[name=price_cents]")
        ).to_have_value("15.00")
        await expect(rows.filter(has_text="Wool socks")).to_contain_text("1 tier")

        # Export downloads the catalog as CSV with the imported rows.
        async with panel.expect_download() as download_info:
            await panel.get_by_role("button", name="Export CSV").click()
        download = await download_info.value
        assert download.suggested_filename == f"{SLUG}-products.csv"
        exported_path = tmp_path / "exported.csv"
        await download.save_as(exported_path)
        await context.close()

    exported = list(csv.DictReader(io.StringIO(exported_path.read_text())))
    expected = list(csv.DictReader(io.StringIO(GOOD_CSV)))
    assert [row["sku"] for row in exported] == [row["sku"] for row in expected]
    for got, want in zip(exported, expected, strict=True):
        assert got["name"] == want["name"]
        assert got["price_cents"] == want["price_cents"]
        assert got["stock"] == want["stock"]
        assert got["tiers"] == want["tiers"]
    stored = await fetch_rows(
        database_url,
        "SELECT sku, price_cents, stock FROM products ORDER BY position, id",
    )
    assert [(row["sku"], row["price_cents"], row["stock"]) for row in stored] == [
        ("TSH-1", 2990, 100),
        ("CAP-1", 1500, 30),
        ("SCK-1", 990, 250),
    ]
    assert errors == []


def card_names(page: Page):
    return page.locator("#product-grid article.card .card__name")


def catalog_names(panel: Page):
    return panel.locator("table.catalog tbody tr strong")


async def stored_order(database_url: str) -> list[tuple[str, int]]:
    rows = await fetch_rows(
        database_url, "SELECT sku, position FROM products ORDER BY position, id"
    )
    return [(row["sku"], row["position"]) for row in rows]


@pytest.mark.gen_test(timeout=120)
async def test_reorder_products(api, database_url, base_url):
    await start_live(api, database_url)
    shirt = await create_product(api, sku="TSH-1", name="Basic T-shirt")
    cap = await create_product(api, sku="CAP-1", name="Trucker cap")
    await create_product(api, sku="SCK-1", name="Wool socks")
    products_url = f"/api/v1/manager/lives/{SLUG}/products"
    errors: list[str] = []

    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        storefront = await open_storefront(context, base_url, errors)
        await expect(card_names(storefront)).to_have_text(
            ["Basic T-shirt", "Trucker cap", "Wool socks"]
        )
        panel = await open_panel(context, base_url, errors)
        await panel.locator("a.tab", has_text="Catalog").click()
        await expect(catalog_names(panel)).to_have_text(
            ["Basic T-shirt", "Trucker cap", "Wool socks"]
        )

        # The first move's request is held back, so the second move is made while the
        # first is still being saved. Sent side by side, the two would reach the server
        # swapped and leave the first move's position.
        patched_urls: list[str] = []

        async def hold_first_move(route: Route) -> None:
            if route.request.method == "PATCH":
                patched_urls.append(route.request.url)
                if len(patched_urls) == 1:
                    await asyncio.sleep(0.5)
            await route.continue_()

        product_url = re.compile(r".*/products/\d+$")
        await panel.route(product_url, hold_first_move)

        # The keyboard alternative: arrow keys on the handle move the row.
        handle = panel.get_by_role(
            "button", name="Move SCK-1: drag, or use the arrow keys"
        )
        await handle.focus()
        await handle.press("ArrowUp")
        await handle.press("ArrowUp")
        await expect(catalog_names(panel)).to_have_text(
            ["Wool socks", "Basic T-shirt", "Trucker cap"]
        )
        await expect(card_names(storefront)).to_have_text(
            ["Wool socks", "Basic T-shirt", "Trucker cap"]
        )
        # The rows keep the positions 0 to 2 they were created with, so each move
        # rewrites only the two rows it swaps.
        await wait_for_order(database_url, [("SCK-1", 0), ("TSH-1", 1), ("CAP-1", 2)])
        assert len(patched_urls) <= 4
        await panel.unroute(product_url)

        # Another manager's move takes the focused row to the top, and the focus stays.
        cap_handle = panel.get_by_role(
            "button", name="Move CAP-1: drag, or use the arrow keys"
        )
        await cap_handle.focus()
        await api.patch(f"{products_url}/{cap['id']}", {"position": 0})
        await expect(catalog_names(panel)).to_have_text(
            ["Trucker cap", "Wool socks", "Basic T-shirt"]
        )
        await expect(cap_handle).to_be_focused()
        await api.patch(f"{products_url}/{cap['id']}", {"position": 2})
        await expect(catalog_names(panel)).to_have_text(
            ["Wool socks", "Basic T-shirt", "Trucker cap"]
        )

        # A pointer drag of the first row's handle below the last row moves it last.
        await drag_first_row_below_last(panel)
        # A sale's stock event during the drag must not put the row back, and another
        # manager's move of the T-shirt to the end during the drag is kept.
        await api.patch(f"{products_url}/{shirt['id']}", {"stock": 99, "position": 3})
        await expect(panel.get_by_role("textbox", name="Stock of TSH-1")).to_have_value(
            "99"
        )
        await panel.mouse.up()
        await expect(catalog_names(panel)).to_have_text(
            ["Trucker cap", "Wool socks", "Basic T-shirt"]
        )
        await expect(card_names(storefront)).to_have_text(
            ["Trucker cap", "Wool socks", "Basic T-shirt"]
        )
        await wait_for_order(database_url, [("CAP-1", 0), ("SCK-1", 2), ("TSH-1", 3)])

        # A reload of the buyer's page reads the same order from the server.
        await storefront.reload(wait_until="domcontentloaded")
        await expect(card_names(storefront)).to_have_text(
            ["Trucker cap", "Wool socks", "Basic T-shirt"]
        )

        # A request lost on the way is sent again, and the move is saved whole.
        aborted_urls: list[str] = []

        async def abort_first_move(route: Route) -> None:
            if route.request.method == "PATCH" and not aborted_urls:
                aborted_urls.append(route.request.url)
                await route.abort("connectionreset")
                return
            await route.continue_()

        await panel.route(product_url, abort_first_move)
        await cap_handle.focus()
        await cap_handle.press("ArrowDown")
        await wait_for_order(database_url, [("SCK-1", 0), ("CAP-1", 2), ("TSH-1", 3)])
        await expect(card_names(storefront)).to_have_text(
            ["Wool socks", "Trucker cap", "Basic T-shirt"]
        )
        assert len(aborted_urls) == 1
        await panel.unroute(product_url)

        # The editor saves a product that has no image.
        cap_row = panel.locator("table.catalog tbody tr", has_text="CAP-1")
        await cap_row.get_by_role("button", name="Edit").click()
        drawer = panel.locator(".drawer")
        await drawer.locator("[name=name]").fill("Trucker cap, blue")
        await drawer.get_by_role("button", name="Save product").click()
        await expect(drawer).to_have_count(0)
        await expect(card_names(storefront)).to_have_text(
            ["Wool socks", "Trucker cap, blue", "Basic T-shirt"]
        )

        # A drop below a row that another manager moved to the top during the drag
        # stays at the bottom, where the manager saw it land.
        await drag_first_row_below_last(panel)
        await api.patch(f"{products_url}/{shirt['id']}", {"position": 0})
        await expect(card_names(storefront)).to_have_text(
            ["Basic T-shirt", "Wool socks", "Trucker cap, blue"]
        )
        await panel.mouse.up()
        await wait_for_order(database_url, [("TSH-1", 0), ("CAP-1", 1), ("SCK-1", 2)])
        await expect(catalog_names(panel)).to_have_text(
            ["Basic T-shirt", "Trucker cap, blue", "Wool socks"]
        )
        await context.close()

    assert errors == []


async def drag_first_row_below_last(panel: Page) -> None:
    """Press the first row's drag handle and move the pointer below the last row's
    middle. The button stays down, so the caller decides when to drop."""
    rows = panel.locator("table.catalog tbody tr")
    start = await rows.first.locator(".drag-handle").bounding_box()
    target = await rows.last.bounding_box()
    assert start is not None
    assert target is not None
    await panel.mouse.move(
        start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    )
    await panel.mouse.down()
    await panel.mouse.move(
        start["x"] + start["width"] / 2,
        target["y"] + target["height"] * 0.8,
        steps=10,
    )


async def wait_for_order(database_url: str, expected: list[tuple[str, int]]) -> None:
    """Poll the stored positions for 10 s until they equal `expected`."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        order = await stored_order(database_url)
        if order == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"stored order {order}, expected {expected}")
        await asyncio.sleep(0.2)


@pytest.mark.gen_test(timeout=120)
async def test_banner_shows_and_hides(api, database_url, base_url):
    await start_live(api, database_url)
    await create_product(api, sku="TSH-1", name="Basic T-shirt")
    errors: list[str] = []

    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        storefront = await open_storefront(context, base_url, errors)
        strip = storefront.locator("#banner-strip")
        await expect(strip).to_be_hidden()
        panel = await open_panel(context, base_url, errors)
        banners = panel.locator("section.card", has_text="Banners")
        await expect(banners.get_by_text("No banners.")).to_be_visible()

        form = banners.locator("form.banner-form")
        await form.locator("[name=text]").fill("Free shipping above 50 units")
        await form.get_by_role("button", name="Add banner").click()
        item = banners.locator("li.banner", has_text="Free shipping above 50 units")
        await expect(item).to_be_visible()
        await expect(item).to_contain_text("Shown")

        shown = strip.locator(".banner", has_text="Free shipping above 50 units")
        await expect(shown).to_be_visible()
        stored = await fetch_row(
            database_url,
            "SELECT id, visible FROM banners WHERE text = $1",
            "Free shipping above 50 units",
        )
        assert stored["visible"] is True
        await expect(shown).to_have_attribute("data-banner-id", str(stored["id"]))

        # Unchecking Visible hides it on the buyer's page without a reload.
        await item.get_by_label("Visible").uncheck()
        await expect(item).to_contain_text("Hidden")
        await expect(shown).to_have_count(0)
        await expect(strip).to_be_hidden()
        hidden = await fetch_row(
            database_url, "SELECT visible FROM banners WHERE id = $1", stored["id"]
        )
        assert hidden["visible"] is False
        await context.close()

    assert errors == []


@pytest.mark.gen_test(timeout=120)
async def test_flash_offer_countdown(api, database_url, base_url):
    await start_live(api, database_url)
    await create_product(api, sku="TSH-1", name="Basic T-shirt", price_cents=2990)
    cap = await create_product(api, sku="CAP-1", name="Trucker cap", price_cents=1500)
    errors: list[str] = []

    async with chromium() as browser:
        # A fixed time zone, so the datetime-local value below means a known instant.
        context = await browser.new_context(
            viewport={"width": 1366, "height": 900}, timezone_id="UTC"
        )
        storefront = await open_storefront(context, base_url, errors)
        cap_card = card(storefront, "Trucker cap")
        await expect(cap_card).to_contain_text("15,00")
        await expect(cap_card.locator(".card__flash")).to_have_count(0)
        panel = await open_panel(context, base_url, errors)

        offers = panel.locator("section.card", has_text="Flash offers")
        await expect(offers.get_by_text("No offer running.")).to_be_visible()
        # The minute is rounded down, so between 4 and 5 minutes remain at the start.
        ends_at = (datetime.now(UTC) + timedelta(minutes=5)).replace(
            second=0, microsecond=0
        )
        await offers.locator("[name=product_id]").select_option(str(cap["id"]))
        await offers.locator("[name=flash_price_cents]").fill("9,90")
        await offers.locator("[name=flash_ends_at]").fill(
            ends_at.strftime("%Y-%m-%dT%H:%M")
        )
        await offers.get_by_role("button", name="Start offer").click()
        offer = offers.locator("li.offer", has_text="CAP-1")
        await expect(offer).to_be_visible()
        await expect(offer.locator(".countdown")).to_have_text(
            re.compile(r"^[3-5]:\d\d$")
        )

        stored = await fetch_row(
            database_url,
            "SELECT flash_price_cents, flash_ends_at FROM products WHERE id = $1",
            cap["id"],
        )
        assert stored["flash_price_cents"] == 990
        assert stored["flash_ends_at"] == ends_at

        # The buyer's page shows the flash price, the regular price and a countdown.
        price = cap_card.locator(".card__price--flash")
        await expect(price).to_contain_text("9,90")
        await expect(price.locator("s.regular-price")).to_contain_text("15,00")
        countdown = cap_card.locator(".card__countdown time.countdown")
        await expect(countdown).to_have_text(re.compile(r"^0[3-5]:\d\d$"))
        first_reading = await countdown.inner_text()
        await expect(countdown).not_to_have_text(first_reading, timeout=3000)
        await expect(
            card(storefront, "Basic T-shirt").locator(".card__flash")
        ).to_have_count(0)
        await context.close()

    assert errors == []
