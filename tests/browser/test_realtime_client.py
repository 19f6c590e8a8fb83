"""The shared JS socket client in Chromium: reconnect, resume, reset, restart advice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
import tornado.web
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from server.app import make_app
from tests.browser.test_storefront import chromium
from tests.conftest import REDIS_URL
from tests.factories import create_live, create_product, login_manager

pytestmark = pytest.mark.browser

PRODUCTS = "/api/v1/manager/lives/summer-24/products"

# Served by the test from the server under test, so the page, the module and the socket
# share one origin.
HARNESS = """<!doctype html>
<script type="module">
import { RealtimeClient, backoffDelay } from '/static/js/realtime.js';

window.events = [];
window.resets = 0;
window.statuses = [];
window.backoffDelay = backoffDelay;

async function fetchPosition() {
  const state = await (await fetch('/api/v1/lives/summer-24')).json();
  return { epoch: state.topic.epoch, offset: state.topic.offset };
}

const client = new RealtimeClient();
client.addEventListener('status', (event) => window.statuses.push(event.detail.status));
client.subscribe(
  'live:summer-24',
  await fetchPosition(),
  (event) => window.events.push(event),
  async () => {
    window.resets += 1;
    client.subscribe('live:summer-24', await fetchPosition());
  },
);
window.ready = true;
</script>
"""


class HarnessHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html")
        self.finish(HARNESS)


@pytest.fixture
def app(ctx: Any) -> tornado.web.Application:
    """The real application plus the harness page, served from the same origin."""
    application = make_app(ctx)
    application.add_handlers(r".*", [(r"/__harness", HarnessHandler)])
    return application


async def _open_harness(page: Page, base_url: str) -> None:
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.on("pageerror", lambda error: messages.append(str(error)))
    await page.goto(f"{base_url}/__harness")
    try:
        await page.wait_for_function(
            "window.ready === true && window.statuses.includes('open')",
            timeout=10_000,
        )
    except PlaywrightTimeoutError:
        raise AssertionError(f"the harness did not start: {messages}") from None


async def _stock_values(page: Page) -> list[int]:
    values: list[int] = await page.evaluate(
        "window.events.filter(e => e.type === 'stock.changed').map(e => e.data.stock)"
    )
    return values


async def _wait_stock(page: Page, count: int) -> None:
    await page.wait_for_function(
        f"window.events.filter(e => e.type === 'stock.changed').length >= {count}",
        timeout=15_000,
    )


def _drop_connections(ctx: Any) -> None:
    """Cut every socket without a close frame, as a network failure would."""
    for socket in list(ctx.sockets):
        socket.abort()


@pytest.mark.gen_test(timeout=90)
async def test_client_resumes_after_drop_and_restart(api, database_url, base_url, ctx):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, stock=100)

    async with chromium() as browser:
        page = await browser.new_page()
        await _open_harness(page, base_url)

        for stock in range(5):
            await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})
        await _wait_stock(page, 5)

        # Events published while the socket is down arrive once it is back.
        _drop_connections(ctx)
        for stock in range(5, 15):
            await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})
        await _wait_stock(page, 15)

        # A restarting server sends the client its reconnect delay.
        for socket in list(ctx.sockets):
            socket.advise_reconnect(0.5)
        for stock in range(15, 20):
            await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})
        await _wait_stock(page, 20)

        values = await _stock_values(page)
        offsets = await page.evaluate("window.events.map(e => e.offset)")
        statuses = await page.evaluate("window.statuses")
        resets = await page.evaluate("window.resets")

    assert values == list(range(20))
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    assert statuses.count("reconnecting") >= 2
    assert statuses[-1] == "open"
    assert resets == 0


@pytest.mark.gen_test(timeout=90)
async def test_client_refetches_after_reset(api, database_url, base_url, ctx):
    await login_manager(api, database_url)
    await create_live(api)
    product = await create_product(api, stock=100)

    async with chromium() as browser:
        page = await browser.new_page()
        await _open_harness(page, base_url)
        await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 1})
        await _wait_stock(page, 1)

        # Redis loses the topic while the client is away: its offset means nothing.
        _drop_connections(ctx)
        client = aioredis.from_url(REDIS_URL)
        await client.flushdb()
        await client.aclose()
        await page.wait_for_function(
            "window.statuses.filter(s => s === 'open').length >= 2", timeout=15_000
        )
        # The first event of the new epoch resets the client, which refetches the
        # state (stock 2 included) and follows the topic from there.
        await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 2})
        await page.wait_for_function("window.resets === 1", timeout=15_000)
        await asyncio.sleep(0.3)
        await api.patch(f"{PRODUCTS}/{product['id']}", {"stock": 3})
        await _wait_stock(page, 2)

        values = await _stock_values(page)

    assert values == [1, 3]


@pytest.mark.gen_test(timeout=60)
async def test_backoff_is_full_jitter_with_cap(api, database_url, base_url):
    await login_manager(api, database_url)
    await create_live(api)

    async with chromium() as browser:
        page = await browser.new_page()
        await _open_harness(page, base_url)

        bounds = await page.evaluate(
            """[0, 1, 2, 5, 10].map((attempt) => [
                 window.backoffDelay(attempt, () => 0),
                 window.backoffDelay(attempt, () => 0.999999),
               ])"""
        )

    assert [low for low, _ in bounds] == [0, 0, 0, 0, 0]
    assert [round(high) for _, high in bounds] == [
        500,
        1000,
        2000,
        16000,
        20000,
    ]
